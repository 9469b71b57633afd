//! The chat service's configuration.

use aichat_config::{ConfigError, SecretString};
use aichat_messaging::AmqpConfig;

/// Where a provider is and the key to use.
#[derive(Debug, Clone)]
pub struct ProviderEndpoint {
    pub base_url: String,
    pub api_key: SecretString,
}

/// Everything the service reads from the environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/chat` | its database |
/// | `DB_POOL_SIZE` | 2 × CPUs | most database connections |
/// | `GRPC_ADDR` | `127.0.0.1:50052` | where `serve` listens |
/// | `BILLING_GRPC_URL` | `http://127.0.0.1:50053` | billing (limits, reservations) |
/// | `AMQP_URL`, `AMQP_EXCHANGE` | local RabbitMQ, `aichat.events` | events |
/// | `OPENAI_BASE_URL`, `OPENAI_API_KEY` | `https://api.openai.com/v1`, empty | OpenAI or any OpenAI-compatible server (Ollama, vLLM) |
/// | `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY` | `https://api.anthropic.com`, empty | Anthropic Messages |
/// | `GOOGLE_BASE_URL`, `GOOGLE_API_KEY` | `https://generativelanguage.googleapis.com`, empty | Google Gemini |
/// | `PROVIDER_MAX_ATTEMPTS` | `3` | tries before the first token (429/5xx/connect errors) |
/// | `BREAKER_THRESHOLD` / `BREAKER_COOL_DOWN_SECS` | `5` / `30` | consecutive failures that open a provider's circuit, and for how long |
/// | `SENDS_PER_MINUTE_FREE` / `_PLUS` / `_PRO` | `20` / `60` / `120` | messages a user may send per minute on each plan (0: unlimited) |
/// | `CHECKPOINT_SECS` | `1` | how often a streaming reply's tokens are saved for recovery |
/// | `DELTA_FLUSH_MS` | `16` | a reply's deltas are relayed at most once per this many milliseconds (those arriving meanwhile joined; the first never waits); `0`: each as it arrives |
/// | `REPLICA_TIMEOUT_SECS` | `30` | a replica silent this long is dead: another charges its calls in flight |
/// | `STALE_CALL_SECS` | `900` | a call not checkpointed this long is charged even if its replica lives |
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub db_pool_size: usize,
    pub grpc_addr: String,
    pub billing_url: String,
    pub amqp: AmqpConfig,
    pub openai: ProviderEndpoint,
    pub anthropic: ProviderEndpoint,
    pub google: ProviderEndpoint,
    pub provider_max_attempts: u32,
    pub breaker_threshold: u32,
    pub breaker_cool_down_secs: u64,
    /// Sends per minute by plan name.
    pub sends_per_minute: Vec<(String, u32)>,
    pub checkpoint_every: std::time::Duration,
    pub delta_flush: std::time::Duration,
    pub replica_timeout: std::time::Duration,
    pub stale_call_after: std::time::Duration,
}

fn endpoint(prefix: &str, default_url: &str) -> ProviderEndpoint {
    ProviderEndpoint {
        base_url: aichat_config::string(&format!("{prefix}_BASE_URL"), default_url),
        api_key: aichat_config::secret(&format!("{prefix}_API_KEY"), ""),
    }
}

/// `DELTA_FLUSH_MS`: up to a second (past that a reply would visibly
/// stutter).
fn delta_flush() -> Result<std::time::Duration, ConfigError> {
    let ms: u64 = aichat_config::parse("DELTA_FLUSH_MS", 16)?;
    if ms > 1000 {
        return Err(ConfigError {
            name: "DELTA_FLUSH_MS".to_owned(),
            value: ms.to_string(),
            reason: "must be 0 to 1000".to_owned(),
        });
    }
    Ok(std::time::Duration::from_millis(ms))
}

impl Config {
    /// Reads the environment; see the table above.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: aichat_config::string(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/chat",
            ),
            db_pool_size: aichat_config::parse(
                "DB_POOL_SIZE",
                2 * std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(2),
            )?,
            grpc_addr: aichat_config::string("GRPC_ADDR", "127.0.0.1:50052"),
            billing_url: aichat_config::string("BILLING_GRPC_URL", "http://127.0.0.1:50053"),
            amqp: AmqpConfig::from_env(),
            openai: endpoint("OPENAI", "https://api.openai.com/v1"),
            anthropic: endpoint("ANTHROPIC", "https://api.anthropic.com"),
            google: endpoint("GOOGLE", "https://generativelanguage.googleapis.com"),
            provider_max_attempts: aichat_config::parse("PROVIDER_MAX_ATTEMPTS", 3)?,
            breaker_threshold: aichat_config::parse("BREAKER_THRESHOLD", 5)?,
            breaker_cool_down_secs: aichat_config::parse("BREAKER_COOL_DOWN_SECS", 30)?,
            sends_per_minute: vec![
                (
                    "Free".to_owned(),
                    aichat_config::parse("SENDS_PER_MINUTE_FREE", 20)?,
                ),
                (
                    "Plus".to_owned(),
                    aichat_config::parse("SENDS_PER_MINUTE_PLUS", 60)?,
                ),
                (
                    "Pro".to_owned(),
                    aichat_config::parse("SENDS_PER_MINUTE_PRO", 120)?,
                ),
            ],
            checkpoint_every: aichat_config::seconds("CHECKPOINT_SECS", 1)?,
            delta_flush: delta_flush()?,
            replica_timeout: aichat_config::seconds("REPLICA_TIMEOUT_SECS", 30)?,
            stale_call_after: aichat_config::seconds("STALE_CALL_SECS", 900)?,
        })
    }
}
