#![doc = include_str!("../README.md")]

pub mod consumer;
pub mod inbox;
pub mod outbox;
pub mod relay;
mod schema;

use std::time::Duration;

use anyhow::Context;
use lapin::{
    Channel, Connection, ConnectionProperties, ExchangeKind, options::ExchangeDeclareOptions,
    types::FieldTable,
};

/// Where the broker is and which exchange events go through.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// The topic exchange all events are published to.
    pub exchange: String,
    /// Tests: the exchange deletes itself when its last queue goes, and
    /// durable queues are classic queues that expire a minute after their
    /// consumer left, so a test that dies leaves nothing on the broker.
    pub ephemeral: bool,
}

impl AmqpConfig {
    /// Reads `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`) and
    /// `AMQP_EXCHANGE` (default `aichat.events`).
    pub fn from_env() -> Self {
        Self {
            url: aichat_config::string("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            exchange: aichat_config::string("AMQP_EXCHANGE", "aichat.events"),
            // Tests that run a service binary set it, so the binary's
            // exchange and queues go away with the test's.
            ephemeral: aichat_config::flag("AMQP_EPHEMERAL", false).unwrap_or(false),
        }
    }

    /// The dead-letter exchange that goes with [`Self::exchange`].
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }
}

/// Opens a connection and a channel, and declares the event exchange.
pub async fn connect(config: &AmqpConfig) -> anyhow::Result<(Connection, Channel)> {
    let connection = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(&config.url, ConnectionProperties::default()),
    )
    .await
    .context("connecting to RabbitMQ timed out")?
    .context("connecting to RabbitMQ")?;
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: config.ephemeral,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("declaring the event exchange")?;
    Ok((connection, channel))
}

/// Exponential backoff with full jitter, capped: how long to wait before
/// attempt `attempt` (0-based) of reconnecting.
pub fn backoff(attempt: u32) -> Duration {
    let base_ms: u64 = 100;
    let cap_ms: u64 = 5_000;
    let exp = base_ms.saturating_mul(1u64 << attempt.min(16)).min(cap_ms);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    Duration::from_millis(exp / 2 + nanos % (exp / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_capped() {
        assert!(backoff(0) <= Duration::from_millis(100));
        assert!(backoff(3) >= Duration::from_millis(400));
        for attempt in 0..40 {
            assert!(backoff(attempt) <= Duration::from_millis(5_000));
        }
    }
}
