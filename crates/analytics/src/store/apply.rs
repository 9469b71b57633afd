//! The writes of the read models: one function per kind of state or fact,
//! used alike by the event consumer ([`crate::events`]) and by `analytics
//! backfill` ([`crate::backfill`]), so events alone and backfill + events
//! build the same rows.
//!
//! - Facts (a tokenUsage row, a message) are keyed by their source id:
//!   inserting one that exists changes nothing, and `chatAnalytics` is
//!   bumped only when the fact row was newly inserted.
//! - States (a user's plan tier, a subscription, a payment, an invoice, a
//!   conversation's counters) carry their source's version; a write with an
//!   older version never overwrites a newer one.
//! - Deletions are tombstones (`deletedAt`): a late event or a backfill
//!   page never brings a deleted user or conversation back.

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::{
    QueryResult,
    sql_types::{
        Array, BigInt, Bool, Date, Integer, Jsonb, Nullable, Numeric, Text, Timestamp,
        Uuid as SqlUuid,
    },
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// What is known of a user at one point: a registration, an update or an
/// exported row. `None` fields are left as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct UserFacts {
    pub user_id: Uuid,
    pub created_at: Option<NaiveDateTime>,
    /// The plan tier and its version (identity's `planTierChangedAt`;
    /// `None`: the registration's tier, older than any change).
    pub plan: Option<(String, Option<NaiveDateTime>)>,
    pub profile: Option<Profile>,
}

/// The user's role and flags, ordered by `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub role: String,
    pub email_verified: bool,
    pub is_active: bool,
    pub version: NaiveDateTime,
}

/// Applies what is known of a user: `createdAt` once known stays; the plan
/// tier only over an older (or no) change; the profile only over an older
/// one; a tombstone stays.
pub async fn user(conn: &mut AsyncPgConnection, facts: &UserFacts) -> QueryResult<()> {
    let (plan_tier, plan_version) = match &facts.plan {
        Some((tier, version)) => (Some(tier.as_str()), *version),
        None => (None, None),
    };
    let profile = facts.profile.as_ref();
    diesel::sql_query(
        "INSERT INTO users AS u (userId, createdAt, planTier, planTierVersion, role, \
           emailVerified, isActive, profileVersion) \
         VALUES ($1, $2, COALESCE($3, 'FREE'), $4, COALESCE($5, 'user'), COALESCE($6, FALSE), \
           COALESCE($7, TRUE), $8) \
         ON CONFLICT (userId) DO UPDATE SET \
           createdAt = COALESCE(u.createdAt, EXCLUDED.createdAt), \
           planTier = CASE WHEN $3 IS NOT NULL AND (u.planTierVersion IS NULL \
               OR EXCLUDED.planTierVersion >= u.planTierVersion) \
             THEN EXCLUDED.planTier ELSE u.planTier END, \
           planTierVersion = CASE WHEN $3 IS NOT NULL AND (u.planTierVersion IS NULL \
               OR EXCLUDED.planTierVersion >= u.planTierVersion) \
             THEN EXCLUDED.planTierVersion ELSE u.planTierVersion END, \
           role = CASE WHEN $5 IS NOT NULL AND (u.profileVersion IS NULL \
               OR EXCLUDED.profileVersion >= u.profileVersion) \
             THEN EXCLUDED.role ELSE u.role END, \
           emailVerified = CASE WHEN $5 IS NOT NULL AND (u.profileVersion IS NULL \
               OR EXCLUDED.profileVersion >= u.profileVersion) \
             THEN EXCLUDED.emailVerified OR u.emailVerified ELSE u.emailVerified END, \
           isActive = CASE WHEN $5 IS NOT NULL AND (u.profileVersion IS NULL \
               OR EXCLUDED.profileVersion >= u.profileVersion) \
             THEN EXCLUDED.isActive ELSE u.isActive END, \
           profileVersion = CASE WHEN $5 IS NOT NULL AND (u.profileVersion IS NULL \
               OR EXCLUDED.profileVersion >= u.profileVersion) \
             THEN EXCLUDED.profileVersion ELSE u.profileVersion END, \
           updatedAt = CURRENT_TIMESTAMP",
    )
    .bind::<SqlUuid, _>(facts.user_id)
    .bind::<Nullable<Timestamp>, _>(facts.created_at)
    .bind::<Nullable<Text>, _>(plan_tier)
    .bind::<Nullable<Timestamp>, _>(plan_version)
    .bind::<Nullable<Text>, _>(profile.map(|p| p.role.as_str()))
    .bind::<Nullable<Bool>, _>(profile.map(|p| p.email_verified))
    .bind::<Nullable<Bool>, _>(profile.map(|p| p.is_active))
    .bind::<Nullable<Timestamp>, _>(profile.map(|p| p.version))
    .execute(conn)
    .await?;
    Ok(())
}

