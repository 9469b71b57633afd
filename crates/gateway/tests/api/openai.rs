//! The OpenAI-compatible API (`/v1`) as an OpenAI client sees it: an API key
//! in `Authorization: Bearer`, OpenAI's objects and chunks byte for byte in
//! their shape, OpenAI's errors, and the tokens charged to the plan once.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    chat::{billing_sql, chat_count},
    completions::settled,
    helpers::{Login, TestApp, unique_email},
    metering::assert_charged_and_settled,
};

/// A new user and one of their API keys.
async fn user_with_key(app: &TestApp) -> (Login, String) {
    let login = app.signup(&unique_email()).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/api-keys",
            Some(&login.access),
            Some(json!({"name": "sdk"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let key: Value = r.json().await.unwrap();
    (login, key["key"].as_str().unwrap().to_owned())
}

async fn v1(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn completion(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Hi! How can I help?"},
            {"role": "user", "content": [{"type": "text", "text": "Say hello back."}]},
        ],
        "max_tokens": 256,
        "temperature": 0.5,
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        "user": "ignored-by-us",
    })
}

/// The `data:` payloads of an SSE body.
fn data_lines(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// An OpenAI error body: its `error` object, checked for the four fields.
async fn error_of(r: reqwest::Response) -> Value {
    let body: Value = r.json().await.unwrap();
    let error = body["error"].clone();
    for field in ["message", "type", "param", "code"] {
        assert!(error.get(field).is_some(), "{field} in {body}");
    }
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_whole_completions_answer_in_openais_shape_and_are_charged_once() {
    let app = TestApp::spawn().await;
    let (login, key) = user_with_key(&app).await;
    let r = v1(&app, Method::GET, "/v1/models", &key, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let models: Value = r.json().await.unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            assert!(m["owned_by"].is_string() && m["created"].is_i64(), "{m}");
            m["id"].as_str().unwrap()
        })
        .collect();
    for model in ["gpt-4o-mini", "claude-3-5-haiku-latest", "gemini-2.0-flash"] {
        assert!(ids.contains(&model), "{model} in {ids:?}");
    }

    let mut charged = 0;
    for model in ["gpt-4o-mini", "claude-3-5-haiku-latest", "gemini-2.0-flash"] {
        let r = v1(
            &app,
            Method::POST,
            "/v1/chat/completions",
            &key,
            Some(completion(model, false)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{model}");
        let c: Value = r.json().await.unwrap();
        assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"), "{c}");
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["model"], model);
        assert!(c["created"].as_i64().unwrap() > 1_700_000_000);
        let choice = &c["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["message"]["role"], "assistant");
        assert!(!choice["message"]["content"].as_str().unwrap().is_empty());
        assert_eq!(choice["finish_reason"], "stop");
        let usage = &c["usage"];
        let (p, q) = (
            usage["prompt_tokens"].as_i64().unwrap(),
            usage["completion_tokens"].as_i64().unwrap(),
        );
        assert!(p > 0 && q > 0);
        assert_eq!(usage["total_tokens"].as_i64(), Some(p + q));
        charged += p + q;
    }
    let user = login.user["id"].as_str().unwrap();
    assert_eq!(
        chat_count(&app, &format!("tokenUsage WHERE userId = '{user}' AND apiKeyId IS NOT NULL AND conversationId IS NULL")).await,
        3
    );
    assert_eq!(
        chat_count(&app, &format!("conversations WHERE userId = '{user}'")).await,
        0
    );
    let usage = settled(&app, &login, charged).await;
    assert_charged_and_settled(&usage, charged, "whole completions");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_completion_is_openais_chunks_then_the_usage_then_done() {
    let app = TestApp::spawn().await;
    let (login, key) = user_with_key(&app).await;
    let mut charged = 0;
    for model in ["gpt-4o-mini", "claude-3-5-haiku-latest", "gemini-2.0-flash"] {
        let r = v1(
            &app,
            Method::POST,
            "/v1/chat/completions",
            &key,
            Some(completion(model, true)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{model}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let body = r.text().await.unwrap();
        let lines = data_lines(&body);
        assert_eq!(lines.last().map(String::as_str), Some("[DONE]"), "{body}");
        let chunks: Vec<Value> = lines[..lines.len() - 1]
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let (first, rest) = chunks.split_first().unwrap();
        let id = first["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-"));
        for c in &chunks {
            assert_eq!(c["id"], id, "one id for every chunk");
            assert_eq!(c["created"], first["created"]);
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], model);
        }
        assert_eq!(
            first["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        let (usage_chunk, middle) = rest.split_last().unwrap();
        let (finish, deltas) = middle.split_last().unwrap();
        let text: String = deltas
            .iter()
            .map(|c| {
                assert_eq!(c["usage"], Value::Null, "usage null on every other chunk");
                assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
                c["choices"][0]["delta"]["content"].as_str().unwrap()
            })
            .collect();
        assert!(!text.is_empty());
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        assert_eq!(usage_chunk["choices"], json!([]));
        let u = &usage_chunk["usage"];
        let total = u["total_tokens"].as_i64().unwrap();
        assert_eq!(
            total,
            u["prompt_tokens"].as_i64().unwrap() + u["completion_tokens"].as_i64().unwrap()
        );
        charged += total;
    }
    let usage = settled(&app, &login, charged).await;
    assert_eq!(usage["tokensUsed"].as_i64(), Some(charged), "{usage}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_openais_errors_and_nothing_is_charged() {
    let app = TestApp::spawn().await;
    let (login, key) = user_with_key(&app).await;
    let user = login.user["id"].as_str().unwrap().to_owned();

    // No key, a token that is not a key, a revoked key: 401 invalid_api_key.
    let r = app
        .client
        .get(format!("{}/v1/models", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(r).await["code"], "invalid_api_key");
    let r = v1(&app, Method::GET, "/v1/models", &login.access, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(r).await["code"], "invalid_api_key");

    // An unknown model: 404 model_not_found.
    let r = v1(
        &app,
        Method::POST,
        "/v1/chat/completions",
        &key,
        Some(completion("gpt-99", false)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(r).await["code"], "model_not_found");

    // Bad input: 400 invalid_request_error, naming the parameter.
    let bad = [
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (json!({"model": "gpt-4o-mini"}), "messages"),
        (json!({"model": "gpt-4o-mini", "messages": []}), "messages"),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 3}),
            "temperature",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c", "d", "e"]}),
            "stop",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
            "n",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "tool", "content": "42"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "messages[0].content",
        ),
        (json!({"model": "gpt-4o-mini", "messages": "hi"}), "body"),
    ];
    for (body, param) in bad {
        let r = v1(
            &app,
            Method::POST,
            "/v1/chat/completions",
            &key,
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = error_of(r).await;
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert_eq!(error["param"], param, "{body}: {error}");
    }
    let r = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    error_of(r).await;
    // An unknown path under /v1: OpenAI's 404, not the web app.
    let r = v1(&app, Method::GET, "/v1/embeddings", &key, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(r).await["code"], "unknown_url");

    // The plan's quota spent: 429 insufficient_quota, before any call.
    billing_sql(
        &app,
        &format!("UPDATE usageTracking SET monthlyQuota = 10 WHERE userId = '{user}'"),
    )
    .await;
    let r = v1(
        &app,
        Method::POST,
        "/v1/chat/completions",
        &key,
        Some(completion("gpt-4o-mini", true)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let error = error_of(r).await;
    assert_eq!(error["code"], "insufficient_quota");
    assert_eq!(error["type"], "insufficient_quota");
    assert_eq!(
        chat_count(&app, &format!("tokenUsage WHERE userId = '{user}'")).await,
        0
    );

    // A revoked key stops working.
    let keys: Value = app
        .call(
            Method::GET,
            "/api/v1/me/api-keys",
            Some(&login.access),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let id = keys["items"][0]["id"].as_str().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/me/api-keys/{id}"),
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = v1(&app, Method::GET, "/v1/models", &key, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(r).await["code"], "invalid_api_key");
    app.finish().await;
}
