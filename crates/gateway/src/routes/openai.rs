//! The OpenAI-compatible API at the root, so that any OpenAI SDK works with
//! `base_url = http://HOST:8080/v1` and one of the user's API keys:
//! `GET /v1/models` and `POST /v1/chat/completions`, streamed or whole, in
//! OpenAI's wire format (<https://platform.openai.com/docs/api-reference/chat>,
//! `chat.completion` and `chat.completion.chunk` objects, `data: [DONE]`).
//! A completion is chat's `Complete`: metered exactly as the app's sends
//! are (the quota held during the stream, every produced token charged
//! once, hang-ups included), whichever provider serves the model. Errors
//! come in OpenAI's shape, `{"error": {message, type, param, code}}`.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
    web,
};
use aichat_proto::chat::v1::{self as pb, complete_event::Event};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{chat::until_deadline, grpc};
use crate::{
    api_keys::ApiKeyAuth,
    problem::{Code, Problem},
    state::AppState,
};

type Data = web::Data<AppState>;

/// The reply budget when the request names none (chat's).
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// An error as OpenAI writes it.
#[derive(Debug)]
pub struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
    retry_after: Option<u64>,
}

impl OpenAiError {
    /// 400 `invalid_request_error` about `param`.
    fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param.to_owned()),
            code: None,
            retry_after: None,
        }
    }

    fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl std::fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.kind, self.status)
    }
}

impl ResponseError for OpenAiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.body())
    }
}

/// The platform's problems in OpenAI's words and statuses.
impl From<Problem> for OpenAiError {
    fn from(problem: Problem) -> Self {
        let body = problem.body();
        let (status, kind, code) = match problem.code() {
            Code::InvalidApiKey | Code::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            Code::ModelNotFound => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
            ),
            Code::QuotaExceeded => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            Code::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                Some("rate_limit_exceeded"),
            ),
            Code::ValidationFailed | Code::MalformedBody | Code::PayloadTooLarge => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", None)
            }
            Code::UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "server_error", None),
            Code::ProviderError => (StatusCode::BAD_GATEWAY, "server_error", None),
            Code::ProviderUnavailable | Code::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "server_error", None)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
        };
        // A refused field: OpenAI's `param`, and what is wrong with it.
        let (param, message) = match body.errors.as_ref().and_then(|e| e.iter().next()) {
            Some((field, reason)) => (Some(field.clone()), format!("{field} {reason}")),
            None => (None, body.detail),
        };
        Self {
            status,
            message,
            kind,
            param,
            code,
            retry_after: body.retry_after,
        }
    }
}

impl From<tonic::Status> for OpenAiError {
    fn from(status: tonic::Status) -> Self {
        Problem::from(status).into()
    }
}

/// The caller's key, or OpenAI's 401.
fn authenticated(auth: Result<ApiKeyAuth, Problem>) -> Result<ApiKeyAuth, OpenAiError> {
    auth.map_err(OpenAiError::from)
}

/// `GET /v1/models`: the models a completion may name.
pub async fn models(
    state: Data,
    req: HttpRequest,
    auth: Result<ApiKeyAuth, Problem>,
) -> Result<HttpResponse, OpenAiError> {
    authenticated(auth)?;
    let list = state
        .chat
        .clone()
        .list_models(grpc(&req, pb::Empty {}))
        .await?
        .into_inner();
    let data: Vec<Value> = list
        .items
        .into_iter()
        .filter(|m| m.available)
        .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.provider}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

/// A message's `content`: a string, or an array of text parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    content: Option<Content>,
}

/// `stop`: one sequence or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The fields of OpenAI's request this API acts on; others (`user`,
/// `seed`, `top_p`, ...) are accepted and left alone, as most
/// OpenAI-compatible servers do.
#[derive(Debug, Deserialize)]
struct CompletionRequest {
    model: Option<String>,
    messages: Option<Vec<Message>>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f64>,
    stop: Option<Stop>,
    n: Option<u32>,
}

/// The request as chat's `Complete` takes it, and what the answer needs.
struct Checked {
    request: pb::CompleteRequest,
    stream: bool,
    include_usage: bool,
    max_tokens: u32,
}

fn check(body: &[u8], user_id: String, key_id: String) -> Result<Checked, OpenAiError> {
    let r: CompletionRequest = serde_json::from_slice(body).map_err(|e| {
        OpenAiError::invalid("body", format!("the body is not a valid request: {e}"))
    })?;
    let model = r
        .model
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| OpenAiError::invalid("model", "you must provide a model parameter"))?;
    let messages = r
        .messages
        .filter(|m| !m.is_empty())
        .ok_or_else(|| OpenAiError::invalid("messages", "messages must be a non-empty array"))?;
    if r.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::invalid("n", "only n = 1 is supported"));
    }
    let mut turns = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        let content = match message.content {
            Some(Content::Text(text)) => text,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        _ => {
                            return Err(OpenAiError::invalid(
                                &format!("messages[{i}].content"),
                                "only text content parts are supported",
                            ));
                        }
                    }
                }
                text
            }
            None => {
                return Err(OpenAiError::invalid(
                    &format!("messages[{i}].content"),
                    "content is required",
                ));
            }
        };
        turns.push(pb::Turn {
            role: message.role,
            content,
        });
    }
    let max_tokens = r.max_completion_tokens.or(r.max_tokens);
    let stop = match r.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    Ok(Checked {
        include_usage: r.stream_options.is_some_and(|o| o.include_usage),
        stream: r.stream,
        max_tokens: max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        request: pb::CompleteRequest {
            user_id,
            api_key_id: key_id,
            model,
            messages: turns,
            max_tokens,
            temperature: r.temperature,
            stop,
        },
    })
}