/// The user proved their email address (a flag that only turns on).
pub async fn email_verified(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO users (userId, emailVerified) VALUES ($1, TRUE) \
         ON CONFLICT (userId) DO UPDATE SET emailVerified = TRUE, updatedAt = CURRENT_TIMESTAMP",
    )
    .bind::<SqlUuid, _>(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The user's tombstone, and their conversations' (chat deletes them with
/// the user).
pub async fn user_deleted(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO users AS u (userId, deletedAt) VALUES ($1, $2) \
         ON CONFLICT (userId) DO UPDATE SET deletedAt = COALESCE(u.deletedAt, EXCLUDED.deletedAt), \
           updatedAt = CURRENT_TIMESTAMP",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Timestamp, _>(at)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE conversations SET deletedAt = $2, updatedAt = CURRENT_TIMESTAMP \
         WHERE userId = $1 AND deletedAt IS NULL",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Timestamp, _>(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A billing plan (`tier`: what its name stands for, `Plus` -> `PLUS`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    pub id: Uuid,
    pub name: String,
    pub monthly_price: BigDecimal,
    pub yearly_price: Option<BigDecimal>,
}

/// Inserts or updates a plan (billing's current row wins: plans carry no
/// version, and ListPlans is always the present).
pub async fn plan(conn: &mut AsyncPgConnection, plan: &PlanRow) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO plans (id, name, tier, monthlyPrice, yearlyPrice) \
         VALUES ($1, $2, upper($2), $3, $4) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, tier = EXCLUDED.tier, \
           monthlyPrice = EXCLUDED.monthlyPrice, yearlyPrice = EXCLUDED.yearlyPrice, \
           updatedAt = CURRENT_TIMESTAMP \
         WHERE (plans.name, plans.monthlyPrice, plans.yearlyPrice) IS DISTINCT FROM \
           (EXCLUDED.name, EXCLUDED.monthlyPrice, EXCLUDED.yearlyPrice)",
    )
    .bind::<SqlUuid, _>(plan.id)
    .bind::<Text, _>(&plan.name)
    .bind::<Numeric, _>(&plan.monthly_price)
    .bind::<Nullable<Numeric>, _>(plan.yearly_price.as_ref())
    .execute(conn)
    .await?;
    Ok(())
}

/// A user's subscription as billing keeps it (one per user), at `version`.
/// `None` fields (events written before they existed) keep what is known.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionState {
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    /// The tier the event grants (a fallback for a missing `plan_id`).
    pub plan_tier: Option<String>,
    pub status: String,
    pub interval: Option<String>,
    pub current_period_start: Option<NaiveDateTime>,
    pub current_period_end: Option<NaiveDateTime>,
    /// The row's createdAt (backfill); events give the period start.
    pub created_at: Option<NaiveDateTime>,
    pub version: NaiveDateTime,
}

/// Applies a subscription state unless a newer one was applied; refreshes
/// the revenue days it touches (the caller takes today's MRR snapshot
/// after its changes: [`snapshot_mrr`]).
pub async fn subscription(
    conn: &mut AsyncPgConnection,
    state: &SubscriptionState,
) -> QueryResult<()> {
    let before = days_of_subscription(conn, state.user_id).await?;
    let created_at = state.created_at.or(state.current_period_start);
    diesel::sql_query(
        "INSERT INTO subscriptions AS s (userId, subscriptionId, planId, planTier, status, \
           billingInterval, currentPeriodStart, currentPeriodEnd, createdAt, canceledAt, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $5 = 'canceled' THEN $10 END, $10) \
         ON CONFLICT (userId) DO UPDATE SET \
           subscriptionId = COALESCE(EXCLUDED.subscriptionId, s.subscriptionId), \
           planId = COALESCE(EXCLUDED.planId, s.planId), \
           planTier = COALESCE(EXCLUDED.planTier, s.planTier), \
           status = EXCLUDED.status, \
           billingInterval = COALESCE(EXCLUDED.billingInterval, s.billingInterval), \
           currentPeriodStart = COALESCE(EXCLUDED.currentPeriodStart, s.currentPeriodStart), \
           currentPeriodEnd = EXCLUDED.currentPeriodEnd, \
           createdAt = LEAST(s.createdAt, EXCLUDED.createdAt), \
           canceledAt = CASE WHEN EXCLUDED.status = 'canceled' \
             THEN COALESCE(CASE WHEN s.status = 'canceled' THEN s.canceledAt END, EXCLUDED.version) END, \
           version = EXCLUDED.version, \
           updatedAt = CURRENT_TIMESTAMP \
         WHERE EXCLUDED.version >= s.version",
    )
    .bind::<SqlUuid, _>(state.user_id)
    .bind::<Nullable<SqlUuid>, _>(state.subscription_id)
    .bind::<Nullable<SqlUuid>, _>(state.plan_id)
    .bind::<Nullable<Text>, _>(state.plan_tier.as_deref())
    .bind::<Text, _>(&state.status)
    .bind::<Nullable<Text>, _>(state.interval.as_deref())
    .bind::<Nullable<Timestamp>, _>(state.current_period_start)
    .bind::<Nullable<Timestamp>, _>(state.current_period_end)
    .bind::<Nullable<Timestamp>, _>(created_at)
    .bind::<Timestamp, _>(state.version)
    .execute(conn)
    .await?;
    // An older state still teaches when the subscription began.
    diesel::sql_query(
        "UPDATE subscriptions SET createdAt = $2 WHERE userId = $1 AND $2 < createdAt",
    )
    .bind::<SqlUuid, _>(state.user_id)
    .bind::<Nullable<Timestamp>, _>(created_at)
    .execute(conn)
    .await?;
    let after = days_of_subscription(conn, state.user_id).await?;
    refresh_revenue_days(conn, before.into_iter().chain(after)).await
}

#[derive(diesel::QueryableByName)]
struct Days {
    #[diesel(sql_type = Nullable<Date>)]
    a: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    b: Option<NaiveDate>,
}

/// The days of the subscription's creation and cancellation.
async fn days_of_subscription(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<Vec<NaiveDate>> {
    let days: Vec<Days> = diesel::sql_query(
        "SELECT createdAt::date AS a, canceledAt::date AS b FROM subscriptions \
         WHERE userId = $1 FOR UPDATE",
    )
    .bind::<SqlUuid, _>(user_id)
    .load(conn)
    .await?;
    Ok(days
        .into_iter()
        .flat_map(|d| [d.a, d.b])
        .flatten()
        .collect())
}

/// A payment as billing keeps it, at `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentState {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub amount: BigDecimal,
    pub amount_refunded: BigDecimal,
    pub currency: String,
    /// `pending`, `succeeded`, `failed` or `refunded`.
    pub status: String,
    pub created_at: NaiveDateTime,
    pub version: NaiveDateTime,
}

/// Applies a payment state unless a newer one was applied (of two with the
/// same version, the one that refunded more wins: `succeeded` and
/// `refunded` from one Stripe event); refreshes the revenue days touched.
pub async fn payment(conn: &mut AsyncPgConnection, state: &PaymentState) -> QueryResult<()> {
    #[derive(diesel::QueryableByName)]
    struct Day {
        #[diesel(sql_type = Date)]
        day: NaiveDate,
    }
    let before: Vec<Day> = diesel::sql_query(
        "SELECT createdAt::date AS day FROM payments WHERE paymentId = $1 FOR UPDATE",
    )
    .bind::<SqlUuid, _>(state.payment_id)
    .load(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO payments AS p (paymentId, userId, amount, amountRefunded, currency, status, \
           createdAt, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (paymentId) DO UPDATE SET \
           createdAt = LEAST(p.createdAt, EXCLUDED.createdAt), \
           amount = CASE WHEN ((EXCLUDED.version > p.version) OR (EXCLUDED.version = p.version \
               AND EXCLUDED.amountRefunded >= p.amountRefunded)) THEN EXCLUDED.amount ELSE p.amount END, \
           amountRefunded = CASE WHEN ((EXCLUDED.version > p.version) OR (EXCLUDED.version = p.version \
               AND EXCLUDED.amountRefunded >= p.amountRefunded)) \
             THEN EXCLUDED.amountRefunded ELSE p.amountRefunded END, \
           currency = CASE WHEN ((EXCLUDED.version > p.version) OR (EXCLUDED.version = p.version \
               AND EXCLUDED.amountRefunded >= p.amountRefunded)) THEN EXCLUDED.currency ELSE p.currency END, \
           status = CASE WHEN ((EXCLUDED.version > p.version) OR (EXCLUDED.version = p.version \
               AND EXCLUDED.amountRefunded >= p.amountRefunded)) THEN EXCLUDED.status ELSE p.status END, \
           version = GREATEST(p.version, EXCLUDED.version), \
           updatedAt = CURRENT_TIMESTAMP",
    )
    .bind::<SqlUuid, _>(state.payment_id)
    .bind::<SqlUuid, _>(state.user_id)
    .bind::<Numeric, _>(&state.amount)
    .bind::<Numeric, _>(&state.amount_refunded)
    .bind::<Text, _>(&state.currency)
    .bind::<Text, _>(&state.status)
    .bind::<Timestamp, _>(state.created_at)
    .bind::<Timestamp, _>(state.version)
    .execute(conn)
    .await?;
    let day = state.created_at.date();
    refresh_revenue_days(
        conn,
        before
            .into_iter()
            .map(|d| d.day)
            .chain(std::iter::once(day)),
    )
    .await
}

/// An invoice as billing keeps it, at `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceState {
    pub invoice_id: Uuid,
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub invoice_number: String,
    pub status: String,
    pub subtotal: BigDecimal,
    pub tax: BigDecimal,
    pub total: BigDecimal,
    pub due_date: Option<NaiveDate>,
    pub paid_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub version: NaiveDateTime,
}

/// Applies an invoice state unless a newer one was applied.
pub async fn invoice(conn: &mut AsyncPgConnection, state: &InvoiceState) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO invoices AS i (invoiceId, userId, subscriptionId, invoiceNumber, status, \
           subtotal, tax, total, dueDate, paidAt, createdAt, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (invoiceId) DO UPDATE SET userId = EXCLUDED.userId, \
           subscriptionId = EXCLUDED.subscriptionId, invoiceNumber = EXCLUDED.invoiceNumber, \
           status = EXCLUDED.status, subtotal = EXCLUDED.subtotal, tax = EXCLUDED.tax, \
           total = EXCLUDED.total, dueDate = EXCLUDED.dueDate, paidAt = EXCLUDED.paidAt, \
           createdAt = EXCLUDED.createdAt, version = EXCLUDED.version, \
           updatedAt = CURRENT_TIMESTAMP \
         WHERE EXCLUDED.version >= i.version",
    )
    .bind::<SqlUuid, _>(state.invoice_id)
    .bind::<SqlUuid, _>(state.user_id)
    .bind::<Nullable<SqlUuid>, _>(state.subscription_id)
    .bind::<Text, _>(&state.invoice_number)
    .bind::<Text, _>(&state.status)
    .bind::<Numeric, _>(&state.subtotal)
    .bind::<Numeric, _>(&state.tax)
    .bind::<Numeric, _>(&state.total)
    .bind::<Nullable<Date>, _>(state.due_date)
    .bind::<Nullable<Timestamp>, _>(state.paid_at)
    .bind::<Timestamp, _>(state.created_at)
    .bind::<Timestamp, _>(state.version)
    .execute(conn)
    .await?;
    Ok(())
}

