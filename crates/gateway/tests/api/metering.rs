//! Every produced token charged once, and plan limits that hold, when the
//! send is not the happy path: deletes mid-stream, slow providers, parallel
//! requests, failed calls, a breaker's trial refused before its call.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    chat::{
        billing_sql, chat_count, conversation, mock, send, settled_usage, sse_events,
        trip_the_breaker,
    },
    helpers::{Login, PASSWORD, TestApp, problem, unique_email},
};

/// A number from a service's database.
async fn number(pool: aichat_db::Pool, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await.unwrap();
    let row: N = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
    row.n
}

async fn billing_number(app: &TestApp, sql: &str) -> i64 {
    number(app.billing.pool().unwrap(), sql).await
}

async fn chat_number(app: &TestApp, sql: &str) -> i64 {
    number(app.chat.pool().unwrap(), sql).await
}

/// Billing counted exactly `charged` tokens and holds nothing more: the
/// reservation was settled, not left to expire.
pub(crate) fn assert_charged_and_settled(usage: &Value, charged: i64, what: &str) {
    assert_eq!(usage["tokensUsed"].as_i64(), Some(charged), "{usage}");
    assert_eq!(
        usage["remaining"].as_i64(),
        Some(usage["monthlyQuota"].as_i64().unwrap() - charged),
        "{what}: {usage}"
    );
}

/// A signed-in GET's JSON body.
async fn get(app: &TestApp, login: &Login, path: &str) -> Value {
    app.call(Method::GET, path, Some(&login.access), None)
        .await
        .json()
        .await
        .unwrap()
}

async fn pace(app: &TestApp, config: Value) {
    let r = app
        .client
        .put(format!("{}/_mock/config", app.mock))
        .json(&config)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn provider_calls(app: &TestApp) -> i64 {
    let stats: Value = app
        .client
        .get(format!("{}/_mock/stats", app.mock))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["openai"].as_i64().unwrap()
}

/// Starts a streamed send and returns its body once the first delta came.
async fn stream_until_first_delta(
    app: &TestApp,
    login: &Login,
    conversation_id: &str,
) -> (
    String,
    impl futures::Stream<Item = reqwest::Result<bytes::Bytes>>,
) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conversation_id}/messages")))
        .bearer_auth(&login.access)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "a long answer, please"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        let chunk = body.next().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    (seen, body)
}

async fn rest_of(
    mut seen: String,
    mut body: impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
) -> Vec<(String, Value)> {
    while let Some(chunk) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    sse_events(&seen)
}

