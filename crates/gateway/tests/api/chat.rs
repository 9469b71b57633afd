//! Chat end to end: gateway → chat → billing → mock LLM, real PostgreSQL and
//! RabbitMQ.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Login, TestApp, problem, unique_email};

pub(crate) async fn conversation(app: &TestApp, login: &Login, body: Value) -> Value {
    let r = app
        .call(
            Method::POST,
            "/api/v1/conversations",
            Some(&login.access),
            Some(body),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

pub(crate) async fn send(
    app: &TestApp,
    login: &Login,
    conversation_id: &str,
    content: &str,
) -> reqwest::Response {
    app.call(
        Method::POST,
        &format!("/api/v1/conversations/{conversation_id}/messages"),
        Some(&login.access),
        Some(json!({ "content": content })),
    )
    .await
}

/// Parses an SSE body into (event, data) pairs.
pub(crate) fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, serde_json::from_str(&data).unwrap())
        })
        .collect()
}

pub(crate) async fn billing_sql(app: &TestApp, sql: &str) {
    use diesel_async::SimpleAsyncConnection;
    let pool = app.billing.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(sql).await.unwrap();
}

pub(crate) async fn chat_count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let pool = app.chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let row: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {sql}"))
        .get_result(&mut conn)
        .await
        .unwrap();
    row.n
}

/// Opens the OpenAI circuit: the test chat opens a provider's circuit after 3
/// failed calls, for 1 s; each call is tried 3 times.
pub(crate) async fn trip_the_breaker(app: &TestApp, login: &Login, conversation_id: &str) {
    mock(app, json!(vec![json!({"kind": "server_error"}); 9])).await;
    for _ in 0..3 {
        problem(
            send(app, login, conversation_id, "fail").await,
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
        )
        .await;
    }
}

