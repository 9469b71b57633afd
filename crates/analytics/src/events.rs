//! What analytics consumes: every event type of docs/events.md, from its
//! durable queue `<exchange>.analytics`.
//!
//! | event | effect |
//! |---|---|
//! | every one | a `userEvents` row (type, occurredAt, payload) |
//! | `identity.user.registered` | the user (signup date, plan tier unless a later change is known, role) |
//! | `identity.user.updated` | role and flags, by the envelope's `occurredAt` |
//! | `identity.user.email_verified` | `emailVerified` |
//! | `identity.user.deleted` | the user's tombstone and their conversations' |
//! | `billing.subscription.changed` | the user's plan tier (newest `occurredAt` wins, as identity's `users.planTier`), the subscription row |
//! | `billing.payment.succeeded`, `failed`, `refunded` | the payment row, by `occurredAt` |
//! | `billing.invoice.changed` | the invoice row, by `occurredAt` |
//! | `billing.invoice.paid` | the invoice turns `paid` (when known) |
//! | `chat.conversation.created` | the conversation (its creation) |
//! | `chat.conversation.updated` | its counters, by `counters.updatedAt` |
//! | `chat.conversation.deleted` | its tombstone |
//! | `chat.message.created` | a messages fact (counted once in `chatAnalytics`), the counters |
//! | `chat.tokens.used` | a tokenUsage fact (added once to `chatAnalytics`), the counters |
//!
//! `identity.user.logged_in`, `identity.session.revoked` and
//! `billing.invoice.overdue` only leave their `userEvents` row (overdue is
//! read from the invoices' state). Each event is applied once, by event id
//! (its `userEvents` row, written in the transaction of the effect, is the
//! consumer's inbox; acked after the commit), and in any order
//! (docs/analytics.md).

use aichat_events::{
    Envelope, Event,
    billing::{
        InvoiceChanged, InvoiceOverdue, InvoicePaid, PaymentFailed, PaymentRefunded,
        PaymentSucceeded, SubscriptionChanged,
    },
    chat::{
        ConversationCounters, ConversationCreated, ConversationDeleted, ConversationUpdated,
        MessageCreated, TokensUsed,
    },
    identity::{
        SessionRevoked, UserDeleted, UserEmailVerified, UserLoggedIn, UserRegistered, UserUpdated,
    },
};
use aichat_messaging::consumer::{HandlerError, Queue, RawEnvelope, Spec};
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::store::apply::{
    self, ConversationFacts, Counters, InvoiceState, MessageFact, PaymentState, Profile,
    SubscriptionState, TokenUsageFact, UserFacts,
};

/// The event types analytics' queue is bound to: all of them.
pub const CONSUMED: [&str; 18] = [
    UserRegistered::TYPE,
    UserEmailVerified::TYPE,
    UserLoggedIn::TYPE,
    UserUpdated::TYPE,
    UserDeleted::TYPE,
    SessionRevoked::TYPE,
    SubscriptionChanged::TYPE,
    PaymentSucceeded::TYPE,
    PaymentFailed::TYPE,
    PaymentRefunded::TYPE,
    InvoicePaid::TYPE,
    InvoiceOverdue::TYPE,
    InvoiceChanged::TYPE,
    ConversationCreated::TYPE,
    ConversationDeleted::TYPE,
    ConversationUpdated::TYPE,
    MessageCreated::TYPE,
    TokensUsed::TYPE,
];

/// The plan tiers `users.planTier` allows.
const TIERS: [&str; 3] = ["FREE", "PLUS", "PRO"];

/// The service name its durable queue is named after.
pub const QUEUE: &str = "analytics";

/// Deliveries in flight at once for one event at a time.
const PREFETCH: u16 = 1000;

/// How long the consumer waits after a delivery for more to batch with it.
pub const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// Batches applied at once, each in its own transaction on its own
/// connection: while one commits (or waits on a row the other holds), the
/// next one's statements run. Two batches of chat facts lock their rows in
/// one order (the statements come in a fixed order, each upserts its rows
/// sorted), so they never deadlock; a batch with any other kind of event
/// (applied one event after another) waits for the others and they for it
/// ([`BATCH_LOCK`]).
pub const BATCHES_IN_FLIGHT: usize = 2;

