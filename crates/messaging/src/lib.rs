#![doc = include_str!("../README.md")]

pub mod consumer;
pub mod dlq;
pub mod inbox;
pub mod outbox;
pub mod relay;
mod schema;

use std::time::Duration;

use anyhow::Context;
use lapin::{
    Channel, Connection, ConnectionProperties, ErrorKind, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable, ShortString},
};

/// Where the broker is and which exchange events go through.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// The topic exchange all events are published to.
    pub exchange: String,
    /// Tests: the exchanges delete themselves when their last queue goes,
    /// and durable queues expire a minute after their consumer left, so a
    /// test that dies leaves nothing on the broker.
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

    /// The dead-letter exchange that goes with [`Self::exchange`]: a direct
    /// exchange; a queue's dead letters are routed by the queue's name to
    /// its own dead-letter queue.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letter", self.exchange)
    }

    /// The alternate exchange of [`Self::exchange`], and the queue behind it
    /// (same name): where a message no queue is bound for goes, instead of
    /// being dropped.
    pub fn unrouted(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }
}

/// Opens a connection and a channel, and declares the event exchange with
/// its alternate exchange (see [`declare_exchange`]).
pub async fn connect(config: &AmqpConfig) -> anyhow::Result<(Connection, Channel)> {
    let connection = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(&config.url, ConnectionProperties::default()),
    )
    .await
    .context("connecting to RabbitMQ timed out")?
    .context("connecting to RabbitMQ")?;
    let channel = declare_exchange(&connection, config).await?;
    Ok((connection, channel))
}

/// Declares the event exchange, and returns a channel on `connection`.
///
/// The exchange's `alternate-exchange` is `<exchange>.unrouted`, a fanout
/// exchange with a durable queue of the same name: a message published with
/// a routing key no queue is bound to waits there instead of being dropped
/// (docs/adr/0003-no-event-is-lost-on-the-broker.md). An exchange declared
/// by an older release has no arguments, and redeclaring it with one fails
/// (`PRECONDITION_FAILED`, which closes the channel): then it is used as it
/// is, on a new channel, with a warning saying how to give it the alternate
/// exchange by a policy.
pub async fn declare_exchange(
    connection: &Connection,
    config: &AmqpConfig,
) -> anyhow::Result<Channel> {
    let channel = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    let unrouted = config.unrouted();
    channel
        .exchange_declare(
            unrouted.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: config.ephemeral,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("declaring the unrouted-events exchange")?;
    channel
        .queue_declare(
            unrouted.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            queue_arguments(config, None),
        )
        .await
        .context("declaring the unrouted-events queue")?;
    channel
        .queue_bind(
            unrouted.as_str().into(),
            unrouted.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("binding the unrouted-events queue")?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("alternate-exchange"),
        AMQPValue::LongString(unrouted.as_str().into()),
    );
    let options = ExchangeDeclareOptions {
        durable: true,
        auto_delete: config.ephemeral,
        ..Default::default()
    };
    match channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            options,
            arguments,
        )
        .await
    {
        Ok(()) => Ok(channel),
        Err(error) if is_precondition_failed(&error) => {
            tracing::warn!(
                exchange = %config.exchange,
                alternate_exchange = %unrouted,
                "the event exchange has no alternate exchange (declared by an older release): \
                 unroutable events are dropped until a policy sets one \
                 (docs/adr/0003-no-event-is-lost-on-the-broker.md)"
            );
            let channel = connection
                .create_channel()
                .await
                .context("opening a channel")?;
            channel
                .exchange_declare(
                    config.exchange.as_str().into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..options
                    },
                    FieldTable::default(),
                )
                .await
                .context("declaring the event exchange (passively)")?;
            Ok(channel)
        }
        Err(error) => Err(anyhow::Error::new(error).context("declaring the event exchange")),
    }
}

/// Whether the broker refused a declaration because the exchange or queue
/// exists with other properties or arguments.
fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ProtocolError(e)
            if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
    )
}

/// Arguments of a durable queue: a quorum queue (replicated, every message
/// on disk); with a dead-letter exchange (and the routing key to its
/// dead-letter queue), a message is dead-lettered after
/// [`consumer::DELIVERY_LIMIT`] failed deliveries (a poison message stops
/// looping). Ephemeral (test) queues are the same, so tests see the delivery
/// limit, and expire a minute after they were last used.
pub(crate) fn queue_arguments(amqp: &AmqpConfig, dead_letter: Option<(&str, &str)>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    if amqp.ephemeral {
        args.insert(ShortString::from("x-expires"), AMQPValue::LongInt(60_000));
    }
    if let Some((dlx, routing_key)) = dead_letter {
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(dlx.into()),
        );
        args.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(routing_key.into()),
        );
        args.insert(
            ShortString::from("x-delivery-limit"),
            AMQPValue::LongInt(consumer::DELIVERY_LIMIT),
        );
    }
    args
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
