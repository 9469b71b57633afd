//! Stripe's webhooks: verified, then each event applied once (its id in
//! `stripeEvents` in the same transaction as its effect) and never over
//! newer state (a subscription row keeps the `created` of the event it was
//! written from; an older event is recorded and skipped).
//!
//! Handled: `checkout.session.completed` (the user's Stripe customer) and
//! `customer.subscription.created|updated|deleted|paused|resumed` (the
//! subscription row, the usage row's quota, `billing.subscription.changed`
//! through the outbox); the invoice, payment and refund events are
//! [`crate::invoicing`]'s. Other types are acknowledged and logged.
//!
//! The quota follows the plan the subscription grants (`active` or
//! `past_due`; Free otherwise): a higher quota applies at once; a lower one
//! when the subscription ends (Stripe sends `customer.subscription.deleted`
//! at the period's end for a cancellation at period end) or when a new
//! period starts (the renewal's `customer.subscription.updated`), so a
//! downgrade keeps the paid-for quota until the period it was paid for ends.

use aichat_config::SecretString;
use aichat_events::billing::SubscriptionChanged;
use aichat_messaging::{outbox, relay::Waker};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    domain::FREE_PLAN,
    invoicing,
    service::Error,
    store::{
        deleted_users, plans,
        plans::Plan,
        stripe_customers, stripe_events,
        subscriptions::{self, GRANTING, SubscriptionState},
        usage,
    },
    stripe::{
        types::{CheckoutSession, Event, Subscription, SubscriptionStatus},
        webhook::{self, SignatureError},
    },
};

/// Why a webhook request is refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No webhook secret is configured: nothing can be verified.
    #[error("Stripe webhooks are not configured")]
    NotConfigured,
    /// A missing, forged or stale signature.
    #[error(transparent)]
    Signature(SignatureError),
    /// Signed, but not an event this code can read.
    #[error("not a Stripe event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Service(#[from] Error),
}

impl From<diesel::result::Error> for WebhookError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Service(e.into())
    }
}

/// What a verified event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its effect is committed.
    Applied,
    /// Applied before: nothing changed.
    Duplicate,
    /// Recorded without effect (older than the stored state, an unknown
    /// user or price, a type billing does not handle).
    Ignored,
}

/// The webhook use case over its dependencies.
#[derive(Clone)]
pub struct StripeWebhooks {
    pool: aichat_db::Pool,
    /// Empty: Stripe is not configured.
    secrets: Vec<SecretString>,
    /// Wakes the outbox relay after a commit that enqueued an event.
    waker: Waker,
}

/// The subscription events handled.
const SUBSCRIPTION_EVENTS: [&str; 5] = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
];

impl StripeWebhooks {
    pub fn new(pool: aichat_db::Pool, secrets: Vec<SecretString>, waker: Waker) -> Self {
        Self {
            pool,
            secrets,
            waker,
        }
    }

    /// Verifies `payload` against the `Stripe-Signature` header and applies
    /// the event it carries, once.
    pub async fn handle(
        &self,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<Outcome, WebhookError> {
        if self.secrets.is_empty() {
            return Err(WebhookError::NotConfigured);
        }
        webhook::verify(
            payload,
            signature,
            &self.secrets,
            Utc::now(),
            webhook::DEFAULT_TOLERANCE,
        )
        .map_err(WebhookError::Signature)?;
        let event: Event =
            serde_json::from_slice(payload).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let created = event
            .created()
            .ok_or_else(|| WebhookError::Malformed("created is out of range".to_owned()))?;
        let kind = event.kind.as_str();
        let outcome = if kind == "checkout.session.completed" {
            let session: CheckoutSession = event
                .object()
                .map_err(|e| WebhookError::Malformed(e.to_string()))?;
            self.checkout_completed(&event, created, &session).await?
        } else if SUBSCRIPTION_EVENTS.contains(&kind) {
            let subscription: Subscription = event
                .object()
                .map_err(|e| WebhookError::Malformed(e.to_string()))?;
            let outcome = self
                .subscription_changed(&event, created, &subscription)
                .await?;
            if outcome == Outcome::Applied {
                self.waker.wake();
            }
            outcome
        } else if invoicing::handles(kind) {
            let outcome = invoicing::handle(&self.pool, &event, created).await?;
            if outcome == Outcome::Applied {
                self.waker.wake();
            }
            outcome
        } else {
            tracing::info!(stripe.event.id = %event.id, stripe.event.type = kind, "a Stripe event billing does not handle; acknowledged");
            Outcome::Ignored
        };
        tracing::debug!(stripe.event.id = %event.id, stripe.event.type = kind, ?outcome, "Stripe event");
        Ok(outcome)
    }

    /// `checkout.session.completed`: the user (`client_reference_id`) and
    /// their Stripe customer.
    async fn checkout_completed(
        &self,
        event: &Event,
        created: DateTime<Utc>,
        session: &CheckoutSession,
    ) -> Result<Outcome, WebhookError> {
        let user_id = session
            .client_reference_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok());
        let mut conn = self.pool.get().await.map_err(Error::from)?;
        conn
            .transaction::<_, WebhookError, _>(async |conn| {
                if !stripe_events::claim(conn, &event.id, &event.kind, created.naive_utc()).await?
                {
                    return Ok(Outcome::Duplicate);
                }
                let (Some(user_id), Some(customer)) = (user_id, session.customer.as_deref()) else {
                    tracing::warn!(stripe.event.id = %event.id, "a completed Checkout Session without our user id or a customer; ignored");
                    return Ok(Outcome::Ignored);
                };
                stripe_customers::insert_if_absent(conn, user_id, customer).await?;
                tracing::info!(user.id = %user_id, stripe.subscription = ?session.subscription, "checkout completed");
                Ok(Outcome::Applied)
            })
            .await
    }