/// The advisory lock that keeps batches apart where they could deadlock:
/// taken shared by a batch of chat facts only, exclusive by any other
/// (taken first, before any row).
const BATCH_LOCK: i64 = 0x616e_616c_7974_6963; // "analytic"

/// The consumer's set-up.
pub fn spec() -> Spec {
    Spec {
        queue: Queue::Durable(QUEUE.to_owned()),
        bindings: CONSUMED.iter().map(|t| (*t).to_owned()).collect(),
        prefetch: PREFETCH,
        retry: Default::default(),
    }
}

/// A payload that the typed events can be decoded from: a parsed
/// `serde_json::Value` (one event at a time) or the delivery's JSON text
/// (batches: decoded straight from the text, parsed once).
pub trait Payload {
    /// The payload as an `E`.
    fn typed<E: Event>(&self) -> serde_json::Result<E>;
}

impl Payload for serde_json::Value {
    fn typed<E: Event>(&self) -> serde_json::Result<E> {
        E::deserialize(self)
    }
}

impl Payload for Box<serde_json::value::RawValue> {
    fn typed<E: Event>(&self) -> serde_json::Result<E> {
        serde_json::from_str(self.get())
    }
}

/// An event decoded, ready to apply.
#[derive(Debug, Clone)]
pub enum Decoded {
    Registered(UserRegistered),
    EmailVerified(UserEmailVerified),
    LoggedIn(UserLoggedIn),
    Updated(UserUpdated),
    Deleted(UserDeleted),
    SessionRevoked(SessionRevoked),
    SubscriptionChanged(SubscriptionChanged),
    PaymentSucceeded(PaymentSucceeded),
    PaymentFailed(PaymentFailed),
    PaymentRefunded(PaymentRefunded),
    InvoicePaid(InvoicePaid),
    InvoiceOverdue(InvoiceOverdue),
    InvoiceChanged(InvoiceChanged),
    ConversationCreated(ConversationCreated),
    ConversationDeleted(ConversationDeleted),
    ConversationUpdated(ConversationUpdated),
    MessageCreated(MessageCreated),
    TokensUsed(TokensUsed),
}

impl Decoded {
    /// The event's payload, or `None` for a type analytics does not know
    /// (acked and skipped). A payload that does not parse, or a version
    /// this code does not understand, is a permanent failure.
    pub fn from_envelope<P: Payload>(envelope: &Envelope<P>) -> Result<Option<Self>, HandlerError> {
        let t = envelope.event_type.as_str();
        Ok(Some(match t {
            UserRegistered::TYPE => Self::Registered(decode(envelope)?),
            UserEmailVerified::TYPE => Self::EmailVerified(decode(envelope)?),
            UserLoggedIn::TYPE => Self::LoggedIn(decode(envelope)?),
            UserUpdated::TYPE => Self::Updated(decode(envelope)?),
            UserDeleted::TYPE => Self::Deleted(decode(envelope)?),
            SessionRevoked::TYPE => Self::SessionRevoked(decode(envelope)?),
            SubscriptionChanged::TYPE => Self::SubscriptionChanged(decode(envelope)?),
            PaymentSucceeded::TYPE => Self::PaymentSucceeded(decode(envelope)?),
            PaymentFailed::TYPE => Self::PaymentFailed(decode(envelope)?),
            PaymentRefunded::TYPE => Self::PaymentRefunded(decode(envelope)?),
            InvoicePaid::TYPE => Self::InvoicePaid(decode(envelope)?),
            InvoiceOverdue::TYPE => Self::InvoiceOverdue(decode(envelope)?),
            InvoiceChanged::TYPE => Self::InvoiceChanged(decode(envelope)?),
            ConversationCreated::TYPE => Self::ConversationCreated(decode(envelope)?),
            ConversationDeleted::TYPE => Self::ConversationDeleted(decode(envelope)?),
            ConversationUpdated::TYPE => Self::ConversationUpdated(decode(envelope)?),
            MessageCreated::TYPE => Self::MessageCreated(decode(envelope)?),
            TokensUsed::TYPE => Self::TokensUsed(decode(envelope)?),
            _ => return Ok(None),
        }))
    }

