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
    /// `month` or `year`: the interval of the subscribed Stripe price.
    pub billing_interval: String,
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
    /// `month` or `year`: the interval of the subscribed Stripe price.
    pub billing_interval: String,
}

/// Serialises the rest of the transaction with every other one writing the
/// user's subscription, whether or not the user has a row yet.
pub async fn lock_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<()> {
    super::locks::xact_lock(conn, &format!("billing.subscription:{user_id}")).await
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
/// the row was written from a later Stripe event: the id of the row
/// written, `None` then. The check is part of the statement, so two
/// deliveries racing to create the row still end with the newer one.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    state: &SubscriptionState,
) -> QueryResult<Option<Uuid>> {
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
    diesel::query_dsl::methods::FilterDsl::filter(
        upsert,
        subscriptions::stripe_event_created_at
            .is_null()
            .or(subscriptions::stripe_event_created_at.le(state.stripe_event_created_at)),
    )
    .returning(subscriptions::id)
    .get_result(conn)
    .await
    .optional()
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

/// The row of a Stripe subscription, unlocked.
pub async fn find_by_stripe_id(
    conn: &mut AsyncPgConnection,
    stripe_subscription_id: &str,
) -> QueryResult<Option<Subscription>> {
    subscriptions::table
        .filter(subscriptions::stripe_subscription_id.eq(stripe_subscription_id))
        .select(Subscription::as_select())
        .first(conn)
        .await
        .optional()
}

/// The user's subscription row, unlocked.
pub async fn find_of_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<Option<Subscription>> {
    subscriptions::table
        .filter(subscriptions::user_id.eq(user_id))
        .select(Subscription::as_select())
        .first(conn)
        .await
        .optional()
}

/// Deletes the user's row (the user was deleted): their payments and
/// invoices stay, unlinked (`subscriptionId` goes `NULL` by the foreign
/// key). `true` if there was one.
pub async fn delete_of_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<bool> {
    let n = diesel::delete(subscriptions::table.filter(subscriptions::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Subscriptions still `active` or `past_due` locally, set to cancel at
/// their period's end, whose period ended before `before`: Stripe has
/// ended them (or renewed them, if resumed) and the webhook saying so is
/// late or lost. Oldest period end first, at most `limit`.
pub async fn overdue_cancellations(
    conn: &mut AsyncPgConnection,
    before: Timestamp,
    limit: i64,
) -> QueryResult<Vec<Subscription>> {
    subscriptions::table
        .filter(subscriptions::status.eq_any(GRANTING))
        .filter(subscriptions::cancel_at_period_end.eq(true))
        .filter(subscriptions::current_period_end.lt(before))
        .order(subscriptions::current_period_end.asc())
        .limit(limit)
        .select(Subscription::as_select())
        .load(conn)
        .await
}

/// Users whose subscription's period ended before `before` and whose
/// usage quota is still above what the subscription grants now: the plan
/// while `active` or `past_due` and not cancelled at the period's end, the
/// Free plan (`free_quota`) otherwise. A downgrade or a cancellation waits
/// for the period's end; this finds the ones whose end has come. At most
/// `limit`, oldest period end first.
pub async fn quota_above_grant_after_period(
    conn: &mut AsyncPgConnection,
    before: Timestamp,
    free_quota: i32,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        user_id: Uuid,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT s.userId AS user_id FROM subscriptions s \
         JOIN plans p ON p.id = s.planId \
         JOIN usageTracking u ON u.userId = s.userId \
         WHERE s.currentPeriodEnd < $1 \
           AND u.monthlyQuota > CASE \
             WHEN s.status IN ('active', 'past_due') AND NOT COALESCE(s.cancelAtPeriodEnd, FALSE) \
             THEN p.monthlyTokenQuota ELSE $2 END \
         ORDER BY s.currentPeriodEnd \
         LIMIT $3",
    )
    .bind::<diesel::sql_types::Timestamp, _>(before)
    .bind::<diesel::sql_types::Integer, _>(free_quota)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.user_id).collect())
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
