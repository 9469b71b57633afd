//! The gateway's configuration.

use std::{path::PathBuf, time::Duration};

use aichat_config::ConfigError;
use aichat_messaging::AmqpConfig;

/// Everything the gateway reads from the environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `HTTP_ADDR` | `127.0.0.1:8080` | where `serve` listens |
/// | `HTTP_WORKERS` | number of CPUs | actix worker threads |
/// | `HTTP_KEEP_ALIVE_SECS` | `75` | how long an idle client connection stays open; keep it above the idle timeout of any proxy in front (nginx's upstream `keepalive_timeout` and cloud load balancers: 60 s), or the proxy may send a request on a connection the gateway is closing (a 502) |
/// | `IDENTITY_GRPC_URL` | `http://127.0.0.1:50051` | the identity service |
/// | `CHAT_GRPC_URL` | `http://127.0.0.1:50052` | the chat service |
/// | `BILLING_GRPC_URL` | `http://127.0.0.1:50053` | the billing service |
/// | `ANALYTICS_GRPC_URL` | `http://127.0.0.1:50054` | the analytics service (the admin dashboard's figures) |
/// | `AMQP_URL`, `AMQP_EXCHANGE` | local RabbitMQ, `aichat.events` | revocation events |
/// | `ACCESS_TOKEN_TTL_SECS` | `900` | how long revocations are remembered |
/// | `REVOCATION_RESYNC_SECS` | `30` | how often the deny list is reloaded from identity (besides the events): how late a revocation may be seen while RabbitMQ is away |
/// | `CORS_ALLOWED_ORIGINS` | empty (no CORS) | comma-separated origins |
/// | `TRUSTED_PROXIES` | `0` | proxies in front of the gateway that append to `X-Forwarded-For`; the client IP is the entry this many places from the right (`0`: the header is ignored, the socket peer is the client) |
/// | `TRUST_FORWARDED_FOR` | — | deprecated: `true` stands for `TRUSTED_PROXIES=1` when that is unset |
/// | `JSON_BODY_LIMIT` | `262144` | largest JSON body, bytes (a message may hold 32,000 characters) |
/// | `RATE_LIMIT_MULTIPLIER` | `1` | scales every rate limit; `0` turns them off |
/// | `GRPC_TIMEOUT_SECS` | `15` | deadline of each call to a backend, streamed replies aside |
/// | `CHAT_STREAM_TIMEOUT_SECS` | `600` | deadline of a streamed reply, from the send to its end: chat waits up to 180 s for a provider's first token and tries 3 times |
/// | `REFRESH_COOKIE_MAX_AGE_SECS` | `2592000` | the longest `Max-Age` of the browser's refresh-token cookie (each one is bounded by what is left of its session, as identity says) |
/// | `WEB_DIR` | `web/dist` | the built web app (relative to the working directory), served at `/` |
#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: String,
    pub http_workers: usize,
    /// An idle client connection's life.
    pub keep_alive: Duration,
    pub identity_url: String,
    pub chat_url: String,
    pub billing_url: String,
    pub analytics_url: String,
    pub amqp: AmqpConfig,
    pub access_token_ttl: Duration,
    pub revocation_resync: Duration,
    pub cors_allowed_origins: Vec<String>,
    /// Proxies in front of the gateway, each appending its peer's address
    /// to `X-Forwarded-For` (see [`crate::routes::forwarded_client`]).
    pub trusted_proxies: usize,
    pub json_body_limit: usize,
    pub rate_limit_multiplier: u32,
    /// Unary calls to identity, chat, billing and analytics.
    pub grpc_timeout: Duration,
    /// A send, from the request to the reply's last event.
    pub chat_stream_timeout: Duration,
    /// The built web app (`npm run build` in `web/`).
    pub web_dir: PathBuf,
    /// How long a browser keeps the refresh-token cookie
    /// ([`crate::session_cookie`]): the session's life at identity.
    pub refresh_cookie_max_age: Duration,
}

impl Config {
    /// Reads the environment; see the table above.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            http_addr: aichat_config::string("HTTP_ADDR", "127.0.0.1:8080"),
            http_workers: aichat_config::parse(
                "HTTP_WORKERS",
                std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(2),
            )?,
            keep_alive: aichat_config::seconds("HTTP_KEEP_ALIVE_SECS", 75)?,
            identity_url: aichat_config::string("IDENTITY_GRPC_URL", "http://127.0.0.1:50051"),
            chat_url: aichat_config::string("CHAT_GRPC_URL", "http://127.0.0.1:50052"),
            billing_url: aichat_config::string("BILLING_GRPC_URL", "http://127.0.0.1:50053"),
            analytics_url: aichat_config::string("ANALYTICS_GRPC_URL", "http://127.0.0.1:50054"),
            amqp: AmqpConfig::from_env(),
            access_token_ttl: aichat_config::seconds("ACCESS_TOKEN_TTL_SECS", 900)?,
            revocation_resync: aichat_config::seconds("REVOCATION_RESYNC_SECS", 30)?,
            cors_allowed_origins: aichat_config::list("CORS_ALLOWED_ORIGINS", ""),
            trusted_proxies: aichat_config::parse(
                "TRUSTED_PROXIES",
                usize::from(aichat_config::flag("TRUST_FORWARDED_FOR", false)?),
            )?,
            json_body_limit: aichat_config::parse("JSON_BODY_LIMIT", 256 * 1024)?,
            rate_limit_multiplier: aichat_config::parse("RATE_LIMIT_MULTIPLIER", 1)?,
            grpc_timeout: aichat_config::seconds("GRPC_TIMEOUT_SECS", 15)?,
            chat_stream_timeout: aichat_config::seconds("CHAT_STREAM_TIMEOUT_SECS", 600)?,
            web_dir: aichat_config::string("WEB_DIR", "web/dist").into(),
            refresh_cookie_max_age: aichat_config::seconds(
                "REFRESH_COOKIE_MAX_AGE_SECS",
                30 * 24 * 3600,
            )?,
        })
    }
}