    /// The plan tier the event sets, if any.
    fn plan_tier(&self) -> Option<&str> {
        match self {
            Self::Registered(e) => Some(&e.user.plan_tier),
            Self::SubscriptionChanged(e) => Some(&e.plan_tier),
            _ => None,
        }
    }

    /// The user the event is about.
    pub fn user_id(&self) -> Uuid {
        match self {
            Self::Registered(e) => e.user.user_id,
            Self::EmailVerified(e) => e.user_id,
            Self::LoggedIn(e) => e.user_id,
            Self::Updated(e) => e.user.user_id,
            Self::Deleted(e) => e.user_id,
            Self::SessionRevoked(e) => e.user_id,
            Self::SubscriptionChanged(e) => e.user_id,
            Self::PaymentSucceeded(e) => e.user_id,
            Self::PaymentFailed(e) => e.user_id,
            Self::PaymentRefunded(e) => e.user_id,
            Self::InvoicePaid(e) => e.user_id,
            Self::InvoiceOverdue(e) => e.user_id,
            Self::InvoiceChanged(e) => e.user_id,
            Self::ConversationCreated(e) => e.user_id,
            Self::ConversationDeleted(e) => e.user_id,
            Self::ConversationUpdated(e) => e.user_id,
            Self::MessageCreated(e) => e.user_id,
            Self::TokensUsed(e) => e.user_id,
        }
    }
}

/// Applies one event in one transaction with its `userEvents` row (which
/// records it as applied). Malformed
/// events are permanent failures (dead-lettered); a database failure is
/// transient (the consumer holds the delivery and retries it).
pub async fn handle(pool: &aichat_db::Pool, envelope: Envelope) -> Result<(), HandlerError> {
    let Some(decoded) = Decoded::from_envelope(&envelope)? else {
        tracing::debug!("an event analytics does not know; acked");
        return Ok(());
    };
    if let Some(tier) = decoded.plan_tier()
        && !TIERS.contains(&tier)
    {
        return Err(HandlerError::Permanent(anyhow::anyhow!(
            "unknown plan tier {tier}"
        )));
    }
    let mut conn = pool
        .get()
        .await
        .map_err(|e| HandlerError::Transient(e.into()))?;
    let applied = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            apply_event(conn, &envelope, &decoded).await
        })
        .await
        .map_err(|e| HandlerError::Transient(e.into()))?;
    if !applied {
        tracing::debug!("applied before; skipped");
    }
    Ok(())
}

