//! `HandleStripeWebhook`: Stripe's events (payloads from docs.stripe.com,
//! signed as Stripe signs) applied once, newest state first, with the
//! quota following the plan and `billing.subscription.changed` in the
//! outbox.
#![expect(clippy::unwrap_used, reason = "tests: a failure fails the test")]

use aichat_billing::{
    config::{Config, StripeConfig},
    stripe::webhook::sign,
};
use aichat_config::SecretString;
use aichat_proto::billing::v1::{StripeWebhook, UserRef};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{Harness, details, registered};

pub const SECRET: &str = "whsec_billing_tests";
const OLD_SECRET: &str = "whsec_rotated_out";
pub const PLUS_MONTH: &str = "price_plus_month";
pub const PRO_MONTH: &str = "price_pro_month";
pub const PRO_YEAR: &str = "price_pro_year";
pub const FREE_QUOTA: i64 = 100_000;
pub const PLUS_QUOTA: i64 = 2_000_000;
pub const PRO_QUOTA: i64 = 10_000_000;
pub const DAY: i64 = 86_400;

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

/// [`start`], after `adjust` has changed the configuration.
pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Harness {
    start_with_stripe("http://127.0.0.1:9", adjust).await
}

/// A service whose webhooks are configured, calling Stripe at `api_base`,
/// with the paid plans' prices stored; `adjust` changes the rest.
pub async fn start_with_stripe(api_base: &str, adjust: impl FnOnce(&mut Config)) -> Harness {
    let h = Harness::start_with(|config| {
        config.stripe = Some(StripeConfig {
            api_base: api_base.to_owned(),
            secret_key: SecretString::from("sk_test_unused".to_owned()),
            webhook_secrets: vec![
                SecretString::from(SECRET.to_owned()),
                SecretString::from(OLD_SECRET.to_owned()),
            ],
        });
        adjust(config);
    })
    .await;
    Harness::execute(
        &h,
        &format!(
            "UPDATE plans SET stripePriceId = CASE name WHEN 'Plus' THEN '{PLUS_MONTH}' \
         WHEN 'Pro' THEN '{PRO_MONTH}' END, \
         stripeYearlyPriceId = CASE name WHEN 'Pro' THEN '{PRO_YEAR}' END \
         WHERE name IN ('Plus', 'Pro')"
        ),
    )
    .await;
    h
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A subscription as Stripe documents it from `2025-03-31.basil` on (the
/// period on its item), for `user` (in its metadata; `None`: no metadata).
pub fn subscription(user: Option<Uuid>, price: &str, status: &str, period_start: i64) -> Value {
    let metadata = match user {
        Some(user) => json!({"userId": user.to_string()}),
        None => json!({}),
    };
    json!({
      "id": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
      "object": "subscription",
      "application": null,
      "billing_cycle_anchor": period_start,
      "cancel_at": null,
      "cancel_at_period_end": false,
      "canceled_at": null,
      "cancellation_details": {"comment": null, "feedback": null, "reason": null},
      "collection_method": "charge_automatically",
      "created": 1_679_609_767,
      "currency": "usd",
      "customer": "cus_Na6dX7aXxi11N4",
      "default_payment_method": null,
      "ended_at": null,
      "items": {
        "object": "list",
        "data": [{
          "id": "si_Na6dzxczY5fwHx",
          "object": "subscription_item",
          "created": 1_679_609_768,
          "current_period_end": period_start + 30 * DAY,
          "current_period_start": period_start,
          "metadata": {},
          "price": {
            "id": price,
            "object": "price",
            "active": true,
            "currency": "usd",
            "lookup_key": null,
            "product": "prod_Na6dGcTsmU0I4R",
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "unit_amount": 2000
          },
          "quantity": 1,
          "subscription": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
          "tax_rates": []
        }],
        "has_more": false,
        "total_count": 1,
        "url": "/v1/subscription_items?subscription=sub_1MowQVLkdIwHu7ixeRlqHVzs"
      },
      "latest_invoice": "in_1MowQWLkdIwHu7ixuzkSPfKd",
      "livemode": false,
      "metadata": metadata,
      "status": status,
      "trial_end": null,
      "trial_start": null
    })
}

/// A Checkout Session as `checkout.session.completed` carries it
/// (docs.stripe.com/api/checkout/sessions/object, trimmed).
pub fn checkout_session(user: Uuid) -> Value {
    json!({
      "id": "cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u",
      "object": "checkout.session",
      "client_reference_id": user.to_string(),
      "customer": "cus_Na6dX7aXxi11N4",
      "livemode": false,
      "mode": "subscription",
      "payment_status": "paid",
      "status": "complete",
      "subscription": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
      "url": null
    })
}

pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
      "id": id,
      "object": "event",
      "api_version": "2025-11-17.clover",
      "created": created,
      "data": {"object": object, "previous_attributes": {}},
      "livemode": false,
      "pending_webhooks": 1,
      "request": {"id": null, "idempotency_key": null},
      "type": kind
    }))
    .unwrap()
}

