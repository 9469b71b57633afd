//! The `tokenUsage` table (partitioned by billingMonth) and its partitions.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, schema::token_usage};

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
}

/// Saves a usage row (pipelines with the transaction's other writes).
pub async fn insert(mut conn: &AsyncPgConnection, new: &New<'_>) -> QueryResult<()> {
    diesel::insert_into(token_usage::table)
        .values((
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
        ))
        .execute(&mut conn)
        .await
        .map(drop)
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
