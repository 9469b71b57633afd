//! The metering use cases. Each owns its transaction: it opens it, calls the
//! store, and commits. Event handlers claim the event in the inbox in the
//! same transaction as its effect, so a redelivery changes nothing.
//!
//! Locking: every use case that reads a user's usage to decide something
//! first locks the user's `usageTracking` row (`SELECT ... FOR UPDATE`), and
//! only then touches reservations. One lock order everywhere: no deadlocks,
//! and a quota check can never race another one of the same user. A use
//! case that also touches the user's `subscriptions` row takes it before the
//! usage row, as Stripe's events and reconciliation do
//! (`webhooks::apply_subscription`).

use std::collections::{HashMap, HashSet};

use aichat_events::{Envelope, chat as chat_ev, identity as identity_ev};
use aichat_messaging::inbox;
use bigdecimal::BigDecimal;
use chrono::{DateTime, Duration, Utc};
use diesel::result::Error as DbError;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    domain::{self, Balance, BillingMonth, FREE_PLAN, FieldErrors, Placement, TokenAmount},
    store::{
        deleted_users, plans,
        plans::Plan,
        reservations, stripe_customers, subscriptions,
        usage::{self, Usage},
    },
    stripe::{ListSubscriptions, StripeClient, StripeError, types::SubscriptionStatus},
};

/// What a use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input refused field by field (also an event whose content is wrong).
    #[error("validation failed")]
    Validation(FieldErrors),
    /// Two more messages would pass the plan's per-conversation limit.
    #[error("message limit")]
    MessageLimit,
    /// The reservation would pass the month's quota.
    #[error("quota exceeded")]
    QuotaExceeded {
        /// What is left (maybe less than was asked for).
        remaining: i64,
    },
    /// A deleted user.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached in time.
    #[error("unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an outage we did not plan for.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DbError> for Error {
    /// A lost connection or a cancelled statement is an outage (503), not
    /// a bug.
    fn from(e: DbError) -> Self {
        if aichat_db::is_outage(&e) {
            Self::Unavailable(anyhow::Error::new(e))
        } else {
            Self::Unexpected(anyhow::Error::new(e))
        }
    }
}

impl From<aichat_db::PoolError> for Error {
    fn from(e: aichat_db::PoolError) -> Self {
        Self::Unavailable(anyhow::Error::new(e))
    }
}

fn field(name: &str, reason: &str) -> Error {
    let mut errors = FieldErrors::new();
    errors.insert(name.to_owned(), reason.to_owned());
    Error::Validation(errors)
}

/// A user's month, as `GetUsage` answers it.
#[derive(Debug, Clone)]
pub struct UsageView {
    pub month: BillingMonth,
    pub balance: Balance,
    pub messages: i32,
    pub conversations: i32,
    /// USD.
    pub cost: BigDecimal,
}

/// What the user's plan allows, as `GetLimits` answers it.
#[derive(Debug, Clone)]
pub struct LimitsView {
    pub plan: Plan,
    /// The quota cached on the usage row (the plan's, when it was set).
    pub monthly_quota: i64,
    pub conversations: i32,
}

/// A granted reservation.
#[derive(Debug, Clone)]
pub struct Granted {
    pub id: Uuid,
    pub expires_at: DateTime<Utc>,
    /// What is left of the quota with this reservation held.
    pub remaining: i64,
    /// The plan it was checked against, and its message limit.
    pub plan_name: String,
    pub max_messages_per_conversation: Option<i32>,
}

/// A usage event [`Metering::apply_usage`] applies in a batch.
#[derive(Debug, Clone)]
pub enum UsageEvent {
    /// With its cost, `None` when the event is invalid (it is left to be
    /// applied, and refused, on its own).
    TokensUsed {
        event: Box<chat_ev::TokensUsed>,
        cost: Option<BigDecimal>,
    },
    ConversationCreated(chat_ev::ConversationCreated),
}

impl UsageEvent {
    /// Wraps a `chat.tokens.used`, checking its numbers.
    pub fn tokens_used(event: chat_ev::TokensUsed) -> Self {
        let cost = checked_cost(&event).ok();
        Self::TokensUsed {
            event: Box::new(event),
            cost,
        }
    }

    fn user_id(&self) -> Uuid {
        match self {
            Self::TokensUsed { event, .. } => event.user_id,
            Self::ConversationCreated(event) => event.user_id,
        }
    }

