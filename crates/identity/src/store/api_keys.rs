//! The `apiKeys` table: a user's API keys, each stored as the SHA-256 of its
//! secret and found by it through the unique index on `keyHash`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp,
    schema::{api_keys, users},
};

/// An API key row (never the secret: only its hash, which is not selected).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl ApiKey {
    /// Not past its expiry.
    pub fn is_live(&self, at: Timestamp) -> bool {
        self.expires_at.is_none_or(|e| e > at)
    }
}

/// What a key check answers: the key and its owner's plan.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key: ApiKey,
    pub plan_tier: String,
    pub role: String,
}

/// A new key row.
pub struct NewRow<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub prefix: &'a str,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// Stores a key.
pub async fn insert(conn: &mut AsyncPgConnection, row: &NewRow<'_>) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(row.id),
            api_keys::user_id.eq(row.user_id),
            api_keys::name.eq(row.name),
            api_keys::key_hash.eq(row.key_hash),
            api_keys::prefix.eq(row.prefix),
            api_keys::created_at.eq(row.created_at),
            api_keys::expires_at.eq(row.expires_at),
        ))
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await
}

/// How many of the user's keys have not expired at `at`.
pub async fn count_live(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    at: Timestamp,
) -> QueryResult<i64> {
    api_keys::table
        .filter(api_keys::user_id.eq(user_id))
        .filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(at)),
        )
        .count()
        .get_result(conn)
        .await
}

/// The user's keys, newest first (expired ones too, until deleted or pruned).
pub async fn list(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::user_id.eq(user_id))
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .select(ApiKey::as_select())
        .load(conn)
        .await
}

/// Deletes the user's key `id`; `None` unless it was theirs.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<ApiKey>> {
    diesel::delete(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::user_id.eq(user_id)),
    )
    .returning(ApiKey::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Deletes up to `limit` keys that expired before `before`; returns how many.
/// (A seq scan of a table of a few keys per user; no index on the expiry.)
pub async fn prune_expired(
    conn: &mut AsyncPgConnection,
    before: Timestamp,
    limit: i64,
) -> QueryResult<usize> {
    // diesel cannot express a subquery on the table it deletes from.
    diesel::sql_query(
        "DELETE FROM apiKeys WHERE id IN (SELECT id FROM apiKeys WHERE expiresAt < $1 LIMIT $2)",
    )
    .bind::<diesel::sql_types::Timestamp, _>(before)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .execute(conn)
    .await
}

/// The ids of all the user's keys (before the account is deleted).
pub async fn ids_of(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Vec<Uuid>> {
    api_keys::table
        .filter(api_keys::user_id.eq(user_id))
        .select(api_keys::id)
        .load(conn)
        .await
}

/// The key whose secret hashes to `key_hash`, with its active owner's plan
/// and role; expiry is the caller's to check.
pub async fn find_by_hash(
    conn: &mut AsyncPgConnection,
    key_hash: &str,
) -> QueryResult<Option<Verified>> {
    api_keys::table
        .inner_join(users::table)
        .filter(api_keys::key_hash.eq(key_hash))
        .filter(users::is_active.eq(true))
        .select((ApiKey::as_select(), users::plan_tier, users::role))
        .first::<(ApiKey, String, String)>(conn)
        .await
        .optional()
        .map(|found| {
            found.map(|(key, plan_tier, role)| Verified {
                key,
                plan_tier,
                role,
            })
        })
}

/// Records a use at `at` unless one was recorded after `since`: at most one
/// write per key per throttle window, whatever the request rate. Whether it
/// wrote.
pub async fn touch(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    at: Timestamp,
    since: Timestamp,
) -> QueryResult<bool> {
    diesel::update(
        api_keys::table.filter(api_keys::id.eq(id)).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(since)),
        ),
    )
    .set(api_keys::last_used_at.eq(at))
    .execute(conn)
    .await
    .map(|n| n > 0)
}
