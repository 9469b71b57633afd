//! The `conversations` table. Every query is scoped by `userId`: another
//! user's conversation is simply not found.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, now, schema::conversations};
use aichat_db::page::Cursor;

/// A conversation row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversations, check_for_backend(diesel::pg::Pg))]
pub struct Conversation {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub model: String,
    pub system_prompt: Option<String>,
    pub message_count: Option<i32>,
    pub token_count: Option<i32>,
    pub is_archived: Option<bool>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// A new conversation.
pub struct New<'a> {
    pub user_id: Uuid,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub model: &'a str,
    pub system_prompt: Option<&'a str>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &New<'_>) -> QueryResult<Conversation> {
    let at = now();
    diesel::insert_into(conversations::table)
        .values((
            conversations::id.eq(Uuid::now_v7()),
            conversations::user_id.eq(new.user_id),
            conversations::title.eq(new.title),
            conversations::description.eq(new.description),
            conversations::model.eq(new.model),
            conversations::system_prompt.eq(new.system_prompt),
            conversations::created_at.eq(at),
            conversations::updated_at.eq(at),
        ))
        .returning(Conversation::as_returning())
        .get_result(conn)
        .await
}

/// The user's conversation, if it is theirs. Takes a shared reference so
/// it can be pipelined with other reads on the same connection.
pub async fn find(
    mut conn: &AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Conversation>> {
    conversations::table
        .filter(conversations::id.eq(id))
        .filter(conversations::user_id.eq(user_id))
        .select(Conversation::as_select())
        .first(&mut conn)
        .await
        .optional()
}

/// The same, locked for the rest of the transaction.
pub async fn lock(
    mut conn: &AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Conversation>> {
    conversations::table
        .filter(conversations::id.eq(id))
        .filter(conversations::user_id.eq(user_id))
        .select(Conversation::as_select())
        .for_update()
        .first(&mut conn)
        .await
        .optional()
}

/// The conversations `ids`, locked (`FOR UPDATE`) in id order, so two
/// transactions locking overlapping sets wait instead of deadlocking. The
/// caller checks each one's owner. Pipelines with the transaction's other
/// statements.
pub async fn lock_many(
    mut conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<Conversation>> {
    conversations::table
        .filter(conversations::id.eq_any(ids))
        .order(conversations::id)
        .select(Conversation::as_select())
        .for_update()
        .load(&mut conn)
        .await
}

/// Serialises the rest of the transaction with every other one that takes
/// the same user's lock (a transaction-level advisory lock): the
/// conversation limit's count and insert happen under it.
pub async fn lock_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(format!("chat.user:{user_id}"))
        .execute(conn)
        .await
        .map(drop)
}

/// How many conversations the user has (for the plan's limit).
pub async fn count(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<i64> {
    conversations::table
        .filter(conversations::user_id.eq(user_id))
        .count()
        .get_result(conn)
        .await
}

/// A page of the user's conversations, newest first.
pub async fn page(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    archived: Option<bool>,
    after: Option<Cursor>,
    limit: i64,
) -> QueryResult<Vec<Conversation>> {
    let mut query = conversations::table
        .filter(conversations::user_id.eq(user_id))
        .select(Conversation::as_select())
        .order((conversations::created_at.desc(), conversations::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(archived) = archived {
        query = query.filter(conversations::is_archived.eq(archived));
    }
    if let Some(c) = after {
        query = query.filter(
            conversations::created_at
                .lt(c.created_at)
                .or(conversations::created_at
                    .eq(c.created_at)
                    .and(conversations::id.lt(c.id))),
        );
    }
    query.load(conn).await
}

/// Every user's conversations after `after` by id, ascending, at most
/// `limit` (analytics' backfill; the primary key's index serves it).
pub async fn export(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<Conversation>> {
    let mut query = conversations::table
        .select(Conversation::as_select())
        .order(conversations::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(conversations::id.gt(after));
    }
    query.load(conn).await
}

/// Fields a user may change; `None` leaves a field as it is, `Some(None)`
/// clears an optional one.
#[derive(Default)]
pub struct Changes {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub model: Option<String>,
    pub system_prompt: Option<Option<String>>,
}

#[derive(AsChangeset)]
#[diesel(table_name = conversations)]
struct ChangeSet {
    title: Option<String>,
    description: Option<Option<String>>,
    model: Option<String>,
    system_prompt: Option<Option<String>>,
    updated_at: Option<Timestamp>,
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
    changes: Changes,
) -> QueryResult<Option<Conversation>> {
    diesel::update(
        conversations::table
            .filter(conversations::id.eq(id))
            .filter(conversations::user_id.eq(user_id)),
    )
    .set(ChangeSet {
        title: changes.title,
        description: changes.description,
        model: changes.model,
        system_prompt: changes.system_prompt,
        updated_at: Some(now()),
    })
    .returning(Conversation::as_returning())
    .get_result(conn)
    .await
    .optional()
}

pub async fn set_archived(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
    archived: bool,
) -> QueryResult<Option<Conversation>> {
    let at = now();
    diesel::update(
        conversations::table
            .filter(conversations::id.eq(id))
            .filter(conversations::user_id.eq(user_id)),
    )
    .set((
        conversations::is_archived.eq(archived),
        conversations::archived_at.eq(archived.then_some(at)),
        conversations::updated_at.eq(at),
    ))
    .returning(Conversation::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// The `updatedAt` a change to `locked` (a row this transaction holds
/// `FOR UPDATE`) writes: now, or a microsecond past the row's last one when
/// this replica's clock is behind it. So the counters' `updatedAt` strictly
/// increases across a conversation's changes, which is what orders them for
/// the events' consumers.
pub fn next_updated_at(locked: &Conversation) -> Timestamp {
    let at = now();
    match locked.updated_at {
        Some(last) if last >= at => last + chrono::TimeDelta::microseconds(1),
        _ => at,
    }
}

/// The counters `locked` has after [`add_counts`] adds `messages` and
/// `tokens` (the same arithmetic: a NULL counter is 0).
pub fn counts_after(locked: &Conversation, messages: i32, tokens: i32) -> (i32, i32) {
    (
        locked.message_count.unwrap_or(0).saturating_add(messages),
        locked.token_count.unwrap_or(0).saturating_add(tokens),
    )
}

/// Adds sends' messages and tokens to conversations' counters, stamping
/// `updatedAt`, in one statement whatever their number: each
/// `(id, messages, tokens, at)` once (the caller sums the changes of one
/// conversation; `at` is its last, the [`next_updated_at`] its event
/// carries); `NotFound` unless each was there. The numbers are bound, so
/// the statement is prepared once per connection. Pipelines with the
/// transaction's other writes.
pub async fn add_counts(
    mut conn: &AsyncPgConnection,
    changes: &[(Uuid, i32, i32, Timestamp)],
) -> QueryResult<usize> {
    use diesel::sql_types::{Array, Integer, Timestamp as SqlTimestamp, Uuid as SqlUuid};
    let updated = aichat_db::Cached(
        diesel::sql_query(
            "UPDATE conversations c SET \
               messageCount = COALESCE(c.messageCount, 0) + v.messages, \
               tokenCount = COALESCE(c.tokenCount, 0) + v.tokens, \
               updatedAt = v.at \
             FROM unnest($1::uuid[], $2::integer[], $3::integer[], $4::timestamp[]) \
               AS v (id, messages, tokens, at) \
             WHERE c.id = v.id",
        )
        .bind::<Array<SqlUuid>, _>(changes.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(changes.iter().map(|c| c.1).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(changes.iter().map(|c| c.2).collect::<Vec<_>>())
        .bind::<Array<SqlTimestamp>, _>(changes.iter().map(|c| c.3).collect::<Vec<_>>()),
    )
    .execute(&mut conn)
    .await?;
    // Each conversation is locked by the caller: one missing is a bug.
    if updated != changes.len() {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(updated)
}

/// Deletes the user's conversation (messages go with it; tokenUsage keeps
/// its rows with conversationId set to NULL). `false` if it was not theirs.
pub async fn delete(conn: &mut AsyncPgConnection, user_id: Uuid, id: Uuid) -> QueryResult<bool> {
    let n = diesel::delete(
        conversations::table
            .filter(conversations::id.eq(id))
            .filter(conversations::user_id.eq(user_id)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Deletes everything of a user (account deletion).
pub async fn delete_all_of(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<usize> {
    diesel::delete(conversations::table.filter(conversations::user_id.eq(user_id)))
        .execute(conn)
        .await
}