/// `billing.invoice.paid`: the invoice turns `paid` unless a newer state
/// was applied. An invoice not known yet waits for its
/// `billing.invoice.changed` (which carries the whole row).
pub async fn invoice_paid(
    conn: &mut AsyncPgConnection,
    invoice_id: Uuid,
    paid_at: NaiveDateTime,
    version: NaiveDateTime,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE invoices SET status = 'paid', paidAt = $2, version = $3, \
           updatedAt = CURRENT_TIMESTAMP WHERE invoiceId = $1 AND version <= $3",
    )
    .bind::<SqlUuid, _>(invoice_id)
    .bind::<Timestamp, _>(paid_at)
    .bind::<Timestamp, _>(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// A conversation's counters at `version` (chat's `updatedAt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub message_count: i32,
    pub token_count: i32,
    pub version: NaiveDateTime,
}

/// What is known of a conversation: its creation, its counters, or both
/// (an exported row).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationFacts {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub model: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub counters: Option<Counters>,
}

/// Applies what is known of a conversation: its creation once, its
/// counters over older ones; a conversation of a deleted user is born
/// deleted.
pub async fn conversation(
    conn: &mut AsyncPgConnection,
    facts: &ConversationFacts,
) -> QueryResult<()> {
    let counters = facts.counters;
    diesel::sql_query(
        "INSERT INTO conversations AS c (conversationId, userId, model, createdAt, messageCount, \
           tokenCount, countersVersion, deletedAt) \
         VALUES ($1, $2, $3, $4, COALESCE($5, 0), COALESCE($6, 0), $7, \
           (SELECT deletedAt FROM users WHERE userId = $2)) \
         ON CONFLICT (conversationId) DO UPDATE SET \
           model = COALESCE(c.model, EXCLUDED.model), \
           createdAt = COALESCE(c.createdAt, EXCLUDED.createdAt), \
           messageCount = CASE WHEN $7 IS NOT NULL AND (c.countersVersion IS NULL \
               OR EXCLUDED.countersVersion >= c.countersVersion) \
             THEN EXCLUDED.messageCount ELSE c.messageCount END, \
           tokenCount = CASE WHEN $7 IS NOT NULL AND (c.countersVersion IS NULL \
               OR EXCLUDED.countersVersion >= c.countersVersion) \
             THEN EXCLUDED.tokenCount ELSE c.tokenCount END, \
           countersVersion = GREATEST(c.countersVersion, EXCLUDED.countersVersion), \
           deletedAt = COALESCE(c.deletedAt, EXCLUDED.deletedAt), \
           updatedAt = CURRENT_TIMESTAMP",
    )
    .bind::<SqlUuid, _>(facts.conversation_id)
    .bind::<SqlUuid, _>(facts.user_id)
    .bind::<Nullable<Text>, _>(facts.model.as_deref())
    .bind::<Nullable<Timestamp>, _>(facts.created_at)
    .bind::<Nullable<Integer>, _>(counters.map(|c| c.message_count))
    .bind::<Nullable<Integer>, _>(counters.map(|c| c.token_count))
    .bind::<Nullable<Timestamp>, _>(counters.map(|c| c.version))
    .execute(conn)
    .await?;
    Ok(())
}

