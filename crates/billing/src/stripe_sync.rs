//! `billing stripe-sync`: the paid plans' Products and Prices in Stripe,
//! found by `lookup_key` and created where missing, their ids stored in
//! `plans` (`stripePriceId` monthly, `stripeYearlyPriceId` yearly).
//!
//! The plans table is the source of truth: each plan with a price above
//! zero gets a monthly Price (`aichat_<plan>_month`) of `monthlyPrice` and,
//! when it has one, a yearly Price (`aichat_<plan>_year`) of `yearlyPrice`,
//! in USD. A Price holding the key with another amount (or archived) is
//! replaced by a new one that takes the key over (`transfer_lookup_key`);
//! Prices cannot change their amount, and subscribers of the old one keep
//! it until they change plan. A plan's Product has our own id
//! (`aichat_<plan>`), so it is found again even when none of its Prices
//! exist yet.
//!
//! Idempotent: a second run finds everything by key and creates nothing.
//! Each create carries an idempotency key derived from the plan, interval,
//! amount and the Price it replaces, so a run retried after a crash (within
//! Stripe's 24 h) gets the first run's objects back instead of duplicates.
//! Not here: deactivating Prices no plan uses (done in the dashboard).

use std::collections::HashMap;

use anyhow::Context;
use bigdecimal::BigDecimal;

use crate::{
    domain::money,
    store::{plans, plans::Plan},
    stripe::{
        NewPrice, NewProduct, StripeClient,
        types::{Interval, Price},
    },
};

/// The currency every plan is sold in (the plans table holds USD).
const CURRENCY: &str = "usd";

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Paid plans looked at.
    pub plans: usize,
    pub products_created: usize,
    pub prices_created: usize,
    /// Plans whose stored price ids changed.
    pub plans_updated: usize,
}

/// The lookup key of a plan's price at an interval: `aichat_plus_month`.
pub fn lookup_key(plan: &Plan, interval: Interval) -> String {
    format!("{}_{}", product_id(plan), interval.as_str())
}

/// The id we give a plan's Product: `aichat_plus`.
pub fn product_id(plan: &Plan) -> String {
    let name: String = plan
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("aichat_{name}")
}

/// Finds or creates every paid plan's Product and Prices and stores the
/// Prices' ids in `plans`.
pub async fn sync(pool: &aichat_db::Pool, stripe: &StripeClient) -> anyhow::Result<Synced> {
    let mut conn = pool.get().await.context("connecting to the database")?;
    let paid = plans::list_paid(&mut conn)
        .await
        .context("reading the plans")?;
    let mut wanted: Vec<(&Plan, Interval, &BigDecimal)> = Vec::new();
    for plan in &paid {
        wanted.push((plan, Interval::Month, &plan.monthly_price));
        if let Some(yearly) = &plan.yearly_price {
            wanted.push((plan, Interval::Year, yearly));
        }
    }
    let keys: Vec<String> = wanted
        .iter()
        .map(|(plan, interval, _)| lookup_key(plan, *interval))
        .collect();
    let mut found: HashMap<String, Price> = HashMap::new();
    for chunk in keys.chunks(10) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let page = stripe
            .list_prices_by_lookup_keys(&chunk)
            .await
            .context("listing the prices by lookup key")?;
        for price in page.data {
            if let Some(key) = price.lookup_key.clone() {
                found.insert(key, price);
            }
        }
    }

    let mut done = Synced {
        plans: paid.len(),
        ..Synced::default()
    };
    for plan in &paid {
        // The plan's Product: the one its existing Prices belong to, else
        // ours by id (found or created on first need).
        let mut product: Option<String> = [Interval::Month, Interval::Year]
            .iter()
            .find_map(|i| found.get(&lookup_key(plan, *i)).map(|p| p.product.clone()));
        let mut ids: HashMap<&'static str, String> = HashMap::new();
        for (_, interval, amount) in wanted.iter().filter(|(p, _, _)| p.id == plan.id) {
            let key = lookup_key(plan, *interval);
            let cents = money::to_cents(amount)
                .map_err(|reason| anyhow::anyhow!("the {key} amount {amount} {reason}"))?;
            let existing = found.get(&key);
            let price_id = match existing {
                Some(price) if fits(price, cents, *interval) => price.id.clone(),
                _ => {
                    let product_id = match &product {
                        Some(id) => id.clone(),
                        None => {
                            let (id, created) = find_or_create_product(stripe, plan).await?;
                            done.products_created += usize::from(created);
                            product = Some(id.clone());
                            id
                        }
                    };
                    let replaces = existing.map_or("none", |p| p.id.as_str());
                    let idempotency_key = format!(
                        "aichat-price-{}-{}-{cents}-{replaces}",
                        plan.id,
                        interval.as_str()
                    );
                    let created = stripe
                        .create_price(
                            &NewPrice {
                                product: &product_id,
                                amount,
                                currency: CURRENCY,
                                interval: *interval,
                                lookup_key: &key,
                                transfer_lookup_key: existing.is_some(),
                            },
                            Some(&idempotency_key),
                        )
                        .await
                        .with_context(|| format!("creating the price {key}"))?;
                    tracing::info!(stripe.price = %created.id, stripe.lookup_key = %key, replaces, "Stripe price created");
                    done.prices_created += 1;
                    created.id
                }
            };
            ids.insert(interval.as_str(), price_id);
        }
        let monthly = ids.get("month").map(String::as_str);
        let yearly = ids.get("year").map(String::as_str);
        let stored = plans::stripe_prices(&mut conn, plan.id)
            .await
            .context("reading a plan's price ids")?;
        if (stored.0.as_deref(), stored.1.as_deref()) != (monthly, yearly) {
            plans::set_stripe_prices(&mut conn, plan.id, monthly, yearly)
                .await
                .context("storing a plan's price ids")?;
            done.plans_updated += 1;
        }
        tracing::info!(plan = %plan.name, stripe.price.monthly = ?monthly, stripe.price.yearly = ?yearly, "plan in step with Stripe");
    }
    Ok(done)
}

/// Whether a found Price sells what the plan says: active, the amount in
/// USD, every `interval`.
fn fits(price: &Price, cents: i64, interval: Interval) -> bool {
    price.active
        && price.unit_amount == Some(cents)
        && price.currency.eq_ignore_ascii_case(CURRENCY)
        && price
            .recurring
            .as_ref()
            .is_some_and(|r| r.interval == interval && r.interval_count == 1)
}

/// The plan's Product by our id, created if missing; `true` when created.
async fn find_or_create_product(
    stripe: &StripeClient,
    plan: &Plan,
) -> anyhow::Result<(String, bool)> {
    let id = product_id(plan);
    match stripe.retrieve_product(&id).await {
        Ok(product) => return Ok((product.id, false)),
        Err(error) if error.is_not_found() => {}
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!("retrieving the product {id}")));
        }
    }
    let product = stripe
        .create_product(
            &NewProduct {
                id: Some(&id),
                name: &plan.name,
                plan_id: plan.id,
            },
            Some(&format!("aichat-product-{}", plan.id)),
        )
        .await
        .with_context(|| format!("creating the product {id}"))?;
    tracing::info!(stripe.product = %product.id, plan = %plan.name, "Stripe product created");
    Ok((product.id, true))
}