/// Applies a batch of events in ONE transaction: one multi-row `userEvents`
/// insert records them, then the events recorded now are applied,
/// set-based where their kind allows (an id twice in the batch, or applied
/// before, is skipped). Any event
/// that cannot be applied fails the whole batch (nothing of it is
/// committed): the consumer then applies its events one at a time with
/// [`handle`], so a poison event is dead-lettered alone.
pub async fn handle_batch(
    pool: &aichat_db::Pool,
    envelopes: Vec<RawEnvelope>,
) -> Result<(), HandlerError> {
    let mut known = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let Some(decoded) = Decoded::from_envelope(&envelope)? else {
            tracing::debug!("an event analytics does not know; acked");
            continue;
        };
        if let Some(tier) = decoded.plan_tier()
            && !TIERS.contains(&tier)
        {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "unknown plan tier {tier}"
            )));
        }
        known.push((envelope, decoded));
    }
    if known.is_empty() {
        return Ok(());
    }
    let mut conn = pool
        .get()
        .await
        .map_err(|e| HandlerError::Transient(e.into()))?;
    // Batches of chat facts only may be applied at once (their statements
    // lock shared rows in one order); a batch with any other kind, whose
    // effects go one after another in arrival order, is applied alone.
    let chat_only = known.iter().all(|(_, decoded)| {
        matches!(
            decoded,
            Decoded::MessageCreated(_) | Decoded::TokensUsed(_) | Decoded::ConversationUpdated(_)
        )
    });
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        diesel::sql_query(if chat_only {
            "SELECT pg_advisory_xact_lock_shared($1)"
        } else {
            "SELECT pg_advisory_xact_lock($1)"
        })
        .bind::<diesel::sql_types::BigInt, _>(BATCH_LOCK)
        .execute(conn)
        .await?;
        // The payloads are stored as the producer's JSON text (PostgreSQL
        // parses it into jsonb), not re-serialised.
        let rows: Vec<_> = known
            .iter()
            .map(|(envelope, decoded)| {
                (
                    envelope.id,
                    decoded.user_id(),
                    envelope.event_type.as_str(),
                    envelope.occurred_at.naive_utc(),
                    envelope.data.get(),
                )
            })
            .collect();
        let mut claimed = apply::user_events_json(conn, &rows).await?;
        // Removed once taken: a second copy in the batch is skipped.
        let new: Vec<_> = known
            .iter()
            .filter(|(envelope, _)| claimed.remove(&envelope.id))
            .collect();
        apply_batch(conn, &new).await
    })
    .await
    .map_err(|e| HandlerError::Transient(e.into()))
}

/// Records one event in `userEvents` and applies its effect, unless it
/// was applied before (`false`). The caller holds the transaction.
pub async fn apply_event(
    conn: &mut AsyncPgConnection,
    envelope: &Envelope,
    decoded: &Decoded,
) -> diesel::QueryResult<bool> {
    let new = apply::user_event(
        conn,
        envelope.id,
        decoded.user_id(),
        &envelope.event_type,
        envelope.occurred_at.naive_utc(),
        &envelope.data,
    )
    .await?;
    if new {
        apply_effect(conn, envelope, decoded).await?;
    }
    Ok(new)
}

