//! Consuming events: a reconnecting loop around one queue.
//!
//! Deliveries are acked only after the handler returns `Ok` (for a durable
//! consumer, after its transaction committed), so a crash between the effect
//! and the ack redelivers the event and the inbox skips it. A message that
//! is not an event envelope, or whose handler fails permanently, is rejected
//! without requeue and lands in the dead-letter queue.

use std::future::Future;

use aichat_events::Envelope;
use anyhow::Context;
use futures::StreamExt;
use lapin::{
    ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
        BasicRejectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio_util::sync::CancellationToken;

use crate::AmqpConfig;

/// Which queue to consume.
#[derive(Debug, Clone)]
pub enum Queue {
    /// A service's own durable quorum queue, named
    /// `<exchange>.<service>` (with `<exchange>.<service>.dlq` behind it):
    /// events wait there while the service is down. Naming it after the
    /// exchange keeps two deployments (or two tests) on one broker apart.
    Durable(String),
    /// A private queue that lives as long as the connection: for a process
    /// that only needs events while it runs (the gateway's revocation list).
    Ephemeral,
}

/// What a handler says about an event it could not apply.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (database down, ...): the message is requeued.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// It will never work: the message goes to the dead-letter queue.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

/// A consumer's set-up.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The queue.
    pub queue: Queue,
    /// Routing keys (event types, `#` patterns allowed) bound to the queue.
    pub bindings: Vec<String>,
    /// Unacked deliveries in flight at once.
    pub prefetch: u16,
}

/// Consumes until `shutdown`; reconnects with backoff when the broker goes
/// away. `on_connected` runs after every (re)connection, once the queue is
/// bound: a place to catch up on what may have been missed meanwhile.
pub async fn run<H, Fut, C, CFut>(
    amqp: AmqpConfig,
    spec: Spec,
    shutdown: CancellationToken,
    on_connected: C,
    handler: H,
) where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
    C: Fn() -> CFut,
    CFut: Future<Output = ()>,
{
    let mut failures: u32 = 0;
    while !shutdown.is_cancelled() {
        match consume(&amqp, &spec, &shutdown, &on_connected, &handler).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "event consumer lost RabbitMQ; reconnecting"
                );
                tokio::select! {
                    () = tokio::time::sleep(crate::backoff(failures)) => {}
                    () = shutdown.cancelled() => return,
                }
                failures = failures.saturating_add(1);
            }
        }
    }
}

async fn consume<H, Fut, C, CFut>(
    amqp: &AmqpConfig,
    spec: &Spec,
    shutdown: &CancellationToken,
    on_connected: &C,
    handler: &H,
) -> anyhow::Result<()>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
    C: Fn() -> CFut,
    CFut: Future<Output = ()>,
{
    let (_connection, channel) = crate::connect(amqp).await?;
    let queue = match &spec.queue {
        Queue::Durable(service) => {
            let name = durable_queue_name(amqp, service);
            declare_durable(&channel, amqp, &name).await?;
            name
        }
        Queue::Ephemeral => channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .context("declaring a private queue")?
            .name()
            .to_string(),
    };
    for key in &spec.bindings {
        channel
            .queue_bind(
                queue.as_str().into(),
                amqp.exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("binding {queue} to {key}"))?;
    }
    channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await
        .context("setting prefetch")?;
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("starting to consume")?;
    on_connected().await;
    tracing::info!(queue = %queue, "consuming events");

    loop {
        let delivery = tokio::select! {
            next = deliveries.next() => next,
            () = shutdown.cancelled() => return Ok(()),
        };
        let Some(delivery) = delivery else {
            anyhow::bail!("the consumer was cancelled by the broker");
        };
        let delivery = delivery.context("receiving a delivery")?;
        let envelope: Envelope = match serde_json::from_slice(&delivery.data) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::error!(%error, "not an event envelope; dead-lettering it");
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
                continue;
            }
        };
        let span = tracing::info_span!(
            "event",
            event.id = %envelope.id,
            event.r#type = %envelope.event_type,
            redelivered = delivery.redelivered
        );
        let mut headers = std::collections::HashMap::new();
        if let Some(tp) = &envelope.trace_context.traceparent {
            headers.insert("traceparent".to_owned(), tp.clone());
        }
        aichat_telemetry::set_parent_from_headers(&span, &headers);
        let outcome = tracing::Instrument::instrument(handler(envelope), span.clone()).await;
        let _enter = span.enter();
        let sent = match outcome {
            Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await?,
            Err(HandlerError::Transient(error)) => {
                tracing::warn!(error = format!("{error:#}"), "event failed; requeued");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await?
            }
            Err(HandlerError::Permanent(error)) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "event cannot be applied; dead-lettered"
                );
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await?
            }
        };
        if !sent {
            // The channel was replaced after a reconnect: this delivery will
            // come again, and the inbox makes that harmless.
            anyhow::bail!("acknowledgement not sent: the channel is gone");
        }
    }
}

/// The queue of `service` on `amqp`'s exchange (its dead-letter queue adds
/// `.dlq`).
pub fn durable_queue_name(amqp: &AmqpConfig, service: &str) -> String {
    format!("{}.{service}", amqp.exchange)
}

async fn declare_durable(
    channel: &lapin::Channel,
    amqp: &AmqpConfig,
    name: &str,
) -> anyhow::Result<()> {
    let dlx = amqp.dead_letter_exchange();
    channel
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: amqp.ephemeral,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("declaring the dead-letter exchange")?;
    let dlq = format!("{name}.dlq");
    channel
        .queue_declare(
            dlq.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            queue_arguments(amqp, None),
        )
        .await
        .context("declaring the dead-letter queue")?;
    channel
        .queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            name.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("binding the dead-letter queue")?;
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            queue_arguments(amqp, Some(&dlx)),
        )
        .await
        .with_context(|| format!("declaring queue {name}"))?;
    Ok(())
}

/// Arguments of a service queue: a quorum queue (replicated, every message
/// on disk); with a dead-letter exchange, a message is dead-lettered after 10
/// failed deliveries (a poison message stops looping). Ephemeral (test)
/// queues are classic and expire a minute after they were last used.
fn queue_arguments(amqp: &AmqpConfig, dead_letter_exchange: Option<&str>) -> FieldTable {
    let mut args = FieldTable::default();
    if amqp.ephemeral {
        args.insert(ShortString::from("x-expires"), AMQPValue::LongInt(60_000));
    } else {
        args.insert(
            ShortString::from("x-queue-type"),
            AMQPValue::LongString("quorum".into()),
        );
    }
    if let Some(dlx) = dead_letter_exchange {
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(dlx.into()),
        );
        if !amqp.ephemeral {
            args.insert(
                ShortString::from("x-delivery-limit"),
                AMQPValue::LongInt(10),
            );
        }
    }
    args
}
