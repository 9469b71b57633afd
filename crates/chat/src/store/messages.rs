//! The `messages` table.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp, now,
    schema::{conversations, messages},
};
use aichat_db::page::Cursor;

/// A message row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: String,
    pub content: String,
    pub token_count: i32,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub model: Option<String>,
    pub language: Option<String>,
    pub created_at: Option<Timestamp>,
}

/// A message to save.
pub struct New<'a> {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: &'a str,
    pub content: &'a str,
    pub token_count: i32,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub model: Option<&'a str>,
    pub language: Option<&'a str>,
    pub created_at: Timestamp,
}

/// Saves messages in one statement; the saved rows, in no promised order.
/// Pipelines with the transaction's other writes.
pub async fn insert(mut conn: &AsyncPgConnection, new: &[New<'_>]) -> QueryResult<Vec<Message>> {
    let rows: Vec<_> = new
        .iter()
        .map(|m| {
            (
                messages::id.eq(m.id),
                messages::conversation_id.eq(m.conversation_id),
                messages::role.eq(m.role),
                messages::content.eq(m.content),
                messages::token_count.eq(m.token_count),
                messages::prompt_tokens.eq(m.prompt_tokens),
                messages::completion_tokens.eq(m.completion_tokens),
                messages::model.eq(m.model),
                messages::language.eq(m.language),
                messages::created_at.eq(m.created_at),
                messages::updated_at.eq(m.created_at),
            )
        })
        .collect();
    // One shape per number of rows (one on the send path): prepared once.
    aichat_db::Cached(
        diesel::insert_into(messages::table)
            .values(rows)
            .returning(Message::as_returning()),
    )
    .get_results(&mut conn)
    .await
}

/// A page of a conversation's visible messages, oldest first.
pub async fn page(
    conn: &mut AsyncPgConnection,
    conversation_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> QueryResult<Vec<Message>> {
    let mut query = messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::is_deleted.eq(false))
        .select(Message::as_select())
        .order((messages::created_at.asc(), messages::id.asc()))
        .limit(limit)
        .into_boxed();
    if let Some(c) = after {
        query = query.filter(
            messages::created_at
                .gt(c.created_at)
                .or(messages::created_at
                    .eq(c.created_at)
                    .and(messages::id.gt(c.id))),
        );
    }
    query.load(conn).await
}

/// The newest `limit` visible messages of the user's conversation, oldest
/// first (what the provider sees); empty when the conversation is not
/// theirs. Bounded in the query, so a long conversation costs a send no
/// more than a short one. Pipelines with other reads on the same connection.
pub async fn history(
    mut conn: &AsyncPgConnection,
    user_id: Uuid,
    conversation_id: Uuid,
    limit: i64,
) -> QueryResult<Vec<Message>> {
    let theirs = conversations::table
        .filter(conversations::id.eq(conversation_id))
        .filter(conversations::user_id.eq(user_id))
        .select(conversations::id);
    messages::table
        .filter(messages::conversation_id.eq_any(theirs))
        .filter(messages::is_deleted.eq(false))
        .select(Message::as_select())
        .order((messages::created_at.desc(), messages::id.desc()))
        .limit(limit)
        .load(&mut conn)
        .await
        .map(|mut newest_first: Vec<Message>| {
            newest_first.reverse();
            newest_first
        })
}

/// Every message after `after` by id, ascending, at most `limit`, with
/// the user whose conversation holds it; soft-deleted ones too (analytics'
/// backfill counts every message sent).
pub async fn export(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<(Message, Uuid)>> {
    let mut query = messages::table
        .inner_join(conversations::table)
        .select((Message::as_select(), conversations::user_id))
        .order(messages::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(messages::id.gt(after));
    }
    query.load(conn).await
}

/// Soft-deletes a message of the conversation; `false` if there is none.
pub async fn soft_delete(
    conn: &mut AsyncPgConnection,
    conversation_id: Uuid,
    id: Uuid,
) -> QueryResult<bool> {
    let at = now();
    let n = diesel::update(
        messages::table
            .filter(messages::id.eq(id))
            .filter(messages::conversation_id.eq(conversation_id))
            .filter(messages::is_deleted.eq(false)),
    )
    .set((
        messages::is_deleted.eq(true),
        messages::deleted_at.eq(at),
        messages::updated_at.eq(at),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}
