//! The `tokenReservations` table: quota held for provider calls in flight.

use chrono::NaiveDate;
use diesel::{dsl::sum, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, schema::token_reservations};

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

/// Stores a reservation (the caller holds the user's usage row lock).
pub async fn insert(conn: &mut AsyncPgConnection, reservation: &Reservation) -> QueryResult<()> {
    diesel::insert_into(token_reservations::table)
        .values(reservation)
        .execute(conn)
        .await
        .map(drop)
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

/// Deletes reservations that expired before `at`; returns how many.
pub async fn delete_expired(conn: &mut AsyncPgConnection, at: Timestamp) -> QueryResult<usize> {
    diesel::delete(token_reservations::table.filter(token_reservations::expires_at.le(at)))
        .execute(conn)
        .await
}