    /// The month it counts in; `None` for an invalid event.
    fn month(&self) -> Option<BillingMonth> {
        match self {
            Self::TokensUsed {
                cost: Some(_),
                event,
            } => Some(BillingMonth::containing(event.billing_month)),
            Self::TokensUsed { cost: None, .. } => None,
            Self::ConversationCreated(event) => Some(BillingMonth::of(event.created_at)),
        }
    }
}

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Its effect is committed.
    Done,
    /// Applied before (a redelivery): nothing changed.
    Duplicate,
    /// Recorded in the inbox, with no effect (a closed month, a deleted
    /// user).
    Ignored,
}

/// What one maintenance round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Usage rows moved to the current month.
    pub rolled_over: usize,
    /// Expired reservations deleted.
    pub expired: usize,
}

/// Rows rolled over per statement by [`Metering::maintain`].
const ROLLOVER_BATCH: i64 = 1_000;

/// The metering use cases over their dependencies.
#[derive(Clone)]
pub struct Metering {
    pool: aichat_db::Pool,
    /// How long a reservation holds quota unless settled or released.
    reservation_ttl: Duration,
    /// `None`: Stripe is not configured (a deleted user's subscription is
    /// then only deleted locally).
    stripe: Option<StripeClient>,
}

impl Metering {
    pub fn new(pool: aichat_db::Pool, reservation_ttl: Duration) -> Self {
        Self {
            pool,
            reservation_ttl,
            stripe: None,
        }
    }

    /// The same, calling Stripe where a use case must (a deleted user's
    /// subscription is cancelled there).
    #[must_use]
    pub fn with_stripe(mut self, stripe: Option<StripeClient>) -> Self {
        self.stripe = stripe;
        self
    }

    async fn conn(&self) -> Result<aichat_db::PooledConnection, Error> {
        Ok(self.pool.get().await?)
    }

    /// The plans on sale, cheapest first.
    pub async fn list_plans(&self) -> Result<Vec<Plan>, Error> {
        let mut conn = self.conn().await?;
        Ok(plans::list_active(&mut conn).await?)
    }

