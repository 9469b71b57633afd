//! PostgreSQL advisory locks: one holder at a time across every replica.
//! Session-level ones ([`try_lock`]) are released with [`unlock`] or when
//! the session ends (a crashed holder's connection closes, so its lock never
//! outlives it); transaction-level ones ([`xact_lock`]) at commit or
//! rollback.

use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    taken: bool,
}

/// Takes the lock named `name` on this connection's session, without
/// waiting: `false` if another session holds it.
pub async fn try_lock(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<bool> {
    let row: Taken =
        diesel::sql_query("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS taken")
            .bind::<Text, _>(name)
            .get_result(conn)
            .await?;
    Ok(row.taken)
}

/// Releases the lock taken with [`try_lock`] on the same connection;
/// `false` if this session did not hold it.
pub async fn unlock(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<bool> {
    let row: Taken =
        diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS taken")
            .bind::<Text, _>(name)
            .get_result(conn)
            .await?;
    Ok(row.taken)
}

/// Waits for the lock named `name` and holds it until the transaction ends,
/// serialising the rest of the transaction with every other one that takes
/// the same name.
pub async fn xact_lock(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(name)
        .execute(conn)
        .await
        .map(drop)
}
