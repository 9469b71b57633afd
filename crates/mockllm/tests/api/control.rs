//! The `/_mock` control API: faults, configuration, counters.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ANTHROPIC_AUTH, GOOGLE_AUTH, OPENAI_AUTH, TestMock, events};

fn chat() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": true})
}

#[tokio::test]
async fn faults_are_taken_one_per_request_in_order_by_any_format() {
    let mock = TestMock::start().await;
    let queued: Value = mock
        .http
        .post(mock.url("/_mock/faults"))
        .json(&json!([{"kind": "rate_limit", "retryAfterSecs": 7}, {"kind": "server_error"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queued, json!({"queued": 2}));

    let response = mock.post("/v1/chat/completions", OPENAI_AUTH, chat()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");

    let anthropic =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]});
    let response = mock.post("/v1/messages", ANTHROPIC_AUTH, anthropic).await;
    assert_eq!(response.status(), 500);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "api_error");

    let response = mock.post("/v1/chat/completions", OPENAI_AUTH, chat()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        mock.get_json("/_mock/stats").await,
        json!({"openai": 2, "anthropic": 1, "google": 0, "faultsQueued": 0})
    );
}

#[tokio::test]
async fn a_cut_ends_the_stream_without_its_terminal_event() {
    let mock = TestMock::start().await;
    mock.http
        .post(mock.url("/_mock/faults"))
        .json(&json!([{"kind": "cut", "afterTokens": 2}]))
        .send()
        .await
        .unwrap();
    let body = mock
        .post("/v1/chat/completions", OPENAI_AUTH, chat())
        .await
        .text()
        .await
        .unwrap();
    let events = events(&body);
    // The role chunk and two tokens; no finish chunk, no [DONE].
    assert_eq!(events.len(), 3);
    assert!(!body.contains("[DONE]") && !body.contains("finish_reason\":\"stop"));
}

#[tokio::test]
async fn an_error_event_is_each_providers_documented_one() {
    let mock = TestMock::start().await;
    mock.http
        .post(mock.url("/_mock/faults"))
        .json(&vec![json!({"kind": "error_event", "afterTokens": 1}); 3])
        .send()
        .await
        .unwrap();

    let body = mock
        .post("/v1/chat/completions", OPENAI_AUTH, chat())
        .await
        .text()
        .await
        .unwrap();
    let last: Value = serde_json::from_str(&events(&body).last().unwrap().1).unwrap();
    assert_eq!(last["error"]["type"], "server_error");

    let anthropic = json!({"model": "m", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let body = mock
        .post("/v1/messages", ANTHROPIC_AUTH, anthropic)
        .await
        .text()
        .await
        .unwrap();
    let (name, data) = events(&body).pop().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    let gemini = json!({"contents": [{"parts": [{"text": "Hi"}]}]});
    let body = mock
        .post(
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            GOOGLE_AUTH,
            gemini,
        )
        .await
        .text()
        .await
        .unwrap();
    let events = events(&body);
    assert_eq!(events.len(), 2);
    let last: Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(last["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn deleting_faults_empties_the_queue() {
    let mock = TestMock::start().await;
    mock.http
        .post(mock.url("/_mock/faults"))
        .json(&json!([{"kind": "server_error"}]))
        .send()
        .await
        .unwrap();
    let response = mock
        .http
        .delete(mock.url("/_mock/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        mock.post("/v1/chat/completions", OPENAI_AUTH, chat())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_malformed_fault_is_refused() {
    let mock = TestMock::start().await;
    let response = mock
        .http
        .post(mock.url("/_mock/faults"))
        .json(&json!([{"kind": "meteor"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn config_changes_pacing_and_length_at_run_time() {
    let mock = TestMock::start().await;
    let config: Value = mock
        .http
        .put(mock.url("/_mock/config"))
        .json(&json!({"ttftMs": 300, "replyTokens": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config,
        json!({"ttftMs": 300, "tokenDelayMs": 0, "replyTokens": 2})
    );
    assert_eq!(mock.get_json("/_mock/config").await, config);

    let started = Instant::now();
    let body = mock
        .post("/v1/chat/completions", OPENAI_AUTH, chat())
        .await
        .text()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // role chunk, 2 tokens, finish chunk, [DONE]
    assert_eq!(events(&body).len(), 5);
}
