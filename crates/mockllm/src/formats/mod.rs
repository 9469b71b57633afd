//! The three provider APIs the mock serves. Each module parses its
//! request, renders its events and errors, and leaves pacing, faults and
//! the reply itself to the helpers here.

pub(crate) mod anthropic;
pub(crate) mod google;
pub(crate) mod openai;

use std::{convert::Infallible, time::Duration};

use actix_web::{HttpResponse, http::StatusCode};
use bytes::Bytes;
use futures::StreamExt;

use crate::{Fault, MockConfig, reply::Reply};

/// What went wrong, for rendering in each provider's error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    BadRequest,
    Unauthenticated,
    NotFound,
    RateLimited,
    Server,
}

impl Problem {
    fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Server => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A provider's error response: `body` rendered by the format.
pub(crate) fn error_response(
    status: StatusCode,
    body: &serde_json::Value,
    retry_after_secs: Option<u64>,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if let Some(secs) = retry_after_secs {
        response.insert_header(("retry-after", secs.to_string()));
    }
    response.json(body)
}

/// A format's streamed events, rendered whole (`event:`/`data:` lines and
/// the blank line).
pub(crate) trait Wire {
    /// Events before the first token.
    fn opening(&self) -> Vec<String>;
    /// The event carrying `piece`, the `sent`-th token (1-based).
    fn token(&self, piece: &str, sent: usize) -> String;
    /// The events that end a complete reply.
    fn closing(&self) -> Vec<String>;
    /// The provider's documented mid-stream error event.
    fn error(&self) -> String;
}

/// The fault's answer when it is one that replaces the whole response.
pub(crate) fn failed_request(
    fault: Option<Fault>,
    render: impl Fn(Problem) -> serde_json::Value,
) -> Option<HttpResponse> {
    match fault? {
        Fault::RateLimit { retry_after_secs } => Some(error_response(
            Problem::RateLimited.status(),
            &render(Problem::RateLimited),
            retry_after_secs,
        )),
        Fault::ServerError => Some(error_response(
            Problem::Server.status(),
            &render(Problem::Server),
            None,
        )),
        Fault::Cut { .. } | Fault::ErrorEvent { .. } => None,
    }
}

/// A problem of the request itself, in the format's shape.
pub(crate) fn refuse(problem: Problem, body: &serde_json::Value) -> HttpResponse {
    error_response(problem.status(), body, None)
}

/// The reply as server-sent events: the first after `ttft`, each later
/// token after `token_delay`; a `cut` or `error_event` fault stops it early.
pub(crate) fn stream(
    wire: &impl Wire,
    reply: &Reply,
    fault: Option<Fault>,
    config: &MockConfig,
) -> HttpResponse {
    let (tokens, ending) = match fault {
        Some(Fault::Cut { after_tokens }) => (after_tokens, Vec::new()),
        Some(Fault::ErrorEvent { after_tokens }) => (after_tokens, vec![wire.error()]),
        _ => (usize::MAX, wire.closing()),
    };
    let mut frames: Vec<(Duration, String)> = wire
        .opening()
        .into_iter()
        .map(|event| (Duration::ZERO, event))
        .collect();
    for (index, piece) in reply.pieces.iter().take(tokens).enumerate() {
        let delay = if index == 0 {
            Duration::ZERO
        } else {
            config.token_delay
        };
        frames.push((delay, wire.token(piece, index + 1)));
    }
    frames.extend(ending.into_iter().map(|event| (Duration::ZERO, event)));
    if let Some((first, _)) = frames.first_mut() {
        *first = config.ttft;
    }
    let body = futures::stream::iter(frames).then(|(delay, event)| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(Bytes::from(event))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(body)
}

/// A complete JSON answer, or (with a `cut` fault) its first half and then
/// the end of the body, or (with `error_event`) an HTTP 500.
pub(crate) fn whole(
    body: &serde_json::Value,
    fault: Option<Fault>,
    render: impl Fn(Problem) -> serde_json::Value,
) -> HttpResponse {
    match fault {
        Some(Fault::Cut { .. }) => {
            let mut bytes = body.to_string().into_bytes();
            bytes.truncate(bytes.len() / 2);
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(futures::stream::iter([Ok::<_, Infallible>(Bytes::from(
                    bytes,
                ))]))
        }
        Some(Fault::ErrorEvent { .. }) => refuse(Problem::Server, &render(Problem::Server)),
        _ => HttpResponse::Ok().json(body),
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A fresh id: `prefix` and a UUID v7 in hex.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}
