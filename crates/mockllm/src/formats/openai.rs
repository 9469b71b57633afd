//! `POST /v1/chat/completions`, as OpenAI documents it
//! (<https://platform.openai.com/docs/api-reference/chat/create>): a
//! `chat.completion` object, or with `stream: true` `data:` events of
//! `chat.completion.chunk`s ending in `data: [DONE]`, with a usage-only
//! chunk (`choices: []`) before it when `stream_options.include_usage` is
//! set (and `"usage": null` on the other chunks).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Problem, Wire, failed_request, new_id, refuse, stream, unix_now, whole};
use crate::{
    reply::{Finish, Reply},
    state::{Api, State},
};

#[derive(Debug, Deserialize)]
struct Request {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_completion_tokens: Option<u32>,
    /// The deprecated name, still what many clients send.
    max_tokens: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    content: Option<Content>,
}

/// A string, or an array of content parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

impl Message {
    fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(text)) => text.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|part| part.text.as_deref())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[derive(Debug, Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<ChunkChoice<'a>>,
    /// Absent unless `include_usage`; then `null` but in the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Debug, Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Debug, Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

const FINGERPRINT: &str = "fp_mockllm";

/// The API's error object (<https://platform.openai.com/docs/guides/error-codes>).
fn error(problem: Problem, message: Option<&str>) -> serde_json::Value {
    let (default, kind, code) = match problem {
        Problem::BadRequest => ("Invalid request.", "invalid_request_error", None),
        Problem::Unauthenticated => (
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
        ),
        Problem::NotFound => ("Not found.", "invalid_request_error", None),
        Problem::RateLimited => (
            "Rate limit reached for requests. Please try again later.",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        Problem::Server => (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
    };
    json!({"error": {"message": message.unwrap_or(default), "type": kind, "param": null, "code": code}})
}

pub(crate) async fn handle(
    state: web::Data<State>,
    http: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let fault = state.arrive(Api::OpenAi);
    let authorized = http
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("Bearer ") && value.len() > "Bearer ".len());
    if !authorized {
        return refuse(
            Problem::Unauthenticated,
            &error(Problem::Unauthenticated, None),
        );
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refuse(
                Problem::BadRequest,
                &error(Problem::BadRequest, Some(&e.to_string())),
            );
        }
    };
    if let Some(response) = failed_request(fault, |problem| error(problem, None)) {
        return response;
    }
    let config = state.config();
    let texts: Vec<String> = request.messages.iter().map(Message::text).collect();
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map(Message::text)
        .unwrap_or_default();
    let reply = Reply::new(
        &last_user,
        texts.iter().map(String::as_str),
        request.max_completion_tokens.or(request.max_tokens),
        &config,
    );
    let completion_tokens = reply.completion_tokens();
    let usage = Usage {
        prompt_tokens: reply.prompt_tokens,
        completion_tokens,
        total_tokens: reply.prompt_tokens.saturating_add(completion_tokens),
    };
    let finish_reason = match reply.finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
    };
    let id = new_id("chatcmpl-");
    if request.stream {
        let chunks = Chunks {
            id,
            created: unix_now(),
            model: request.model,
            include_usage: request
                .stream_options
                .is_some_and(|options| options.include_usage),
            usage,
            finish_reason,
        };
        return stream(&chunks, &reply, fault, &config);
    }
    let completion = json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text(), "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    });
    whole(&completion, fault, |problem| error(problem, None))
}

/// One streamed completion's constant parts.
struct Chunks {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    usage: Usage,
    finish_reason: &'static str,
}

impl Chunks {
    fn event(&self, delta: Delta<'_>, finish_reason: Option<&'static str>) -> String {
        self.data(&Chunk {
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: self.include_usage.then_some(None),
            ..self.header()
        })
    }

    fn header(&self) -> Chunk<'_> {
        Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            system_fingerprint: FINGERPRINT,
            choices: Vec::new(),
            usage: None,
        }
    }

    fn data(&self, chunk: &Chunk<'_>) -> String {
        format!(
            "data: {}\n\n",
            serde_json::to_string(chunk).unwrap_or_default()
        )
    }
}

impl Wire for Chunks {
    fn opening(&self) -> Vec<String> {
        vec![self.event(
            Delta {
                role: Some("assistant"),
                content: Some(""),
            },
            None,
        )]
    }

    fn token(&self, piece: &str, _sent: usize) -> String {
        self.event(
            Delta {
                role: None,
                content: Some(piece),
            },
            None,
        )
    }

    fn closing(&self) -> Vec<String> {
        let mut events = vec![self.event(Delta::default(), Some(self.finish_reason))];
        if self.include_usage {
            events.push(self.data(&Chunk {
                usage: Some(Some(self.usage)),
                ..self.header()
            }));
        }
        events.push("data: [DONE]\n\n".to_owned());
        events
    }

    fn error(&self) -> String {
        format!("data: {}\n\n", error(Problem::Server, None))
    }
}