async fn until<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_conversation_mid_stream_still_charges_the_reply_once() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    pace(
        &app,
        json!({"ttftMs": 5, "tokenDelayMs": 40, "replyTokens": 30}),
    )
    .await;
    let (seen, body) = stream_until_first_delta(&app, &login, id).await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/conversations/{id}"),
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let events = rest_of(seen, Box::pin(body)).await;
    let (last, error) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(error["code"], "conversation_deleted", "never internal");
    assert!(events.iter().filter(|(e, _)| e == "delta").count() > 1);
    // Charged once, with the links the seed's SET NULL leaves.
    assert_eq!(chat_count(&app, "tokenUsage").await, 1);
    assert_eq!(
        chat_count(
            &app,
            "tokenUsage WHERE conversationId IS NULL AND messageId IS NULL"
        )
        .await,
        1
    );
    assert_eq!(chat_count(&app, "pendingSends").await, 0);
    let charged = chat_number(
        &app,
        "SELECT COALESCE(SUM(totalTokens), 0)::bigint AS n FROM tokenUsage",
    )
    .await;
    assert!(charged > 30, "prompt and the whole reply: {charged}");
    let usage = settled_usage(&app, &login, 1).await;
    assert_charged_and_settled(
        &usage,
        charged,
        "the reservation was settled, not left held",
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_mid_stream_charges_the_reply_to_its_tombstone() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let user_id = login.user["id"].as_str().unwrap().to_owned();
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    pace(
        &app,
        json!({"ttftMs": 5, "tokenDelayMs": 40, "replyTokens": 60}),
    )
    .await;
    let (seen, body) = stream_until_first_delta(&app, &login, id).await;
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&login.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let events = rest_of(seen, Box::pin(body)).await;
    let (last, _) = events.last().unwrap();
    assert_ne!(last, "delta", "the stream ended with a verdict: {events:?}");
    assert!(
        events.iter().all(|(_, d)| d["code"] != "internal"),
        "{events:?}"
    );

    until("the charge", async || {
        chat_count(&app, &format!("tokenUsage WHERE userId = '{user_id}'")).await == 1
    })
    .await;
    let charged = chat_number(
        &app,
        &format!("SELECT SUM(totalTokens)::bigint AS n FROM tokenUsage WHERE userId = '{user_id}'"),
    )
    .await;
    // billing keeps the tokens on the deleted user's tombstone.
    let on_tombstone = format!(
        "SELECT COALESCE(SUM(tokensUsed), 0)::bigint AS n FROM deletedUsers WHERE userId = '{user_id}'"
    );
    let mut recorded = 0;
    for _ in 0..200 {
        recorded = billing_number(&app, &on_tombstone).await;
        if recorded == charged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded, charged);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_slower_than_the_unary_deadline_answers_and_past_the_stream_deadline_is_504() {
    let app = TestApp::spawn_with(|c| c.grpc_timeout = Duration::from_millis(800)).await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    pace(
        &app,
        json!({"ttftMs": 1500, "tokenDelayMs": 1, "replyTokens": 5}),
    )
    .await;
    // Before: the unary deadline cut the send (500 internal).
    let r = send(&app, &login, id, "think slowly").await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // A gateway whose stream deadline is shorter than the first token.
    let short = app
        .gateway_with(|c| c.chat_stream_timeout = Duration::from_millis(700))
        .await;
    let r = app
        .call_at(
            &short.base,
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&login.access),
            Some(json!({"content": "too slow for this gateway"})),
        )
        .await;
    problem(r, StatusCode::GATEWAY_TIMEOUT, "upstream_timeout").await;
    // The provider was called: the call goes on in chat and is charged.
    until("the second charge", async || {
        chat_count(&app, "tokenUsage").await == 2
    })
    .await;
    let usage = settled_usage(&app, &login, 2).await;
    let charged = chat_number(&app, "SELECT SUM(totalTokens)::bigint AS n FROM tokenUsage").await;
    assert_charged_and_settled(&usage, charged, "no reservation left held");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_stop_exactly_at_the_conversation_limit() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    for _ in 0..19 {
        conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    }
    let creates = (0..10).map(|_| {
        app.call(
            Method::POST,
            "/api/v1/conversations",
            Some(&login.access),
            Some(json!({"model": "gpt-4o"})),
        )
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::PAYMENT_REQUIRED),
        "{statuses:?}"
    );
    assert_eq!(
        chat_count(&app, "conversations").await,
        20,
        "the Free plan's 20"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_sends_stop_exactly_at_the_message_limit() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    billing_sql(
        &app,
        "UPDATE plans SET maxMessagesPerConversation = 6 WHERE name = 'Free'",
    )
    .await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(
            send(&app, &login, id, "one").await.status(),
            StatusCode::CREATED
        );
    }
    let sends = (0..5).map(|_| send(&app, &login, id, "at once"));
    let statuses: Vec<StatusCode> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        chat_count(&app, "messages").await,
        6,
        "never past the limit"
    );
    let c = get(&app, &login, &format!("/api/v1/conversations/{id}")).await;
    assert_eq!(c["messageCount"], 6);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failing_before_any_text_keeps_the_users_message_and_holds_nothing() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    mock(
        &app,
        json!([{"kind": "server_error"}, {"kind": "server_error"}, {"kind": "server_error"}]),
    )
    .await;
    problem(
        send(&app, &login, id, "keep me").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
    )
    .await;
    let page = get(
        &app,
        &login,
        &format!("/api/v1/conversations/{id}/messages"),
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["role"], "user");
    assert_eq!(items[0]["content"], "keep me");
    assert_eq!(chat_count(&app, "tokenUsage").await, 0, "nothing charged");
    assert_eq!(chat_count(&app, "pendingSends").await, 0);
    let usage: Value = app
        .call(
            Method::GET,
            "/api/v1/billing/usage",
            Some(&login.access),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        usage["remaining"], usage["monthlyQuota"],
        "released: {usage}"
    );
    // The client retries; the conversation counts both user messages and
    // the one reply.
    assert_eq!(
        send(&app, &login, id, "keep me").await.status(),
        StatusCode::CREATED
    );
    let c = get(&app, &login, &format!("/api/v1/conversations/{id}")).await;
    assert_eq!(c["messageCount"], 3);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakers_trial_refused_before_the_call_does_not_keep_the_provider_closed() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    trip_the_breaker(&app, &login, id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The trial is taken by a send that billing refuses (quota spent).
    let user_id = login.user["id"].as_str().unwrap();
    billing_sql(
        &app,
        &format!("UPDATE usageTracking SET monthlyQuota = 0 WHERE userId = '{user_id}'"),
    )
    .await;
    problem(
        send(&app, &login, id, "refused").await,
        StatusCode::PAYMENT_REQUIRED,
        "quota_exceeded",
    )
    .await;
    billing_sql(
        &app,
        &format!("UPDATE usageTracking SET monthlyQuota = 100000 WHERE userId = '{user_id}'"),
    )
    .await;
    let calls = provider_calls(&app).await;
    // Before, every later send answered 503 until a restart.
    assert_eq!(
        send(&app, &login, id, "the real trial").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(provider_calls(&app).await, calls + 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_past_their_plans_send_rate_gets_429_and_nothing_is_held() {
    let app = TestApp::spawn_with_chat(
        |_| {},
        |c| c.sends_per_minute = vec![("Free".to_owned(), 2)],
    )
    .await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(
            send(&app, &login, id, "hi").await.status(),
            StatusCode::CREATED
        );
    }
    let calls = provider_calls(&app).await;
    let r = send(&app, &login, id, "one too many").await;
    assert!(r.headers().contains_key("retry-after"));
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(provider_calls(&app).await, calls, "the provider was spared");
    // Another user is not slowed down by the first one.
    let other = app.signup(&unique_email()).await;
    let c = conversation(&app, &other, json!({"model": "gpt-4o"})).await;
    assert_eq!(
        send(&app, &other, c["id"].as_str().unwrap(), "hi")
            .await
            .status(),
        StatusCode::CREATED
    );
    let usage = settled_usage(&app, &login, 2).await;
    let charged = usage["tokensUsed"].as_i64().unwrap();
    assert_charged_and_settled(
        &usage,
        charged,
        "the refused send's reservation was released",
    );
    app.finish().await;
}
