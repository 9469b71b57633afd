//! The `messages` table.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, now, schema::messages};
use crate::domain::Cursor;

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

pub async fn insert(conn: &mut AsyncPgConnection, new: &New<'_>) -> QueryResult<Message> {
    diesel::insert_into(messages::table)
        .values((
            messages::id.eq(new.id),
            messages::conversation_id.eq(new.conversation_id),
            messages::role.eq(new.role),
            messages::content.eq(new.content),
            messages::token_count.eq(new.token_count),
            messages::prompt_tokens.eq(new.prompt_tokens),
            messages::completion_tokens.eq(new.completion_tokens),
            messages::model.eq(new.model),
            messages::language.eq(new.language),
            messages::created_at.eq(new.created_at),
            messages::updated_at.eq(new.created_at),
        ))
        .returning(Message::as_returning())
        .get_result(conn)
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

/// The conversation's visible history, oldest first (what the provider sees).
pub async fn history(
    conn: &mut AsyncPgConnection,
    conversation_id: Uuid,
) -> QueryResult<Vec<Message>> {
    messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::is_deleted.eq(false))
        .select(Message::as_select())
        .order((messages::created_at.asc(), messages::id.asc()))
        .load(conn)
        .await
}

/// How many messages the conversation holds (deleted ones count: they were sent).
pub async fn count(conn: &mut AsyncPgConnection, conversation_id: Uuid) -> QueryResult<i64> {
    messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .count()
        .get_result(conn)
        .await
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
