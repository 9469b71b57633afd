//! Each provider format, streaming and not.

use serde_json::{Value, json};

use crate::helpers::{ANTHROPIC_AUTH, GOOGLE_AUTH, OPENAI_AUTH, TestMock, events};

fn openai_body(stream: bool, include_usage: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say something nice"}],
        "stream": stream,
        "stream_options": {"include_usage": include_usage},
    })
}

#[tokio::test]
async fn openai_streams_chunks_then_a_usage_only_chunk_then_done() {
    let mock = TestMock::start().await;
    let response = mock
        .post("/v1/chat/completions", OPENAI_AUTH, openai_body(true, true))
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(&response.text().await.unwrap());
    let (last, chunks) = events.split_last().unwrap();
    assert_eq!(last.1, "[DONE]");
    let chunks: Vec<Value> = chunks
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    // role chunk, 5 content chunks, finish chunk, usage chunk
    assert_eq!(chunks.len(), 8);
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk")
    );
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(
        chunks[..7]
            .iter()
            .all(|chunk| chunk["usage"].is_null() && chunk.get("usage").is_some())
    );
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[7]["choices"], json!([]));
    assert_eq!(
        chunks[7]["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10})
    );
    let text: String = chunks[1..6]
        .iter()
        .map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text.split_whitespace().count(), 5);
}

#[tokio::test]
async fn openai_without_include_usage_sends_no_usage_field() {
    let mock = TestMock::start().await;
    let response = mock
        .post(
            "/v1/chat/completions",
            OPENAI_AUTH,
            openai_body(true, false),
        )
        .await;
    let events = events(&response.text().await.unwrap());
    assert_eq!(events.len(), 8);
    for (_, data) in &events[..7] {
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert!(chunk.get("usage").is_none(), "{chunk}");
    }
}

#[tokio::test]
async fn openai_without_stream_answers_a_chat_completion() {
    let mock = TestMock::start().await;
    let response = mock
        .post(
            "/v1/chat/completions",
            OPENAI_AUTH,
            openai_body(false, false),
        )
        .await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        completion["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        5
    );
    assert_eq!(completion["usage"]["total_tokens"], 10);
}

#[tokio::test]
async fn anthropic_streams_the_documented_event_sequence() {
    let mock = TestMock::start().await;
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 3, "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say something nice"}]}],
        "stream": true,
    });
    let response = mock.post("/v1/messages", ANTHROPIC_AUTH, body).await;
    let events = events(&response.text().await.unwrap());
    let names: Vec<&str> = events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (name, data) in &events {
        let data: Value = serde_json::from_str(data).unwrap();
        assert_eq!(data["type"], name.as_deref().unwrap());
    }
    let start: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(start["message"]["usage"]["input_tokens"], 5);
    let delta: Value = serde_json::from_str(&events[7].1).unwrap();
    // max_tokens 3 < 5 reply tokens.
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn anthropic_without_stream_answers_a_message() {
    let mock = TestMock::start().await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]});
    let message: Value = mock
        .post("/v1/messages", ANTHROPIC_AUTH, body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 1, "output_tokens": 5})
    );
}

#[tokio::test]
async fn anthropic_requires_its_headers_and_max_tokens() {
    let mock = TestMock::start().await;
    let body =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]});
    let response = mock
        .post(
            "/v1/messages",
            &[("anthropic-version", "2023-06-01")],
            body.clone(),
        )
        .await;
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "authentication_error");
    let response = mock.post("/v1/messages", &[("x-api-key", "k")], body).await;
    assert_eq!(response.status(), 400);
    let no_max = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
    let response = mock.post("/v1/messages", ANTHROPIC_AUTH, no_max).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["message"], "max_tokens: Field required");
}

fn gemini_body() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "Say something nice"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    })
}

#[tokio::test]
async fn gemini_streams_responses_routed_through_the_colon_in_the_path() {
    let mock = TestMock::start().await;
    let response = mock
        .post(
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            GOOGLE_AUTH,
            gemini_body(),
        )
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let chunks: Vec<Value> = events(&response.text().await.unwrap())
        .into_iter()
        .map(|(_, data)| serde_json::from_str(&data).unwrap())
        .collect();
    assert_eq!(chunks.len(), 6);
    assert!(
        chunks[..5]
            .iter()
            .all(|chunk| chunk["candidates"][0].get("finishReason").is_none())
    );
    let last = &chunks[5];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["candidates"][0]["content"]["role"], "model");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 5, "candidatesTokenCount": 5, "totalTokenCount": 10})
    );
    assert_eq!(last["modelVersion"], "gemini-2.0-flash");
}

#[tokio::test]
async fn gemini_without_alt_sse_streams_one_json_array() {
    let mock = TestMock::start().await;
    let response = mock
        .post(
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            GOOGLE_AUTH,
            gemini_body(),
        )
        .await;
    let chunks: Vec<Value> = response.json().await.unwrap();
    assert_eq!(chunks.len(), 6);
    assert_eq!(chunks[5]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn gemini_generate_content_answers_one_response_and_takes_the_key_in_the_query() {
    let mock = TestMock::start().await;
    let response = mock
        .post(
            "/v1beta/models/gemini-2.5-flash:generateContent?key=test-key",
            &[],
            gemini_body(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let text = body["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(text.split_whitespace().count(), 5);
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 5);
}

#[tokio::test]
async fn gemini_refuses_unknown_methods_and_missing_keys_in_its_error_shape() {
    let mock = TestMock::start().await;
    let response = mock
        .post(
            "/v1beta/models/gemini-2.0-flash:countTokens",
            GOOGLE_AUTH,
            gemini_body(),
        )
        .await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["status"], "NOT_FOUND");
    let response = mock
        .post(
            "/v1beta/models/gemini-2.0-flash:generateContent",
            &[],
            gemini_body(),
        )
        .await;
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], 401);
}

#[tokio::test]
async fn openai_refuses_a_missing_key_and_a_malformed_body() {
    let mock = TestMock::start().await;
    let response = mock
        .post("/v1/chat/completions", &[], openai_body(true, true))
        .await;
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let response = mock
        .post("/v1/chat/completions", OPENAI_AUTH, json!({"model": 7}))
        .await;
    assert_eq!(response.status(), 400);
}
