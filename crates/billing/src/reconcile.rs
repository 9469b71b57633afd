//! Keeping the subscriptions in step with Stripe when a webhook is late or
//! lost (Stripe delivers at least once, in no order, and may give up:
//! shared/RELIABILITY.md).
//!
//! - [`Reconciler::reconcile`] (`billing reconcile`, and every
//!   `RECONCILE_INTERVAL_SECS` in `serve`, one replica at a time under an
//!   advisory lock): lists every subscription in Stripe and applies each one
//!   whose local row is missing or differs (status, period,
//!   `cancelAtPeriodEnd`, plan, billing interval), exactly as a webhook would
//!   (`webhooks::apply_subscription`): the row, the quota,
//!   `billing.subscription.changed`. Stripe's answer is its current state,
//!   so it is applied as observed when the list was asked for: a webhook
//!   created before that and delivered later is older and ignored.
//! - [`Reconciler::period_ends`] (a step of the maintenance round): at a
//!   period's end (plus [`PERIOD_END_GRACE`]) a subscription cancelled at
//!   the period's end is fetched from Stripe and applied, and a quota still
//!   above what the subscription grants (a cancellation, a downgrade, an
//!   unpaid or paused subscription) is lowered, without waiting for the
//!   webhook.
//!
//! Not here: the events themselves ([`mod@crate::webhooks`]), invoices
//! and payments.

use aichat_messaging::relay::Waker;
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    domain::subscription::Interval,
    service::Error,
    store::{locks, plans, stripe_customers, subscriptions, usage},
    stripe::{ListSubscriptions, StripeClient, types::Subscription},
    webhooks::{self, Outcome, WebhookError, apply_subscription, stored_status},
};

/// Stripe renews or ends a subscription at its period's boundary; its
/// webhook may take a while. Past the end by this much, billing acts on
/// its own.
pub const PERIOD_END_GRACE: Duration = Duration::hours(1);

/// The advisory lock that keeps reconciliation to one replica at a time.
const LOCK: &str = "billing.reconcile";

/// Stripe's largest page.
const PAGE: u8 = 100;

/// Subscriptions handled per maintenance round and step.
const BATCH: i64 = 100;

/// What a reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Subscriptions Stripe listed.
    pub listed: usize,
    /// Local rows created or repaired.
    pub repaired: usize,
    /// Subscriptions of no user billing knows (no `userId` metadata, an
    /// unknown customer) or to a price of no plan.
    pub skipped: usize,
    /// Subscriptions that could not be applied (logged; the next run tries
    /// again).
    pub failed: usize,
}

/// What the period-end step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodEnds {
    /// Subscriptions fetched from Stripe and applied.
    pub refreshed: usize,
    /// Usage quotas lowered to what the subscription grants now.
    pub lowered: usize,
}

/// The reconciliation use cases over their dependencies.
#[derive(Clone)]
pub struct Reconciler {
    pool: aichat_db::Pool,
    /// `None`: Stripe is not configured; only local repairs run.
    stripe: Option<StripeClient>,
    /// Wakes the outbox relay after a commit that enqueued an event.
    waker: Waker,
}

impl Reconciler {
    pub fn new(pool: aichat_db::Pool, stripe: Option<StripeClient>, waker: Waker) -> Self {
        Self {
            pool,
            stripe,
            waker,
        }
    }

    /// Reconciles once, unless another replica is at it (`None` then).
    /// The lock is a session lock on a connection held for the run.
    pub async fn reconcile_exclusively(&self) -> anyhow::Result<Option<Reconciled>> {
        let mut lock_conn = self
            .pool
            .get()
            .await
            .context("connecting to the database")?;
        if !locks::try_lock(&mut lock_conn, LOCK)
            .await
            .context("taking the reconciliation lock")?
        {
            return Ok(None);
        }
        let result = self.reconcile().await;
        if !matches!(locks::unlock(&mut lock_conn, LOCK).await, Ok(true)) {
            // Never hand a session holding the lock back to the pool:
            // closing the connection releases it.
            drop(aichat_db::PooledConnection::take(lock_conn));
        }
        result.map(Some)
    }

