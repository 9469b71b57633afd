//! The `plans` table: what each plan costs and allows.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::plans;
use crate::domain::subscription::Interval;

/// A plan row (the columns the service reads).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = plans, check_for_backend(diesel::pg::Pg))]
pub struct Plan {
    pub id: Uuid,
    pub name: String,
    pub monthly_price: BigDecimal,
    /// `NULL`: not sold yearly.
    pub yearly_price: Option<BigDecimal>,
    pub monthly_token_quota: i32,
    /// `NULL`: unlimited.
    pub max_conversations: Option<i32>,
    /// `NULL`: unlimited.
    pub max_messages_per_conversation: Option<i32>,
    /// A JSON array of feature names.
    pub features: Option<serde_json::Value>,
    pub is_active: Option<bool>,
}

impl Plan {
    /// The feature names (the strings of the `features` array).
    pub fn feature_names(&self) -> Vec<String> {
        self.features
            .as_ref()
            .and_then(serde_json::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The plans on sale, cheapest first.
pub async fn list_active(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Plan>> {
    plans::table
        .filter(plans::is_active.eq(true))
        .order((plans::monthly_price.asc(), plans::name.asc()))
        .select(Plan::as_select())
        .load(conn)
        .await
}

/// A plan by name, on sale or not.
pub async fn find_by_name(mut conn: &AsyncPgConnection, name: &str) -> QueryResult<Option<Plan>> {
    plans::table
        .filter(plans::name.eq(name))
        .select(Plan::as_select())
        .first(&mut conn)
        .await
        .optional()
}

/// A plan by id.
pub async fn find_by_id(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Plan>> {
    plans::table
        .find(id)
        .select(Plan::as_select())
        .first(conn)
        .await
        .optional()
}

/// The plan a Stripe price sells, and how often it bills: `Year` for the
/// plan's `stripeYearlyPriceId`, `Month` for its `stripePriceId`.
pub async fn find_by_stripe_price(
    conn: &mut AsyncPgConnection,
    price_id: &str,
) -> QueryResult<Option<(Plan, Interval)>> {
    let found: Option<(Plan, Option<String>)> = plans::table
        .filter(
            plans::stripe_price_id
                .eq(price_id)
                .or(plans::stripe_yearly_price_id.eq(price_id)),
        )
        .select((Plan::as_select(), plans::stripe_yearly_price_id))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(plan, yearly)| {
        let interval = if yearly.as_deref() == Some(price_id) {
            Interval::Year
        } else {
            Interval::Month
        };
        (plan, interval)
    }))
}

/// The plans Stripe sells (a price above zero), on sale or not: a plan
/// taken off sale may still have subscribers.
pub async fn list_paid(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Plan>> {
    plans::table
        .filter(plans::monthly_price.gt(BigDecimal::from(0)))
        .order((plans::monthly_price.asc(), plans::name.asc()))
        .select(Plan::as_select())
        .load(conn)
        .await
}

/// The plan's Stripe prices: (monthly, yearly).
pub async fn stripe_prices(
    conn: &mut AsyncPgConnection,
    plan_id: Uuid,
) -> QueryResult<(Option<String>, Option<String>)> {
    plans::table
        .find(plan_id)
        .select((plans::stripe_price_id, plans::stripe_yearly_price_id))
        .first(conn)
        .await
}

/// Stores the plan's Stripe prices (`None`: not sold at that interval).
pub async fn set_stripe_prices(
    conn: &mut AsyncPgConnection,
    plan_id: Uuid,
    monthly: Option<&str>,
    yearly: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(plans::table.find(plan_id))
        .set((
            plans::stripe_price_id.eq(monthly),
            plans::stripe_yearly_price_id.eq(yearly),
            plans::updated_at.eq(super::now()),
        ))
        .execute(conn)
        .await
}

/// A plan by id, on sale or not, with its Stripe prices.
pub async fn find_with_prices(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<(Plan, StripePrices)>> {
    plans::table
        .find(id)
        .select((Plan::as_select(), StripePrices::as_select()))
        .first(conn)
        .await
        .optional()
}

/// The Stripe prices a plan is sold at (set by the price sync).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = plans, check_for_backend(diesel::pg::Pg))]
pub struct StripePrices {
    /// Monthly (the seed's column).
    #[diesel(column_name = stripe_price_id)]
    pub monthly: Option<String>,
    #[diesel(column_name = stripe_yearly_price_id)]
    pub yearly: Option<String>,
}
