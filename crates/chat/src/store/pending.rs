//! The `pendingSends` and `chatReplicas` tables: provider calls in flight,
//! and the replicas making them.
//!
//! A pending send is written with the user's message, before the provider
//! is called, and deleted in the transaction that charges the call. The
//! delete is the claim: whoever deletes the row (the replica when the reply
//! ends, or recovery when that replica died) writes the one tokenUsage row.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp, now,
    schema::{chat_replicas, pending_sends},
};

/// A provider call in flight.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pending_sends, check_for_backend(diesel::pg::Pg))]
pub struct PendingSend {
    /// The id its tokenUsage row gets.
    pub id: Uuid,
    pub replica_id: Uuid,
    pub user_id: Uuid,
    /// `None` once the conversation is deleted.
    pub conversation_id: Option<Uuid>,
    pub user_message_id: Option<Uuid>,
    pub reservation_id: Uuid,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i32,
    /// As of the last checkpoint.
    pub completion_tokens: i32,
    pub created_at: Timestamp,
    pub checkpoint_at: Timestamp,
    /// The API key of a call without a conversation (the OpenAI-compatible
    /// API).
    pub api_key_id: Option<Uuid>,
}

/// Records a call about to be made (pipelines with the transaction's other
/// writes).
pub async fn insert(mut conn: &AsyncPgConnection, send: &PendingSend) -> QueryResult<()> {
    diesel::insert_into(pending_sends::table)
        .values(send)
        .execute(&mut conn)
        .await
        .map(drop)
}

/// Claims the call for charging: deletes its row and returns it, `None` if
/// someone else claimed it already.
pub async fn claim(mut conn: &AsyncPgConnection, id: Uuid) -> QueryResult<Option<PendingSend>> {
    diesel::delete(pending_sends::table.find(id))
        .returning(PendingSend::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
}

/// [`claim`] for several calls in one statement: the ones claimed now.
/// Pipelines with the transaction's other statements.
pub async fn claim_many(mut conn: &AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Uuid>> {
    diesel::delete(pending_sends::table.filter(pending_sends::id.eq_any(ids)))
        .returning(pending_sends::id)
        .get_results(&mut conn)
        .await
}

/// Saves how many completion tokens have streamed so far.
pub async fn checkpoint(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    completion_tokens: i32,
) -> QueryResult<()> {
    aichat_db::Cached(diesel::update(pending_sends::table.find(id)).set((
        pending_sends::completion_tokens.eq(completion_tokens),
        pending_sends::checkpoint_at.eq(now()),
    )))
    .execute(conn)
    .await
    .map(drop)
}

/// Up to `limit` calls of replicas whose heartbeat is older than `dead_before`
/// (or that never registered), or whose last checkpoint is older than
/// `stale_before`. Not locked: each is then claimed one by one (after its
/// conversation's lock, the order a delete takes them in).
pub async fn orphaned(
    conn: &mut AsyncPgConnection,
    dead_before: Timestamp,
    stale_before: Timestamp,
    limit: i64,
) -> QueryResult<Vec<PendingSend>> {
    let alive = chat_replicas::table
        .filter(chat_replicas::heartbeat_at.ge(dead_before))
        .select(chat_replicas::id);
    pending_sends::table
        .filter(
            pending_sends::replica_id
                .ne_all(alive)
                .or(pending_sends::checkpoint_at.lt(stale_before)),
        )
        .select(PendingSend::as_select())
        .order(pending_sends::created_at.asc())
        .limit(limit)
        .load(conn)
        .await
}

/// Registers a replica, or refreshes its heartbeat.
pub async fn heartbeat(conn: &mut AsyncPgConnection, replica_id: Uuid) -> QueryResult<()> {
    let at = now();
    diesel::insert_into(chat_replicas::table)
        .values((
            chat_replicas::id.eq(replica_id),
            chat_replicas::started_at.eq(at),
            chat_replicas::heartbeat_at.eq(at),
        ))
        .on_conflict(chat_replicas::id)
        .do_update()
        .set(chat_replicas::heartbeat_at.eq(at))
        .execute(conn)
        .await
        .map(drop)
}

/// Forgets replicas dead before `dead_before` that have no call left, and
/// this replica when it stops cleanly.
pub async fn forget_replicas(
    conn: &mut AsyncPgConnection,
    dead_before: Timestamp,
) -> QueryResult<usize> {
    let busy = pending_sends::table.select(pending_sends::replica_id);
    diesel::delete(
        chat_replicas::table
            .filter(chat_replicas::heartbeat_at.lt(dead_before))
            .filter(chat_replicas::id.ne_all(busy)),
    )
    .execute(conn)
    .await
}

/// Removes a replica's row (a clean stop: its calls have all ended).
pub async fn unregister(conn: &mut AsyncPgConnection, replica_id: Uuid) -> QueryResult<()> {
    diesel::delete(chat_replicas::table.find(replica_id))
        .execute(conn)
        .await
        .map(drop)
}