    /// `customer.subscription.*`: the row, the quota and the event, once.
    async fn subscription_changed(
        &self,
        event: &Event,
        created: DateTime<Utc>,
        sub: &Subscription,
    ) -> Result<Outcome, WebhookError> {
        let mut conn = self.pool.get().await.map_err(Error::from)?;
        conn.transaction::<_, WebhookError, _>(async |conn| {
            apply_subscription(conn, sub, created, Some(event)).await
        })
        .await
    }
}

/// Applies a subscription as Stripe said it was at `observed_at`: the
/// user's row (its plan and `billingInterval` from the subscribed price),
/// the usage row's quota and `billing.subscription.changed`,
/// unless the row holds a state Stripe gave later. Call it in a
/// transaction. With `event` (a webhook), the event's id is claimed first,
/// so a redelivery changes nothing; without one (reconciliation), Stripe's
/// current state is applied at `observed_at`, and an older webhook that
/// arrives afterwards is ignored.
pub(crate) async fn apply_subscription(
    conn: &mut AsyncPgConnection,
    sub: &Subscription,
    observed_at: DateTime<Utc>,
    event: Option<&Event>,
) -> Result<Outcome, WebhookError> {
    let status = stored_status(sub.status);
    let Some(period) = sub.current_period() else {
        return Err(WebhookError::Malformed(
            "a subscription without a current period".to_owned(),
        ));
    };
    let price = sub.price().map(|p| p.id.clone());
    let metadata_user = sub
        .metadata
        .get("userId")
        .and_then(|id| Uuid::parse_str(id).ok());
    let source = event.map_or("reconciliation", |e| e.id.as_str());
    let at = observed_at.naive_utc();
    if let Some(event) = event
        && !stripe_events::claim(conn, &event.id, &event.kind, at).await?
    {
        return Ok(Outcome::Duplicate);
    }
    // Unlocked: a row's user never changes, and the user's lock below comes
    // before any row lock, so two deliveries never wait on each other in
    // opposite orders.
    let by_id = subscriptions::find_by_stripe_id(conn, &sub.id).await?;
    let user_id = match (metadata_user, &by_id) {
        (Some(id), _) => Some(id),
        (None, Some(row)) => Some(row.user_id),
        (None, None) => stripe_customers::user_of(conn, &sub.customer).await?,
    };
    let Some(user_id) = user_id else {
        tracing::warn!(stripe.source = source, stripe.subscription = %sub.id, "a subscription of no known user; ignored");
        return Ok(Outcome::Ignored);
    };
    if deleted_users::contains(conn, user_id).await? {
        // The user's deletion cancelled it (the cancellation's own events
        // come later): a deleted user gets no row back.
        tracing::info!(stripe.source = source, user.id = %user_id, "a subscription of a deleted user; ignored");
        return Ok(Outcome::Ignored);
    }
    let plan = match &price {
        Some(price) => plans::find_by_stripe_price(conn, price).await?,
        None => None,
    };
    let Some((plan, interval)) = plan else {
        tracing::warn!(stripe.source = source, stripe.price = ?price, "a subscription to a price of no plan; ignored");
        return Ok(Outcome::Ignored);
    };
    // Two deliveries about a user's first subscription find no row to lock:
    // without this lock both would insert, and the loser of the unique
    // index on stripeSubscriptionId would fail instead of yielding.
    subscriptions::lock_user(conn, user_id).await?;
    let previous = subscriptions::lock_of_user(conn, user_id).await?;
    if let Some(row) = &previous
        && row
            .stripe_event_created_at
            .is_some_and(|newest| newest > at)
    {
        tracing::info!(stripe.source = source, user.id = %user_id, "an older subscription state than the stored one; ignored");
        return Ok(Outcome::Ignored);
    }
    stripe_customers::insert_if_absent(conn, user_id, &sub.customer).await?;
    let written = subscriptions::upsert(
        conn,
        &SubscriptionState {
            user_id,
            plan_id: plan.id,
            stripe_subscription_id: sub.id.clone(),
            stripe_customer_id: sub.customer.clone(),
            status: status.to_owned(),
            current_period_start: period.start.naive_utc(),
            current_period_end: period.end.naive_utc(),
            cancellation_date: sub.canceled_at().map(|t| t.naive_utc()),
            cancellation_reason: sub
                .cancellation_details
                .as_ref()
                .and_then(|d| d.reason.clone()),
            cancel_at_period_end: Some(sub.cancel_at_period_end),
            trial_ends_at: sub.trial_end().map(|t| t.naive_utc()),
            stripe_event_created_at: Some(at),
            billing_interval: interval.as_str().to_owned(),
        },
    )
    .await?;
    let Some(subscription_id) = written else {
        // A newer state created the row meanwhile.
        tracing::info!(stripe.source = source, user.id = %user_id, "an older subscription state than the stored one; ignored");
        return Ok(Outcome::Ignored);
    };
    let granting = GRANTING.contains(&status);
    let granted = if granting {
        plan.clone()
    } else {
        free_plan(conn).await?
    };
    let new_period = previous
        .as_ref()
        .is_none_or(|row| period.start.naive_utc() > row.current_period_start);
    follow_plan(conn, user_id, &granted, !granting || new_period).await?;
    outbox::enqueue(
        conn,
        &SubscriptionChanged {
            user_id,
            plan_tier: tier(&granted),
            status: status.to_owned(),
            current_period_end: Some(period.end),
            occurred_at: observed_at,
            subscription_id: Some(subscription_id),
            plan_id: Some(plan.id),
            interval: Some(interval.as_str().to_owned()),
            current_period_start: Some(period.start),
        },
    )
    .await?;
    Ok(Outcome::Applied)
}

