//! `stripeCustomers`: the Stripe customer of each user.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{now, schema::stripe_customers};

/// Records the user's customer unless the user has one already.
pub async fn insert_if_absent(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    stripe_customer_id: &str,
) -> QueryResult<()> {
    diesel::insert_into(stripe_customers::table)
        .values((
            stripe_customers::user_id.eq(user_id),
            stripe_customers::stripe_customer_id.eq(stripe_customer_id),
            stripe_customers::created_at.eq(now()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// The user's Stripe customer.
pub async fn customer_of(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<Option<String>> {
    stripe_customers::table
        .find(user_id)
        .select(stripe_customers::stripe_customer_id)
        .first(conn)
        .await
        .optional()
}

/// The user a Stripe customer belongs to.
pub async fn user_of(
    conn: &mut AsyncPgConnection,
    stripe_customer_id: &str,
) -> QueryResult<Option<Uuid>> {
    stripe_customers::table
        .filter(stripe_customers::stripe_customer_id.eq(stripe_customer_id))
        .select(stripe_customers::user_id)
        .first(conn)
        .await
        .optional()
}

/// Forgets the user's customer (the user was deleted); `true` if there was
/// one.
pub async fn delete_of_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<bool> {
    let n = diesel::delete(stripe_customers::table.find(user_id))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// The user's Stripe customer, if billing has one.
pub async fn of_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Option<String>> {
    stripe_customers::table
        .find(user_id)
        .select(stripe_customers::stripe_customer_id)
        .first(conn)
        .await
        .optional()
}

/// Serialises the rest of the transaction with every other one that takes
/// the same user's customer lock (a transaction-level advisory lock), so
/// that finding no customer and creating one happen once per user however
/// many checkouts run at the same time.
pub async fn lock_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<()> {
    super::locks::xact_lock(conn, &format!("billing.stripe_customer:{user_id}")).await
}