/// The effect of one event besides its `userEvents` row.
async fn apply_effect<P>(
    conn: &mut AsyncPgConnection,
    envelope: &Envelope<P>,
    decoded: &Decoded,
) -> diesel::QueryResult<()> {
    let occurred_at = envelope.occurred_at.naive_utc();
    match decoded {
        Decoded::Registered(e) => {
            apply::user(
                conn,
                &UserFacts {
                    user_id: e.user.user_id,
                    created_at: Some(e.user.created_at.naive_utc()),
                    plan: Some((e.user.plan_tier.clone(), None)),
                    profile: Some(Profile {
                        role: e.user.role.clone(),
                        email_verified: e.user.email_verified,
                        is_active: true,
                        version: occurred_at,
                    }),
                },
            )
            .await
        }
        Decoded::Updated(e) => {
            apply::user(
                conn,
                &UserFacts {
                    user_id: e.user.user_id,
                    created_at: Some(e.user.created_at.naive_utc()),
                    plan: None,
                    profile: Some(Profile {
                        role: e.user.role.clone(),
                        email_verified: e.user.email_verified,
                        is_active: true,
                        version: occurred_at,
                    }),
                },
            )
            .await
        }
        Decoded::EmailVerified(e) => apply::email_verified(conn, e.user_id).await,
        Decoded::Deleted(e) => apply::user_deleted(conn, e.user_id, occurred_at).await,
        Decoded::LoggedIn(_) | Decoded::SessionRevoked(_) | Decoded::InvoiceOverdue(_) => Ok(()),
        Decoded::SubscriptionChanged(e) => {
            let version = e.occurred_at.naive_utc();
            apply::user(
                conn,
                &UserFacts {
                    user_id: e.user_id,
                    created_at: None,
                    plan: Some((e.plan_tier.clone(), Some(version))),
                    profile: None,
                },
            )
            .await?;
            apply::subscription(
                conn,
                &SubscriptionState {
                    user_id: e.user_id,
                    subscription_id: e.subscription_id,
                    plan_id: e.plan_id,
                    plan_tier: Some(e.plan_tier.clone()).filter(|t| t != "FREE"),
                    status: e.status.clone(),
                    interval: e.interval.clone(),
                    current_period_start: e.current_period_start.map(|t| t.naive_utc()),
                    current_period_end: e.current_period_end.map(|t| t.naive_utc()),
                    created_at: None,
                    version,
                },
            )
            .await?;
            apply::snapshot_mrr(conn).await
        }
        Decoded::PaymentSucceeded(e) => {
            apply::payment(
                conn,
                &payment_state(
                    e.payment_id,
                    e.user_id,
                    &e.amount,
                    None,
                    &e.currency,
                    "succeeded",
                    e.occurred_at,
                ),
            )
            .await
        }
        Decoded::PaymentFailed(e) => {
            apply::payment(
                conn,
                &payment_state(
                    e.payment_id,
                    e.user_id,
                    &e.amount,
                    None,
                    &e.currency,
                    "failed",
                    e.occurred_at,
                ),
            )
            .await
        }
        Decoded::PaymentRefunded(e) => {
            let status = if e.fully_refunded {
                "refunded"
            } else {
                "succeeded"
            };
            apply::payment(
                conn,
                &payment_state(
                    e.payment_id,
                    e.user_id,
                    &e.amount,
                    Some(&e.amount_refunded),
                    &e.currency,
                    status,
                    e.occurred_at,
                ),
            )
            .await
        }
        Decoded::InvoiceChanged(e) => {
            apply::invoice(
                conn,
                &InvoiceState {
                    invoice_id: e.invoice_id,
                    user_id: e.user_id,
                    subscription_id: e.subscription_id,
                    invoice_number: e.invoice_number.clone(),
                    status: e.status.clone(),
                    subtotal: e.subtotal.clone(),
                    tax: e.tax.clone(),
                    total: e.total.clone(),
                    due_date: e.due_date,
                    paid_at: e.paid_at.map(|t| t.naive_utc()),
                    created_at: e.created_at.naive_utc(),
                    version: e.occurred_at.naive_utc(),
                },
            )
            .await
        }
        Decoded::InvoicePaid(e) => {
            apply::invoice_paid(
                conn,
                e.invoice_id,
                e.paid_at.naive_utc(),
                e.occurred_at.naive_utc(),
            )
            .await
        }
        Decoded::ConversationCreated(e) => {
            apply::conversation(
                conn,
                &ConversationFacts {
                    conversation_id: e.conversation_id,
                    user_id: e.user_id,
                    model: Some(e.model.clone()),
                    created_at: Some(e.created_at.naive_utc()),
                    counters: None,
                },
            )
            .await
        }
        Decoded::ConversationDeleted(e) => {
            apply::conversation_deleted(conn, e.conversation_id, e.user_id, occurred_at).await
        }
        Decoded::ConversationUpdated(e) => {
            counters(conn, e.conversation_id, e.user_id, Some(&e.counters)).await
        }
        Decoded::MessageCreated(e) => {
            apply::message(conn, &message_fact(e)).await?;
            counters(conn, e.conversation_id, e.user_id, e.counters.as_ref()).await
        }
        Decoded::TokensUsed(e) => {
            apply::token_usage(conn, &token_usage_fact(e)).await?;
            match e.conversation_id {
                Some(id) => counters(conn, id, e.user_id, e.counters.as_ref()).await,
                None => Ok(()),
            }
        }
    }
}

