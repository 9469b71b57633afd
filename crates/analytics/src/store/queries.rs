//! The operators' figures, read from the read models. Each answers what the
//! seed's sample query of the same name answers on the owning services'
//! tables (docs/analytics.md), with the seed's two faults mended. Decimals
//! are read as PostgreSQL prints them (`::text`), so an answer is the
//! seed's, digit for digit. The session's time zone is UTC
//! (`aichat_db::pool`), so `CURRENT_DATE` and `LOCALTIMESTAMP` are UTC.
//!
//! At 1 M users and 10 M tokenUsage facts (docs/benchmarks.md) most read
//! the aggregates of migration `2026-12-06-000001_query_aggregates`, which
//! triggers keep in the transaction of every read-model write, so a query
//! reads about as many rows as it answers; the unbounded answers
//! (TokenUsageByUser, LifetimeValue, OverdueInvoices) come in keyset pages
//! ([`Page`]).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::{
    QueryResult, QueryableByName,
    sql_types::{
        Array, BigInt, Date, Integer, Nullable, Numeric, Text, Timestamp, Uuid as SqlUuid,
    },
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// The plan of a `subscriptionsActive` group `a`: `p`, its `planId`, or
/// `f` (events written before the field existed: planId is the nil uuid)
/// the plans of the tier it granted, as the seed joins a subscription's.
const PLAN_OF_GROUP: &str = "LEFT JOIN plans p ON p.id = a.planId \
     LEFT JOIN plans f ON a.planId = '00000000-0000-0000-0000-000000000000' \
       AND f.tier = a.planTier";

/// Monthly recurring revenue now, a scalar: the seed's query with its fault
/// mended (a yearly subscription counts yearlyPrice / 12), rounded to cents.
/// Read from `subscriptionsActive` (the active subscriptions of not deleted
/// users, counted per plan, interval and period days): a group of n
/// subscriptions adds n times the price each adds in the seed's SUM
/// (numeric, exact), and its period holds today exactly when the seed's
/// `currentPeriodStart <= CURRENT_DATE AND currentPeriodEnd > CURRENT_DATE`
/// holds for each of them (the migration's `day_at_or_after`).
pub const MRR_SQL: &str = "SELECT COALESCE(round(SUM(a.subscriptions * CASE \
       WHEN a.billingInterval = 'year' AND COALESCE(p.yearlyPrice, f.yearlyPrice) IS NOT NULL \
         THEN COALESCE(p.yearlyPrice, f.yearlyPrice) / 12 \
       ELSE COALESCE(p.monthlyPrice, f.monthlyPrice) END), 2), 0.00)::numeric(14, 2) \
     FROM subscriptionsActive a LEFT JOIN plans p ON p.id = a.planId \
       LEFT JOIN plans f ON a.planId = '00000000-0000-0000-0000-000000000000' \
         AND f.tier = a.planTier \
     WHERE a.subscriptions > 0 \
       AND a.periodStartDay <= CURRENT_DATE AND a.periodEndDay > CURRENT_DATE";

/// The page size when a call names none.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// The largest page a call may ask for (the gateway's CSV export pages
/// through with it; the public `?limit=` stops at 100).
pub const MAX_PAGE_SIZE: i64 = 1000;

/// One page of an answer in its order: `next`, when more follow, is the
/// opaque cursor of the next page (the sort key of the last item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Where a page starts: after the item whose sort key a cursor holds.
/// Cursors are the key's parts, a JSON array of strings, base64url.
fn encode_cursor(parts: &[String]) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(parts).unwrap_or_default())
}

/// The parts of a cursor this module made with `n` parts; `None` else.
fn cursor_parts(cursor: &str, n: usize) -> Option<Vec<String>> {
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let parts: Vec<String> = serde_json::from_slice(&raw).ok()?;
    (parts.len() == n).then_some(parts)
}

/// The page of `rows` (fetched `size + 1`): trimmed, with the next cursor.
fn page<T>(mut rows: Vec<T>, size: i64, key: impl Fn(&T) -> Vec<String>) -> Page<T> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() <= size {
        return Page {
            items: rows,
            next: None,
        };
    }
    rows.truncate(size);
    let next = rows.last().map(|last| encode_cursor(&key(last)));
    Page { items: rows, next }
}

/// A cursor a client sent that this module did not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCursor;