/// OpenAI's `usage`.
fn usage(u: &pb::Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    })
}

/// Why the reply ended: its budget spent, or a natural stop.
fn finish_reason(u: &pb::Usage, max_tokens: u32) -> &'static str {
    if u32::try_from(u.completion_tokens).is_ok_and(|n| n >= max_tokens) {
        "length"
    } else {
        "stop"
    }
}

/// What every chunk of one completion shares.
#[derive(Serialize)]
struct ChunkHead<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// A `chat.completion.chunk` with one choice; `usage: null` when the
/// client asked for the usage chunk (OpenAI sends it on every chunk then).
fn chunk(head: &ChunkHead<'_>, delta: Value, finish: Option<&str>, usage_null: bool) -> Bytes {
    let mut value = json!({
        "id": head.id,
        "object": head.object,
        "created": head.created,
        "model": head.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    if usage_null {
        value["usage"] = Value::Null;
    }
    data(&value)
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    state: Data,
    req: HttpRequest,
    auth: Result<ApiKeyAuth, Problem>,
    body: Bytes,
) -> Result<HttpResponse, OpenAiError> {
    let ApiKeyAuth(principal) = authenticated(auth)?;
    if let Err(wait) = state
        .limits
        .api_key
        .check(&principal.api_key_id.to_string())
    {
        return Err(Problem::rate_limited(wait.as_secs().max(1)).into());
    }
    let checked = check(
        &body,
        principal.user_id.to_string(),
        principal.api_key_id.to_string(),
    )?;
    let model = checked.request.model.clone();
    let deadline = tokio::time::Instant::now() + state.config.chat_stream_timeout;
    let stream = state
        .chat_stream
        .clone()
        .complete(grpc(&req, checked.request))
        .await?
        .into_inner();
    let mut stream = Box::pin(until_deadline(stream, deadline));
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    let created = chrono::Utc::now().timestamp();
    let max_tokens = checked.max_tokens;

    if !checked.stream {
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            match item?.event {
                Some(Event::Delta(delta)) => text.push_str(&delta),
                Some(Event::Done(u)) => {
                    return Ok(HttpResponse::Ok().json(json!({
                        "id": id,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [{
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": null},
                            "logprobs": null,
                            "finish_reason": finish_reason(&u, max_tokens),
                        }],
                        "usage": usage(&u),
                    })));
                }
                Some(Event::Error(e)) => return Err(Problem::from_code(&e.code, &e.message).into()),
                None => {}
            }
        }
        return Err(
            Problem::from_code("provider_error", "the reply ended without a result").into(),
        );
    }

    let include_usage = checked.include_usage;
    let first = {
        let head = ChunkHead {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model: &model,
        };
        chunk(
            &head,
            json!({"role": "assistant", "content": ""}),
            None,
            include_usage,
        )
    };
    let body = futures::stream::once(async move { Ok::<_, actix_web::Error>(first) }).chain(
        futures::stream::unfold(Some(stream), move |stream| {
            let id = id.clone();
            let model = model.clone();
            async move {
                let mut stream = stream?;
                let head = ChunkHead {
                    id: &id,
                    object: "chat.completion.chunk",
                    created,
                    model: &model,
                };
                let bytes = match stream.next().await {
                    None => return None,
                    Some(Ok(pb::CompleteEvent {
                        event: Some(Event::Delta(text)),
                    })) => chunk(&head, json!({"content": text}), None, include_usage),
                    Some(Ok(pb::CompleteEvent {
                        event: Some(Event::Done(u)),
                    })) => {
                        let mut out = chunk(
                            &head,
                            json!({}),
                            Some(finish_reason(&u, max_tokens)),
                            include_usage,
                        )
                        .to_vec();
                        if include_usage {
                            out.extend_from_slice(&data(&json!({
                                "id": id,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": model,
                                "choices": [],
                                "usage": usage(&u),
                            })));
                        }
                        out.extend_from_slice(b"data: [DONE]\n\n");
                        return Some((Ok(Bytes::from(out)), None));
                    }
                    Some(Ok(pb::CompleteEvent {
                        event: Some(Event::Error(e)),
                    })) => {
                        // What the SDKs look for mid-stream: a chunk holding `error`.
                        let error = OpenAiError::from(Problem::from_code(&e.code, &e.message));
                        return Some((Ok(data(&error.body())), None));
                    }
                    Some(Ok(pb::CompleteEvent { event: None })) => Bytes::new(),
                    Some(Err(status)) => {
                        return Some((Ok(data(&OpenAiError::from(status).body())), None));
                    }
                };
                Some((Ok(bytes), Some(stream)))
            }
        }),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Any other path or method under `/v1`, in OpenAI's shape.
async fn unknown(req: HttpRequest) -> HttpResponse {
    OpenAiError {
        status: StatusCode::NOT_FOUND,
        message: format!("Unknown request URL: {} {}", req.method(), req.path()),
        kind: "invalid_request_error",
        param: None,
        code: Some("unknown_url"),
        retry_after: None,
    }
    .error_response()
}

/// Mounts `/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/models", web::get().to(models))
            .route("/chat/completions", web::post().to(chat_completions))
            .default_service(web::to(unknown)),
    );
}
