//! HTTP handlers: parse the request, call a service over gRPC, shape the
//! answer. No business rule lives here.

pub mod accounts;
pub mod billing;
pub mod chat;
pub mod ops;

use actix_web::{HttpMessage, HttpRequest};
use tonic::metadata::MetadataValue;

use aichat_ratelimit::RateLimiter;

use crate::{problem::Problem, state::AppState};

/// The request id the middleware gave this request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A gRPC request carrying the request id and the trace context.
pub fn grpc<T>(req: &HttpRequest, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(id) = req.extensions().get::<RequestId>()
        && let Ok(value) = MetadataValue::try_from(id.0.as_str())
    {
        request.metadata_mut().insert("x-request-id", value);
    }
    for (key, value) in aichat_telemetry::current_context_headers() {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            request.metadata_mut().insert(key, value);
        }
    }
    request
}

/// The client's IP: the socket peer, or the first `X-Forwarded-For` hop
/// when the gateway sits behind a trusted proxy.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    if state.config.trust_forwarded_for
        && let Some(ip) = req.connection_info().realip_remote_addr()
    {
        return ip
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or(ip)
            .to_owned();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// Counts a request against a limit; a 429 problem when over it.
pub fn limit(limiter: &RateLimiter, key: &str) -> Result<(), Problem> {
    limiter
        .check(key)
        .map_err(|wait| Problem::rate_limited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)))
}

/// The `User-Agent` header, if any.
pub fn user_agent(req: &HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
