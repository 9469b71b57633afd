//! `POST /v1/messages`, as Anthropic documents it
//! (<https://docs.anthropic.com/en/api/messages>,
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming>): a
//! `message` object, or with `stream: true` the named events `message_start`,
//! `content_block_start`, `ping`, `content_block_delta`s,
//! `content_block_stop`, `message_delta`, `message_stop`; mid-stream
//! failures as `event: error` with an `overloaded_error`. Requires
//! `x-api-key`, `anthropic-version` and `max_tokens`, as the API does.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Problem, Wire, failed_request, new_id, refuse, stream, whole};
use crate::{
    reply::{Finish, Reply},
    state::{Api, State},
};

#[derive(Debug, Deserialize)]
struct Request {
    model: String,
    max_tokens: Option<u32>,
    system: Option<Content>,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    content: Content,
}

/// A string, or an array of content blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Debug, Deserialize)]
struct Block {
    text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Blocks(blocks) => blocks
                .iter()
                .filter_map(|block| block.text.as_deref())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The stream's events; serde writes the `type` tag first, as the API does.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: TypedText<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: TypedText<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
}

impl Event<'_> {
    fn render(&self) -> String {
        let name = match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        };
        format!(
            "event: {name}\ndata: {}\n\n",
            serde_json::to_string(self).unwrap_or_default()
        )
    }
}

#[derive(Debug, Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: [(); 0],
    model: &'a str,
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: StartUsage,
}

#[derive(Debug, Serialize)]
struct StartUsage {
    input_tokens: u32,
    output_tokens: u32,
}

/// `{"type": "text", "text": ...}` or `{"type": "text_delta", "text": ...}`.
#[derive(Debug, Serialize)]
struct TypedText<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Debug, Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Debug, Serialize)]
struct OutputUsage {
    output_tokens: u32,
}

/// The API's error object (<https://docs.anthropic.com/en/api/errors>).
fn error(problem: Problem, message: Option<&str>) -> serde_json::Value {
    let (kind, default) = match problem {
        Problem::BadRequest => ("invalid_request_error", "Invalid request."),
        Problem::Unauthenticated => ("authentication_error", "x-api-key header is required"),
        Problem::NotFound => ("not_found_error", "Not found."),
        Problem::RateLimited => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
        ),
        Problem::Server => ("api_error", "Internal server error"),
    };
    json!({"type": "error", "error": {"type": kind, "message": message.unwrap_or(default)}})
}

pub(crate) async fn handle(
    state: web::Data<State>,
    http: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let fault = state.arrive(Api::Anthropic);
    let header = |name: &str| {
        http.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| !value.is_empty())
    };
    if !header("x-api-key") {
        return refuse(
            Problem::Unauthenticated,
            &error(Problem::Unauthenticated, None),
        );
    }
    if !header("anthropic-version") {
        let message = "anthropic-version: header is required";
        return refuse(
            Problem::BadRequest,
            &error(Problem::BadRequest, Some(message)),
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
    let Some(max_tokens) = request.max_tokens else {
        let message = "max_tokens: Field required";
        return refuse(
            Problem::BadRequest,
            &error(Problem::BadRequest, Some(message)),
        );
    };
    if let Some(response) = failed_request(fault, |problem| error(problem, None)) {
        return response;
    }
    let config = state.config();
    let texts: Vec<String> = request
        .system
        .iter()
        .map(Content::text)
        .chain(
            request
                .messages
                .iter()
                .map(|message| message.content.text()),
        )
        .collect();
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map(|message| message.content.text())
        .unwrap_or_default();
    let reply = Reply::new(
        &last_user,
        texts.iter().map(String::as_str),
        Some(max_tokens),
        &config,
    );
    let stop_reason = match reply.finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
    };
    let id = new_id("msg_");
    if request.stream {
        let events = Events {
            id,
            model: request.model,
            input_tokens: reply.prompt_tokens,
            output_tokens: reply.completion_tokens(),
            stop_reason,
        };
        return stream(&events, &reply, fault, &config);
    }
    let message = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [{"type": "text", "text": reply.text()}],
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens()},
    });
    whole(&message, fault, |problem| error(problem, None))
}

/// One streamed message's constant parts.
struct Events {
    id: String,
    model: String,
    input_tokens: u32,
    output_tokens: u32,
    stop_reason: &'static str,
}

impl Wire for Events {
    fn opening(&self) -> Vec<String> {
        vec![
            Event::MessageStart {
                message: StartMessage {
                    id: &self.id,
                    kind: "message",
                    role: "assistant",
                    content: [],
                    model: &self.model,
                    stop_reason: None,
                    stop_sequence: None,
                    usage: StartUsage {
                        input_tokens: self.input_tokens,
                        output_tokens: 1,
                    },
                },
            }
            .render(),
            Event::ContentBlockStart {
                index: 0,
                content_block: TypedText {
                    kind: "text",
                    text: "",
                },
            }
            .render(),
            Event::Ping.render(),
        ]
    }

    fn token(&self, piece: &str, _sent: usize) -> String {
        Event::ContentBlockDelta {
            index: 0,
            delta: TypedText {
                kind: "text_delta",
                text: piece,
            },
        }
        .render()
    }

    fn closing(&self) -> Vec<String> {
        vec![
            Event::ContentBlockStop { index: 0 }.render(),
            Event::MessageDelta {
                delta: StopDelta {
                    stop_reason: self.stop_reason,
                    stop_sequence: None,
                },
                usage: OutputUsage {
                    output_tokens: self.output_tokens,
                },
            }
            .render(),
            Event::MessageStop.render(),
        ]
    }

    fn error(&self) -> String {
        // The streaming page's "Error events" example.
        "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n".to_owned()
    }
}
