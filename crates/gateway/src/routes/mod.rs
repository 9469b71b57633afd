//! HTTP handlers: parse the request, call a service over gRPC, shape the
//! answer. No business rule lives here.

pub mod accounts;
pub mod analytics;
pub mod api_keys;
pub mod billing;
pub mod chat;
pub mod openai;
pub mod ops;
pub mod webhooks;

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
};

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

/// The client's IP: the socket peer, or, behind `TRUSTED_PROXIES` = N
/// proxies, the address the outermost of them saw (see [`forwarded_client`]).
pub fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    let forwarded = req
        .headers()
        .get_all(actix_web::http::header::X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok());
    forwarded_client(forwarded, state.config.trusted_proxies)
        .or_else(|| req.peer_addr().map(|a| a.ip()))
        .map(|ip| ip.to_canonical().to_string())
        .unwrap_or_default()
}

/// The client's address in `X-Forwarded-For` when `trusted` proxies stand
/// in front of the gateway, each appending the address of its own peer.
///
/// The rightmost entry was written by the proxy next to us, the one before
/// it by the proxy before that, and so on: the entry `trusted` places from
/// the right is what the outermost trusted proxy saw, the client. Entries
/// further left came from the client itself and are never read (anyone can
/// send `X-Forwarded-For: 1.2.3.4`). Several header lines count as one list,
/// in order. `None` (the caller uses the socket peer) when `trusted` is 0,
/// when there are fewer entries than trusted proxies (the request did not
/// come through all of them), or when that entry is not an address
/// (`ip`, `ip:port` or `[ipv6]:port`).
pub fn forwarded_client<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    trusted: usize,
) -> Option<IpAddr> {
    if trusted == 0 {
        return None;
    }
    let entries: Vec<&str> = headers
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    let entry = entries
        .len()
        .checked_sub(trusted)
        .and_then(|i| entries.get(i))?;
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(headers: &[&str], trusted: usize) -> Option<String> {
        forwarded_client(headers.iter().copied(), trusted).map(|ip| ip.to_string())
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(client(&["203.0.113.7"], 0), None);
    }

    #[test]
    fn the_entry_as_many_places_from_the_right_as_there_are_proxies_is_the_client() {
        let chain = ["198.51.100.1, 203.0.113.7, 10.0.0.2"];
        assert_eq!(client(&chain, 1).as_deref(), Some("10.0.0.2"));
        assert_eq!(client(&chain, 2).as_deref(), Some("203.0.113.7"));
        assert_eq!(client(&chain, 3).as_deref(), Some("198.51.100.1"));
        // Several header lines are one list, in order.
        assert_eq!(
            client(&["198.51.100.1, 203.0.113.7", "10.0.0.2"], 2).as_deref(),
            Some("203.0.113.7")
        );
    }

    #[test]
    fn spoofed_leftmost_entries_are_never_taken() {
        // The client sent `X-Forwarded-For: 6.6.6.6, 7.7.7.7`; the one proxy
        // appended the address it saw.
        let spoofed = ["6.6.6.6, 7.7.7.7, 203.0.113.7"];
        assert_eq!(client(&spoofed, 1).as_deref(), Some("203.0.113.7"));
    }

    #[test]
    fn fewer_entries_than_proxies_fall_back_to_the_peer() {
        assert_eq!(client(&["203.0.113.7"], 2), None);
        assert_eq!(client(&[], 1), None);
    }

    #[test]
    fn garbage_at_the_clients_place_falls_back_to_the_peer() {
        for garbage in ["unknown", "", "203.0.113", "not an ip", "_hidden"] {
            assert_eq!(
                client(&[&format!("{garbage}, 10.0.0.2")], 2),
                None,
                "{garbage}"
            );
        }
        // Garbage further left does not matter.
        assert_eq!(
            client(&["garbage, 203.0.113.7"], 1).as_deref(),
            Some("203.0.113.7")
        );
    }

    #[test]
    fn ports_and_brackets_are_stripped() {
        assert_eq!(
            client(&["203.0.113.7:4711"], 1).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            client(&["[2001:db8::1]:443"], 1).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            client(&["[2001:db8::1]"], 1).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(client(&["2001:db8::1"], 1).as_deref(), Some("2001:db8::1"));
    }
}
