//! The `usageTracking` table: one row per user, the current month's usage.
//!
//! The seed leaves the counters nullable; a `NULL` counts as zero here, and
//! every write stores a number.

use bigdecimal::{BigDecimal, Zero};
use chrono::NaiveDate;
use diesel::{
    dsl::sql,
    prelude::*,
    sql_types::{BigInt, Date, Integer, Nullable, Numeric},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, now, schema::usage_tracking};
use crate::domain::BillingMonth;

/// A usage row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = usage_tracking, check_for_backend(diesel::pg::Pg))]
pub struct Usage {
    pub id: Uuid,
    pub user_id: Uuid,
    pub billing_month: NaiveDate,
    pub tokens_used: Option<i32>,
    pub messages_count: Option<i32>,
    pub conversations_count: Option<i32>,
    /// Cached from the user's plan.
    pub monthly_quota: i32,
    pub cost_this_month: Option<BigDecimal>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

impl Usage {
    /// The month the counters are for.
    pub fn month(&self) -> BillingMonth {
        BillingMonth::containing(self.billing_month)
    }

    /// Tokens settled this month.
    pub fn tokens(&self) -> i64 {
        i64::from(self.tokens_used.unwrap_or(0))
    }

    /// Messages this month.
    pub fn messages(&self) -> i32 {
        self.messages_count.unwrap_or(0)
    }

    /// Conversations started this month.
    pub fn conversations(&self) -> i32 {
        self.conversations_count.unwrap_or(0)
    }