    /// Lists every subscription in Stripe (`status=all`, pages of 100) and
    /// applies each whose local row is missing or differs.
    pub async fn reconcile(&self) -> anyhow::Result<Reconciled> {
        let Some(stripe) = &self.stripe else {
            anyhow::bail!("Stripe is not configured (STRIPE_SECRET_KEY)");
        };
        let mut done = Reconciled::default();
        let mut after: Option<String> = None;
        loop {
            // Stripe's state is at least as new as this instant (whole
            // seconds, as Stripe's `created`).
            let observed_at = whole_seconds(Utc::now());
            let page = stripe
                .list_subscriptions(&ListSubscriptions {
                    status: Some("all"),
                    customer: None,
                    limit: Some(PAGE),
                    starting_after: after.as_deref(),
                })
                .await
                .context("listing the subscriptions in Stripe")?;
            done.listed += page.data.len();
            for sub in &page.data {
                match self.reconcile_one(stripe, sub, observed_at).await {
                    Ok(Some(true)) => done.repaired += 1,
                    Ok(Some(false)) => {}
                    Ok(None) => done.skipped += 1,
                    Err(error) => {
                        done.failed += 1;
                        tracing::warn!(stripe.subscription = %sub.id, error = format!("{error:#}"), "a subscription could not be reconciled");
                    }
                }
            }
            match page.data.last() {
                Some(last) if page.has_more => after = Some(last.id.clone()),
                _ => break,
            }
        }
        Ok(done)
    }

    /// One listed subscription: `Some(true)` repaired, `Some(false)` in
    /// step already, `None` skipped.
    async fn reconcile_one(
        &self,
        stripe: &StripeClient,
        sub: &Subscription,
        observed_at: DateTime<Utc>,
    ) -> anyhow::Result<Option<bool>> {
        let mut conn = self.pool.get().await.map_err(Error::from)?;
        let plan = match sub.price() {
            Some(price) => plans::find_by_stripe_price(&mut conn, &price.id).await?,
            None => None,
        };
        let Some((plan, interval)) = plan else {
            return Ok(None);
        };
        if let Some(row) = subscriptions::find_by_stripe_id(&mut conn, &sub.id).await? {
            if !differs(&row, sub, plan.id, interval) {
                return Ok(Some(false));
            }
            return self.apply(&mut conn, sub, observed_at).await;
        }
        // Unknown locally: a missed `customer.subscription.created`.
        let user = match sub
            .metadata
            .get("userId")
            .and_then(|id| Uuid::parse_str(id).ok())
        {
            Some(user) => Some(user),
            None => stripe_customers::user_of(&mut conn, &sub.customer).await?,
        };
        let Some(user) = user else {
            return Ok(None);
        };
        if let Some(current) = subscriptions::find_of_user(&mut conn, user).await? {
            // The user's row holds another subscription: only a live one
            // takes its place, and only from one that grants nothing.
            if !granting(stored_status(sub.status)) {
                return Ok(Some(false));
            }
            if granting(&current.status) {
                // Perhaps ended in Stripe and the webhook lost: ask.
                let now = whole_seconds(Utc::now());
                let other = stripe
                    .retrieve_subscription(&current.stripe_subscription_id)
                    .await
                    .context("retrieving the user's other subscription")?;
                self.apply(&mut conn, &other, now).await?;
                if granting(stored_status(other.status)) {
                    tracing::warn!(user.id = %user, stripe.subscription = %sub.id, stripe.other = %other.id, "a user with two live subscriptions in Stripe; the stored one is kept");
                    return Ok(Some(false));
                }
                // The row now holds a state observed after the list: this
                // one is asked for again, to be at least as new.
                let now = whole_seconds(Utc::now());
                let fresh = stripe
                    .retrieve_subscription(&sub.id)
                    .await
                    .context("retrieving the subscription again")?;
                return self.apply(&mut conn, &fresh, now).await;
            }
        }
        self.apply(&mut conn, sub, observed_at).await
    }

    /// Applies Stripe's state in a transaction of its own.
    async fn apply(
        &self,
        conn: &mut AsyncPgConnection,
        sub: &Subscription,
        observed_at: DateTime<Utc>,
    ) -> anyhow::Result<Option<bool>> {
        let outcome = conn
            .transaction::<_, WebhookError, _>(async |conn| {
                apply_subscription(conn, sub, observed_at, None).await
            })
            .await
            .with_context(|| format!("applying the subscription {}", sub.id))?;
        match outcome {
            Outcome::Applied => {
                self.waker.wake();
                tracing::info!(stripe.subscription = %sub.id, "subscription repaired from Stripe's state");
                Ok(Some(true))
            }
            Outcome::Duplicate => Ok(Some(false)),
            Outcome::Ignored => Ok(None),
        }
    }

