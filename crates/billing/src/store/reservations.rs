//! The `tokenReservations` table: quota held for provider calls in flight.

use chrono::NaiveDate;
use diesel::{
    dsl::sum,
    pg::Pg,
    prelude::*,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, schema::token_reservations, subscriptions::GRANTING};

/// A reservation row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = token_reservations, check_for_backend(diesel::pg::Pg))]
pub struct Reservation {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The month it was checked against.
    pub billing_month: NaiveDate,
    pub tokens: i32,
    /// After this it no longer holds quota, and the sweeper deletes it.
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// A reservation to make: [`reserve`]'s arguments.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct Ask {
    /// The new reservation's id.
    pub id: Uuid,
    pub user_id: Uuid,
    pub tokens: i32,
    /// What the conversation holds, when the plan's message limit is to be
    /// checked (a send adds two).
    pub conversation_messages: Option<i64>,
    /// The first day of the current month.
    pub month: NaiveDate,
    pub at: Timestamp,
    pub expires_at: Timestamp,
}

/// What [`reserve`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Held; `remaining` is what is left of the quota with it.
    Held {
        remaining: i64,
        plan_name: String,
        max_messages_per_conversation: Option<i32>,
    },
    QuotaExceeded {
        remaining: i64,
    },
    MessageLimit,
    /// The user has no usage row, or one of an earlier month: start or roll
    /// it over, then ask again.
    Prepare,
}

/// Locks the user's usage row, checks the plan's message limit and the
/// quota against the reservations held, and stores the reservation, in one
/// statement and one round trip (the `reserve_tokens` function: each of its
/// statements sees what was committed before the lock was taken). Its
/// commit skips the WAL flush. Call it outside a transaction.
pub async fn reserve(conn: &mut AsyncPgConnection, ask: Ask) -> QueryResult<Answer> {
    let (outcome, remaining, plan_name, max_messages): (
        String,
        Option<i64>,
        Option<String>,
        Option<i32>,
    ) = ask.get_result(conn).await?;
    let unexpected = |what: &str| {
        diesel::result::Error::DeserializationError(
            format!("reserve_tokens answered {what}").into(),
        )
    };
    match (outcome.as_str(), remaining, plan_name) {
        ("held", Some(remaining), Some(plan_name)) => Ok(Answer::Held {
            remaining,
            plan_name,
            max_messages_per_conversation: max_messages,
        }),
        ("quota_exceeded", Some(remaining), _) => Ok(Answer::QuotaExceeded { remaining }),
        ("message_limit", ..) => Ok(Answer::MessageLimit),
        ("prepare", ..) => Ok(Answer::Prepare),
        _ => Err(unexpected(&outcome)),
    }
}

/// `SELECT * FROM reserve_tokens(…)` with a static query id, so the
/// connection prepares it once and each call is a single round trip
/// (`diesel::sql_query` would prepare it again every time).
impl QueryFragment<Pg> for Ask {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT * FROM reserve_tokens(");
        out.push_bind_param::<sql_types::Uuid, _>(&self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Uuid, _>(&self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Integer, _>(&self.tokens)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Nullable<sql_types::BigInt>, _>(
            &self.conversation_messages,
        )?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Date, _>(&self.month)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Timestamp, _>(&self.at)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Timestamp, _>(&self.expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Array<sql_types::Text>, _>(GRANTING.as_slice())?;
        out.push_sql(", ");
        out.push_bind_param::<sql_types::Text, _>(&crate::domain::FREE_PLAN)?;
        out.push_sql(")");
        Ok(())
    }
}

impl Query for Ask {
    type SqlType = (
        sql_types::Text,
        sql_types::Nullable<sql_types::BigInt>,
        sql_types::Nullable<sql_types::Text>,
        sql_types::Nullable<sql_types::Integer>,
    );
}

/// Tokens the user's unexpired reservations hold at `at`.
pub async fn active_total(
    mut conn: &AsyncPgConnection,
    user_id: Uuid,
    at: Timestamp,
) -> QueryResult<i64> {
    let total: Option<i64> = token_reservations::table
        .filter(token_reservations::user_id.eq(user_id))
        .filter(token_reservations::expires_at.gt(at))
        .select(sum(token_reservations::tokens))
        .get_result(&mut conn)
        .await?;
    Ok(total.unwrap_or(0))
}

/// A reservation by id.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Reservation>> {
    token_reservations::table
        .find(id)
        .select(Reservation::as_select())
        .first(conn)
        .await
        .optional()
}

/// Deletes a reservation (settled or released); `true` if it was there.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    let deleted = diesel::delete(token_reservations::table.find(id))
        .execute(conn)
        .await?;
    Ok(deleted == 1)
}

/// Deletes the user's reservation `id` (settled by its usage event); `true`
/// if it was there. Another user's reservation of that id is left alone.
pub async fn delete_of_user(
    mut conn: &AsyncPgConnection,
    user_id: Uuid,
    id: Uuid,
) -> QueryResult<bool> {
    let deleted = diesel::delete(
        token_reservations::table
            .find(id)
            .filter(token_reservations::user_id.eq(user_id)),
    )
    .execute(&mut conn)
    .await?;
    Ok(deleted == 1)
}

/// [`delete_of_user`] for many `(user, reservation)` pairs in one statement;
/// how many were there.
pub async fn delete_many_of_users(
    mut conn: &AsyncPgConnection,
    pairs: &[(Uuid, Uuid)],
) -> QueryResult<usize> {
    aichat_db::Cached(
        diesel::sql_query(
            "DELETE FROM tokenReservations r \
         USING unnest($1::uuid[], $2::uuid[]) AS s (userId, id) \
         WHERE r.id = s.id AND r.userId = s.userId",
        )
        .bind::<sql_types::Array<sql_types::Uuid>, _>(pairs.iter().map(|p| p.0).collect::<Vec<_>>())
        .bind::<sql_types::Array<sql_types::Uuid>, _>(
            pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        ),
    )
    .execute(&mut conn)
    .await
}

/// Deletes reservations that expired before `at`; returns how many.
pub async fn delete_expired(conn: &mut AsyncPgConnection, at: Timestamp) -> QueryResult<usize> {
    diesel::delete(token_reservations::table.filter(token_reservations::expires_at.le(at)))
        .execute(conn)
        .await
}
