//! The `deletedUsers` table: users whose deletion was applied, so a late
//! event about them does not bring their usage back.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{now, schema::deleted_users};

/// Records that the user is gone (again is harmless).
pub async fn record(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<()> {
    diesel::insert_into(deleted_users::table)
        .values((
            deleted_users::user_id.eq(user_id),
            deleted_users::deleted_at.eq(now()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// Whether the user was deleted.
pub async fn contains(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(deleted_users::table.find(user_id)))
        .get_result(conn)
        .await
}

/// Records tokens produced for the user after their deletion (a reply that
/// was streaming when the account went): kept on the tombstone, so every
/// charged token is accounted for. `false` if the user is not deleted.
pub async fn add_usage(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    tokens: i32,
    cost: &BigDecimal,
) -> QueryResult<bool> {
    let n = diesel::update(deleted_users::table.find(user_id))
        .set((
            deleted_users::tokens_used.eq(deleted_users::tokens_used + i64::from(tokens)),
            deleted_users::cost_usd.eq(deleted_users::cost_usd + cost.clone()),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}
