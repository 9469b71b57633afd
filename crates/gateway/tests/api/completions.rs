//! Completions asked with an API key (chat's `Complete`, the engine of the
//! OpenAI-compatible API): metered as sends are — the quota reserved before
//! the provider is called, every produced token charged once, hang-ups
//! included — with nothing saved but the usage row, which records the key.
//! Called on chat's gRPC face, with the real billing and the mock provider.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

use std::time::Duration;

use aichat_proto::chat::v1::{self as pb, chat_client::ChatClient, complete_event::Event};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    chat::{billing_sql, chat_count},
    helpers::{Login, TestApp, unique_email},
    metering::assert_charged_and_settled,
};

fn turn(role: &str, content: &str) -> pb::Turn {
    pb::Turn {
        role: role.to_owned(),
        content: content.to_owned(),
    }
}

fn request(login: &Login, key: Uuid, model: &str) -> pb::CompleteRequest {
    pb::CompleteRequest {
        user_id: login.user["id"].as_str().unwrap().to_owned(),
        api_key_id: key.to_string(),
        model: model.to_owned(),
        messages: vec![
            turn("system", "Be brief."),
            turn("user", "Hello!"),
            turn("assistant", "Hi! How can I help?"),
            turn("user", "Say hello back."),
        ],
        max_tokens: Some(256),
        temperature: Some(0.5),
        stop: vec![],
    }
}

async fn client(app: &TestApp) -> ChatClient<tonic::transport::Channel> {
    ChatClient::connect(app.chat.url.clone()).await.unwrap()
}

/// The reply's text and its usage, reading the whole stream.
async fn complete(app: &TestApp, request: pb::CompleteRequest) -> (String, pb::Usage) {
    let mut stream = client(app)
        .await
        .complete(request)
        .await
        .unwrap()
        .into_inner();
    let mut text = String::new();
    let mut usage = None;
    while let Some(event) = stream.next().await {
        match event.unwrap().event.unwrap() {
            Event::Delta(delta) => text.push_str(&delta),
            Event::Done(done) => usage = Some(done),
            Event::Error(error) => panic!("the completion failed: {error:?}"),
        }
    }
    let Some(usage) = usage else {
        panic!("the stream ended without its usage");
    };
    (text, usage)
}

async fn usage_of(app: &TestApp, login: &Login) -> Value {
    app.call(
        Method::GET,
        "/api/v1/billing/usage",
        Some(&login.access),
        None,
    )
    .await
    .json()
    .await
    .unwrap()
}

