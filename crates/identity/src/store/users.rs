//! The `users` table.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, now, schema::users};

/// A user row (the columns the service reads).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    #[diesel(column_name = password)]
    pub password_hash: String,
    pub name: String,
    pub plan_tier: String,
    pub role: String,
    pub email_verified: Option<bool>,
    pub is_active: Option<bool>,
    pub login_count: Option<i32>,
    pub last_login_at: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// What analytics' backfill reads of a user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct Exported {
    pub id: Uuid,
    pub plan_tier: String,
    pub role: String,
    pub email_verified: Option<bool>,
    pub is_active: Option<bool>,
    pub created_at: Option<Timestamp>,
    /// The `occurredAt` of the plan change the row holds; `None` if none.
    pub plan_tier_changed_at: Option<Timestamp>,
}

/// Inserts a new user; a taken email is a unique violation.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    email: &str,
    password_hash: &str,
    name: &str,
) -> QueryResult<User> {
    let at = now();
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::email.eq(email),
            users::password.eq(password_hash),
            users::name.eq(name),
            users::created_at.eq(at),
            users::updated_at.eq(at),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// An active user by (normalised) email.
pub async fn find_active_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .filter(users::is_active.eq(true))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// A user by id, active or not.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// An active user by id, locked for the rest of the transaction.
pub async fn lock_active(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .filter(users::is_active.eq(true))
        .select(User::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Counts a successful log-in.
pub async fn record_login(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<User> {
    let at = now();
    diesel::update(users::table.find(id))
        .set((
            users::login_count.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Integer>,
            >("COALESCE(logincount, 0) + 1")),
            users::last_login_at.eq(at),
            users::updated_at.eq(at),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Marks the email verified.
pub async fn mark_verified(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<User> {
    let at = now();
    diesel::update(users::table.find(id))
        .set((
            users::email_verified.eq(true),
            users::email_verified_at.eq(at),
            users::updated_at.eq(at),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Renames the user.
pub async fn set_name(conn: &mut AsyncPgConnection, id: Uuid, name: &str) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((users::name.eq(name), users::updated_at.eq(now())))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Replaces the password hash.
pub async fn set_password(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    password_hash: &str,
) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((
            users::password.eq(password_hash),
            users::updated_at.eq(now()),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Sets the role (`user` | `admin`) of the user with this email.
pub async fn set_role_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
    role: &str,
) -> QueryResult<Option<User>> {
    diesel::update(users::table.filter(users::email.eq(email)))
        .set((users::role.eq(role), users::updated_at.eq(now())))
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Deletes the user; sessions, verifications and resets go with it
/// (ON DELETE CASCADE).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn).await
}

/// Every user after `after` by id, ascending, at most `limit` (analytics'
/// backfill; the primary key's index serves it). Deleted users are gone.
pub async fn export(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<Exported>> {
    let mut query = users::table
        .select(Exported::as_select())
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after));
    }
    query.load(conn).await
}

/// Sets the plan tier billing says the user is on, unless a change that
/// happened later was applied already (events may arrive out of order).
/// `false` when nothing changed (older, or no such user).
pub async fn set_plan_tier(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    plan_tier: &str,
    changed_at: chrono::NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        users::table.find(id).filter(
            users::plan_tier_changed_at
                .is_null()
                .or(users::plan_tier_changed_at.le(changed_at)),
        ),
    )
    .set((
        users::plan_tier.eq(plan_tier),
        users::plan_tier_changed_at.eq(changed_at),
        users::updated_at.eq(now()),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}
