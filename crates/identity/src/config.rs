//! The identity service's configuration.

use std::{path::PathBuf, time::Duration};

use aichat_config::{ConfigError, SecretString};
use aichat_messaging::AmqpConfig;

/// How mail leaves the service.
#[derive(Debug, Clone)]
pub enum MailTransport {
    /// One RFC 5322 `.eml` file per mail in this folder.
    File(PathBuf),
    /// An SMTP relay URL (`smtp://user:pass@host:587?tls=required`, as lettre reads it).
    Smtp(SecretString),
}

/// Everything the service reads from the environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/identity` | its database |
/// | `DB_POOL_SIZE` | 2 × CPUs | most database connections (PostgreSQL's rule of thumb; more only adds context switches) |
/// | `GRPC_ADDR` | `127.0.0.1:50051` | where `serve` listens |
/// | `AMQP_URL`, `AMQP_EXCHANGE` | local RabbitMQ, `aichat.events` | events |
/// | `JWT_PRIVATE_KEY_FILE` | unset: a new key each start (dev only) | Ed25519 PKCS#8 PEM signing access tokens |
/// | `JWT_PREVIOUS_PUBLIC_KEYS` | empty | comma-separated base64url public keys still accepted while rotating |
/// | `JWT_ISSUER` / `JWT_AUDIENCE` | `aichat-identity` / `aichat` | token `iss` / `aud` |
/// | `ACCESS_TOKEN_TTL_SECS` | `900` | access token life (15 min) |
/// | `REFRESH_TOKEN_TTL_SECS` | `2592000` | a session's absolute life (30 days) |
/// | `MAIL_TRANSPORT` | `file` | `file` or `smtp` |
/// | `MAIL_DIR` | `./.run/mail` | where `file` mails go |
/// | `SMTP_URL` | unset | the relay for `smtp` |
/// | `SMTP_TIMEOUT_SECS` | `10` | the most one mail send may take (connecting included); then it is retried |
/// | `MAIL_MAX_ATTEMPTS` | `10` | attempts per mail before it is given up (logged) |
/// | `MAIL_RETRY_BASE_MS` | `2000` | wait after a mail's first failed attempt; doubles after each, at most 10 min |
/// | `MAIL_FROM` | `AI Chat <no-reply@localhost>` | sender |
/// | `PUBLIC_URL` | `http://localhost:8080` | base of the links in mails |
/// | `RETENTION_DAYS` | `7` | how long ended sessions, expired mailed tokens and expired API keys are kept before the retention task deletes them |
/// | `RETENTION_INTERVAL_SECS` | `3600` | how often the retention task runs |
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub db_pool_size: usize,
    pub grpc_addr: String,
    pub amqp: AmqpConfig,
    pub jwt_private_key_file: Option<PathBuf>,
    pub jwt_previous_public_keys: Vec<String>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub mail: MailTransport,
    pub smtp_timeout: Duration,
    pub mail_max_attempts: u32,
    pub mail_retry_base: Duration,
    pub mail_from: String,
    pub public_url: String,
    pub retention_days: u32,
    pub retention_interval: Duration,
}

impl Config {
    /// Reads the environment; see the table above.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mail = match aichat_config::string("MAIL_TRANSPORT", "file").as_str() {
            "file" => MailTransport::File(aichat_config::string("MAIL_DIR", "./.run/mail").into()),
            "smtp" => MailTransport::Smtp(
                aichat_config::optional("SMTP_URL")
                    .map(SecretString::from)
                    .ok_or_else(|| ConfigError {
                        name: "SMTP_URL".to_owned(),
                        value: String::new(),
                        reason: "required when MAIL_TRANSPORT=smtp".to_owned(),
                    })?,
            ),
            other => {
                return Err(ConfigError {
                    name: "MAIL_TRANSPORT".to_owned(),
                    value: other.to_owned(),
                    reason: "expected file or smtp".to_owned(),
                });
            }
        };
        Ok(Self {
            database_url: aichat_config::string(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/identity",
            ),
            db_pool_size: aichat_config::parse(
                "DB_POOL_SIZE",
                2 * std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(2),
            )?,
            grpc_addr: aichat_config::string("GRPC_ADDR", "127.0.0.1:50051"),
            amqp: AmqpConfig::from_env(),
            jwt_private_key_file: aichat_config::optional("JWT_PRIVATE_KEY_FILE")
                .map(PathBuf::from),
            jwt_previous_public_keys: aichat_config::list("JWT_PREVIOUS_PUBLIC_KEYS", ""),
            jwt_issuer: aichat_config::string("JWT_ISSUER", "aichat-identity"),
            jwt_audience: aichat_config::string("JWT_AUDIENCE", "aichat"),
            access_token_ttl: aichat_config::seconds("ACCESS_TOKEN_TTL_SECS", 900)?,
            refresh_token_ttl: aichat_config::seconds("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            mail,
            smtp_timeout: aichat_config::seconds("SMTP_TIMEOUT_SECS", 10)?,
            mail_max_attempts: aichat_config::parse("MAIL_MAX_ATTEMPTS", 10)?,
            mail_retry_base: Duration::from_millis(aichat_config::parse(
                "MAIL_RETRY_BASE_MS",
                2000,
            )?),
            mail_from: aichat_config::string("MAIL_FROM", "AI Chat <no-reply@localhost>"),
            public_url: aichat_config::string("PUBLIC_URL", "http://localhost:8080"),
            retention_days: aichat_config::parse("RETENTION_DAYS", 7)?,
            retention_interval: aichat_config::seconds("RETENTION_INTERVAL_SECS", 3600)?,
        })
    }
}
