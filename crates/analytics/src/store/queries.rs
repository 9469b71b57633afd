//! The operators' figures, read from the read models. Each answers what the
//! seed's sample query of the same name answers on the owning services'
//! tables (docs/analytics.md), with the seed's two faults mended. Decimals
//! are read as PostgreSQL prints them (`::text`), so an answer is the
//! seed's, digit for digit. The session's time zone is UTC
//! (`aichat_db::pool`), so `CURRENT_DATE` and `LOCALTIMESTAMP` are UTC.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::{
    QueryResult, QueryableByName,
    sql_types::{BigInt, Date, Integer, Nullable, Text, Timestamp, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// The plan a subscription is on: `p`, its `planId`, or `f` (an event
/// written before the field existed) the plan of the tier it granted. Two
/// equi-joins, so they hash.
const PLAN_OF_SUBSCRIPTION: &str = "LEFT JOIN plans p ON p.id = s.planId \
     LEFT JOIN plans f ON s.planId IS NULL AND f.tier = s.planTier";

/// A subscription whose user is not deleted (billing deletes a deleted
/// user's subscription row); an anti-join on `idx_users_deleted`.
const USER_NOT_DELETED: &str = "NOT EXISTS (SELECT 1 FROM users du \
     WHERE du.userId = s.userId AND du.deletedAt IS NOT NULL)";

/// Monthly recurring revenue now, a scalar: the seed's query with its fault
/// mended (a yearly subscription counts yearlyPrice / 12), rounded to cents.
pub const MRR_SQL: &str = "SELECT COALESCE(round(SUM(CASE \
       WHEN s.billingInterval = 'year' AND COALESCE(p.yearlyPrice, f.yearlyPrice) IS NOT NULL \
         THEN COALESCE(p.yearlyPrice, f.yearlyPrice) / 12 \
       ELSE COALESCE(p.monthlyPrice, f.monthlyPrice) END), 2), 0.00)::numeric(14, 2) \
     FROM subscriptions s LEFT JOIN plans p ON p.id = s.planId \
       LEFT JOIN plans f ON s.planId IS NULL AND f.tier = s.planTier \
     WHERE s.status = 'active' \
       AND s.currentPeriodStart <= CURRENT_DATE AND s.currentPeriodEnd > CURRENT_DATE \
       AND NOT EXISTS (SELECT 1 FROM users du WHERE du.userId = s.userId AND du.deletedAt IS NOT NULL)";

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct SignupDay {
    #[diesel(sql_type = Date)]
    pub date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub new_users: i64,
}

/// New (not deleted) users per UTC day over the last `days` days, today
/// included, newest first; a day without signups has 0.
pub async fn signups(conn: &mut AsyncPgConnection, days: i32) -> QueryResult<Vec<SignupDay>> {
    diesel::sql_query(
        "SELECT d::date AS date, COALESCE(c.n, 0) AS new_users \
         FROM generate_series((CURRENT_DATE - ($1 - 1))::timestamp, CURRENT_DATE::timestamp, \
           interval '1 day') AS d \
         LEFT JOIN (SELECT createdAt::date AS day, count(*) AS n FROM users \
             WHERE deletedAt IS NULL AND createdAt >= (CURRENT_DATE - ($1 - 1))::timestamp \
             GROUP BY 1) c ON c.day = d::date \
         ORDER BY d DESC",
    )
    .bind::<Integer, _>(days)
    .load(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct PlanCount {
    #[diesel(sql_type = Text)]
    pub plan_tier: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Active users per plan tier.
pub async fn users_by_plan(conn: &mut AsyncPgConnection) -> QueryResult<Vec<PlanCount>> {
    diesel::sql_query(
        "SELECT planTier AS plan_tier, count(*) AS count FROM users \
         WHERE deletedAt IS NULL AND isActive AND createdAt IS NOT NULL \
         GROUP BY planTier ORDER BY planTier",
    )
    .load(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct UserUsage {
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub total_tokens: i64,
    #[diesel(sql_type = Text)]
    pub total_cost: String,
}

/// Tokens and cost per user in a billing month, most tokens first.
pub async fn token_usage_by_user(
    conn: &mut AsyncPgConnection,
    month: NaiveDate,
) -> QueryResult<Vec<UserUsage>> {
    diesel::sql_query(
        "SELECT userId AS user_id, SUM(totalTokens) AS total_tokens, \
           SUM(costUsd)::text AS total_cost \
         FROM tokenUsage WHERE billingMonth = $1 \
         GROUP BY userId ORDER BY total_tokens DESC, userId",
    )
    .bind::<Date, _>(month)
    .load(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ModelUsage {
    #[diesel(sql_type = Text)]
    pub model: String,
    #[diesel(sql_type = BigInt)]
    pub usage_count: i64,
    #[diesel(sql_type = BigInt)]
    pub total_tokens: i64,
    #[diesel(sql_type = Text)]
    pub avg_tokens: String,
    #[diesel(sql_type = Text)]
    pub total_cost: String,
}

/// Calls, tokens, average tokens and cost per model in a billing month,
/// most tokens first: read from `tokenUsageMonthly`, the facts' sums kept
/// as they are inserted (AVG of an integer column is exactly
/// `sum::numeric / count::numeric` in PostgreSQL, so the digits are the
/// seed's).
pub async fn token_usage_by_model(
    conn: &mut AsyncPgConnection,
    month: NaiveDate,
) -> QueryResult<Vec<ModelUsage>> {
    diesel::sql_query(
        "SELECT model, usageCount AS usage_count, totalTokens AS total_tokens, \
           (totalTokens::numeric / usageCount::numeric)::text AS avg_tokens, \
           costUsd::text AS total_cost \
         FROM tokenUsageMonthly WHERE billingMonth = $1 AND usageCount > 0 \
         ORDER BY total_tokens DESC, model",
    )
    .bind::<Date, _>(month)
    .load(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct PlanSubscriptions {
    #[diesel(sql_type = Text)]
    pub plan: String,
    #[diesel(sql_type = BigInt)]
    pub subscription_count: i64,
    #[diesel(sql_type = BigInt)]
    pub user_count: i64,
}

/// Active subscriptions per plan name.
pub async fn subscriptions(conn: &mut AsyncPgConnection) -> QueryResult<Vec<PlanSubscriptions>> {
    diesel::sql_query(format!(
        "SELECT COALESCE(p.name, f.name) AS plan, COUNT(*) AS subscription_count, \
           COUNT(DISTINCT s.userId) AS user_count \
         FROM subscriptions s {PLAN_OF_SUBSCRIPTION} \
         WHERE s.status = 'active' AND COALESCE(p.name, f.name) IS NOT NULL \
           AND {USER_NOT_DELETED} \
         GROUP BY 1 ORDER BY 1"
    ))
    .load(conn)
    .await
}

#[derive(QueryableByName)]
struct Scalar {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Monthly recurring revenue now ([`MRR_SQL`]), a decimal string.
pub async fn mrr(conn: &mut AsyncPgConnection) -> QueryResult<String> {
    let row: Scalar = diesel::sql_query(format!("SELECT ({MRR_SQL})::text AS value"))
        .get_result(conn)
        .await?;
    Ok(row.value)
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct TopUser {
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub conversation_count: i64,
    #[diesel(sql_type = BigInt)]
    pub total_tokens: i64,
}

/// Users with the most tokens in the (live) conversations started in the
/// last `days` days.
pub async fn top_users(
    conn: &mut AsyncPgConnection,
    days: i32,
    limit: i64,
) -> QueryResult<Vec<TopUser>> {
    diesel::sql_query(
        "SELECT userId AS user_id, COUNT(*) AS conversation_count, \
           SUM(tokenCount) AS total_tokens \
         FROM conversations \
         WHERE deletedAt IS NULL AND createdAt >= LOCALTIMESTAMP - make_interval(days => $1) \
         GROUP BY userId ORDER BY total_tokens DESC, userId LIMIT $2",
    )
    .bind::<Integer, _>(days)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ConversationLength {
    #[diesel(sql_type = Nullable<Text>)]
    pub avg_messages: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub avg_tokens: Option<String>,
}

/// Average messages and tokens of the (live) conversations started in the
/// last `days` days; `None` without any.
pub async fn conversation_length(
    conn: &mut AsyncPgConnection,
    days: i32,
) -> QueryResult<ConversationLength> {
    diesel::sql_query(
        "SELECT AVG(messageCount)::text AS avg_messages, AVG(tokenCount)::text AS avg_tokens \
         FROM conversations \
         WHERE deletedAt IS NULL AND createdAt >= LOCALTIMESTAMP - make_interval(days => $1)",
    )
    .bind::<Integer, _>(days)
    .get_result(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct OverdueInvoice {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub invoice_number: String,
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    #[diesel(sql_type = Text)]
    pub total: String,
    #[diesel(sql_type = Date)]
    pub due_date: NaiveDate,
}

/// Open invoices past their due date (the seed's `unpaid` is no invoice
/// status), oldest due first.
pub async fn overdue_invoices(conn: &mut AsyncPgConnection) -> QueryResult<Vec<OverdueInvoice>> {
    diesel::sql_query(
        "SELECT invoiceId AS id, invoiceNumber AS invoice_number, userId AS user_id, \
           total::text AS total, dueDate AS due_date \
         FROM invoices WHERE status = 'open' AND dueDate < CURRENT_DATE \
         ORDER BY dueDate, invoiceNumber",
    )
    .load(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct LifetimeValue {
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    #[diesel(sql_type = Text)]
    pub amount: String,
    #[diesel(sql_type = BigInt)]
    pub payment_count: i64,
    #[diesel(sql_type = Text)]
    pub total_spent: String,
    #[diesel(sql_type = Timestamp)]
    pub signup_date: NaiveDateTime,
}

/// Succeeded payments per user and amount (the seed's grouping), of users
/// that exist (the seed's JOIN users), most spent first. Grouped before the
/// join (u.createdAt depends on userId, the users key, so the groups are
/// the seed's): the payments' index is read in order and the users joined
/// once per group instead of once per payment (2.4 → 1.5 s in PostgreSQL
/// at 1.3 M payments, docs/benchmarks.md).
pub async fn lifetime_value(conn: &mut AsyncPgConnection) -> QueryResult<Vec<LifetimeValue>> {
    diesel::sql_query(
        "SELECT p.userId AS user_id, p.amount::text AS amount, p.n AS payment_count, \
           p.total::text AS total_spent, u.createdAt AS signup_date \
         FROM (SELECT userId, amount, COUNT(*) AS n, SUM(amount) AS total FROM payments \
             WHERE status = 'succeeded' GROUP BY userId, amount) p \
         JOIN users u ON u.userId = p.userId \
         WHERE u.deletedAt IS NULL AND u.createdAt IS NOT NULL \
         ORDER BY p.total DESC, p.userId, p.amount",
    )
    .load(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DailyPoint {
    #[diesel(sql_type = Date)]
    pub date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub signups: i64,
    #[diesel(sql_type = BigInt)]
    pub messages: i64,
    #[diesel(sql_type = BigInt)]
    pub tokens: i64,
    #[diesel(sql_type = Text)]
    pub cost: String,
    #[diesel(sql_type = Text)]
    pub revenue: String,
    #[diesel(sql_type = Text)]
    pub mrr: String,
    #[diesel(sql_type = BigInt)]
    pub new_subscriptions: i64,
    #[diesel(sql_type = BigInt)]
    pub churned_subscriptions: i64,
}

/// One point per UTC day of `[from, to]`, oldest first, zeros where
/// nothing happened (and where no MRR snapshot was taken).
pub async fn daily_series(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<DailyPoint>> {
    diesel::sql_query(
        "SELECT d::date AS date, COALESCE(su.n, 0) AS signups, \
           COALESCE(c.messages, 0)::bigint AS messages, COALESCE(c.tokens, 0)::bigint AS tokens, \
           COALESCE(c.cost, 0)::numeric(20, 6)::text AS cost, \
           COALESCE(r.revenue, 0)::numeric(14, 2)::text AS revenue, \
           COALESCE(r.mrr, 0)::numeric(14, 2)::text AS mrr, \
           COALESCE(r.newSubscriptions, 0)::bigint AS new_subscriptions, \
           COALESCE(r.churnedSubscriptions, 0)::bigint AS churned_subscriptions \
         FROM generate_series($1::timestamp, $2::timestamp, interval '1 day') AS d \
         LEFT JOIN (SELECT day, SUM(messages) AS messages, SUM(totalTokens) AS tokens, \
             SUM(costUsd) AS cost FROM chatAnalytics WHERE day BETWEEN $1 AND $2 GROUP BY day) c \
           ON c.day = d::date \
         LEFT JOIN (SELECT createdAt::date AS day, count(*) AS n FROM users \
             WHERE deletedAt IS NULL AND createdAt >= $1::timestamp \
               AND createdAt < $2::timestamp + interval '1 day' GROUP BY 1) su \
           ON su.day = d::date \
         LEFT JOIN revenueAnalytics r ON r.day = d::date \
         ORDER BY d",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
}
