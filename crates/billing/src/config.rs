//! The billing service's configuration.

use std::time::Duration;

use aichat_config::{ConfigError, SecretString};
use aichat_messaging::AmqpConfig;

/// Everything the service reads from the environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/billing` | its database |
/// | `DB_POOL_SIZE` | 2 × CPUs | most database connections (PostgreSQL's rule of thumb; more only adds context switches) |
/// | `GRPC_ADDR` | `127.0.0.1:50053` | where `serve` listens |
/// | `AMQP_URL`, `AMQP_EXCHANGE` | local RabbitMQ, `aichat.events` | events (billing's queue is `<exchange>.billing`) |
/// | `RESERVATION_TTL_SECS` | `120` | how long a reservation holds quota unless settled or released (a crashed call gives it back after this) |
/// | `MAINTENANCE_INTERVAL_SECS` | `60` | how often every usage row of a past month is reset and expired reservations are deleted |
/// | `RECONCILE_INTERVAL_SECS` | `3600` | how often `serve` lists the subscriptions in Stripe and repairs local drift (a missed webhook); one replica at a time; only with Stripe configured |
/// | `STRIPE_SECRET_KEY` | empty | Stripe's secret API key (`sk_test_...`); empty: Stripe is not configured (checkout and the portal are unavailable, the rest works) |
/// | `STRIPE_WEBHOOK_SECRET` | empty | the webhook endpoint's signing secret (`whsec_...`); several, comma-separated, during a rotation |
/// | `STRIPE_API_BASE` | `https://api.stripe.com` | Stripe's API (tests point it at a local stand-in) |
/// | `CONSUME_BATCH` | `100` | usage events (`chat.tokens.used`, `chat.conversation.created`) applied in one transaction at most (1..=1000; 1: one event per transaction) |
/// | `PUBLIC_URL` | `http://localhost:8080` | the web app's address: where Stripe Checkout and the Billing Portal send the user back (`/billing?checkout=success&session_id=…`, `/billing?checkout=canceled`, `/billing`) |
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub db_pool_size: usize,
    pub grpc_addr: String,
    pub amqp: AmqpConfig,
    /// How long a reservation holds quota.
    pub reservation_ttl: Duration,
    /// The period of the rollover and sweeping task.
    pub maintenance_interval: Duration,
    /// The period of the reconciliation with Stripe.
    pub reconcile_interval: Duration,
    /// `None` without `STRIPE_SECRET_KEY`: paid plans cannot be bought.
    pub stripe: Option<StripeConfig>,
    /// The web app's base URL, without a trailing slash: Stripe's pages
    /// send the user back under it.
    pub public_url: String,
    /// Events applied in one transaction at most (1: one at a time).
    pub consume_batch: usize,
}

/// How billing reaches Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Without a trailing slash (`https://api.stripe.com`).
    pub api_base: String,
    pub secret_key: SecretString,
    /// Any of these may have signed a webhook: the new and the old one
    /// while an endpoint's secret is rolled. Empty: webhooks are refused.
    pub webhook_secrets: Vec<SecretString>,
}

impl StripeConfig {
    /// `None` when `STRIPE_SECRET_KEY` is unset or empty.
    pub fn from_env() -> Option<Self> {
        let secret_key = aichat_config::optional("STRIPE_SECRET_KEY")?;
        Some(Self {
            api_base: aichat_config::string("STRIPE_API_BASE", crate::stripe::DEFAULT_API_BASE)
                .trim_end_matches('/')
                .to_owned(),
            secret_key: SecretString::from(secret_key.trim().to_owned()),
            webhook_secrets: aichat_config::list("STRIPE_WEBHOOK_SECRET", "")
                .into_iter()
                .map(SecretString::from)
                .collect(),
        })
    }
}

impl Config {
    /// Reads the environment; see the table above.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: aichat_config::string(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/billing",
            ),
            db_pool_size: aichat_config::parse(
                "DB_POOL_SIZE",
                2 * std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(2),
            )?,
            grpc_addr: aichat_config::string("GRPC_ADDR", "127.0.0.1:50053"),
            amqp: AmqpConfig::from_env(),
            reservation_ttl: at_least_a_second(
                "RESERVATION_TTL_SECS",
                aichat_config::seconds("RESERVATION_TTL_SECS", 120)?,
            )?,
            maintenance_interval: at_least_a_second(
                "MAINTENANCE_INTERVAL_SECS",
                aichat_config::seconds("MAINTENANCE_INTERVAL_SECS", 60)?,
            )?,
            reconcile_interval: at_least_a_second(
                "RECONCILE_INTERVAL_SECS",
                aichat_config::seconds("RECONCILE_INTERVAL_SECS", 3600)?,
            )?,
            stripe: StripeConfig::from_env(),
            public_url: aichat_config::string("PUBLIC_URL", "http://localhost:8080")
                .trim_end_matches('/')
                .to_owned(),
            consume_batch: consume_batch()?,
        })
    }
}

fn consume_batch() -> Result<usize, ConfigError> {
    let batch: usize = aichat_config::parse("CONSUME_BATCH", 100)?;
    if (1..=1000).contains(&batch) {
        Ok(batch)
    } else {
        Err(ConfigError {
            name: "CONSUME_BATCH".to_owned(),
            value: batch.to_string(),
            reason: "must be 1 to 1000".to_owned(),
        })
    }
}

fn at_least_a_second(name: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value >= Duration::from_secs(1) {
        Ok(value)
    } else {
        Err(ConfigError {
            name: name.to_owned(),
            value: value.as_secs().to_string(),
            reason: "must be at least 1".to_owned(),
        })
    }
}
