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
}

fn endpoint(prefix: &str, default_url: &str) -> ProviderEndpoint {
    ProviderEndpoint {
        base_url: aichat_config::string(&format!("{prefix}_BASE_URL"), default_url),
        api_key: aichat_config::secret(&format!("{prefix}_API_KEY"), ""),
    }
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
        })
    }
}