    /// The user's month: usage, reservations, what is left.
    pub async fn usage(&self, user_id: Uuid) -> Result<UsageView, Error> {
        let now = Utc::now();
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let row = current_row(conn, user_id, now)
                .await?
                .ok_or(Error::NotFound)?;
            let reserved = reservations::active_total(conn, user_id, now.naive_utc()).await?;
            Ok(UsageView {
                month: row.month(),
                balance: balance(&row, reserved),
                messages: row.messages(),
                conversations: row.conversations(),
                cost: row.cost(),
            })
        })
        .await
    }

    /// The user's plan (their subscription's while it grants one, Free
    /// otherwise) and how much of its conversation allowance is used.
    pub async fn limits(&self, user_id: Uuid) -> Result<LimitsView, Error> {
        let now = Utc::now();
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let row = current_row(conn, user_id, now)
                .await?
                .ok_or(Error::NotFound)?;
            let plan = current_plan(conn, user_id).await?;
            Ok(LimitsView {
                plan,
                monthly_quota: i64::from(row.monthly_quota),
                conversations: row.conversations(),
            })
        })
        .await
    }

    /// Holds `tokens` of the user's quota for a provider call. With
    /// `conversation_messages` (what the conversation holds), it first
    /// checks that the plan allows two more messages in it. One round trip
    /// ([`reservations::reserve`]); a user billing has not heard of yet, or
    /// whose row is of an earlier month, has it started or rolled over
    /// first.
    pub async fn reserve(
        &self,
        user_id: Uuid,
        tokens: i64,
        conversation_messages: Option<i64>,
    ) -> Result<Granted, Error> {
        let tokens = TokenAmount::parse(tokens).map_err(|r| field("tokens", &r))?;
        if conversation_messages.is_some_and(|n| n < 0) {
            return Err(field("conversationMessages", "must not be negative"));
        }
        let now = Utc::now();
        let expires_at = now + self.reservation_ttl;
        let ask = reservations::Ask {
            id: Uuid::now_v7(),
            user_id,
            tokens: tokens.get(),
            conversation_messages,
            month: BillingMonth::of(now).first_day(),
            at: now.naive_utc(),
            expires_at: expires_at.naive_utc(),
        };
        let mut conn = self.conn().await?;
        // Twice at most: the second finds the row prepared, unless the
        // month turned in between (then once more).
        for _ in 0..3 {
            match reservations::reserve(&mut conn, ask).await? {
                reservations::Answer::Held {
                    remaining,
                    plan_name,
                    max_messages_per_conversation,
                } => {
                    return Ok(Granted {
                        id: ask.id,
                        expires_at,
                        remaining,
                        plan_name,
                        max_messages_per_conversation,
                    });
                }
                reservations::Answer::QuotaExceeded { remaining } => {
                    return Err(Error::QuotaExceeded { remaining });
                }
                reservations::Answer::MessageLimit => return Err(Error::MessageLimit),
                reservations::Answer::Prepare => {
                    conn.transaction::<_, Error, _>(async |conn| {
                        current_row(conn, user_id, Utc::now())
                            .await?
                            .map(drop)
                            .ok_or(Error::NotFound)
                    })
                    .await?;
                }
            }
        }
        Err(Error::Unexpected(anyhow::anyhow!(
            "the usage row of {user_id} could not be prepared for a reservation"
        )))
    }

    /// Drops an unsettled reservation; `false` if there was none (settled,
    /// released or expired and swept already).
    pub async fn release(&self, reservation_id: Uuid) -> Result<bool, Error> {
        let mut conn = self.conn().await?;
        Ok(reservations::delete(&mut conn, reservation_id).await?)
    }

    /// One maintenance round at `now`: every usage row of an earlier month
    /// starts the current one, and expired reservations are deleted.
    pub async fn maintain(&self, now: DateTime<Utc>) -> Result<Maintenance, Error> {
        let month = BillingMonth::of(now);
        let mut conn = self.conn().await?;
        let mut done = Maintenance::default();
        loop {
            // One statement per batch: short locks, and a row a request holds
            // is skipped (that request rolls it over itself).
            let rolled = usage::roll_over_batch(&mut conn, month, ROLLOVER_BATCH).await?;
            done.rolled_over += rolled;
            if i64::try_from(rolled).unwrap_or(i64::MAX) < ROLLOVER_BATCH {
                break;
            }
        }
        done.expired = reservations::delete_expired(&mut conn, now.naive_utc()).await?;
        Ok(done)
    }

    /// `identity.user.registered`: the user starts on the Free plan.
    pub async fn user_registered(
        &self,
        envelope: &Envelope,
        event: &identity_ev::UserRegistered,
    ) -> Result<Applied, Error> {
        let user_id = event.user.user_id;
        let month = BillingMonth::of(Utc::now());
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            if !inbox::claim(conn, envelope).await? {
                return Ok(Applied::Duplicate);
            }
            if deleted_users::contains(conn, user_id).await? {
                return Ok(Applied::Ignored);
            }
            start_on_free_plan(conn, user_id, month).await?;
            Ok(Applied::Done)
        })
        .await
    }

    /// `identity.user.deleted`: the user's Stripe subscriptions are
    /// cancelled at once (the stored one, and any other the customer has in
    /// Stripe that still runs, in case a webhook was lost), before the
    /// transaction: an outage of Stripe is a transient error, so the event
    /// is retried; one cancelled already counts as done. Then the user's usage, reservations, subscription row and
    /// Stripe customer go, as `ON DELETE CASCADE` from `users` would have
    /// taken them. Payments and invoices stay for accounting: their
    /// `subscriptionId` goes `NULL` (the foreign key's `SET NULL`) and
    /// their `userId` names no one any more.
    pub async fn user_deleted(
        &self,
        envelope: &Envelope,
        event: &identity_ev::UserDeleted,
    ) -> Result<Applied, Error> {
        let user_id = event.user_id;
        let mut conn = self.conn().await?;
        if let Some(stripe) = &self.stripe {
            let row = subscriptions::find_of_user(&mut conn, user_id).await?;
            let customer = match stripe_customers::customer_of(&mut conn, user_id).await? {
                Some(customer) => Some(customer),
                None => row.as_ref().map(|r| r.stripe_customer_id.clone()),
            };
            let mut live: Vec<String> = row
                .filter(|r| r.status != "canceled")
                .map(|r| r.stripe_subscription_id)
                .into_iter()
                .collect();
            if let Some(customer) = customer {
                // Also those billing never heard of (a lost webhook).
                for id in live_subscriptions_in_stripe(stripe, &customer).await? {
                    if !live.contains(&id) {
                        live.push(id);
                    }
                }
            }
            for id in &live {
                cancel_in_stripe(stripe, user_id, id).await?;
            }
        }
        conn.transaction::<_, Error, _>(async |conn| {
            if !inbox::claim(conn, envelope).await? {
                return Ok(Applied::Duplicate);
            }
            // The subscription row before the usage row: the order a
            // concurrent webhook locks them in, so the two never deadlock.
            subscriptions::delete_of_user(conn, user_id).await?;
            stripe_customers::delete_of_user(conn, user_id).await?;
            usage::delete(conn, user_id).await?;
            deleted_users::record(conn, user_id).await?;
            Ok(Applied::Done)
        })
        .await
    }

    /// `chat.tokens.used`: settles the reservation it names and counts the
    /// tokens, the message and the cost in the month the event names.
    pub async fn tokens_used(
        &self,
        envelope: &Envelope,
        event: &chat_ev::TokensUsed,
    ) -> Result<Applied, Error> {
        let cost = checked_cost(event)?;
        let event_month = BillingMonth::containing(event.billing_month);
        let now = Utc::now();
        let (user_id, tokens, reservation_id) =
            (event.user_id, event.total_tokens, event.reservation_id);
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            // The claim and the row lock in one round trip (pipelined); a
            // duplicate rolls both back.
            let (claimed, locked) = {
                let shared: &AsyncPgConnection = conn;
                futures::try_join!(inbox::claim(shared, envelope), usage::lock(shared, user_id))?
            };
            if !claimed {
                return Ok(Applied::Duplicate);
            }
            let row = match locked {
                Some(row) => row,
                None => match lock_or_start(conn, user_id, BillingMonth::of(now)).await? {
                    Some(row) => row,
                    None => {
                        // A reply that streamed while the account was deleted:
                        // the provider produced it, so it is kept on the
                        // tombstone (the reservation went with the usage row).
                        deleted_users::add_usage(conn, user_id, tokens, &cost).await?;
                        tracing::info!(user.id = %user_id, tokens, "tokens of a deleted user; recorded on its tombstone");
                        return Ok(Applied::Done);
                    }
                },
            };
            // The reservation is settled whatever the month: the call it held
            // quota for is over.
            let shared: &AsyncPgConnection = conn;
            let settle = async {
                match reservation_id {
                    Some(id) => reservations::delete_of_user(shared, user_id, id)
                        .await
                        .map(drop),
                    None => Ok(()),
                }
            };
            match Placement::of(row.month(), BillingMonth::of(now), event_month) {
                Placement::Count { roll_to: None } => {
                    // Settling and counting in one round trip (pipelined).
                    futures::try_join!(settle, usage::add_tokens(shared, user_id, tokens, &cost))?;
                    Ok(Applied::Done)
                }
                Placement::Count {
                    roll_to: Some(month),
                } => {
                    settle.await?;
                    usage::roll_over(conn, user_id, month).await?;
                    usage::add_tokens(conn, user_id, tokens, &cost).await?;
                    Ok(Applied::Done)
                }
                Placement::Stale => {
                    settle.await?;
                    tracing::warn!(
                        user.id = %user_id,
                        event.billing_month = %event_month,
                        usage.billing_month = %row.month(),
                        tokens,
                        "tokens of a closed month; not counted"
                    );
                    Ok(Applied::Ignored)
                }
                Placement::Future => Err(field("billingMonth", "is after next month")),
            }
        })
        .await
    }

    /// Applies a run of usage events (`chat.tokens.used`,
    /// `chat.conversation.created`) in one transaction, each once (inbox),
    /// with one statement per step whatever their number: the users' rows
    /// locked, the events claimed, the reservations settled, the counters
    /// added. What [`Self::tokens_used`] and [`Self::conversation_created`]
    /// do one at a time, for the common case: every event of a user counts
    /// in the month of the user's row as it is. The events of any other
    /// user (no row yet, a deleted user, a month to roll over, a closed or
    /// future month, an invalid event) are left untouched and their indexes
    /// returned in order, to be applied one at a time after the commit.
    pub async fn apply_usage<T: Sync>(
        &self,
        events: &[(Envelope<T>, UsageEvent)],
    ) -> Result<Vec<usize>, Error> {
        let now = BillingMonth::of(Utc::now());
        let mut users: Vec<Uuid> = events.iter().map(|(_, e)| e.user_id()).collect();
        users.sort_unstable();
        users.dedup();
        let envelopes: Vec<&Envelope<T>> = events.iter().map(|(envelope, _)| envelope).collect();
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let shared: &AsyncPgConnection = conn;
            let (mut claimed, rows) = futures::try_join!(
                inbox::claim_many(shared, &envelopes),
                usage::lock_many(shared, &users),
            )?;
            let months: HashMap<Uuid, BillingMonth> =
                rows.iter().map(|r| (r.user_id, r.month())).collect();
            // A user any of whose events is not the common case has all of
            // them applied one at a time, in order.
            let mut left: HashSet<Uuid> = HashSet::new();
            for (_, event) in events {
                let user = event.user_id();
                let counts = months.get(&user).is_some_and(|row| {
                    event.month().is_some_and(|month| {
                        Placement::of(*row, now, month) == Placement::Count { roll_to: None }
                    })
                });
                if !counts {
                    left.insert(user);
                }
            }
            let mut added: HashMap<Uuid, usage::Added> = HashMap::new();
            let mut settled = Vec::new();
            let mut unclaimed = Vec::new();
            for (envelope, event) in events {
                let user = event.user_id();
                // Removed once taken: a second copy in the batch is skipped.
                let new = claimed.remove(&envelope.id);
                if left.contains(&user) {
                    if new {
                        unclaimed.push(envelope.id);
                    }
                    continue;
                }
                if !new {
                    continue;
                }
                let row = added.entry(user).or_insert_with(|| usage::Added {
                    user_id: user,
                    tokens: 0,
                    messages: 0,
                    conversations: 0,
                    cost: BigDecimal::default(),
                });
                match event {
                    UsageEvent::TokensUsed { event, cost } => {
                        row.tokens += i64::from(event.total_tokens);
                        row.messages += 1;
                        if let Some(cost) = cost {
                            row.cost += cost;
                        }
                        if let Some(id) = event.reservation_id {
                            settled.push((user, id));
                        }
                    }
                    UsageEvent::ConversationCreated(_) => row.conversations += 1,
                }
            }
            let mut added: Vec<usage::Added> = added.into_values().collect();
            added.sort_unstable_by_key(|a| a.user_id);
            let shared: &AsyncPgConnection = conn;
            let settle = async {
                if settled.is_empty() {
                    return Ok(0);
                }
                reservations::delete_many_of_users(shared, &settled).await
            };
            let add = async {
                if added.is_empty() {
                    return Ok(0);
                }
                usage::add_many(shared, &added).await
            };
            let unclaim = async {
                if unclaimed.is_empty() {
                    return Ok(0);
                }
                inbox::forget(shared, &unclaimed).await
            };
            futures::try_join!(settle, add, unclaim)?;
            Ok(events
                .iter()
                .enumerate()
                .filter(|(_, (_, event))| left.contains(&event.user_id()))
                .map(|(i, _)| i)
                .collect())
        })
        .await
    }

    /// `chat.conversation.created`: one more conversation this month.
    pub async fn conversation_created(
        &self,
        envelope: &Envelope,
        event: &chat_ev::ConversationCreated,
    ) -> Result<Applied, Error> {
        let now = Utc::now();
        let user_id = event.user_id;
        let event_month = BillingMonth::of(event.created_at);
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            if !inbox::claim(conn, envelope).await? {
                return Ok(Applied::Duplicate);
            }
            let Some(row) = lock_or_start(conn, user_id, BillingMonth::of(now)).await? else {
                return Ok(Applied::Ignored);
            };
            match Placement::of(row.month(), BillingMonth::of(now), event_month) {
                Placement::Count { roll_to } => {
                    if let Some(month) = roll_to {
                        usage::roll_over(conn, user_id, month).await?;
                    }
                    usage::add_conversation(conn, user_id).await?;
                    Ok(Applied::Done)
                }
                Placement::Stale => {
                    tracing::info!(
                        user.id = %user_id,
                        event.billing_month = %event_month,
                        "a conversation of a closed month; not counted"
                    );
                    Ok(Applied::Ignored)
                }
                Placement::Future => Err(field("createdAt", "is after next month")),
            }
        })
        .await
    }
}