/// The conversation's tombstone.
pub async fn conversation_deleted(
    conn: &mut AsyncPgConnection,
    conversation_id: Uuid,
    user_id: Uuid,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO conversations AS c (conversationId, userId, deletedAt) VALUES ($1, $2, $3) \
         ON CONFLICT (conversationId) DO UPDATE SET \
           deletedAt = COALESCE(c.deletedAt, EXCLUDED.deletedAt), updatedAt = CURRENT_TIMESTAMP",
    )
    .bind::<SqlUuid, _>(conversation_id)
    .bind::<SqlUuid, _>(user_id)
    .bind::<Timestamp, _>(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A tokenUsage row of chat's (a fact).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenUsageFact {
    pub usage_id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub total_tokens: i32,
    pub cost_usd: BigDecimal,
    pub billing_month: NaiveDate,
    pub created_at: NaiveDateTime,
}

/// Records a tokenUsage fact; the first time only, adds it to the day's
/// `chatAnalytics` and its month's `tokenUsageMonthly`. `true` when it was new.
pub async fn token_usage(conn: &mut AsyncPgConnection, fact: &TokenUsageFact) -> QueryResult<bool> {
    let inserted = diesel::sql_query(
        "INSERT INTO tokenUsage (usageId, billingMonth, userId, conversationId, provider, model, \
           promptTokens, completionTokens, totalTokens, costUsd, createdAt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind::<SqlUuid, _>(fact.usage_id)
    .bind::<Date, _>(fact.billing_month)
    .bind::<SqlUuid, _>(fact.user_id)
    .bind::<Nullable<SqlUuid>, _>(fact.conversation_id)
    .bind::<Text, _>(&fact.provider)
    .bind::<Text, _>(&fact.model)
    .bind::<Integer, _>(fact.prompt_tokens)
    .bind::<Integer, _>(fact.completion_tokens)
    .bind::<Integer, _>(fact.total_tokens)
    .bind::<Numeric, _>(&fact.cost_usd)
    .bind::<Timestamp, _>(fact.created_at)
    .execute(conn)
    .await?
        == 1;
    if inserted {
        diesel::sql_query(
            "INSERT INTO chatAnalytics AS a (day, userId, model, promptTokens, completionTokens, \
               totalTokens, costUsd) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (day, userId, model) DO UPDATE SET \
               promptTokens = a.promptTokens + EXCLUDED.promptTokens, \
               completionTokens = a.completionTokens + EXCLUDED.completionTokens, \
               totalTokens = a.totalTokens + EXCLUDED.totalTokens, \
               costUsd = a.costUsd + EXCLUDED.costUsd",
        )
        .bind::<Date, _>(fact.created_at.date())
        .bind::<SqlUuid, _>(fact.user_id)
        .bind::<Text, _>(&fact.model)
        .bind::<BigInt, _>(i64::from(fact.prompt_tokens))
        .bind::<BigInt, _>(i64::from(fact.completion_tokens))
        .bind::<BigInt, _>(i64::from(fact.total_tokens))
        .bind::<Numeric, _>(&fact.cost_usd)
        .execute(conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO tokenUsageMonthly AS m (billingMonth, model, usageCount, totalTokens, \
               costUsd) VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (billingMonth, model) DO UPDATE SET \
               usageCount = m.usageCount + 1, totalTokens = m.totalTokens + EXCLUDED.totalTokens, \
               costUsd = m.costUsd + EXCLUDED.costUsd",
        )
        .bind::<Date, _>(fact.billing_month)
        .bind::<Text, _>(&fact.model)
        .bind::<BigInt, _>(i64::from(fact.total_tokens))
        .bind::<Numeric, _>(&fact.cost_usd)
        .execute(conn)
        .await?;
    }
    Ok(inserted)
}

/// A message of chat's (a fact, without its content).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageFact {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub token_count: i32,
    pub model: Option<String>,
    pub created_at: NaiveDateTime,
}