pub(crate) async fn deliver(
    h: &Harness,
    payload: &[u8],
    signature: Option<String>,
) -> Result<(), tonic::Status> {
    h.client
        .clone()
        .handle_stripe_webhook(StripeWebhook {
            payload: payload.to_vec(),
            signature,
        })
        .await
        .map(drop)
}

pub async fn deliver_signed(h: &Harness, payload: &[u8]) {
    deliver(h, payload, Some(sign(payload, SECRET, now())))
        .await
        .unwrap();
}

#[derive(QueryableByName)]
pub struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

pub async fn count(h: &Harness, sql: &str) -> i64 {
    let mut conn = h.pool.get().await.unwrap();
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n
}

pub async fn quota(h: &Harness, user: Uuid) -> i64 {
    h.usage(user).await.monthly_quota
}

pub async fn plan_name(h: &Harness, user: Uuid) -> String {
    h.client
        .clone()
        .get_limits(UserRef {
            user_id: user.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .plan_name
}

/// The data of each billing.subscription.changed in the outbox, oldest
/// first.
pub async fn changes(h: &Harness) -> Vec<Value> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: Value,
    }
    let mut conn = h.pool.get().await.unwrap();
    diesel::sql_query(
        "SELECT payload FROM outbox WHERE eventType = 'billing.subscription.changed' \
         ORDER BY createdAt, id",
    )
    .load::<P>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|p| p.payload["data"].clone())
    .collect()
}

pub async fn user(h: &Harness) -> Uuid {
    let user = Uuid::now_v7();
    let envelope = h.billing.publish(&registered(user)).await.unwrap();
    h.wait_processed(&envelope).await;
    user
}

