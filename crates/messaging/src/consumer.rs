//! Consuming events: a reconnecting loop around one queue.
//!
//! Deliveries are acked only after the handler returns `Ok` (for a durable
//! consumer, after its transaction committed), so a crash between the effect
//! and the ack redelivers the event and the inbox skips it. A message that
//! is not an event envelope, or whose handler fails permanently, is rejected
//! without requeue and lands in the dead-letter queue.
//!
//! A transient failure (the consumer's database or another dependency is
//! away) is not the message's fault, and must not bring it closer to the
//! dead-letter queue: a quorum queue counts every redelivery, a requeue
//! included, toward its delivery limit. So the consumer keeps the delivery
//! (no ack, no nack) and tries the handler again with a capped exponential
//! backoff until it passes or turns permanent. The prefetched deliveries
//! behind it wait meanwhile: the consumer is paused until the dependency is
//! back. Only a shutdown or a lost channel gives the delivery back (the
//! broker redelivers it, which counts once).

use std::{future::Future, time::Duration};

use aichat_events::Envelope;
use anyhow::Context;
use futures::{StreamExt, stream::FuturesOrdered};
use lapin::{
    ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
        ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::FieldTable,
};
use tokio_util::sync::CancellationToken;

use crate::AmqpConfig;

/// Deliveries of one message after which a durable queue dead-letters it:
/// only a handler that keeps failing *permanently*, or a consumer that
/// crashes on it again and again, gets there (a transient failure is
/// retried without a redelivery).
pub const DELIVERY_LIMIT: i32 = 10;

/// How often a durable consumer reads its dead-letter queue's depth.
const DLQ_CHECK: Duration = Duration::from_secs(30);
/// A non-empty dead-letter queue is reported again after this long even if
/// its depth did not change.
const DLQ_REMIND: Duration = Duration::from_secs(15 * 60);

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
    /// Try again later (database down, ...): the delivery is held and the
    /// handler called again after a backoff, until it passes.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// It will never work: the message goes to the dead-letter queue.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

/// The waits between attempts at an event that failed transiently: `first`,
/// doubling up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Retry {
    /// 200 ms, 400 ms, ... up to 10 s.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// The wait after the `failures`-th failure in a row (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.max)
    }
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
    /// How a transient failure is retried.
    pub retry: Retry,
}