/// Records a message fact; the first time only, counts it in the day's
/// `chatAnalytics` (model `''` for a message without one). `true` when it
/// was new.
pub async fn message(conn: &mut AsyncPgConnection, fact: &MessageFact) -> QueryResult<bool> {
    let inserted = diesel::sql_query(
        "INSERT INTO messages (messageId, createdAt, conversationId, userId, role, tokenCount, model) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind::<SqlUuid, _>(fact.message_id)
    .bind::<Timestamp, _>(fact.created_at)
    .bind::<SqlUuid, _>(fact.conversation_id)
    .bind::<SqlUuid, _>(fact.user_id)
    .bind::<Text, _>(&fact.role)
    .bind::<Integer, _>(fact.token_count)
    .bind::<Nullable<Text>, _>(fact.model.as_deref())
    .execute(conn)
    .await?
        == 1;
    if inserted {
        diesel::sql_query(
            "INSERT INTO chatAnalytics AS a (day, userId, model, messages) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (day, userId, model) DO UPDATE SET messages = a.messages + 1",
        )
        .bind::<Date, _>(fact.created_at.date())
        .bind::<SqlUuid, _>(fact.user_id)
        .bind::<Text, _>(fact.model.as_deref().unwrap_or(""))
        .execute(conn)
        .await?;
    }
    Ok(inserted)
}

/// Records the event about a user in `userEvents`, which is also the
/// consumer's record of the events it applied (the event id is unique):
/// `true` the first time, `false` when it was applied before (a
/// redelivery), in which case the caller skips the effect. Call it in the
/// transaction that applies the event.
pub async fn user_event(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    user_id: Uuid,
    event_type: &str,
    occurred_at: NaiveDateTime,
    properties: &serde_json::Value,
) -> QueryResult<bool> {
    let inserted = diesel::sql_query(
        "INSERT INTO userEvents (eventId, userId, type, occurredAt, properties) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(user_id)
    .bind::<Text, _>(event_type)
    .bind::<Timestamp, _>(occurred_at)
    .bind::<Jsonb, _>(properties)
    .execute(conn)
    .await?;
    Ok(inserted == 1)
}

/// Recomputes `revenueAnalytics` of each day from the read models (so the
/// order of the changes does not matter): net USD revenue of the payments
/// made that day, subscriptions begun, and subscriptions canceled.
pub async fn refresh_revenue_days(
    conn: &mut AsyncPgConnection,
    days: impl IntoIterator<Item = NaiveDate>,
) -> QueryResult<()> {
    let mut days: Vec<NaiveDate> = days.into_iter().collect();
    days.sort_unstable();
    days.dedup();
    for day in days {
        diesel::sql_query(
            "INSERT INTO revenueAnalytics AS r (day, revenue, newSubscriptions, churnedSubscriptions) \
             SELECT $1::date, \
               COALESCE((SELECT SUM(amount - amountRefunded) FROM payments \
                 WHERE status IN ('succeeded', 'refunded') AND currency = 'USD' \
                   AND createdAt >= $1::date AND createdAt < $1::date + 1), 0), \
               (SELECT count(*) FROM subscriptions \
                 WHERE createdAt >= $1::date AND createdAt < $1::date + 1), \
               (SELECT count(*) FROM subscriptions \
                 WHERE canceledAt >= $1::date AND canceledAt < $1::date + 1) \
             ON CONFLICT (day) DO UPDATE SET revenue = EXCLUDED.revenue, \
               newSubscriptions = EXCLUDED.newSubscriptions, \
               churnedSubscriptions = EXCLUDED.churnedSubscriptions, updatedAt = CURRENT_TIMESTAMP",
        )
        .bind::<Date, _>(day)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Writes today's (UTC) MRR snapshot into `revenueAnalytics`.
pub async fn snapshot_mrr(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query(format!(
        "INSERT INTO revenueAnalytics AS r (day, mrr) SELECT CURRENT_DATE, ({}) \
         ON CONFLICT (day) DO UPDATE SET mrr = EXCLUDED.mrr, updatedAt = CURRENT_TIMESTAMP",
        super::queries::MRR_SQL
    ))
    .execute(conn)
    .await?;
    Ok(())
}

// Set-based writes for a batch of events (the consumer's batch mode): the
// same effects as the functions above applied one after another, in one
// statement per kind. The ordering rules make the order inside a batch
// irrelevant: facts by id, counters by version, userEvents by event id.

/// [`user_event`] for many events, each payload as JSON text (the
/// delivery's own, parsed by PostgreSQL: not re-serialised), in one
/// statement: the ids recorded now (each once, even when it occurs twice
/// in the batch); the others were applied before. The ids are taken in
/// order, so two batches applied at once that share one (a redelivery)
/// wait for each other instead of deadlocking.
pub async fn user_events_json(
    conn: &mut AsyncPgConnection,
    events: &[(Uuid, Uuid, &str, NaiveDateTime, &str)],
) -> QueryResult<std::collections::HashSet<Uuid>> {
    #[derive(diesel::QueryableByName)]
    struct Recorded {
        #[diesel(sql_type = SqlUuid)]
        eventid: Uuid,
    }
    if events.is_empty() {
        return Ok(Default::default());
    }
    let recorded: Vec<Recorded> = diesel::sql_query(
        "INSERT INTO userEvents (eventId, userId, type, occurredAt, properties) \
         SELECT e, u, t, o, p::jsonb \
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamp[], $5::text[]) \
           AS b (e, u, t, o, p) \
         ORDER BY e \
         ON CONFLICT DO NOTHING RETURNING eventId",
    )
    .bind::<Array<SqlUuid>, _>(events.iter().map(|e| e.0).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(events.iter().map(|e| e.1).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(events.iter().map(|e| e.2).collect::<Vec<_>>())
    .bind::<Array<Timestamp>, _>(events.iter().map(|e| e.3).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(events.iter().map(|e| e.4).collect::<Vec<_>>())
    .load(conn)
    .await?;
    Ok(recorded.into_iter().map(|r| r.eventid).collect())
}

/// [`message`] and [`token_usage`] for many facts, in one statement: the
/// new facts (an id twice, or known before, counts once) are added to
/// `tokenUsageMonthly` and, summed per (day, user, model), to
/// `chatAnalytics`, each upserted once and in key order. Two batches
/// applied at once then lock the rows they share in the same order (one
/// waits for the other; they never deadlock), which two statements bumping
/// `chatAnalytics` one after the other would not promise: an exchange's
/// message and its usage can fall in different batches.
pub async fn chat_facts(
    conn: &mut AsyncPgConnection,
    messages: &[MessageFact],
    usages: &[TokenUsageFact],
) -> QueryResult<()> {
    if messages.is_empty() && usages.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "WITH new_messages AS (INSERT INTO messages (messageId, createdAt, conversationId, \
             userId, role, tokenCount, model) \
           SELECT * FROM unnest($1::uuid[], $2::timestamp[], $3::uuid[], $4::uuid[], $5::text[], \
             $6::int[], $7::text[]) \
           ON CONFLICT DO NOTHING \
           RETURNING createdAt::date AS day, userId, COALESCE(model, '') AS model), \
         new_usages AS (INSERT INTO tokenUsage (usageId, billingMonth, userId, conversationId, \
             provider, model, promptTokens, completionTokens, totalTokens, costUsd, createdAt) \
           SELECT * FROM unnest($8::uuid[], $9::date[], $10::uuid[], $11::uuid[], $12::text[], \
             $13::text[], $14::int[], $15::int[], $16::int[], $17::numeric[], $18::timestamp[]) \
           ON CONFLICT DO NOTHING \
           RETURNING billingMonth, createdAt::date AS day, userId, model, promptTokens, \
             completionTokens, totalTokens, costUsd), \
         monthly AS (INSERT INTO tokenUsageMonthly AS m (billingMonth, model, usageCount, \
             totalTokens, costUsd) \
           SELECT billingMonth, model, count(*), SUM(totalTokens), SUM(costUsd) FROM new_usages \
           GROUP BY billingMonth, model ORDER BY billingMonth, model \
           ON CONFLICT (billingMonth, model) DO UPDATE SET \
             usageCount = m.usageCount + EXCLUDED.usageCount, \
             totalTokens = m.totalTokens + EXCLUDED.totalTokens, \
             costUsd = m.costUsd + EXCLUDED.costUsd) \
         INSERT INTO chatAnalytics AS a (day, userId, model, messages, promptTokens, \
           completionTokens, totalTokens, costUsd) \
         SELECT day, userId, model, SUM(messages), SUM(promptTokens), SUM(completionTokens), \
           SUM(totalTokens), SUM(costUsd) \
         FROM (SELECT day, userId, model, 1 AS messages, 0 AS promptTokens, \
             0 AS completionTokens, 0 AS totalTokens, 0::numeric AS costUsd FROM new_messages \
           UNION ALL SELECT day, userId, model, 0, promptTokens, completionTokens, totalTokens, \
             costUsd FROM new_usages) n \
         GROUP BY day, userId, model ORDER BY day, userId, model \
         ON CONFLICT (day, userId, model) DO UPDATE SET \
           messages = a.messages + EXCLUDED.messages, \
           promptTokens = a.promptTokens + EXCLUDED.promptTokens, \
           completionTokens = a.completionTokens + EXCLUDED.completionTokens, \
           totalTokens = a.totalTokens + EXCLUDED.totalTokens, \
           costUsd = a.costUsd + EXCLUDED.costUsd",
    )
    .bind::<Array<SqlUuid>, _>(messages.iter().map(|f| f.message_id).collect::<Vec<_>>())
    .bind::<Array<Timestamp>, _>(messages.iter().map(|f| f.created_at).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(
        messages
            .iter()
            .map(|f| f.conversation_id)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<SqlUuid>, _>(messages.iter().map(|f| f.user_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(messages.iter().map(|f| f.role.as_str()).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(messages.iter().map(|f| f.token_count).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(
        messages
            .iter()
            .map(|f| f.model.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<SqlUuid>, _>(usages.iter().map(|f| f.usage_id).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(usages.iter().map(|f| f.billing_month).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(usages.iter().map(|f| f.user_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<SqlUuid>>, _>(
        usages.iter().map(|f| f.conversation_id).collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(
        usages
            .iter()
            .map(|f| f.provider.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(usages.iter().map(|f| f.model.as_str()).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(usages.iter().map(|f| f.prompt_tokens).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(
        usages
            .iter()
            .map(|f| f.completion_tokens)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Integer>, _>(usages.iter().map(|f| f.total_tokens).collect::<Vec<_>>())
    .bind::<Array<Numeric>, _>(usages.iter().map(|f| &f.cost_usd).collect::<Vec<_>>())
    .bind::<Array<Timestamp>, _>(usages.iter().map(|f| f.created_at).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// [`conversation`] with counters only (no model, no creation) for many
/// conversations, in one statement: of a conversation's counters in the
/// batch, the newest (the last of equal versions, as one after another
/// would leave) is written, under the same version rule.
pub async fn conversations_counters(
    conn: &mut AsyncPgConnection,
    counters: &[(Uuid, Uuid, Counters)],
) -> QueryResult<()> {
    if counters.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO conversations AS c (conversationId, userId, model, createdAt, messageCount, \
           tokenCount, countersVersion, deletedAt) \
         SELECT DISTINCT ON (b.id) b.id, b.userId, NULL, NULL, b.messages, b.tokens, b.version, \
           (SELECT deletedAt FROM users WHERE userId = b.userId) \
         FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $5::timestamp[]) \
           WITH ORDINALITY AS b (id, userId, messages, tokens, version, ord) \
         ORDER BY b.id, b.version DESC, b.ord DESC \
         ON CONFLICT (conversationId) DO UPDATE SET \
           messageCount = CASE WHEN c.countersVersion IS NULL \
               OR EXCLUDED.countersVersion >= c.countersVersion \
             THEN EXCLUDED.messageCount ELSE c.messageCount END, \
           tokenCount = CASE WHEN c.countersVersion IS NULL \
               OR EXCLUDED.countersVersion >= c.countersVersion \
             THEN EXCLUDED.tokenCount ELSE c.tokenCount END, \
           countersVersion = GREATEST(c.countersVersion, EXCLUDED.countersVersion), \
           deletedAt = COALESCE(c.deletedAt, EXCLUDED.deletedAt), \
           updatedAt = CURRENT_TIMESTAMP",
    )
    .bind::<Array<SqlUuid>, _>(counters.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(counters.iter().map(|c| c.1).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(
        counters
            .iter()
            .map(|c| c.2.message_count)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Integer>, _>(counters.iter().map(|c| c.2.token_count).collect::<Vec<_>>())
    .bind::<Array<Timestamp>, _>(counters.iter().map(|c| c.2.version).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}