/// Billing's usage once it counted `tokens` (the settlement arrives by event).
pub(crate) async fn settled(app: &TestApp, login: &Login, tokens: i64) -> Value {
    let mut usage = Value::Null;
    for _ in 0..200 {
        usage = usage_of(app, login).await;
        if usage["tokensUsed"].as_i64() == Some(tokens) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    usage
}

async fn provider_calls(app: &TestApp) -> Value {
    app.client
        .get(format!("{}/_mock/stats", app.mock))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_of_each_provider_family_is_charged_once_to_its_key_and_saves_no_conversation()
{
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let user = login.user["id"].as_str().unwrap().to_owned();
    let key = Uuid::now_v7();
    let mut charged = 0;
    for model in ["gpt-4o-mini", "claude-3-5-haiku-latest", "gemini-2.0-flash"] {
        let (text, usage) = complete(&app, request(&login, key, model)).await;
        assert!(!text.is_empty(), "{model}: a reply");
        assert!(
            usage.prompt_tokens > 0 && usage.completion_tokens > 0,
            "{model}: {usage:?}"
        );
        assert_eq!(
            usage.total_tokens,
            usage.prompt_tokens + usage.completion_tokens
        );
        charged += i64::from(usage.total_tokens);
        // The row of this call: the provider's tokens, the key, no links.
        assert_eq!(
            chat_count(
                &app,
                &format!(
                    "tokenUsage WHERE userId = '{user}' AND model = '{model}' \
                     AND apiKeyId = '{key}' AND conversationId IS NULL AND messageId IS NULL \
                     AND promptTokens = {} AND completionTokens = {} AND costUsd > 0",
                    usage.prompt_tokens, usage.completion_tokens
                )
            )
            .await,
            1,
            "{model}: one usage row with the key"
        );
    }
    assert_eq!(
        chat_count(&app, &format!("tokenUsage WHERE userId = '{user}'")).await,
        3
    );
    assert_eq!(
        chat_count(&app, &format!("conversations WHERE userId = '{user}'")).await,
        0,
        "nothing of a completion is kept as a conversation"
    );
    assert_eq!(chat_count(&app, "messages").await, 0);
    assert_eq!(chat_count(&app, "pendingSends").await, 0);
    assert_charged_and_settled(&settled(&app, &login, charged).await, charged, "completion");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hanging_up_mid_completion_is_still_charged_once_for_the_whole_reply() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let user = login.user["id"].as_str().unwrap().to_owned();
    // About 2.4 s a reply: the hang-up comes mid-stream.
    let r = app
        .client
        .put(format!("{}/_mock/config", app.mock))
        .json(&json!({"tokenDelayMs": 100}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let key = Uuid::now_v7();
    let mut stream = client(&app)
        .await
        .complete(request(&login, key, "gpt-4o-mini"))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(first.event, Some(Event::Delta(_))), "{first:?}");
    drop(stream);
    // The call goes on without its client and is charged once at its end.
    let mut rows = 0;
    for _ in 0..200 {
        rows = chat_count(&app, &format!("tokenUsage WHERE userId = '{user}'")).await;
        if rows > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows, 1);
    assert_eq!(chat_count(&app, "pendingSends").await, 0);
    let hung_up = {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            completion: i32,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            total: i32,
        }
        use diesel_async::RunQueryDsl;
        let pool = app.chat.pool().unwrap();
        let mut conn = pool.get().await.unwrap();
        let row: T = diesel::sql_query(format!(
            "SELECT completionTokens AS completion, totalTokens AS total \
             FROM tokenUsage WHERE userId = '{user}'"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        row
    };
    // The whole reply was charged, not the one delta the client saw: the
    // same request read to its end (the mock answers it alike) has as many.
    let (_, whole) = complete(&app, request(&login, key, "gpt-4o-mini")).await;
    assert!(whole.completion_tokens > 1);
    assert_eq!(hung_up.completion, whole.completion_tokens);
    let total = i64::from(hung_up.total) + i64::from(whole.total_tokens);
    assert_charged_and_settled(&settled(&app, &login, total).await, total, "completion");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_quota_a_completion_is_refused_before_any_provider_call() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let user = login.user["id"].as_str().unwrap().to_owned();
    billing_sql(
        &app,
        &format!("UPDATE usageTracking SET monthlyQuota = 100 WHERE userId = '{user}'"),
    )
    .await;
    let before = provider_calls(&app).await;
    // 256 tokens of reply cannot be held within a quota of 100.
    let refused = client(&app)
        .await
        .complete(request(&login, Uuid::now_v7(), "gpt-4o-mini"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.message().contains("quota"), "{refused:?}");
    assert_eq!(provider_calls(&app).await, before, "no provider call");
    assert_eq!(
        chat_count(&app, &format!("tokenUsage WHERE userId = '{user}'")).await,
        0
    );
    assert_charged_and_settled(&usage_of(&app, &login).await, 0, "completion");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_completions_are_refused_before_anything_is_held_or_called() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let user = login.user["id"].as_str().unwrap().to_owned();
    let before = provider_calls(&app).await;
    let key = Uuid::now_v7();
    let base = request(&login, key, "gpt-4o-mini");
    let unknown = pb::CompleteRequest {
        model: "gpt-99".into(),
        ..base.clone()
    };
    let cases: Vec<(&str, pb::CompleteRequest, tonic::Code)> = vec![
        ("an unknown model", unknown, tonic::Code::NotFound),
        (
            "no messages",
            pb::CompleteRequest {
                messages: vec![],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "only a system prompt",
            pb::CompleteRequest {
                messages: vec![turn("system", "Be brief.")],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "an unknown role",
            pb::CompleteRequest {
                messages: vec![turn("tool", "42")],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "an empty message",
            pb::CompleteRequest {
                messages: vec![turn("user", "  ")],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "max_tokens 0",
            pb::CompleteRequest {
                max_tokens: Some(0),
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "max_tokens past the limit",
            pb::CompleteRequest {
                max_tokens: Some(16_385),
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "a temperature of 3",
            pb::CompleteRequest {
                temperature: Some(3.0),
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "a NaN temperature",
            pb::CompleteRequest {
                temperature: Some(f64::NAN),
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "five stop sequences",
            pb::CompleteRequest {
                stop: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "an empty stop sequence",
            pb::CompleteRequest {
                stop: vec![String::new()],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            "a malformed key id",
            pb::CompleteRequest {
                api_key_id: "not-a-uuid".into(),
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
        ),
    ];
    let mut chat = client(&app).await;
    for (what, request, code) in cases {
        let refused = chat.complete(request).await.unwrap_err();
        assert_eq!(refused.code(), code, "{what}: {refused:?}");
    }
    assert_eq!(provider_calls(&app).await, before, "no provider call");
    assert_eq!(
        chat_count(&app, &format!("tokenUsage WHERE userId = '{user}'")).await,
        0
    );
    assert_eq!(chat_count(&app, "pendingSends").await, 0);
    assert_charged_and_settled(&usage_of(&app, &login).await, 0, "completion");
    app.finish().await;
}