pub(crate) async fn mock(app: &TestApp, faults: Value) {
    let r = app
        .client
        .post(format!("{}/_mock/faults", app.mock))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_list_the_providers_models_with_decimal_prices() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let r = app
        .call(Method::GET, "/api/v1/models", Some(&login.access), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    for (model, provider) in [
        ("gpt-4o", "openai"),
        ("claude-3-sonnet", "anthropic"),
        ("gemini-1.5-pro", "google"),
    ] {
        let m = items
            .iter()
            .find(|m| m["id"] == model)
            .unwrap_or_else(|| panic!("{model} listed"));
        assert_eq!(m["provider"], provider);
        assert!(
            m["inputCostPer1k"].is_string() && m["outputCostPer1k"].is_string(),
            "{m}"
        );
        assert_eq!(m["available"], true);
    }
    let gpt = items.iter().find(|m| m["id"] == "gpt-4o").unwrap();
    assert_eq!(gpt["inputCostPer1k"], "0.00250000");
    problem(
        app.call(Method::GET, "/api/v1/models", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_are_created_listed_newest_first_by_cursor_changed_archived_and_deleted() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let first = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    assert_eq!(first["title"], "New conversation");
    assert_eq!(first["messageCount"], 0);
    assert_eq!(first["isArchived"], false);
    assert!(first["createdAt"].as_str().unwrap().ends_with('Z'));
    let second = conversation(
        &app,
        &login,
        json!({"model": "claude-3-sonnet", "title": "Two", "systemPrompt": "Be brief."}),
    )
    .await;
    assert_eq!(second["systemPrompt"], "Be brief.");
    let third = conversation(
        &app,
        &login,
        json!({"model": "gemini-1.5-pro", "title": "Three", "description": "d"}),
    )
    .await;

    let r = app
        .call(
            Method::GET,
            "/api/v1/conversations?limit=2",
            Some(&login.access),
            None,
        )
        .await;
    let page: Value = r.json().await.unwrap();
    let ids: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, vec![&third["id"], &second["id"]], "newest first");
    let cursor = page["nextCursor"].as_str().unwrap();
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations?limit=2&cursor={cursor}"),
            Some(&login.access),
            None,
        )
        .await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], first["id"]);
    assert!(page["nextCursor"].is_null());

    let id = second["id"].as_str().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            Some(&login.access),
            Some(json!({"title": "Renamed", "model": "gpt-4o"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed["title"], "Renamed");
    assert_eq!(changed["model"], "gpt-4o");
    assert_eq!(
        changed["systemPrompt"], "Be brief.",
        "untouched fields stay"
    );

    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{id}/archive"),
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["isArchived"], true);
    let r = app
        .call(
            Method::GET,
            "/api/v1/conversations?archived=true",
            Some(&login.access),
            None,
        )
        .await;
    let archived: Value = r.json().await.unwrap();
    assert_eq!(archived["items"].as_array().unwrap().len(), 1);
    let r = app
        .call(
            Method::GET,
            "/api/v1/conversations?archived=false",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{id}/unarchive"),
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["isArchived"], false);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/conversations/{id}"),
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        app.call(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            Some(&login.access),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_on_every_chat_field() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let cases = [
        (json!({}), "model"),
        (json!({"model": "no-such-model"}), "model"),
        (json!({"model": "gpt-4o", "title": "   "}), "title"),
        (
            json!({"model": "gpt-4o", "title": "x".repeat(501)}),
            "title",
        ),
        (
            json!({"model": "gpt-4o", "systemPrompt": "x".repeat(8001)}),
            "systemPrompt",
        ),
        // PostgreSQL's text cannot hold U+0000 (it answered 500).
        (
            json!({"model": "gpt-4o", "systemPrompt": "a\u{0}b"}),
            "systemPrompt",
        ),
        (
            json!({"model": "gpt-4o", "description": "a\u{0}b"}),
            "description",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .call(
                Method::POST,
                "/api/v1/conversations",
                Some(&login.access),
                Some(body.clone()),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(p["errors"][field].is_string(), "{body}: {p}");
    }
    assert_eq!(chat_count(&app, "conversations").await, 0);

    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    for (content, field) in [
        ("", "content"),
        ("   ", "content"),
        (&*"x".repeat(32_001), "content"),
        ("a\u{0}b", "content"),
    ] {
        let p = problem(
            send(&app, &login, id, content).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(p["errors"][field].is_string());
    }
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&login.access),
            Some(json!({"content": "hi", "model": "nope"})),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    for query in ["cursor=not-a-cursor", "limit=0", "limit=101"] {
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/conversations?{query}"),
                Some(&login.access),
                None,
            )
            .await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/conversations/{id}/messages?{query}"),
                Some(&login.access),
                None,
            )
            .await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    assert_eq!(chat_count(&app, "messages").await, 0, "nothing written");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_conversations_and_messages_answer_404_like_missing_ones() {
    let app = TestApp::spawn().await;
    let alice = app.signup(&unique_email()).await;
    let mallory = app.signup(&unique_email()).await;
    let c = conversation(&app, &alice, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    let r = send(&app, &alice, id, "hello there").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sent: Value = r.json().await.unwrap();
    let message_id = sent["userMessage"]["id"].as_str().unwrap();
    let missing = uuid::Uuid::now_v7();
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/conversations/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/conversations/{id}"),
            Some(json!({"title": "mine"})),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{id}/archive"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{id}/unarchive"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{id}/messages"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{id}/messages"),
            Some(json!({"content": "hi"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/conversations/{id}/messages/{message_id}"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/conversations/{id}"), None),
    ] {
        let theirs = problem(
            app.call(method.clone(), &path, Some(&mallory.access), body.clone())
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        let path = path.replace(id, &missing.to_string());
        let none = problem(
            app.call(method, &path, Some(&mallory.access), body).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        assert_eq!(theirs, none, "{path}");
    }
    let r = app
        .call(
            Method::GET,
            "/api/v1/conversations",
            Some(&mallory.access),
            None,
        )
        .await;
    assert!(
        r.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Nothing of Alice's changed.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            Some(&alice.access),
            None,
        )
        .await;
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["messageCount"], 2);
    assert_eq!(c["isArchived"], false);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_answered_saved_counted_priced_and_settled_at_billing() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(
        &app,
        &login,
        json!({"model": "gpt-4o", "systemPrompt": "You are terse."}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let r = send(
        &app,
        &login,
        id,
        "Could you please explain how the weather usually changes during the spring months?",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let (user, assistant, usage) = (
        &body["userMessage"],
        &body["assistantMessage"],
        &body["usage"],
    );
    assert_eq!(user["role"], "user");
    assert_eq!(user["language"], "en");
    assert_eq!(assistant["role"], "assistant");
    assert!(!assistant["content"].as_str().unwrap().is_empty());
    assert_eq!(assistant["model"], "gpt-4o");
    let (prompt, completion) = (
        usage["promptTokens"].as_i64().unwrap(),
        usage["completionTokens"].as_i64().unwrap(),
    );
    assert!(prompt > 0 && completion > 0);
    assert_eq!(usage["totalTokens"].as_i64().unwrap(), prompt + completion);
    assert_eq!(assistant["promptTokens"], usage["promptTokens"]);
    assert_eq!(assistant["completionTokens"], usage["completionTokens"]);
    // Exact decimal price: prompt × 0.0025/1K + completion × 0.01/1K.
    let micro = (prompt * 2500 + completion * 10000 + 500) / 1000;
    assert_eq!(usage["costUsd"], format!("0.{micro:06}"));

    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            Some(&login.access),
            None,
        )
        .await;
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["messageCount"], 2);
    assert_eq!(c["tokenCount"].as_i64().unwrap(), prompt + completion);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&login.access),
            None,
        )
        .await;
    let list: Value = r.json().await.unwrap();
    let roles: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"], "oldest first");
    assert_eq!(
        chat_count(
            &app,
            &format!(
                "tokenUsage WHERE totalTokens = {} AND provider = 'openai'",
                prompt + completion
            )
        )
        .await,
        1
    );

    // Billing settles the usage from chat.tokens.used (tokens and the
    // message count move in the same transaction).
    let settled = settled_usage(&app, &login, 1).await;
    assert_eq!(
        settled["tokensUsed"].as_i64(),
        Some(prompt + completion),
        "{settled}"
    );
    assert_eq!(settled["messagesCount"], 1);
    assert_eq!(
        settled["remaining"].as_i64().unwrap(),
        settled["monthlyQuota"].as_i64().unwrap() - prompt - completion
    );
    assert_eq!(settled["costThisMonth"], format!("0.{micro:06}"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_reply_arrives_as_message_deltas_and_done() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    for model in ["gpt-4o", "claude-3-sonnet", "gemini-1.5-pro"] {
        let c = conversation(&app, &login, json!({"model": model})).await;
        let id = c["id"].as_str().unwrap();
        let r = app
            .client
            .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
            .bearer_auth(&login.access)
            .header("accept", "text/event-stream")
            .json(&json!({"content": "Tell me something"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let events = sse_events(&r.text().await.unwrap());
        assert_eq!(events.first().unwrap().0, "message", "{model}");
        assert_eq!(events[0].1["content"], "Tell me something");
        let deltas: String = events
            .iter()
            .filter(|(e, _)| e == "delta")
            .map(|(_, d)| d["text"].as_str().unwrap())
            .collect();
        assert!(
            events.iter().filter(|(e, _)| e == "delta").count() > 1,
            "{model} streamed in pieces"
        );
        let (last, done) = events.last().unwrap();
        assert_eq!(last, "done", "{model}: {events:?}");
        assert_eq!(done["message"]["content"].as_str().unwrap(), deltas);
        assert!(done["usage"]["costUsd"].is_string());
    }
    assert_eq!(chat_count(&app, "tokenUsage").await, 3);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_quota_a_send_is_refused_with_402_before_any_provider_call() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    billing_sql(&app, "UPDATE usageTracking SET monthlyQuota = 100").await;
    let before: Value = app
        .client
        .get(format!("{}/_mock/stats", app.mock))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = send(&app, &login, c["id"].as_str().unwrap(), "hello").await;
    problem(r, StatusCode::PAYMENT_REQUIRED, "quota_exceeded").await;
    let after: Value = app
        .client
        .get(format!("{}/_mock/stats", app.mock))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after, "the provider was not called");
    assert_eq!(chat_count(&app, "messages").await, 0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_limits_on_conversations_and_messages_answer_402() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    billing_sql(
        &app,
        "UPDATE plans SET maxConversations = 1, maxMessagesPerConversation = 2 WHERE name = 'Free'",
    )
    .await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/conversations",
            Some(&login.access),
            Some(json!({"model": "gpt-4o"})),
        )
        .await;
    problem(r, StatusCode::PAYMENT_REQUIRED, "conversation_limit").await;
    // A request that is invalid anyway says so, whatever the plan.
    let r = app
        .call(
            Method::POST,
            "/api/v1/conversations",
            Some(&login.access),
            Some(json!({"title": "no model"})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(p["errors"]["model"].is_string(), "{p}");
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        send(&app, &login, id, "first").await.status(),
        StatusCode::CREATED
    );
    problem(
        send(&app, &login, id, "second").await,
        StatusCode::PAYMENT_REQUIRED,
        "message_limit",
    )
    .await;
    assert_eq!(chat_count(&app, "messages").await, 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_faults_are_retried_reported_and_charged_for_what_arrived() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();

    // A 429 with Retry-After, then a 500: retried before the first token.
    mock(
        &app,
        json!([{"kind": "rate_limit", "retryAfterSecs": 1}, {"kind": "server_error"}]),
    )
    .await;
    let r = send(&app, &login, id, "retry me").await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // 500s past the retries: a plain 503, nothing charged.
    mock(
        &app,
        json!([{"kind": "server_error"}, {"kind": "server_error"}, {"kind": "server_error"}]),
    )
    .await;
    problem(
        send(&app, &login, id, "fail me").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
    )
    .await;
    assert_eq!(chat_count(&app, "tokenUsage").await, 1);

    // A stream cut after some text: an error event, and a charge for what arrived.
    mock(&app, json!([{"kind": "cut", "afterTokens": 3}])).await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&login.access)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "cut me"}))
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    let (last, error) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(error["code"], "provider_error");
    assert!(events.iter().any(|(e, _)| e == "delta"));
    assert_eq!(
        chat_count(&app, "tokenUsage").await,
        2,
        "charged once for the partial reply"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_leaves_the_list_and_an_account_deletion_empties_chat() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    let sent: Value = send(&app, &login, id, "delete the reply")
        .await
        .json()
        .await
        .unwrap();
    let reply = sent["assistantMessage"]["id"].as_str().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/conversations/{id}/messages/{reply}"),
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/conversations/{id}/messages/{reply}"),
            Some(&login.access),
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let list: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&login.access),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        chat_count(&app, "messages WHERE isDeleted AND deletedAt IS NOT NULL").await,
        1
    );

    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&login.access),
            Some(json!({"password": crate::helpers::PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mut emptied = false;
    for _ in 0..100 {
        if chat_count(&app, "conversations").await == 0 {
            emptied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(emptied, "identity.user.deleted reached chat");
    assert_eq!(
        chat_count(
            &app,
            "tokenUsage WHERE conversationId IS NULL AND messageId IS NULL"
        )
        .await,
        1
    );
    app.finish().await;
}

pub(crate) async fn chat_sql(app: &TestApp, sql: &str) {
    use diesel_async::SimpleAsyncConnection;
    let pool = app.chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(sql).await.unwrap();
}

pub(crate) async fn settled_usage(app: &TestApp, login: &Login, messages: i64) -> Value {
    let mut usage = Value::Null;
    for _ in 0..400 {
        usage = app
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
        if usage["messagesCount"].as_i64() == Some(messages) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    usage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_sends_near_the_quota_never_overspend_it() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    billing_sql(
        &app,
        "UPDATE plans SET maxConversations = NULL, maxMessagesPerConversation = NULL",
    )
    .await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    // Room for about four reservations (prompt + a 1,024-token reply budget).
    billing_sql(&app, "UPDATE usageTracking SET monthlyQuota = 4500").await;
    let sends = (0..50).map(|i| {
        let (app, login, id) = (&app, &login, id.clone());
        async move {
            send(app, login, &id, &format!("parallel message {i}"))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(sends).await;
    let ok = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PAYMENT_REQUIRED)
        .count();
    assert_eq!(ok + refused, 50, "{statuses:?}");
    assert!(ok >= 1 && refused >= 1, "{ok} answered, {refused} refused");
    let usage = settled_usage(&app, &login, i64::try_from(ok).unwrap()).await;
    assert!(usage["tokensUsed"].as_i64().unwrap() <= 4500, "{usage}");
    assert_eq!(
        chat_count(&app, "tokenUsage").await,
        i64::try_from(ok).unwrap()
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sends_make_a_thousand_usage_rows_and_billing_sums_them() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    billing_sql(
        &app,
        "UPDATE plans SET maxConversations = NULL, maxMessagesPerConversation = NULL",
    )
    .await;
    chat_sql(
        &app,
        "UPDATE aiProviders SET requestsPerMinute = NULL, requestsPerDay = NULL",
    )
    .await;
    billing_sql(&app, "UPDATE usageTracking SET monthlyQuota = 2000000000").await;
    // Twenty conversations of fifty messages each, twenty sends at a time.
    let mut ids = Vec::new();
    for _ in 0..20 {
        let c = conversation(&app, &login, json!({"model": "gpt-4o-mini"})).await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let mut answered = 0;
    for round in 0..50 {
        let sends = ids.iter().map(|id| {
            let (app, login) = (&app, &login);
            async move {
                send(app, login, id, &format!("message {round}"))
                    .await
                    .status()
            }
        });
        for status in futures::future::join_all(sends).await {
            assert_eq!(status, StatusCode::CREATED);
            answered += 1;
        }
    }
    assert_eq!(answered, 1000);
    assert_eq!(chat_count(&app, "tokenUsage").await, 1000);
    let usage = settled_usage(&app, &login, 1000).await;
    #[derive(diesel::QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        tokens: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        cost: String,
    }
    use diesel_async::RunQueryDsl;
    let pool = app.chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let sum: Sum = diesel::sql_query(
        "SELECT SUM(totalTokens)::bigint AS tokens, SUM(costUsd)::text AS cost FROM tokenUsage",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(usage["tokensUsed"].as_i64(), Some(sum.tokens), "{usage}");
    assert_eq!(usage["messagesCount"], 1000);
    assert_eq!(
        usage["costThisMonth"].as_str(),
        Some(sum.cost.as_str()),
        "exact decimal sums"
    );
    let page: Value = app
        .call(
            Method::GET,
            "/api/v1/conversations?limit=100",
            Some(&login.access),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let conversations = page["items"].as_array().unwrap();
    assert_eq!(conversations.len(), 20);
    assert!(conversations.iter().all(|c| c["messageCount"] == 100));
    let tokens: i64 = conversations
        .iter()
        .map(|c| c["tokenCount"].as_i64().unwrap())
        .sum();
    assert_eq!(tokens, sum.tokens);
    app.finish().await;
}

async fn openai_available(app: &TestApp, login: &Login) -> bool {
    let models: Value = app
        .call(Method::GET, "/api/v1/models", Some(&login.access), None)
        .await
        .json()
        .await
        .unwrap();
    let gpt = models["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "gpt-4o")
        .unwrap()
        .clone();
    gpt["available"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_trips_its_breaker_and_comes_back() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    trip_the_breaker(&app, &login, id).await;
    assert!(
        !openai_available(&app, &login).await,
        "aiProviders.isAvailable flipped off"
    );
    let before: Value = app
        .client
        .get(format!("{}/_mock/stats", app.mock))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    problem(
        send(&app, &login, id, "refused at once").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
    )
    .await;
    let after: Value = app
        .client
        .get(format!("{}/_mock/stats", app.mock))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after, "an open circuit calls nobody");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        send(&app, &login, id, "the trial call").await.status(),
        StatusCode::CREATED
    );
    assert!(openai_available(&app, &login).await, "and back on");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_stream_is_still_charged_once() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let c = conversation(&app, &login, json!({"model": "gpt-4o"})).await;
    let id = c["id"].as_str().unwrap();
    // A slow reply, so the client leaves long before it ends.
    let r = app
        .client
        .put(format!("{}/_mock/config", app.mock))
        .json(&json!({"ttftMs": 5, "tokenDelayMs": 30, "replyTokens": 30}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&login.access)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "start and leave"}))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    use futures::StreamExt;
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: message"));
    drop(body); // the client hangs up

    let mut charged = 0;
    for _ in 0..100 {
        charged = chat_count(&app, "tokenUsage").await;
        if charged > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(charged, 1, "the whole reply was produced and charged");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(chat_count(&app, "tokenUsage").await, 1, "once");
    assert_eq!(
        chat_count(&app, "messages WHERE role = 'assistant'").await,
        1
    );
    let usage = settled_usage(&app, &login, 1).await;
    assert_eq!(usage["messagesCount"], 1);
    app.finish().await;
}
