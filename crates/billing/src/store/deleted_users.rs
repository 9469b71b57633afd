//! The `deletedUsers` table: users whose deletion was applied, so a late
//! event about them does not bring their usage back.

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