#[tokio::test]
async fn without_a_webhook_secret_webhooks_are_refused_as_not_configured() {
    let h = Harness::start().await;
    let payload = event("evt_1", "customer.created", now(), json!({"id": "cus_1"}));
    let status = deliver(&h, &payload, Some(sign(&payload, SECRET, now())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(details(&status)["code"], "stripe_not_configured");
    h.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_still_verifies_and_a_signed_non_event_is_refused() {
    let h = start().await;
    let payload = event(
        "evt_rotated",
        "customer.created",
        now(),
        json!({"id": "cus_1"}),
    );
    deliver(&h, &payload, Some(sign(&payload, OLD_SECRET, now())))
        .await
        .unwrap();
    let status = deliver(&h, b"[1, 2]", Some(sign(b"[1, 2]", SECRET, now())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(details(&status)["code"], "invalid_event");
    let status = deliver(&h, &payload, None).await.unwrap_err();
    assert_eq!(details(&status)["code"], "invalid_signature");
    // The unknown type is recorded as acknowledged, nothing else.
    assert_eq!(
        count(&h, "SELECT count(*) AS n FROM subscriptions").await,
        0
    );
    h.stop().await;
}

#[tokio::test]
async fn a_trialing_basil_subscription_at_a_yearly_price_grants_its_plan() {
    let h = start().await;
    let user = user(&h).await;
    let mut sub = subscription(Some(user), PRO_YEAR, "trialing", now() - DAY);
    sub["trial_end"] = (now() + 13 * DAY).into();
    deliver_signed(
        &h,
        &event("evt_trial", "customer.subscription.created", now() - 5, sub),
    )
    .await;

    assert_eq!(quota(&h, user).await, PRO_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Pro");
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'active' \
             AND trialEndsAt IS NOT NULL AND currentPeriodEnd - currentPeriodStart = interval '30 days'"
        )
        .await,
        1
    );
    let changes = changes(&h).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["userId"], user.to_string());
    assert_eq!(changes[0]["planTier"], "PRO");
    assert_eq!(changes[0]["status"], "active");
    // A reservation is checked against Pro's quota.
    h.reserve(user, PLUS_QUOTA + 1).await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn checkout_links_the_customer_so_a_subscription_without_metadata_finds_its_user() {
    let h = start().await;
    let user = user(&h).await;
    deliver_signed(
        &h,
        &event(
            "evt_checkout",
            "checkout.session.completed",
            now() - 10,
            checkout_session(user),
        ),
    )
    .await;
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM stripeCustomers WHERE userId = '{user}' \
                 AND stripeCustomerId = 'cus_Na6dX7aXxi11N4'"
            )
        )
        .await,
        1
    );
    deliver_signed(
        &h,
        &event(
            "evt_created",
            "customer.subscription.created",
            now() - 5,
            subscription(None, PLUS_MONTH, "active", now() - DAY),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);
    h.stop().await;
}

#[tokio::test]
async fn an_incomplete_subscription_grants_nothing_until_it_is_active() {
    let h = start().await;
    let user = user(&h).await;
    let start_at = now() - DAY;
    deliver_signed(
        &h,
        &event(
            "evt_incomplete",
            "customer.subscription.created",
            now() - 20,
            subscription(Some(user), PLUS_MONTH, "incomplete", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Free");
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'unpaid'"
        )
        .await,
        1
    );
    deliver_signed(
        &h,
        &event(
            "evt_active",
            "customer.subscription.updated",
            now() - 10,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);
    h.stop().await;
}

#[tokio::test]
async fn a_downgrade_keeps_the_paid_quota_until_the_next_period() {
    let h = start().await;
    let user = user(&h).await;
    let start_at = now() - 10 * DAY;
    deliver_signed(
        &h,
        &event(
            "evt_pro",
            "customer.subscription.created",
            now() - 30,
            subscription(Some(user), PRO_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, PRO_QUOTA);
    // Downgraded to Plus mid-period: Pro's quota stays for the period paid.
    deliver_signed(
        &h,
        &event(
            "evt_down",
            "customer.subscription.updated",
            now() - 20,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, PRO_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Plus");
    // The renewal starts a new period: Plus's quota from now on.
    deliver_signed(
        &h,
        &event(
            "evt_renewed",
            "customer.subscription.updated",
            now() - 10,
            subscription(Some(user), PLUS_MONTH, "active", start_at + 30 * DAY),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);
    h.stop().await;
}

#[tokio::test]
async fn paused_falls_back_to_free_and_resumed_restores_the_plan() {
    let h = start().await;
    let user = user(&h).await;
    let start_at = now() - DAY;
    deliver_signed(
        &h,
        &event(
            "evt_created",
            "customer.subscription.created",
            now() - 30,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    deliver_signed(
        &h,
        &event(
            "evt_paused",
            "customer.subscription.paused",
            now() - 20,
            subscription(Some(user), PLUS_MONTH, "paused", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(plan_name(&h, user).await, "Free");
    deliver_signed(
        &h,
        &event(
            "evt_resumed",
            "customer.subscription.resumed",
            now() - 10,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, PLUS_QUOTA);
    let tiers: Vec<Value> = changes(&h)
        .await
        .into_iter()
        .map(|c| c["planTier"].clone())
        .collect();
    assert_eq!(tiers, [json!("PLUS"), json!("FREE"), json!("PLUS")]);
    h.stop().await;
}

#[tokio::test]
async fn a_duplicate_or_an_older_event_changes_nothing_and_publishes_nothing() {
    let h = start().await;
    let user = user(&h).await;
    let start_at = now() - DAY;
    let created = event(
        "evt_created",
        "customer.subscription.created",
        now() - 30,
        subscription(Some(user), PLUS_MONTH, "active", start_at),
    );
    deliver_signed(&h, &created).await;
    let mut deleted = subscription(Some(user), PLUS_MONTH, "canceled", start_at);
    deleted["canceled_at"] = (now() - 10).into();
    deliver_signed(
        &h,
        &event(
            "evt_deleted",
            "customer.subscription.deleted",
            now() - 10,
            deleted,
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, FREE_QUOTA);

    deliver_signed(&h, &created).await;
    deliver_signed(
        &h,
        &event(
            "evt_late_update",
            "customer.subscription.updated",
            now() - 20,
            subscription(Some(user), PLUS_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'canceled'"
        )
        .await,
        1
    );
    assert_eq!(changes(&h).await.len(), 2);
    assert_eq!(count(&h, "SELECT count(*) AS n FROM stripeEvents").await, 3);
    h.stop().await;
}

#[tokio::test]
async fn an_older_event_racing_a_newer_one_to_create_the_row_never_wins() {
    let h = start().await;
    let start_at = now() - DAY;
    let mut users = Vec::new();
    for n in 0..8 {
        let user = user(&h).await;
        let for_user = |status: &str| {
            let mut sub = subscription(Some(user), PLUS_MONTH, status, start_at);
            sub["id"] = format!("sub_race_{n}").into();
            sub
        };
        let older = event(
            &format!("evt_older_{n}"),
            "customer.subscription.created",
            now() - 20,
            for_user("incomplete"),
        );
        let newer = event(
            &format!("evt_newer_{n}"),
            "customer.subscription.updated",
            now() - 10,
            for_user("active"),
        );
        // Both in flight at once, the older sent first.
        futures::join!(deliver_signed(&h, &older), deliver_signed(&h, &newer));
        users.push(user);
    }
    for user in users {
        assert_eq!(quota(&h, user).await, PLUS_QUOTA, "user {user}");
    }
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'active'"
        )
        .await,
        8
    );
    h.stop().await;
}

/// The user's subscription row: its id and `billingInterval`.
async fn row_id_and_interval(h: &Harness, user: Uuid) -> (Uuid, String) {
    #[derive(QueryableByName)]
    struct R {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Text)]
        interval: String,
    }
    let mut conn = h.pool.get().await.unwrap();
    let row: R = diesel::sql_query(
        "SELECT id, billingInterval AS interval FROM subscriptions WHERE userId = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(user)
    .get_result(&mut conn)
    .await
    .unwrap();
    (row.id, row.interval)
}

pub async fn plan_id(h: &Harness, name: &str) -> Uuid {
    #[derive(QueryableByName)]
    struct I {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let mut conn = h.pool.get().await.unwrap();
    diesel::sql_query("SELECT id FROM plans WHERE name = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<I>(&mut conn)
        .await
        .unwrap()
        .id
}

/// A Unix time as the events write it.
pub fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[tokio::test]
async fn the_row_and_the_change_carry_the_prices_interval_the_row_id_and_the_period() {
    let h = start().await;
    let user = user(&h).await;
    let start_at = now() - DAY;
    deliver_signed(
        &h,
        &event(
            "evt_yearly",
            "customer.subscription.created",
            now() - 30,
            subscription(Some(user), PRO_YEAR, "active", start_at),
        ),
    )
    .await;
    let (id, interval) = row_id_and_interval(&h, user).await;
    assert_eq!(interval, "year");
    let pro = plan_id(&h, "Pro").await;
    let first = changes(&h).await.pop().unwrap();
    assert_eq!(first["subscriptionId"], id.to_string());
    assert_eq!(first["planId"], pro.to_string());
    assert_eq!(first["interval"], "year");
    assert_eq!(first["currentPeriodStart"], rfc3339(start_at));
    assert_eq!(first["currentPeriodEnd"], rfc3339(start_at + 30 * DAY));

    // Switched to Pro's monthly price: the same row, now monthly.
    deliver_signed(
        &h,
        &event(
            "evt_monthly",
            "customer.subscription.updated",
            now() - 20,
            subscription(Some(user), PRO_MONTH, "active", start_at),
        ),
    )
    .await;
    assert_eq!(
        row_id_and_interval(&h, user).await,
        (id, "month".to_owned())
    );
    let second = changes(&h).await.pop().unwrap();
    assert_eq!(second["subscriptionId"], id.to_string());
    assert_eq!(second["planId"], pro.to_string());
    assert_eq!(second["interval"], "month");

    // Cancelled: the change still names the subscribed plan and interval
    // while the tier falls to Free.
    let mut ended = subscription(Some(user), PRO_MONTH, "canceled", start_at);
    ended["canceled_at"] = (now() - 10).into();
    deliver_signed(
        &h,
        &event(
            "evt_ended",
            "customer.subscription.deleted",
            now() - 10,
            ended,
        ),
    )
    .await;
    let last = changes(&h).await.pop().unwrap();
    assert_eq!(last["planTier"], "FREE");
    assert_eq!(last["planId"], pro.to_string());
    assert_eq!(last["interval"], "month");
    assert_eq!(last["subscriptionId"], id.to_string());
    h.stop().await;
}

#[tokio::test]
async fn an_interval_outside_month_and_year_is_refused_by_the_table() {
    let h = start().await;
    let user = user(&h).await;
    deliver_signed(
        &h,
        &event(
            "evt_created",
            "customer.subscription.created",
            now() - 10,
            subscription(Some(user), PLUS_MONTH, "active", now() - DAY),
        ),
    )
    .await;
    let mut conn = h.pool.get().await.unwrap();
    let refused = diesel::sql_query("UPDATE subscriptions SET billingInterval = 'week'")
        .execute(&mut conn)
        .await;
    assert!(refused.is_err());
    h.stop().await;
}
