//! The `sessions` table and the rotation/revocation bookkeeping beside it.

use diesel::{prelude::*, sql_types};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ipnetwork::IpNetwork;
use uuid::Uuid;

use super::{
    Timestamp, now,
    schema::{session_revocations, session_rotated_tokens, sessions},
};

/// A session row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: Option<String>,
    pub ip_address: Option<IpNetwork>,
    pub is_active: Option<bool>,
    pub expires_at: Timestamp,
    pub created_at: Option<Timestamp>,
    pub last_activity_at: Option<Timestamp>,
}

impl Session {
    /// Active and not past its absolute expiry.
    pub fn is_live(&self, at: Timestamp) -> bool {
        self.is_active == Some(true) && self.expires_at > at
    }
}

/// What the client told us about itself.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub user_agent: Option<String>,
    pub ip_address: Option<IpNetwork>,
}

/// Opens a session whose current refresh token hashes to `token_hash`.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user_id: Uuid,
    token_hash: &str,
    client: &Client,
    expires_at: Timestamp,
) -> QueryResult<Session> {
    let at = now();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::user_id.eq(user_id),
            sessions::token.eq(token_hash),
            sessions::user_agent.eq(&client.user_agent),
            sessions::ip_address.eq(client.ip_address),
            sessions::expires_at.eq(expires_at),
            sessions::created_at.eq(at),
            sessions::last_activity_at.eq(at),
        ))
        .returning(Session::as_returning())
        .get_result(conn)
        .await
}

/// The session whose current refresh token hashes to `token_hash`, locked.
pub async fn lock_by_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<Session>> {
    sessions::table
        .filter(sessions::token.eq(token_hash))
        .select(Session::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The session a rotated-away refresh token belonged to.
pub async fn find_by_rotated_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<Session>> {
    session_rotated_tokens::table
        .inner_join(sessions::table)
        .filter(session_rotated_tokens::token_hash.eq(token_hash))
        .select(Session::as_select())
        .first(conn)
        .await
        .optional()
}

/// Rotates the session to a new refresh token, remembering the old one.
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    session: &Session,
    old_hash: &str,
    new_hash: &str,
    client: &Client,
) -> QueryResult<()> {
    diesel::insert_into(session_rotated_tokens::table)
        .values((
            session_rotated_tokens::token_hash.eq(old_hash),
            session_rotated_tokens::session_id.eq(session.id),
            session_rotated_tokens::rotated_at.eq(now()),
        ))
        .execute(conn)
        .await?;
    diesel::update(sessions::table.find(session.id))
        .set((
            sessions::token.eq(new_hash),
            sessions::last_activity_at.eq(now()),
            sessions::user_agent.eq(client.user_agent.as_ref().or(session.user_agent.as_ref())),
            sessions::ip_address.eq(client.ip_address.or(session.ip_address)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The user's live sessions, newest first.
pub async fn list_live(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::is_active.eq(true))
        .filter(sessions::expires_at.gt(now()))
        .order(sessions::created_at.desc())
        .select(Session::as_select())
        .load(conn)
        .await
}

/// Revokes sessions of `user_id`: all of them (`only = None`), all but
/// one (`except`), or just the given ones. Records each revocation so
/// gateways can rebuild their deny list. Returns the ids revoked.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    only: Option<&[Uuid]>,
    except: Option<Uuid>,
    reason: &str,
) -> QueryResult<Vec<Uuid>> {
    let at = now();
    let mut query = diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::is_active.eq(true))
        .into_boxed();
    if let Some(ids) = only {
        query = query.filter(sessions::id.eq_any(ids.to_vec()));
    }
    if let Some(keep) = except {
        query = query.filter(sessions::id.ne(keep));
    }
    let ids: Vec<Uuid> = query
        .set((
            sessions::is_active.eq(false),
            sessions::revoked_at.eq(at),
            sessions::revoked_reason.eq(reason),
        ))
        .returning(sessions::id)
        .get_results(conn)
        .await?;
    if !ids.is_empty() {
        let rows: Vec<_> = ids
            .iter()
            .map(|id| {
                (
                    session_revocations::session_id.eq(*id),
                    session_revocations::user_id.eq(user_id),
                    session_revocations::revoked_at.eq(at),
                )
            })
            .collect();
        diesel::insert_into(session_revocations::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    Ok(ids)
}

/// Revocations recorded since `since` (session id, when).
pub async fn revoked_since(
    conn: &mut AsyncPgConnection,
    since: Timestamp,
) -> QueryResult<Vec<(Uuid, Timestamp)>> {
    session_revocations::table
        .filter(session_revocations::revoked_at.ge(since))
        .select((
            session_revocations::session_id,
            session_revocations::revoked_at,
        ))
        .load(conn)
        .await
}

/// Deletes up to `limit` sessions that ended (expired or revoked) before
/// `before`, with their rotated tokens (the foreign key cascades). Their
/// revocation rows are kept: those live by their own clock
/// ([`prune_revocations`]). Returns how many it deleted.
pub async fn prune_ended(
    conn: &mut AsyncPgConnection,
    before: Timestamp,
    limit: i64,
) -> QueryResult<usize> {
    // diesel cannot express a subquery on the table it deletes from.
    diesel::sql_query(
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
         WHERE expiresAt < $1 OR revokedAt < $1 LIMIT $2)",
    )
    .bind::<sql_types::Timestamp, _>(before)
    .bind::<sql_types::BigInt, _>(limit)
    .execute(conn)
    .await
}

/// Deletes up to `limit` rotated-away refresh tokens of sessions that are no
/// longer live: reuse detection only matters while the session could still
/// be refreshed. Returns how many it deleted.
pub async fn prune_rotated(
    conn: &mut AsyncPgConnection,
    at: Timestamp,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM sessionRotatedTokens WHERE tokenHash IN (SELECT r.tokenHash \
         FROM sessionRotatedTokens r JOIN sessions s ON s.id = r.sessionId \
         WHERE s.isActive IS NOT TRUE OR s.expiresAt <= $1 LIMIT $2)",
    )
    .bind::<sql_types::Timestamp, _>(at)
    .bind::<sql_types::BigInt, _>(limit)
    .execute(conn)
    .await
}

/// Deletes up to `limit` revocations recorded before `before`. A revocation
/// must outlive every access token of its session, so `before` is at least
/// an access token's life ago: gateways rebuild their deny list from what is
/// left ([`revoked_since`]). Returns how many it deleted.
pub async fn prune_revocations(
    conn: &mut AsyncPgConnection,
    before: Timestamp,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM sessionRevocations WHERE sessionId IN (SELECT sessionId \
         FROM sessionRevocations WHERE revokedAt < $1 LIMIT $2)",
    )
    .bind::<sql_types::Timestamp, _>(before)
    .bind::<sql_types::BigInt, _>(limit)
    .execute(conn)
    .await
}