    /// The period-end step of a maintenance round at `now`.
    pub async fn period_ends(&self, now: DateTime<Utc>) -> Result<PeriodEnds, Error> {
        let cutoff = (now - PERIOD_END_GRACE).naive_utc();
        let mut done = PeriodEnds::default();
        let mut conn = self.pool.get().await?;
        if let Some(stripe) = &self.stripe {
            for row in subscriptions::overdue_cancellations(&mut conn, cutoff, BATCH).await? {
                let observed_at = whole_seconds(Utc::now());
                let sub = match stripe
                    .retrieve_subscription(&row.stripe_subscription_id)
                    .await
                {
                    Ok(sub) => sub,
                    Err(error) => {
                        // The quota is lowered below anyway; the row waits
                        // for the next round or the webhook.
                        tracing::warn!(stripe.subscription = %row.stripe_subscription_id, error = %error, "an ended subscription could not be fetched from Stripe");
                        continue;
                    }
                };
                let plan = match sub.price() {
                    Some(price) => plans::find_by_stripe_price(&mut conn, &price.id).await?,
                    None => None,
                };
                if plan.is_some_and(|(plan, interval)| !differs(&row, &sub, plan.id, interval)) {
                    // Stripe has not ended it yet either: nothing to apply
                    // (and nothing to publish); the quota is lowered below.
                    tracing::debug!(stripe.subscription = %sub.id, "an ended period not yet ended in Stripe");
                    continue;
                }
                match self.apply(&mut conn, &sub, observed_at).await {
                    Ok(Some(true)) => done.refreshed += 1,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(stripe.subscription = %sub.id, error = format!("{error:#}"), "an ended subscription could not be applied");
                    }
                }
            }
        }
        let free = webhooks::free_plan(&mut conn).await?;
        let users = subscriptions::quota_above_grant_after_period(
            &mut conn,
            cutoff,
            free.monthly_token_quota,
            BATCH,
        )
        .await?;
        for user in users {
            let lowered = conn
                .transaction::<_, Error, _>(async |conn| {
                    lower_to_grant(conn, user, cutoff, free.monthly_token_quota).await
                })
                .await?;
            if lowered {
                done.lowered += 1;
                tracing::info!(user.id = %user, "quota lowered at the period's end");
            }
        }
        Ok(done)
    }
}

/// Under the usage row's lock, lowers the quota to what the user's
/// subscription grants once its period ended before `cutoff`.
async fn lower_to_grant(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    cutoff: crate::store::Timestamp,
    free_quota: i32,
) -> Result<bool, Error> {
    // The subscription row first, then the usage row: the order
    // `apply_subscription` takes them in, so the two never deadlock.
    let Some(sub) = subscriptions::lock_of_user(conn, user).await? else {
        return Ok(false);
    };
    let Some(row) = usage::lock(conn, user).await? else {
        return Ok(false);
    };
    if sub.current_period_end >= cutoff {
        // Renewed meanwhile.
        return Ok(false);
    }
    let quota = if granting(&sub.status) && sub.cancel_at_period_end != Some(true) {
        plans::find_by_id(conn, sub.plan_id)
            .await?
            .map_or(free_quota, |plan| plan.monthly_token_quota)
    } else {
        free_quota
    };
    if row.monthly_quota > quota {
        usage::set_quota(conn, user, quota).await?;
        return Ok(true);
    }
    Ok(false)
}

fn granting(status: &str) -> bool {
    subscriptions::GRANTING.contains(&status)
}

/// Whether the stored row differs from Stripe's state in what billing acts
/// on (and the interval analytics reads: rows written before the column
/// existed say `month` until this rewrites them).
fn differs(
    row: &subscriptions::Subscription,
    sub: &Subscription,
    plan_id: Uuid,
    interval: Interval,
) -> bool {
    let period = sub.current_period();
    row.status != stored_status(sub.status)
        || row.plan_id != plan_id
        || row.billing_interval != interval.as_str()
        || row.cancel_at_period_end.unwrap_or(false) != sub.cancel_at_period_end
        || period.is_none_or(|p| {
            row.current_period_start != p.start.naive_utc()
                || row.current_period_end != p.end.naive_utc()
        })
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}
