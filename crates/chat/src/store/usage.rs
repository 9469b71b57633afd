//! The `tokenUsage` table (partitioned by billingMonth) and its partitions:
//! saving a charge, a user's usage per day, and the export of every row.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, schema::token_usage};
use crate::domain::usage::DayWindow;

/// A usage row to save.
pub struct New<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub provider: &'a str,
    pub model: &'a str,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub cost_usd: &'a BigDecimal,
    pub billing_month: NaiveDate,
    pub created_at: Timestamp,
    /// The API key the call was made with, if any.
    pub api_key_id: Option<Uuid>,
}

/// Saves usage rows in one statement (pipelines with the transaction's
/// other writes; one shape per number of rows, prepared once).
pub async fn insert(mut conn: &AsyncPgConnection, rows: &[New<'_>]) -> QueryResult<()> {
    let values: Vec<_> = rows
        .iter()
        .map(|new| {
            (
                token_usage::id.eq(new.id),
                token_usage::user_id.eq(new.user_id),
                token_usage::conversation_id.eq(new.conversation_id),
                token_usage::message_id.eq(new.message_id),
                token_usage::provider.eq(new.provider),
                token_usage::model.eq(new.model),
                token_usage::prompt_tokens.eq(new.prompt_tokens),
                token_usage::completion_tokens.eq(new.completion_tokens),
                token_usage::total_tokens.eq(new.prompt_tokens + new.completion_tokens),
                token_usage::cost_usd.eq(new.cost_usd),
                token_usage::billing_month.eq(new.billing_month),
                token_usage::created_at.eq(new.created_at),
                token_usage::api_key_id.eq(new.api_key_id),
            )
        })
        .collect();
    aichat_db::Cached(diesel::insert_into(token_usage::table).values(values))
        .execute(&mut conn)
        .await
        .map(drop)
}

/// A usage row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = token_usage, check_for_backend(diesel::pg::Pg))]
pub struct Usage {
    pub id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub total_tokens: i32,
    /// USD, scale 6 (the column's).
    pub cost_usd: BigDecimal,
    pub billing_month: NaiveDate,
    pub created_at: Option<Timestamp>,
}

/// Every usage row after `after` by id, ascending, at most `limit`
/// (analytics' backfill). Across all the month partitions: each one's
/// primary key index is read in id order and merged (Merge Append), so a
/// page reads about `limit` rows of each partition at most.
pub async fn export(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<Usage>> {
    let mut query = token_usage::table
        .select(Usage::as_select())
        .order(token_usage::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(token_usage::id.gt(after));
    }
    query.load(conn).await
}

#[derive(QueryableByName)]
struct Created {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    created: i32,
}

/// Makes sure the monthly partitions from `first` for `months` months exist.
pub async fn ensure_partitions(
    conn: &mut AsyncPgConnection,
    first: NaiveDate,
    months: i32,
) -> QueryResult<i32> {
    let row: Created = diesel::sql_query("SELECT create_tokenusage_partitions($1, $2) AS created")
        .bind::<diesel::sql_types::Date, _>(first)
        .bind::<diesel::sql_types::Integer, _>(months)
        .get_result(conn)
        .await?;
    Ok(row.created)
}

/// One UTC day of a user's usage.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Day {
    #[diesel(sql_type = diesel::sql_types::Date)]
    pub date: NaiveDate,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tokens: i64,
    /// USD, summed in NUMERIC; scale 6 (the column's), zero days included.
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    pub cost_usd: BigDecimal,
}

/// The user's tokens and cost on each day of `window`, oldest first, every
/// day present (zero when nothing was used). Days are UTC: `createdAt`
/// holds UTC. Rows whose conversation was deleted (`conversationId` set to
/// NULL) count like any other.
///
/// The `billingMonth` bounds ([`DayWindow::billing_months`]) prune the
/// partitions to the window's months, where `idx_tokenUsage_userId_billingMonth`
/// finds the user's rows: a heavy user's history of other months is never
/// read, so no index on `createdAt` is needed.
pub async fn daily(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    window: &DayWindow,
) -> QueryResult<Vec<Day>> {
    let (from_month, to_month) = window.billing_months();
    diesel::sql_query(
        "WITH used AS ( \
           SELECT createdAt::date AS day, SUM(totalTokens) AS tokens, SUM(costUsd) AS cost \
           FROM tokenUsage \
           WHERE userId = $1 \
             AND billingMonth BETWEEN $4 AND $5 \
             AND createdAt >= $2 AND createdAt < $3 + 1 \
           GROUP BY 1) \
         SELECT d.day::date AS date, \
                COALESCE(used.tokens, 0)::BIGINT AS tokens, \
                COALESCE(used.cost, 0.000000) AS cost_usd \
         FROM generate_series($2::timestamp, $3::timestamp, INTERVAL '1 day') AS d(day) \
         LEFT JOIN used ON used.day = d.day::date \
         ORDER BY d.day",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Date, _>(window.first())
    .bind::<diesel::sql_types::Date, _>(window.last())
    .bind::<diesel::sql_types::Date, _>(from_month)
    .bind::<diesel::sql_types::Date, _>(to_month)
    .load(conn)
    .await
}