/// Declares the durable queues of `specs` (each with its dead-letter queue
/// and bindings), and the exchange with its alternate exchange: what a
/// service's `migrate` command does, so that events published before the
/// service first consumes wait in its queue. The consumer declares the same
/// at every (re)connection; both are idempotent. Ephemeral specs are
/// skipped (their queue only exists while its consumer runs).
pub async fn declare_durable(amqp: &AmqpConfig, specs: &[Spec]) -> anyhow::Result<()> {
    let (connection, channel) = crate::connect(amqp).await?;
    for spec in specs {
        if let Queue::Durable(_) = spec.queue {
            declare(&connection, &channel, amqp, spec).await?;
        }
    }
    connection
        .close(200, "declared".into())
        .await
        .context("closing the connection")?;
    Ok(())
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
    let consumer: Consumer<'_, H, NoBatch> = Consumer {
        handler: &handler,
        batch: None,
    };
    while !shutdown.is_cancelled() {
        match consume(&amqp, &spec, &shutdown, &on_connected, &consumer).await {
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

/// An envelope whose payload is left as the delivery's JSON text: what
/// [`run_batched`] hands its batch handler. Parsing the envelope this way
/// validates the payload without building a `serde_json::Value` tree, so the
/// handler decodes the typed payload straight from the text (one parse), and
/// can store the text as it is.
pub type RawEnvelope = Envelope<Box<serde_json::value::RawValue>>;

/// How [`run_batched`] gathers deliveries: up to `max` of them, waiting at
/// most `wait` after the first for the rest.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub max: usize,
    pub wait: Duration,
    /// Batches applied at once (each in its own transaction, so the next
    /// one's statements run while one commits); their acks still go in
    /// delivery order. 1: one after another.
    pub in_flight: usize,
}

/// [`run`], applying deliveries in batches: up to `batch.max` deliveries
/// gathered for at most `batch.wait` go to `batch_handler` at once, as
/// [`RawEnvelope`]s (a durable consumer applies them in one transaction),
/// up to `batch.in_flight` batches at a time, and each is acked after it
/// returns `Ok` and every batch before it is settled, with one
/// multiple-ack on its last delivery tag.
/// When the batch handler fails (a permanent failure of any one event, or
/// a transient one), the batch's deliveries go through `handler` one at a
/// time, exactly as [`run`] does: a poison event is dead-lettered alone and
/// the rest are applied (those applied before are skipped by the inbox).
/// The prefetch is raised to one batch more than those in flight
/// (`batch.max × (batch.in_flight + 1)`), so the next one is on its way
/// from the broker while they are applied; `spec.prefetch` when larger.
/// With `batch.max` 1 it is [`run`].
pub async fn run_batched<H, Fut, B, BFut, C, CFut>(
    amqp: AmqpConfig,
    spec: Spec,
    batch: Batch,
    shutdown: CancellationToken,
    on_connected: C,
    handler: H,
    batch_handler: B,
) where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
    B: Fn(Vec<RawEnvelope>) -> BFut,
    BFut: Future<Output = Result<(), HandlerError>>,
    C: Fn() -> CFut,
    CFut: Future<Output = ()>,
{
    let mut failures: u32 = 0;
    let wanted = batch
        .max
        .saturating_mul(batch.in_flight.max(1) + 1)
        .max(usize::from(spec.prefetch));
    let spec = Spec {
        prefetch: u16::try_from(wanted).unwrap_or(u16::MAX),
        ..spec
    };
    let consumer = Consumer {
        handler: &handler,
        batch: (batch.max > 1).then_some((batch, &batch_handler)),
    };
    while !shutdown.is_cancelled() {
        match consume(&amqp, &spec, &shutdown, &on_connected, &consumer).await {
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

/// The handlers of a consumer: one event at a time, and optionally a batch.
struct Consumer<'a, H, B> {
    handler: &'a H,
    batch: Option<(Batch, &'a B)>,
}

/// The batch handler type of a consumer without one.
type NoBatch = fn(Vec<RawEnvelope>) -> std::future::Ready<Result<(), HandlerError>>;

/// Declares `spec`'s queue (and, for a durable one, its dead-letter queue)
/// and binds it; returns the queue's name.
async fn declare(
    connection: &lapin::Connection,
    channel: &lapin::Channel,
    amqp: &AmqpConfig,
    spec: &Spec,
) -> anyhow::Result<String> {
    let queue = match &spec.queue {
        Queue::Durable(service) => {
            let name = durable_queue_name(amqp, service);
            declare_durable_queue(connection, channel, amqp, &name).await?;
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
    Ok(queue)
}

/// What became of one delivery.
enum Outcome {
    Done,
    /// Shut down while retrying: the delivery goes back to the broker with
    /// the channel.
    Abandoned,
}

async fn consume<H, Fut, B, BFut, C, CFut>(
    amqp: &AmqpConfig,
    spec: &Spec,
    shutdown: &CancellationToken,
    on_connected: &C,
    consumer: &Consumer<'_, H, B>,
) -> anyhow::Result<()>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
    B: Fn(Vec<RawEnvelope>) -> BFut,
    BFut: Future<Output = Result<(), HandlerError>>,
    C: Fn() -> CFut,
    CFut: Future<Output = ()>,
{
    let (connection, channel) = crate::connect(amqp).await?;
    let queue = declare(&connection, &channel, amqp, spec).await?;
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

    let mut dlq = match spec.queue {
        Queue::Durable(_) => Some(DlqWatch::new(format!("{queue}.dlq"))),
        Queue::Ephemeral => None,
    };
    let mut check = tokio::time::interval(DLQ_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Some((batch, batch_handler)) = consumer.batch {
        return consume_batches(
            (&channel, spec, shutdown),
            (consumer.handler, batch, batch_handler),
            deliveries,
            dlq,
            check,
        )
        .await;
    }
    loop {
        let delivery = tokio::select! {
            next = deliveries.next() => received(next)?,
            _ = check.tick(), if dlq.is_some() => {
                if let Some(dlq) = dlq.as_mut() {
                    dlq.check(&channel).await?;
                }
                continue;
            }
            () = shutdown.cancelled() => return Ok(()),
        };
        match deliver(&channel, spec, shutdown, consumer.handler, delivery).await? {
            Outcome::Done => {}
            Outcome::Abandoned => return Ok(()),
        }
    }
}

/// What the consumer stream gave: a delivery, or why there is none.
fn received(
    next: Option<Result<lapin::message::Delivery, lapin::Error>>,
) -> anyhow::Result<lapin::message::Delivery> {
    let Some(delivery) = next else {
        anyhow::bail!("the consumer was cancelled by the broker");
    };
    delivery.context("receiving a delivery")
}

/// The loop of [`consume`] for a batched consumer: up to `batch.in_flight`
/// batches are applied at once, each gathered while the ones before it are
/// being applied; they are settled in delivery order (a batch is acked only
/// once every delivery before it is settled, so one multiple-ack on its
/// last tag acks exactly it).
async fn consume_batches<H, Fut, B, BFut>(
    (channel, spec, shutdown): (&lapin::Channel, &Spec, &CancellationToken),
    (handler, batch, batch_handler): (&H, Batch, &B),
    mut deliveries: lapin::Consumer,
    mut dlq: Option<DlqWatch>,
    mut check: tokio::time::Interval,
) -> anyhow::Result<()>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
    B: Fn(Vec<RawEnvelope>) -> BFut,
    BFut: Future<Output = Result<(), HandlerError>>,
{
    let mut in_flight = FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            Some(applied) = in_flight.next() => {
                if let Outcome::Abandoned =
                    settle(channel, spec, shutdown, handler, applied, &mut in_flight).await?
                {
                    return Ok(());
                }
            }
            () = shutdown.cancelled() => {
                // What is being applied finishes and is acked (or goes back
                // to the broker with the channel, if it fails now).
                while let Some(applied) = in_flight.next().await {
                    if let Outcome::Abandoned =
                        settle(channel, spec, shutdown, handler, applied, &mut in_flight).await?
                    {
                        break;
                    }
                }
                return Ok(());
            }
            next = deliveries.next(), if in_flight.len() < batch.in_flight.max(1) => {
                let gathered = gather(received(next)?, &mut deliveries, batch).await?;
                in_flight.push_back(apply_batch(batch_handler, gathered));
            }
            _ = check.tick(), if dlq.is_some() => {
                if let Some(dlq) = dlq.as_mut() {
                    dlq.check(channel).await?;
                }
            }
        }
    }
}

/// `first` and what else arrives within the batch's wait, up to its size.
async fn gather(
    first: lapin::message::Delivery,
    deliveries: &mut lapin::Consumer,
    batch: Batch,
) -> anyhow::Result<Vec<lapin::message::Delivery>> {
    let mut gathered = vec![first];
    let deadline = tokio::time::Instant::now() + batch.wait;
    while gathered.len() < batch.max {
        match tokio::time::timeout_at(deadline, deliveries.next()).await {
            Ok(Some(next)) => gathered.push(next.context("receiving a delivery")?),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(gathered)
}

/// A gathered batch and whether the batch handler applied it (`false`: a
/// single delivery, a delivery that is not an envelope, or a failed batch;
/// its deliveries go through the handler one at a time).
type Applied = (Vec<lapin::message::Delivery>, bool);

async fn apply_batch<B, BFut>(batch_handler: &B, gathered: Vec<lapin::message::Delivery>) -> Applied
where
    B: Fn(Vec<RawEnvelope>) -> BFut,
    BFut: Future<Output = Result<(), HandlerError>>,
{
    if gathered.len() < 2 {
        return (gathered, false);
    }
    let envelopes: Option<Vec<RawEnvelope>> = gathered
        .iter()
        .map(|d| serde_json::from_slice(&d.data).ok())
        .collect();
    let Some(envelopes) = envelopes else {
        return (gathered, false);
    };
    let count = envelopes.len();
    match batch_handler(envelopes).await {
        Ok(()) => (gathered, true),
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                count,
                "a batch of events failed; applying them one at a time"
            );
            (gathered, false)
        }
    }
}

/// Acks an applied batch (every delivery before it is settled already), or
/// hands a batch that was not applied to `handler` one delivery at a time;
/// before that, the batches behind it finish (so no transaction of theirs
/// holds what the one-at-a-time handler needs), and are settled after it.
async fn settle<H, Fut, F>(
    channel: &lapin::Channel,
    spec: &Spec,
    shutdown: &CancellationToken,
    handler: &H,
    (gathered, applied): Applied,
    in_flight: &mut FuturesOrdered<F>,
) -> anyhow::Result<Outcome>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
    F: Future<Output = Applied>,
{
    if applied {
        return ack_batch(&gathered).await;
    }
    let mut behind = Vec::new();
    while let Some(next) = in_flight.next().await {
        behind.push(next);
    }
    for (gathered, applied) in std::iter::once((gathered, false)).chain(behind) {
        if applied {
            ack_batch(&gathered).await?;
            continue;
        }
        for delivery in gathered {
            if let Outcome::Abandoned = deliver(channel, spec, shutdown, handler, delivery).await? {
                return Ok(Outcome::Abandoned);
            }
        }
    }
    Ok(Outcome::Done)
}

/// One multiple-ack on the batch's last delivery tag.
async fn ack_batch(gathered: &[lapin::message::Delivery]) -> anyhow::Result<Outcome> {
    match gathered.last() {
        Some(last) => acknowledged(last.acker.ack(BasicAckOptions { multiple: true }).await?),
        None => Ok(Outcome::Done),
    }
}

/// Hands one delivery to the handler, retrying transient failures, and
/// acks or dead-letters it.
async fn deliver<H, Fut>(
    channel: &lapin::Channel,
    spec: &Spec,
    shutdown: &CancellationToken,
    handler: &H,
    delivery: lapin::message::Delivery,
) -> anyhow::Result<Outcome>
where
    H: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let envelope: Envelope = match serde_json::from_slice(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::error!(%error, "not an event envelope; dead-lettering it");
            let sent = delivery
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await?;
            return acknowledged(sent);
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
    let mut failures: u32 = 0;
    let outcome = loop {
        let outcome =
            tracing::Instrument::instrument(handler(envelope.clone()), span.clone()).await;
        let Err(HandlerError::Transient(error)) = outcome else {
            break outcome;
        };
        failures = failures.saturating_add(1);
        span.in_scope(|| {
            if failures == 1 {
                // Once per outage: the deliveries behind this one wait for it.
                tracing::warn!(
                    error = format!("{error:#}"),
                    "event failed transiently; holding it and retrying until it passes"
                );
            } else {
                tracing::debug!(error = format!("{error:#}"), failures, "still failing");
            }
        });
        tokio::select! {
            () = tokio::time::sleep(spec.retry.delay(failures)) => {}
            () = shutdown.cancelled() => return Ok(Outcome::Abandoned),
        }
        if !channel.status().connected() {
            // The broker takes the delivery back with the channel; the
            // reconnected consumer gets it again.
            anyhow::bail!("the channel closed while an event was being retried");
        }
    };
    let _enter = span.enter();
    let sent = match outcome {
        Ok(()) => {
            if failures > 0 {
                tracing::info!(failures, "event applied after transient failures");
            }
            delivery.acker.ack(BasicAckOptions::default()).await?
        }
        Err(HandlerError::Permanent(error) | HandlerError::Transient(error)) => {
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
    acknowledged(sent)
}

fn acknowledged(sent: bool) -> anyhow::Result<Outcome> {
    if sent {
        Ok(Outcome::Done)
    } else {
        // The channel was replaced after a reconnect: this delivery will
        // come again, and the inbox makes that harmless.
        anyhow::bail!("acknowledgement not sent: the channel is gone")
    }
}

/// Reads a dead-letter queue's depth now and then, and warns while it is not
/// empty: dead-lettered events are applied by nobody until an operator
/// replays them (`<service> replay-dlq`). The alert of docs/operations.md
/// watches the same number through RabbitMQ's Prometheus endpoint.
struct DlqWatch {
    queue: String,
    reported: Option<(u32, std::time::Instant)>,
}

impl DlqWatch {
    fn new(queue: String) -> Self {
        Self {
            queue,
            reported: None,
        }
    }

    async fn check(&mut self, channel: &lapin::Channel) -> anyhow::Result<()> {
        let depth = crate::dlq::depth_on(channel, &self.queue).await?;
        let due = match self.reported {
            None => depth > 0,
            Some((last, at)) => depth != last || (depth > 0 && at.elapsed() >= DLQ_REMIND),
        };
        if due {
            if depth > 0 {
                tracing::warn!(
                    queue = %self.queue,
                    dlq.depth = depth,
                    "dead-lettered events are waiting: inspect them, then run `replay-dlq`"
                );
            } else {
                tracing::info!(queue = %self.queue, dlq.depth = 0, "the dead-letter queue is empty");
            }
            self.reported = Some((depth, std::time::Instant::now()));
        }
        Ok(())
    }
}

/// The queue of `service` on `amqp`'s exchange (its dead-letter queue adds
/// `.dlq`).
pub fn durable_queue_name(amqp: &AmqpConfig, service: &str) -> String {
    format!("{}.{service}", amqp.exchange)
}

/// Declares a service queue and its dead-letter queue.
///
/// Dead letters go through `<exchange>.dead-letter`, a direct exchange, with
/// the queue's name as routing key, so each service's dead-letter queue
/// holds only what that service failed. (Before, `<exchange>.dlx` was a
/// fanout exchange: every service's dead-letter queue got every service's
/// dead letters.) A queue's arguments cannot change once it exists, so an
/// existing service queue is left as it is: passively checked first on a
/// channel of its own, since a redeclaration with other arguments would
/// close the channel (docs/adr/0003-no-event-is-lost-on-the-broker.md says
/// how to move an old queue over).
async fn declare_durable_queue(
    connection: &lapin::Connection,
    channel: &lapin::Channel,
    amqp: &AmqpConfig,
    name: &str,
) -> anyhow::Result<()> {
    let dlx = amqp.dead_letter_exchange();
    channel
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Direct,
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
            crate::queue_arguments(amqp, None),
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
    if queue_exists(connection, name).await? {
        return Ok(());
    }
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            crate::queue_arguments(amqp, Some((&dlx, name))),
        )
        .await
        .with_context(|| format!("declaring queue {name}"))?;
    Ok(())
}

/// Whether queue `name` exists, asked on a channel of its own (a passive
/// declaration of a missing queue closes its channel).
async fn queue_exists(connection: &lapin::Connection, name: &str) -> anyhow::Result<bool> {
    let probe = connection
        .create_channel()
        .await
        .context("opening a channel")?;
    let found = probe
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok();
    if found {
        probe
            .close(200, "checked".into())
            .await
            .context("closing a channel")?;
    }
    Ok(found)
}
