//! What billing consumes and publishes.
//!
//! Consumed, from its durable queue `<exchange>.billing`:
//!
//! | event | effect |
//! |---|---|
//! | `identity.user.registered` | a usage row on the Free plan |
//! | `identity.user.deleted` | the user's Stripe subscription is cancelled (before the transaction; Stripe away: retried); the usage row, reservations, subscription row and Stripe customer are deleted; payments and invoices stay, unlinked |
//! | `chat.conversation.created` | `conversationsCount` + 1 |
//! | `chat.tokens.used` | settles the reservation; `tokensUsed` + total, `messagesCount` + 1, `costThisMonth` + cost |
//!
//! Each is applied once, by event id (inbox, same transaction as the effect;
//! ack after commit). Under load, runs of the two usage events go in
//! batches ([`handle_batch`]): one transaction for many, the same effects. Published through the outbox (relayed by `serve`):
//! `billing.subscription.changed`, written by the Stripe webhook use case
//! ([`mod@crate::webhooks`]) and by reconciliation ([`crate::reconcile`]) in
//! the transaction of the change; `billing.payment.succeeded|failed|refunded`
//! and `billing.invoice.paid`, likewise ([`crate::invoicing`]);
//! `billing.invoice.overdue`, by the overdue job
//! ([`crate::invoicing::Overdue`]) in the transaction that marks the invoice.

use aichat_events::{
    Envelope, Event,
    chat::{ConversationCreated, TokensUsed},
    identity::{UserDeleted, UserRegistered},
};
use aichat_messaging::consumer::{HandlerError, Queue, RawEnvelope, Spec};

use crate::service::{Applied, Error, Metering, UsageEvent};

/// The event types billing's queue is bound to.
pub const CONSUMED: [&str; 4] = [
    UserRegistered::TYPE,
    UserDeleted::TYPE,
    ConversationCreated::TYPE,
    TokensUsed::TYPE,
];

/// The service name its durable queue is named after.
pub const QUEUE: &str = "billing";

/// Deliveries in flight at once (they are applied one after another).
const PREFETCH: u16 = 32;

/// How long a batch waits for more events after its first. Settling is off
/// every request's path; a reservation is held this much longer at most.
pub const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// Batches applied at once, each in its own transaction. They lock the
/// users' rows in one order (`userId`), so they never deadlock.
pub const BATCHES_IN_FLIGHT: usize = 2;

/// The consumer's set-up.
pub fn spec() -> Spec {
    Spec {
        queue: Queue::Durable(QUEUE.to_owned()),
        bindings: CONSUMED.iter().map(|t| (*t).to_owned()).collect(),
        prefetch: PREFETCH,
        retry: Default::default(),
    }
}

/// Applies a batch of deliveries in their order: each run of usage events
/// through [`Metering::apply_usage`] (one transaction), then the events it
/// left, one at a time; any other event through [`handle`] where it stands.
/// An error makes the consumer apply the whole batch again one event at a
/// time (the inbox skips what was applied).
pub async fn handle_batch(
    metering: &Metering,
    envelopes: Vec<RawEnvelope>,
) -> Result<(), HandlerError> {
    let mut run: Vec<(RawEnvelope, UsageEvent)> = Vec::new();
    for envelope in envelopes {
        match usage_event(&envelope) {
            Some(event) => run.push((envelope, event)),
            None => {
                apply_run(metering, std::mem::take(&mut run)).await?;
                handle(metering, valued(envelope)?).await?;
            }
        }
    }
    apply_run(metering, run).await
}

async fn apply_run(
    metering: &Metering,
    run: Vec<(RawEnvelope, UsageEvent)>,
) -> Result<(), HandlerError> {
    if run.is_empty() {
        return Ok(());
    }
    let left = metering
        .apply_usage(&run)
        .await
        .map_err(|e| HandlerError::Transient(anyhow::Error::new(e)))?;
    let mut run: Vec<Option<RawEnvelope>> = run.into_iter().map(|(e, _)| Some(e)).collect();
    for i in left {
        if let Some(envelope) = run.get_mut(i).and_then(Option::take) {
            handle(metering, valued(envelope)?).await?;
        }
    }
    Ok(())
}

