//! `subscriptions`: each user's Stripe subscription (one per user), as the
//! newest Stripe event applied says it is.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp, now,
    plans::Plan,
    schema::{plans, subscriptions},
};

/// A stored subscription.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subscriptions, check_for_backend(diesel::pg::Pg))]
pub struct Subscription {
    pub id: Uuid,
    pub user_id: Uuid,
    pub plan_id: Uuid,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: String,
    pub status: String,
    pub current_period_start: Timestamp,
    pub current_period_end: Timestamp,
    pub cancellation_date: Option<Timestamp>,
    pub cancellation_reason: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub trial_ends_at: Option<Timestamp>,
    pub stripe_event_created_at: Option<Timestamp>,
}

/// What a Stripe event says a subscription is.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = subscriptions, treat_none_as_null = true)]
pub struct SubscriptionState {
    pub user_id: Uuid,
    pub plan_id: Uuid,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: String,
    pub status: String,
    pub current_period_start: Timestamp,
    pub current_period_end: Timestamp,
    pub cancellation_date: Option<Timestamp>,
    pub cancellation_reason: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub trial_ends_at: Option<Timestamp>,
    pub stripe_event_created_at: Option<Timestamp>,
}

/// The row of a Stripe subscription, locked for the transaction.
pub async fn lock_by_stripe_id(
    conn: &mut AsyncPgConnection,
    stripe_subscription_id: &str,
) -> QueryResult<Option<Subscription>> {
    subscriptions::table
        .filter(subscriptions::stripe_subscription_id.eq(stripe_subscription_id))
        .select(Subscription::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The user's subscription row, locked for the transaction.
pub async fn lock_of_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<Option<Subscription>> {
    subscriptions::table
        .filter(subscriptions::user_id.eq(user_id))
        .select(Subscription::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Inserts the user's subscription, or replaces the user's row (a user has
/// one: a new Stripe subscription takes the place of an ended one) unless
/// the row was written from a later Stripe event: `false` then. The check
/// is part of the statement, so two deliveries racing to create the row
/// still end with the newer one.
pub async fn upsert(conn: &mut AsyncPgConnection, state: &SubscriptionState) -> QueryResult<bool> {
    let at = now();
    let upsert = diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::id.eq(Uuid::now_v7()),
            state,
            subscriptions::created_at.eq(at),
            subscriptions::updated_at.eq(at),
        ))
        .on_conflict(subscriptions::user_id)
        .do_update()
        .set((state, subscriptions::updated_at.eq(at)));
    // `ON CONFLICT ... DO UPDATE ... WHERE`: diesel's upsert filter.
    let written = diesel::query_dsl::methods::FilterDsl::filter(
        upsert,
        subscriptions::stripe_event_created_at
            .is_null()
            .or(subscriptions::stripe_event_created_at.le(state.stripe_event_created_at)),
    )
    .execute(conn)
    .await?;
    Ok(written == 1)
}

/// The plan of the user's subscription while it grants one (`active` or
/// `past_due`); `None` means the Free plan.
pub async fn granted_plan(
    mut conn: &AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<Option<Plan>> {
    subscriptions::table
        .inner_join(plans::table)
        .filter(subscriptions::user_id.eq(user_id))
        .filter(subscriptions::status.eq_any(GRANTING))
        .select(Plan::as_select())
        .first(&mut conn)
        .await
        .optional()
}

/// The statuses in which the subscription's plan applies.
pub const GRANTING: [&str; 2] = ["active", "past_due"];

/// The user's subscription row and its plan's name (unlocked).
pub async fn find_with_plan_name(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<Option<(Subscription, String)>> {
    subscriptions::table
        .inner_join(plans::table)
        .filter(subscriptions::user_id.eq(user_id))
        .select((Subscription::as_select(), plans::name))
        .first(conn)
        .await
        .optional()
}