/// The customer's subscriptions in Stripe that still run (Stripe's list
/// leaves cancelled ones out; an expired first payment has ended too). A
/// customer Stripe no longer has has none.
async fn live_subscriptions_in_stripe(
    stripe: &StripeClient,
    customer: &str,
) -> Result<Vec<String>, Error> {
    let page = stripe
        .list_subscriptions(&ListSubscriptions {
            customer: Some(customer),
            limit: Some(100),
            ..ListSubscriptions::default()
        })
        .await;
    match page {
        Ok(page) => Ok(page
            .data
            .into_iter()
            .filter(|sub| {
                !matches!(
                    sub.status,
                    SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
                )
            })
            .map(|sub| sub.id)
            .collect()),
        Err(error) if error.is_not_found() => Ok(Vec::new()),
        Err(error) => Err(stripe_failure(
            error,
            "listing a deleted user's subscriptions",
        )),
    }
}

/// A Stripe failure as the use case's error: an outage is `Unavailable`
/// (the event is retried), anything else `Unexpected`.
fn stripe_failure(error: StripeError, doing: &'static str) -> Error {
    if error.is_unavailable() {
        Error::Unavailable(anyhow::Error::new(error).context(doing))
    } else {
        Error::Unexpected(anyhow::Error::new(error).context(doing))
    }
}