/// The delivery as a usage event a batch applies, or `None` (any other
/// type, or one this code cannot read: [`handle`] takes it alone).
fn usage_event(envelope: &RawEnvelope) -> Option<UsageEvent> {
    let t = envelope.event_type.as_str();
    let payload = envelope.data.get();
    if t == TokensUsed::TYPE && envelope.version == TokensUsed::VERSION {
        serde_json::from_str(payload)
            .ok()
            .map(UsageEvent::tokens_used)
    } else if t == ConversationCreated::TYPE && envelope.version == ConversationCreated::VERSION {
        serde_json::from_str(payload)
            .ok()
            .map(UsageEvent::ConversationCreated)
    } else {
        None
    }
}

/// The envelope with its payload parsed, as [`handle`] takes it.
fn valued(envelope: RawEnvelope) -> Result<Envelope, HandlerError> {
    let data = serde_json::from_str(envelope.data.get())
        .map_err(|e| HandlerError::Permanent(anyhow::Error::new(e).context("the payload")))?;
    Ok(Envelope {
        id: envelope.id,
        event_type: envelope.event_type,
        version: envelope.version,
        occurred_at: envelope.occurred_at,
        trace_context: envelope.trace_context,
        data,
    })
}

/// Applies one event. Malformed or impossible events are permanent failures
/// (dead-lettered); an outage or a bug is transient (the consumer holds the
/// delivery and retries it until it passes).
pub async fn handle(metering: &Metering, envelope: Envelope) -> Result<(), HandlerError> {
    let t = envelope.event_type.as_str();
    let applied = if t == UserRegistered::TYPE {
        metering
            .user_registered(&envelope, &decode(&envelope)?)
            .await
    } else if t == UserDeleted::TYPE {
        metering.user_deleted(&envelope, &decode(&envelope)?).await
    } else if t == ConversationCreated::TYPE {
        metering
            .conversation_created(&envelope, &decode(&envelope)?)
            .await
    } else if t == TokensUsed::TYPE {
        metering.tokens_used(&envelope, &decode(&envelope)?).await
    } else {
        tracing::debug!("an event billing does not consume; acked");
        return Ok(());
    };
    match applied {
        Ok(Applied::Done) => Ok(()),
        Ok(Applied::Duplicate) => {
            tracing::debug!("applied before; skipped");
            Ok(())
        }
        Ok(Applied::Ignored) => Ok(()),
        Err(Error::Validation(errors)) => Err(HandlerError::Permanent(anyhow::anyhow!(
            "invalid event: {errors:?}"
        ))),
        Err(Error::NotFound | Error::QuotaExceeded { .. } | Error::MessageLimit) => Err(
            HandlerError::Permanent(anyhow::anyhow!("the event cannot be applied")),
        ),
        Err(Error::Unavailable(error)) => Err(HandlerError::Transient(error)),
        Err(Error::Unexpected(error)) => Err(HandlerError::Transient(error)),
    }
}

/// The payload of a version this code understands.
fn decode<E: Event>(envelope: &Envelope) -> Result<E, HandlerError> {
    if envelope.version != E::VERSION {
        return Err(HandlerError::Permanent(anyhow::anyhow!(
            "version {} of {} is not understood (expected {})",
            envelope.version,
            E::TYPE,
            E::VERSION
        )));
    }
    envelope
        .decode::<E>()
        .ok_or_else(|| HandlerError::Permanent(anyhow::anyhow!("not a {}", E::TYPE)))?
        .map_err(|e| HandlerError::Permanent(anyhow::Error::new(e).context(E::TYPE)))
}