/// The effects of a batch of events recorded now (their `userEvents` rows
/// written), set-based where the kind allows: the messages and tokenUsage
/// facts in one statement, the conversations' counters in one; the other
/// kinds (rare) one after another. The ordering rules (facts by id,
/// states by version, tombstones) make the order irrelevant.
async fn apply_batch(
    conn: &mut AsyncPgConnection,
    events: &[&(RawEnvelope, Decoded)],
) -> diesel::QueryResult<()> {
    let (mut messages, mut usages, mut counted) = (Vec::new(), Vec::new(), Vec::new());
    let mut count = |conversation_id: Uuid, user_id: Uuid, c: Option<&ConversationCounters>| {
        if let Some(c) = c {
            counted.push((
                conversation_id,
                user_id,
                Counters {
                    message_count: c.message_count,
                    token_count: c.token_count,
                    version: c.updated_at.naive_utc(),
                },
            ));
        }
    };
    for (envelope, decoded) in events {
        match decoded {
            Decoded::MessageCreated(e) => {
                messages.push(message_fact(e));
                count(e.conversation_id, e.user_id, e.counters.as_ref());
            }
            Decoded::TokensUsed(e) => {
                usages.push(token_usage_fact(e));
                if let Some(id) = e.conversation_id {
                    count(id, e.user_id, e.counters.as_ref());
                }
            }
            Decoded::ConversationUpdated(e) => {
                count(e.conversation_id, e.user_id, Some(&e.counters));
            }
            _ => apply_effect(conn, envelope, decoded).await?,
        }
    }
    apply::chat_facts(conn, &messages, &usages).await?;
    apply::conversations_counters(conn, &counted).await
}

fn message_fact(e: &MessageCreated) -> MessageFact {
    MessageFact {
        message_id: e.message_id,
        conversation_id: e.conversation_id,
        user_id: e.user_id,
        role: e.role.clone(),
        token_count: e.token_count,
        model: e.model.clone(),
        created_at: e.created_at.naive_utc(),
    }
}

fn token_usage_fact(e: &TokensUsed) -> TokenUsageFact {
    TokenUsageFact {
        usage_id: e.usage_id,
        user_id: e.user_id,
        conversation_id: e.conversation_id,
        provider: e.provider.clone(),
        model: e.model.clone(),
        prompt_tokens: e.prompt_tokens,
        completion_tokens: e.completion_tokens,
        total_tokens: e.total_tokens,
        cost_usd: e.cost_usd.clone(),
        billing_month: e.billing_month,
        created_at: e.occurred_at.naive_utc(),
    }
}

fn payment_state(
    payment_id: Uuid,
    user_id: Uuid,
    amount: &BigDecimal,
    amount_refunded: Option<&BigDecimal>,
    currency: &str,
    status: &str,
    occurred_at: DateTime<Utc>,
) -> PaymentState {
    PaymentState {
        payment_id,
        user_id,
        amount: amount.clone(),
        amount_refunded: amount_refunded.cloned().unwrap_or_default(),
        currency: currency.to_owned(),
        status: status.to_owned(),
        created_at: occurred_at.naive_utc(),
        version: occurred_at.naive_utc(),
    }
}

async fn counters(
    conn: &mut AsyncPgConnection,
    conversation_id: Uuid,
    user_id: Uuid,
    counters: Option<&ConversationCounters>,
) -> diesel::QueryResult<()> {
    let Some(c) = counters else {
        return Ok(());
    };
    apply::conversation(
        conn,
        &ConversationFacts {
            conversation_id,
            user_id,
            model: None,
            created_at: None,
            counters: Some(Counters {
                message_count: c.message_count,
                token_count: c.token_count,
                version: c.updated_at.naive_utc(),
            }),
        },
    )
    .await
}

/// The payload of a version this code understands (the caller matched the
/// type).
fn decode<E: Event, P: Payload>(envelope: &Envelope<P>) -> Result<E, HandlerError> {
    if envelope.version != E::VERSION {
        return Err(HandlerError::Permanent(anyhow::anyhow!(
            "version {} of {} is not understood (expected {})",
            envelope.version,
            E::TYPE,
            E::VERSION
        )));
    }
    if envelope.event_type != E::TYPE {
        return Err(HandlerError::Permanent(anyhow::anyhow!(
            "not a {}",
            E::TYPE
        )));
    }
    envelope
        .data
        .typed::<E>()
        .map_err(|e| HandlerError::Permanent(anyhow::Error::new(e).context(E::TYPE)))
}