/// A page request: a size of 1..=[`MAX_PAGE_SIZE`] and the cursor of a
/// previous page (`None`: the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: i64,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn first(size: i64) -> Self {
        Self { size, cursor: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct SignupDay {
    #[diesel(sql_type = Date)]
    pub date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub new_users: i64,
}

/// New (not deleted) users per UTC day over the last `days` days, today
/// included, newest first; a day without signups has 0. Read from
/// `signupsDaily` (the not deleted users per day of createdAt).
pub async fn signups(conn: &mut AsyncPgConnection, days: i32) -> QueryResult<Vec<SignupDay>> {
    diesel::sql_query(
        "SELECT d::date AS date, COALESCE(c.users, 0) AS new_users \
         FROM generate_series((CURRENT_DATE - ($1 - 1))::timestamp, CURRENT_DATE::timestamp, \
           interval '1 day') AS d \
         LEFT JOIN signupsDaily c ON c.day = d::date \
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

/// Active users per plan tier, from `usersPlanCounts` (the users that
/// are not deleted, active and whose registration is known, per tier).
pub async fn users_by_plan(conn: &mut AsyncPgConnection) -> QueryResult<Vec<PlanCount>> {
    diesel::sql_query(
        "SELECT planTier AS plan_tier, users AS count FROM usersPlanCounts \
         WHERE users > 0 ORDER BY planTier",
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

/// Tokens and cost per user in a billing month, most tokens first (then
/// by user id), a page at a time: read from `tokenUsageUserMonthly` (the
/// month's facts summed per user) in the order of its index, so a page
/// reads its rows only. `Ok(Err(BadCursor))`: the cursor is not one of
/// this query's.
pub async fn token_usage_by_user(
    conn: &mut AsyncPgConnection,
    month: NaiveDate,
    request: &PageRequest,
) -> QueryResult<Result<Page<UserUsage>, BadCursor>> {
    let after = match request.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let parsed = cursor_parts(cursor, 2)
                .and_then(|p| Some((p[0].parse::<i64>().ok()?, p[1].parse::<Uuid>().ok()?)));
            match parsed {
                Some(key) => Some(key),
                None => return Ok(Err(BadCursor)),
            }
        }
    };
    const SELECT: &str = "SELECT userId AS user_id, totalTokens AS total_tokens, \
         costUsd::text AS total_cost FROM tokenUsageUserMonthly \
         WHERE billingMonth = $1 AND usageCount > 0";
    // After a key: the rest of its tokens' tie, then the fewer tokens; two
    // index ranges (one range with an OR would read the whole tie).
    let sql = if after.is_some() {
        format!(
            "({SELECT} AND totalTokens = $2 AND userId > $3 ORDER BY userId LIMIT $4) \
             UNION ALL \
             ({SELECT} AND totalTokens < $2 ORDER BY totalTokens DESC, userId LIMIT $4) \
             ORDER BY total_tokens DESC, user_id LIMIT $4"
        )
    } else {
        format!(
            "{SELECT} AND $2::bigint IS NULL AND $3::uuid IS NULL ORDER BY totalTokens DESC, userId LIMIT $4"
        )
    };
    let rows: Vec<UserUsage> = diesel::sql_query(sql)
        .bind::<Date, _>(month)
        .bind::<Nullable<BigInt>, _>(after.map(|a| a.0))
        .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
        .bind::<BigInt, _>(request.size + 1)
        .load(conn)
        .await?;
    Ok(Ok(page(rows, request.size, |r| {
        vec![r.total_tokens.to_string(), r.user_id.to_string()]
    })))
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

/// Active subscriptions (of not deleted users) per plan name, from
/// `subscriptionsActive`. A group of n subscriptions is n rows in the
/// seed's join per plan it matches: COUNT(*) adds n per match, and
/// COUNT(DISTINCT userId) n once (a user has one subscription, so the
/// groups' users are distinct).
pub async fn subscriptions(conn: &mut AsyncPgConnection) -> QueryResult<Vec<PlanSubscriptions>> {
    diesel::sql_query(format!(
        "SELECT plan, SUM(n * matches)::bigint AS subscription_count, \
           SUM(n)::bigint AS user_count \
         FROM (SELECT COALESCE(p.name, f.name) AS plan, a.planId, a.planTier, a.n, \
               count(*) AS matches \
             FROM (SELECT planId, planTier, SUM(subscriptions) AS n FROM subscriptionsActive \
                 WHERE subscriptions > 0 GROUP BY 1, 2) a {PLAN_OF_GROUP} \
             WHERE COALESCE(p.name, f.name) IS NOT NULL \
             GROUP BY 1, 2, 3, 4) g \
         GROUP BY plan ORDER BY plan"
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
/// last `days` days (then by user id), with their conversations.
///
/// Without grouping every conversation of the window: the threshold
/// algorithm over `conversationsUserMonthly` (per UTC month of createdAt,
/// each user's live conversations and tokens, read in descending tokens).
/// A user's tokens in the window are at most the sum of their months'
/// (tokens are never negative), and a user not yet read in any month's list
/// has at most the last value read of each: once `limit` users' exact
/// figures (read from their own conversations) beat that sum, no other
/// user can rank before them. All in one REPEATABLE READ snapshot, so the
/// months and the conversations agree.
pub async fn top_users(
    conn: &mut AsyncPgConnection,
    days: i32,
    limit: i64,
) -> QueryResult<Vec<TopUser>> {
    // diesel-async's transaction: a call cancelled mid-way leaves the
    // connection marked, and the pool does not hand it out in a transaction.
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(async |conn| top_users_in_snapshot(conn, days, limit).await)
        .await
}

/// A month's list in [`top_users`]: the month, the key of the last row
/// read (`None`: none yet), and whether the list is read to its end.
type MonthList = (NaiveDate, Option<(i64, Uuid)>, bool);

/// How many users the first round of [`top_users`] reads of each month's
/// list, per user asked for; each next round reads twice as many.
const TOP_USERS_FIRST_ROUND: i64 = 4;

async fn top_users_in_snapshot(
    conn: &mut AsyncPgConnection,
    days: i32,
    limit: i64,
) -> QueryResult<Vec<TopUser>> {
    #[derive(QueryableByName)]
    struct Window {
        #[diesel(sql_type = Timestamp)]
        start: NaiveDateTime,
        #[diesel(sql_type = Array<Date>)]
        months: Vec<NaiveDate>,
    }
    #[derive(QueryableByName)]
    struct Ranked {
        #[diesel(sql_type = SqlUuid)]
        user_id: Uuid,
        #[diesel(sql_type = BigInt)]
        tokens: i64,
    }
    // The window's start, and the months from its own to the last there is
    // (a conversation dated ahead is in the window, as in the seed's).
    let window: Window = diesel::sql_query(
        "WITH w AS (SELECT LOCALTIMESTAMP - make_interval(days => $1) AS start) \
         SELECT w.start, ARRAY(SELECT m::date FROM generate_series( \
             date_trunc('month', w.start), \
             GREATEST(date_trunc('month', w.start), \
               (SELECT max(month) FROM conversationsUserMonthly)), interval '1 month') AS m) \
           AS months \
         FROM w",
    )
    .bind::<Integer, _>(days)
    .get_result(conn)
    .await?;
    let limit_rows = usize::try_from(limit).unwrap_or(0);
    let mut lists: Vec<MonthList> = window.months.iter().map(|m| (*m, None, false)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut best: Vec<TopUser> = Vec::new();
    let mut round = (TOP_USERS_FIRST_ROUND * limit).max(1);
    loop {
        let mut fresh = Vec::new();
        for (month, last, done) in lists.iter_mut().filter(|l| !l.2) {
            const LIST: &str = "SELECT userId AS user_id, tokens FROM conversationsUserMonthly \
                 WHERE month = $1 AND conversations > 0";
            // After a key: the rest of its tie, then fewer tokens (two
            // index ranges, as the paged lists read).
            let sql = if last.is_some() {
                format!(
                    "({LIST} AND tokens = $2 AND userId > $3 ORDER BY userId LIMIT $4) \
                     UNION ALL ({LIST} AND tokens < $2 ORDER BY tokens DESC, userId LIMIT $4) \
                     ORDER BY tokens DESC, user_id LIMIT $4"
                )
            } else {
                format!(
                    "{LIST} AND $2::bigint IS NULL AND $3::uuid IS NULL \
                     ORDER BY tokens DESC, userId LIMIT $4"
                )
            };
            let rows: Vec<Ranked> = diesel::sql_query(sql)
                .bind::<Date, _>(*month)
                .bind::<Nullable<BigInt>, _>(last.map(|l| l.0))
                .bind::<Nullable<SqlUuid>, _>(last.map(|l| l.1))
                .bind::<BigInt, _>(round)
                .load(conn)
                .await?;
            *done = i64::try_from(rows.len()).unwrap_or(0) < round;
            if let Some(r) = rows.last() {
                *last = Some((r.tokens, r.user_id));
            }
            fresh.extend(
                rows.into_iter()
                    .map(|r| r.user_id)
                    .filter(|u| seen.insert(*u)),
            );
        }
        if !fresh.is_empty() {
            let exact: Vec<TopUser> = diesel::sql_query(
                "SELECT userId AS user_id, COUNT(*) AS conversation_count, \
                   SUM(tokenCount) AS total_tokens \
                 FROM conversations \
                 WHERE userId = ANY($1) AND deletedAt IS NULL AND createdAt >= $2 \
                 GROUP BY userId",
            )
            .bind::<Array<SqlUuid>, _>(&fresh)
            .bind::<Timestamp, _>(window.start)
            .load(conn)
            .await?;
            best.extend(exact);
            best.sort_by(|a, b| {
                b.total_tokens
                    .cmp(&a.total_tokens)
                    .then(a.user_id.cmp(&b.user_id))
            });
            best.truncate(limit_rows);
        }
        // The most an unread user can have: the last value read of each
        // list (0 once a list is read to its end).
        let threshold: i64 = lists
            .iter()
            .map(|(_, last, done)| if *done { 0 } else { last.map_or(0, |l| l.0) })
            .sum();
        let all_read = lists.iter().all(|l| l.2);
        let settled =
            best.len() == limit_rows && best.last().is_some_and(|b| b.total_tokens > threshold);
        if all_read || settled || limit_rows == 0 {
            return Ok(best);
        }
        round = round.saturating_mul(2);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ConversationLength {
    #[diesel(sql_type = Nullable<Text>)]
    pub avg_messages: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub avg_tokens: Option<String>,
}

/// Average messages and tokens of the (live) conversations started in the
/// last `days` days; `None` without any. The window starts at a time of
/// day: the days after its first are read from `conversationsDaily` (the
/// live conversations per day of createdAt, counters summed), the part of
/// its first day from the rows. AVG of an integer column is
/// `sum::numeric / count::numeric` in PostgreSQL, so the digits are the
/// seed's.
pub async fn conversation_length(
    conn: &mut AsyncPgConnection,
    days: i32,
) -> QueryResult<ConversationLength> {
    diesel::sql_query(
        "WITH w AS (SELECT LOCALTIMESTAMP - make_interval(days => $1) AS start), \
         parts AS ( \
           SELECT d.conversations AS n, d.messages AS m, d.tokens AS t \
           FROM conversationsDaily d, w WHERE d.day > w.start::date \
           UNION ALL \
           SELECT count(*), SUM(messageCount), SUM(tokenCount) FROM conversations, w \
           WHERE deletedAt IS NULL AND createdAt >= w.start AND createdAt < w.start::date + 1) \
         SELECT CASE WHEN SUM(n) > 0 THEN (SUM(m)::numeric / SUM(n)::numeric)::text END \
             AS avg_messages, \
           CASE WHEN SUM(n) > 0 THEN (SUM(t)::numeric / SUM(n)::numeric)::text END AS avg_tokens \
         FROM parts",
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
/// status), oldest due first (then by number, then id), a page at a time
/// along `idx_invoices_open_order`.
pub async fn overdue_invoices(
    conn: &mut AsyncPgConnection,
    request: &PageRequest,
) -> QueryResult<Result<Page<OverdueInvoice>, BadCursor>> {
    let after = match request.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let parsed = cursor_parts(cursor, 3).and_then(|p| {
                Some((
                    NaiveDate::parse_from_str(&p[0], "%Y-%m-%d").ok()?,
                    p[1].clone(),
                    p[2].parse::<Uuid>().ok()?,
                ))
            });
            match parsed {
                Some(key) => Some(key),
                None => return Ok(Err(BadCursor)),
            }
        }
    };
    let rows: Vec<OverdueInvoice> = diesel::sql_query(
        "SELECT invoiceId AS id, invoiceNumber AS invoice_number, userId AS user_id, \
           total::text AS total, dueDate AS due_date \
         FROM invoices WHERE status = 'open' AND dueDate < CURRENT_DATE \
           AND ($1::date IS NULL OR (dueDate, invoiceNumber, invoiceId) > ($1, $2, $3)) \
         ORDER BY dueDate, invoiceNumber, invoiceId LIMIT $4",
    )
    .bind::<Nullable<Date>, _>(after.as_ref().map(|a| a.0))
    .bind::<Nullable<Text>, _>(after.as_ref().map(|a| a.1.as_str()))
    .bind::<Nullable<SqlUuid>, _>(after.as_ref().map(|a| a.2))
    .bind::<BigInt, _>(request.size + 1)
    .load(conn)
    .await?;
    Ok(Ok(page(rows, request.size, |r| {
        vec![
            r.due_date.format("%Y-%m-%d").to_string(),
            r.invoice_number.clone(),
            r.id.to_string(),
        ]
    })))
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
/// that exist (the seed's JOIN users), most spent first (then by user and
/// amount), a page at a time: `paymentsLifetime` holds the groups (count
/// and sum), read in the order of its index, each joined to its user (u.createdAt depends on
/// userId, the users key, so the groups are the seed's).
pub async fn lifetime_value(
    conn: &mut AsyncPgConnection,
    request: &PageRequest,
) -> QueryResult<Result<Page<LifetimeValue>, BadCursor>> {
    let after = match request.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let parsed = cursor_parts(cursor, 3).and_then(|p| {
                Some((
                    p[0].parse::<BigDecimal>().ok()?,
                    p[1].parse::<Uuid>().ok()?,
                    p[2].parse::<BigDecimal>().ok()?,
                ))
            });
            match parsed {
                Some(key) => Some(key),
                None => return Ok(Err(BadCursor)),
            }
        }
    };
    const SELECT: &str = "SELECT l.userId AS user_id, l.amount::text AS amount, \
         l.paymentCount AS payment_count, l.total::text AS total_spent, \
         u.createdAt AS signup_date, l.total AS sort_total, l.amount AS sort_amount \
         FROM paymentsLifetime l JOIN users u ON u.userId = l.userId \
         WHERE l.paymentCount > 0 AND u.deletedAt IS NULL AND u.createdAt IS NOT NULL";
    // After a key: the rest of its total's tie (thousands of users pay the
    // same), then the smaller totals; two index ranges.
    let sql = if after.is_some() {
        format!(
            "({SELECT} AND l.total = $1 AND (l.userId, l.amount) > ($2, $3) \
               ORDER BY l.userId, l.amount LIMIT $4) \
             UNION ALL \
             ({SELECT} AND l.total < $1 ORDER BY l.total DESC, l.userId, l.amount LIMIT $4) \
             ORDER BY sort_total DESC, user_id, sort_amount LIMIT $4"
        )
    } else {
        format!(
            "{SELECT} AND $1::numeric IS NULL AND $2::uuid IS NULL AND $3::numeric IS NULL \
             ORDER BY l.total DESC, l.userId, l.amount LIMIT $4"
        )
    };
    let rows: Vec<LifetimeValue> = diesel::sql_query(sql)
        .bind::<Nullable<Numeric>, _>(after.as_ref().map(|a| &a.0))
        .bind::<Nullable<SqlUuid>, _>(after.as_ref().map(|a| a.1))
        .bind::<Nullable<Numeric>, _>(after.as_ref().map(|a| &a.2))
        .bind::<BigInt, _>(request.size + 1)
        .load(conn)
        .await?;
    Ok(Ok(page(rows, request.size, |r| {
        vec![
            r.total_spent.clone(),
            r.user_id.to_string(),
            r.amount.clone(),
        ]
    })))
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
/// nothing happened (and where no MRR snapshot was taken). Messages, tokens
/// and cost from `chatDaily` (chatAnalytics summed per day), signups from
/// `signupsDaily`.
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
         LEFT JOIN (SELECT day, messages, totalTokens AS tokens, costUsd AS cost FROM chatDaily) c \
           ON c.day = d::date \
         LEFT JOIN (SELECT day, users AS n FROM signupsDaily) su ON su.day = d::date \
         LEFT JOIN revenueAnalytics r ON r.day = d::date \
         ORDER BY d",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
}