    /// What this month cost, USD.
    pub fn cost(&self) -> BigDecimal {
        self.cost_this_month
            .clone()
            .unwrap_or_else(BigDecimal::zero)
    }
}

/// Starts a user's row at zero unless they have one; `true` if it was
/// inserted. Concurrent callers are safe: the second waits for the first's
/// commit on the `userId` unique index, then does nothing.
pub async fn insert_if_absent(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user_id: Uuid,
    month: BillingMonth,
    monthly_quota: i32,
) -> QueryResult<bool> {
    let at = now();
    let inserted = diesel::insert_into(usage_tracking::table)
        .values((
            usage_tracking::id.eq(id),
            usage_tracking::user_id.eq(user_id),
            usage_tracking::billing_month.eq(month.first_day()),
            usage_tracking::tokens_used.eq(0),
            usage_tracking::messages_count.eq(0),
            usage_tracking::conversations_count.eq(0),
            usage_tracking::monthly_quota.eq(monthly_quota),
            usage_tracking::cost_this_month.eq(BigDecimal::zero()),
            usage_tracking::created_at.eq(at),
            usage_tracking::updated_at.eq(at),
        ))
        .on_conflict(usage_tracking::user_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// The user's row, locked (`FOR UPDATE`) for the rest of the transaction:
/// whoever checks the quota and reserves holds it, so checks never race.
pub async fn lock(mut conn: &AsyncPgConnection, user_id: Uuid) -> QueryResult<Option<Usage>> {
    usage_tracking::table
        .filter(usage_tracking::user_id.eq(user_id))
        .select(Usage::as_select())
        .for_update()
        .first(&mut conn)
        .await
        .optional()
}

/// The rows of `users`, locked (`FOR UPDATE`) in `userId` order, so two
/// transactions locking overlapping sets wait for each other instead of
/// deadlocking. A user without a row has none in the answer.
pub async fn lock_many(mut conn: &AsyncPgConnection, users: &[Uuid]) -> QueryResult<Vec<Usage>> {
    usage_tracking::table
        .filter(usage_tracking::user_id.eq_any(users))
        .order(usage_tracking::user_id)
        .select(Usage::as_select())
        .for_update()
        .load(&mut conn)
        .await
}

/// What a batch of usage events adds to one user's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub user_id: Uuid,
    pub tokens: i64,
    pub messages: i32,
    pub conversations: i32,
    pub cost: BigDecimal,
}

/// Adds each of `added` to its user's row, in one statement whatever their
/// number (the caller holds the rows' locks): [`add_tokens`] and
/// [`add_conversation`] for many at once; tokens stop at `INTEGER`'s
/// largest value as there.
pub async fn add_many(mut conn: &AsyncPgConnection, added: &[Added]) -> QueryResult<usize> {
    use diesel::sql_types::{Array, Timestamp, Uuid as SqlUuid};
    aichat_db::Cached(
        diesel::sql_query(
            "UPDATE usageTracking u SET \
           tokensUsed = LEAST(COALESCE(u.tokensUsed, 0)::bigint + a.tokens, 2147483647)::integer, \
           messagesCount = COALESCE(u.messagesCount, 0) + a.messages, \
           conversationsCount = COALESCE(u.conversationsCount, 0) + a.conversations, \
           costThisMonth = COALESCE(u.costThisMonth, 0) + a.cost, \
           updatedAt = $6 \
         FROM unnest($1::uuid[], $2::bigint[], $3::integer[], $4::integer[], $5::numeric[]) \
           AS a (userId, tokens, messages, conversations, cost) \
         WHERE u.userId = a.userId",
        )
        .bind::<Array<SqlUuid>, _>(added.iter().map(|a| a.user_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(added.iter().map(|a| a.tokens).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(added.iter().map(|a| a.messages).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(added.iter().map(|a| a.conversations).collect::<Vec<_>>())
        .bind::<Array<Numeric>, _>(added.iter().map(|a| &a.cost).collect::<Vec<_>>())
        .bind::<Timestamp, _>(now()),
    )
    .execute(&mut conn)
    .await
}

/// The user's row, unlocked.
pub async fn find(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Option<Usage>> {
    usage_tracking::table
        .filter(usage_tracking::user_id.eq(user_id))
        .select(Usage::as_select())
        .first(conn)
        .await
        .optional()
}

/// Starts `month` for the user if the row is of an earlier month: counters
/// and cost go back to zero. Returns the row either way.
pub async fn roll_over(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    month: BillingMonth,
) -> QueryResult<Option<Usage>> {
    diesel::update(
        usage_tracking::table
            .filter(usage_tracking::user_id.eq(user_id))
            .filter(usage_tracking::billing_month.lt(month.first_day())),
    )
    .set(reset(month))
    .execute(conn)
    .await?;
    find(conn, user_id).await
}

/// Rolls over up to `limit` rows of months before `month`, skipping rows
/// another transaction holds (it rolls them over itself); returns how many
/// it changed. Call until it returns less than `limit`.
pub async fn roll_over_batch(
    conn: &mut AsyncPgConnection,
    month: BillingMonth,
    limit: i64,
) -> QueryResult<usize> {
    // diesel cannot put a locking subquery in an UPDATE's filter: plain SQL.
    diesel::sql_query(
        "UPDATE usageTracking \
         SET billingMonth = $1, tokensUsed = 0, messagesCount = 0, conversationsCount = 0, \
             costThisMonth = 0, updatedAt = $2 \
         WHERE id IN (SELECT id FROM usageTracking WHERE billingMonth < $1 \
                      LIMIT $3 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Date, _>(month.first_day())
    .bind::<diesel::sql_types::Timestamp, _>(now())
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await
}

#[expect(
    clippy::type_complexity,
    reason = "the changeset of a reset, as diesel spells it"
)]
fn reset(
    month: BillingMonth,
) -> (
    diesel::dsl::Eq<usage_tracking::billing_month, NaiveDate>,
    diesel::dsl::Eq<usage_tracking::tokens_used, i32>,
    diesel::dsl::Eq<usage_tracking::messages_count, i32>,
    diesel::dsl::Eq<usage_tracking::conversations_count, i32>,
    diesel::dsl::Eq<usage_tracking::cost_this_month, BigDecimal>,
    diesel::dsl::Eq<usage_tracking::updated_at, Timestamp>,
) {
    (
        usage_tracking::billing_month.eq(month.first_day()),
        usage_tracking::tokens_used.eq(0),
        usage_tracking::messages_count.eq(0),
        usage_tracking::conversations_count.eq(0),
        usage_tracking::cost_this_month.eq(BigDecimal::zero()),
        usage_tracking::updated_at.eq(now()),
    )
}

/// Counts one priced reply: `tokens` more (saturating at the column's
/// maximum rather than failing), one message more, `cost` more. The cost is
/// rounded to the column's 6 decimals by PostgreSQL.
pub async fn add_tokens(
    mut conn: &AsyncPgConnection,
    user_id: Uuid,
    tokens: i32,
    cost: &BigDecimal,
) -> QueryResult<Usage> {
    aichat_db::Cached(
        diesel::update(usage_tracking::table.filter(usage_tracking::user_id.eq(user_id)))
            .set((
                usage_tracking::tokens_used.eq(sql::<Nullable<Integer>>(
                    "LEAST(COALESCE(tokensused, 0)::bigint + ",
                )
                .bind::<Integer, _>(tokens)
                .sql(", 2147483647)::integer")),
                usage_tracking::messages_count
                    .eq(sql::<Nullable<Integer>>("COALESCE(messagescount, 0) + 1")),
                usage_tracking::cost_this_month
                    .eq(sql::<Nullable<Numeric>>("COALESCE(costthismonth, 0) + ")
                        .bind::<Numeric, _>(cost.clone())),
                usage_tracking::updated_at.eq(now()),
            ))
            .returning(Usage::as_returning()),
    )
    .get_result(&mut conn)
    .await
}

/// Counts one conversation started.
pub async fn add_conversation(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Usage> {
    diesel::update(usage_tracking::table.filter(usage_tracking::user_id.eq(user_id)))
        .set((
            usage_tracking::conversations_count.eq(sql::<Nullable<Integer>>(
                "COALESCE(conversationscount, 0) + 1",
            )),
            usage_tracking::updated_at.eq(now()),
        ))
        .returning(Usage::as_returning())
        .get_result(conn)
        .await
}

/// Deletes the user's row; their reservations go with it (ON DELETE
/// CASCADE). Returns how many rows went (0 or 1).
pub async fn delete(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<usize> {
    diesel::delete(usage_tracking::table.filter(usage_tracking::user_id.eq(user_id)))
        .execute(conn)
        .await
}

/// Sets the user's monthly quota (their plan changed).
pub async fn set_quota(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    monthly_quota: i32,
) -> QueryResult<usize> {
    diesel::update(usage_tracking::table.filter(usage_tracking::user_id.eq(user_id)))
        .set((
            usage_tracking::monthly_quota.eq(monthly_quota),
            usage_tracking::updated_at.eq(now()),
        ))
        .execute(conn)
        .await
}