/// Stripe's status as the seed's CHECK allows it (see the migration
/// `2026-12-01-000003_subscription_event_order`).
pub fn stored_status(status: SubscriptionStatus) -> &'static str {
    match status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => "active",
        SubscriptionStatus::PastDue => "past_due",
        SubscriptionStatus::Unpaid | SubscriptionStatus::Incomplete => "unpaid",
        SubscriptionStatus::Paused => "paused",
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => "canceled",
        // A status newer than this code grants nothing until understood.
        SubscriptionStatus::Unknown => "unpaid",
    }
}

/// The plan tier identity stores (`FREE`, `PLUS`, `PRO`): the plan's name
/// in upper case.
pub fn tier(plan: &Plan) -> String {
    plan.name.to_uppercase()
}

pub(crate) async fn free_plan(conn: &mut AsyncPgConnection) -> Result<Plan, Error> {
    plans::find_by_name(conn, FREE_PLAN)
        .await?
        .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("the {FREE_PLAN} plan is missing")))
}

/// The usage row's quota follows `plan`: raised at once; lowered only when
/// `lower_now` (the subscription ended, or a new period started). A user
/// without a usage row gets one.
pub(crate) async fn follow_plan(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    plan: &Plan,
    lower_now: bool,
) -> Result<(), Error> {
    let quota = plan.monthly_token_quota;
    match usage::lock(conn, user_id).await? {
        Some(row) if quota > row.monthly_quota || (quota < row.monthly_quota && lower_now) => {
            usage::set_quota(conn, user_id, quota).await?;
        }
        Some(_) => {}
        None if deleted_users::contains(conn, user_id).await? => {}
        None => {
            usage::insert_if_absent(
                conn,
                Uuid::now_v7(),
                user_id,
                crate::domain::BillingMonth::of(Utc::now()),
                quota,
            )
            .await?;
        }
    }
    Ok(())
}
