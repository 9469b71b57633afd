//! HTTP handlers: parse the request, call a service over gRPC, shape the
//! answer. No business rule lives here.

pub mod accounts;
pub mod billing;
pub mod chat;
pub mod ops;

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataValue;

use aichat_ratelimit::RateLimiter;

use crate::{problem::Problem, state::AppState};

/// A JSON request body that must be an object, as the contract says:
/// serde alone also reads a struct from an array of its fields in order.
/// The size limit and the refusals of a body that is not JSON are
/// `web::Json`'s (the app's `JsonConfig`).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let object =
            web::Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, payload);
        Box::pin(async move {
            let object = object.await?.into_inner();
            serde_json::from_value(serde_json::Value::Object(object))
                .map(Json)
                .map_err(|e| Problem::malformed_body(&e).into())
        })
    }
}

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