/// Cancels the subscription in Stripe now (not at the period's end).
/// Stripe answers `resource_missing` for one cancelled already: done too.
async fn cancel_in_stripe(
    stripe: &StripeClient,
    user_id: Uuid,
    subscription: &str,
) -> Result<(), Error> {
    match stripe.cancel_subscription(subscription).await {
        Ok(sub) => {
            tracing::info!(user.id = %user_id, stripe.subscription = subscription, stripe.status = ?sub.status, "a deleted user's subscription cancelled in Stripe");
            Ok(())
        }
        Err(error) if error.is_not_found() => {
            tracing::info!(user.id = %user_id, stripe.subscription = subscription, "a deleted user's subscription was cancelled already");
            Ok(())
        }
        Err(error) => Err(stripe_failure(
            error,
            "cancelling a deleted user's subscription",
        )),
    }
}

/// A `chat.tokens.used` event's cost, once its numbers are checked.
fn checked_cost(event: &chat_ev::TokensUsed) -> Result<BigDecimal, Error> {
    if event.total_tokens < 0 {
        return Err(field("totalTokens", "must not be negative"));
    }
    domain::money::parse_cost(&event.cost_usd).map_err(|r| field("costUsd", &r))
}

fn balance(row: &Usage, reserved: i64) -> Balance {
    Balance {
        quota: i64::from(row.monthly_quota),
        used: row.tokens(),
        reserved,
    }
}

async fn free_plan(conn: &AsyncPgConnection) -> Result<Plan, Error> {
    plans::find_by_name(conn, FREE_PLAN)
        .await?
        .ok_or_else(missing_free_plan)
}

/// The plan the user is on: their subscription's while it grants one
/// (`active`, `past_due`), Free otherwise.
async fn current_plan(conn: &AsyncPgConnection, user_id: Uuid) -> Result<Plan, Error> {
    match subscriptions::granted_plan(conn, user_id).await? {
        Some(plan) => Ok(plan),
        None => free_plan(conn).await,
    }
}

fn missing_free_plan() -> Error {
    Error::Unexpected(anyhow::anyhow!("the {FREE_PLAN} plan is missing"))
}

/// Gives the user a usage row on the Free plan unless they have one.
async fn start_on_free_plan(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    month: BillingMonth,
) -> Result<(), Error> {
    let plan = free_plan(conn).await?;
    usage::insert_if_absent(
        conn,
        Uuid::now_v7(),
        user_id,
        month,
        plan.monthly_token_quota,
    )
    .await?;
    Ok(())
}

/// The user's row, locked for the rest of the transaction. A user billing
/// has not heard of yet (their `identity.user.registered` is still on its
/// way) starts on the Free plan; a deleted user has none (`None`).
async fn lock_or_start(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    month: BillingMonth,
) -> Result<Option<Usage>, Error> {
    if let Some(row) = usage::lock(conn, user_id).await? {
        return Ok(Some(row));
    }
    if deleted_users::contains(conn, user_id).await? {
        return Ok(None);
    }
    start_on_free_plan(conn, user_id, month).await?;
    Ok(usage::lock(conn, user_id).await?)
}

/// [`lock_or_start`], then rolled over to the current month if it is of an
/// earlier one: the lazy half of the monthly reset.
async fn current_row(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Usage>, Error> {
    let month = BillingMonth::of(now);
    let Some(row) = lock_or_start(conn, user_id, month).await? else {
        return Ok(None);
    };
    match row.month().rolled_over(month) {
        Some(month) => Ok(usage::roll_over(conn, user_id, month).await?),
        None => Ok(Some(row)),
    }
}
