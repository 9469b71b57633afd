//! `POST /webhooks/stripe`: signature refusals, and subscription events
//! that move the user's quota (billing) and plan tier (identity), once and
//! newest-wins. Payloads are Stripe's documented event and subscription
//! objects (docs.stripe.com/api/events/object,
//! docs.stripe.com/api/subscriptions/object), signed as Stripe signs.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::time::Duration;

use aichat_billing::stripe::webhook::sign;
use aichat_config::SecretString;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    chat::billing_sql,
    helpers::{Login, TestApp, problem, unique_email},
};

pub(crate) const SECRET: &str = "whsec_test_secret";
pub(crate) const PLUS_PRICE: &str = "price_1MowQULkdIwHu7ixraBm864M";
pub(crate) const PRO_PRICE: &str = "price_1MowQWLkdIwHu7ixPro00000";
const PLUS_QUOTA: i64 = 2_000_000;
const FREE_QUOTA: i64 = 100_000;

/// A stack whose billing verifies webhooks with [`SECRET`], and whose Plus
/// and Pro plans are sold at [`PLUS_PRICE`] and [`PRO_PRICE`].
async fn spawn() -> TestApp {
    let app = TestApp::spawn_with_billing(|_| {}, verify_webhooks).await;
    sell_plans(&app).await;
    app
}

/// Billing's configuration: verify webhooks with [`SECRET`].
pub(crate) fn verify_webhooks(billing: &mut aichat_billing::Config) {
    billing.stripe = Some(aichat_billing::config::StripeConfig {
        api_base: "http://127.0.0.1:9".to_owned(),
        secret_key: SecretString::from("sk_test_unused".to_owned()),
        webhook_secrets: vec![SecretString::from(SECRET.to_owned())],
    });
}

/// Sells Plus and Pro (monthly) at [`PLUS_PRICE`] and [`PRO_PRICE`].
pub(crate) async fn sell_plans(app: &TestApp) {
    billing_sql(
        app,
        &format!(
            "UPDATE plans SET stripePriceId = '{PLUS_PRICE}' WHERE name = 'Plus';
             UPDATE plans SET stripePriceId = '{PRO_PRICE}' WHERE name = 'Pro';"
        ),
    )
    .await;
}

/// A subscription as Stripe documents it (2024-12-18.acacia shape: the
/// period on the subscription), for `user` at `price`.
pub(crate) fn subscription(user: &str, price: &str, status: &str, period_start: i64) -> Value {
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
      "current_period_end": period_start + 2_592_000,
      "current_period_start": period_start,
      "customer": "cus_Na6dX7aXxi11N4",
      "default_payment_method": null,
      "ended_at": null,
      "items": {
        "object": "list",
        "data": [{
          "id": "si_Na6dzxczY5fwHx",
          "object": "subscription_item",
          "created": 1_679_609_768,
          "metadata": {},
          "price": {
            "id": price,
            "object": "price",
            "active": true,
            "billing_scheme": "per_unit",
            "created": 1_679_609_766,
            "currency": "usd",
            "livemode": false,
            "lookup_key": null,
            "metadata": {},
            "product": "prod_Na6dGcTsmU0I4R",
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": 1000,
            "unit_amount_decimal": "1000"
          },
          "quantity": 1,
          "subscription": "sub_1MowQVLkdIwHu7ixeRlqHVzs"
        }],
        "has_more": false,
        "url": "/v1/subscription_items?subscription=sub_1MowQVLkdIwHu7ixeRlqHVzs"
      },
      "latest_invoice": "in_1MowQWLkdIwHu7ixuzkSPfKd",
      "livemode": false,
      "metadata": {"userId": user},
      "status": status,
      "trial_end": null,
      "trial_start": null
    })
}

/// An event as Stripe delivers it.
pub(crate) fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
      "id": id,
      "object": "event",
      "api_version": "2024-12-18.acacia",
      "created": created,
      "data": {"object": object},
      "livemode": false,
      "pending_webhooks": 1,
      "request": {"id": null, "idempotency_key": null},
      "type": kind
    }))
    .unwrap()
}

async fn deliver(app: &TestApp, body: &[u8], signature: Option<String>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_vec());
    if let Some(signature) = signature {
        req = req.header("Stripe-Signature", signature);
    }
    req.send().await.unwrap()
}

/// Delivers `body` signed now with [`SECRET`]; asserts Stripe's 200.
pub(crate) async fn deliver_signed(app: &TestApp, body: &[u8]) {
    let r = deliver(app, body, Some(sign(body, SECRET, now()))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": true}));
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn quota(app: &TestApp, login: &Login) -> i64 {
    let usage: Value = app
        .call(
            Method::GET,
            "/api/v1/billing/usage",
            Some(&login.access),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    usage["monthlyQuota"].as_i64().unwrap()
}

async fn plan_tier(app: &TestApp, login: &Login) -> String {
    let me: Value = app.me(&login.access).await.json().await.unwrap();
    me["user"]["planTier"]
        .as_str()
        .or_else(|| me["planTier"].as_str())
        .unwrap()
        .to_owned()
}

/// Polls until the user's quota and plan tier are these, or panics.
async fn until_plan(
    app: &TestApp,
    login: &Login,
    monthly_quota: i64,
    tier: &str,
    within: Duration,
) {
    let started = std::time::Instant::now();
    loop {
        let (q, t) = (quota(app, login).await, plan_tier(app, login).await);
        if q == monthly_quota && t == tier {
            return;
        }
        assert!(
            started.elapsed() < within,
            "quota {q} and tier {t}, expected {monthly_quota} and {tier}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn billing_count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let pool = app.billing.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let row: N = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
    row.n
}

fn user_id(login: &Login) -> String {
    login.user["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_missing_forged_or_stale_signature_is_refused_and_writes_nothing() {
    let app = spawn().await;
    let login = app.signup(&unique_email()).await;
    let body = event(
        "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "customer.subscription.created",
        now(),
        subscription(&user_id(&login), PLUS_PRICE, "active", now()),
    );
    let cases = [
        None,
        Some(sign(&body, "whsec_someone_else", now())),
        Some(sign(&body, SECRET, now() - 301)),
        Some(format!("t={}", now())),
        Some("garbage".to_owned()),
        // The right signature over other bytes.
        Some(sign(b"{}", SECRET, now())),
    ];
    for signature in cases {
        let r = deliver(&app, &body, signature.clone()).await;
        problem(r, StatusCode::BAD_REQUEST, "invalid_signature").await;
    }
    assert_eq!(
        billing_count(&app, "SELECT count(*) AS n FROM stripeEvents").await,
        0
    );
    assert_eq!(
        billing_count(&app, "SELECT count(*) AS n FROM subscriptions").await,
        0
    );
    assert_eq!(quota(&app, &login).await, FREE_QUOTA);
    app.finish().await;
}

#[tokio::test]
async fn without_a_webhook_secret_stripe_is_not_configured() {
    let app = TestApp::spawn().await;
    let body = event("evt_1", "customer.created", now(), json!({"id": "cus_1"}));
    let r = deliver(&app, &body, Some(sign(&body, SECRET, now()))).await;
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "stripe_not_configured").await;
    app.finish().await;
}

#[tokio::test]
async fn a_plus_subscription_raises_the_quota_and_the_tier_once_and_newest_wins() {
    let app = spawn().await;
    let login = app.signup(&unique_email()).await;
    let user = user_id(&login);
    assert_eq!(quota(&app, &login).await, FREE_QUOTA);
    let start = now() - 60;

    // Created: Plus at once, in billing and in identity.
    let created = event(
        "evt_created",
        "customer.subscription.created",
        now() - 30,
        subscription(&user, PLUS_PRICE, "active", start),
    );
    deliver_signed(&app, &created).await;
    until_plan(&app, &login, PLUS_QUOTA, "PLUS", Duration::from_secs(1)).await;

    // The same event again changes nothing.
    deliver_signed(&app, &created).await;
    assert_eq!(
        billing_count(&app, "SELECT count(*) AS n FROM stripeEvents").await,
        1
    );
    assert_eq!(
        billing_count(&app, "SELECT count(*) AS n FROM subscriptions").await,
        1
    );
    let limits = app
        .billing
        .client()
        .await
        .unwrap()
        .get_limits(aichat_proto::billing::v1::UserRef {
            user_id: user.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(limits.plan_name, "Plus");

    // A newer update (cancelled at period end), then an older one (past
    // due) arriving late: the older is ignored.
    let mut newer = subscription(&user, PLUS_PRICE, "active", start);
    newer["cancel_at_period_end"] = true.into();
    deliver_signed(
        &app,
        &event(
            "evt_newer",
            "customer.subscription.updated",
            now() - 10,
            newer,
        ),
    )
    .await;
    deliver_signed(
        &app,
        &event(
            "evt_older",
            "customer.subscription.updated",
            now() - 20,
            subscription(&user, PLUS_PRICE, "past_due", start),
        ),
    )
    .await;
    assert_eq!(
        billing_count(
            &app,
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'active' AND cancelAtPeriodEnd"
        )
        .await,
        1
    );
    assert_eq!(quota(&app, &login).await, PLUS_QUOTA);

    // Deleted (the period ended): back to Free, in both services.
    let mut ended = subscription(&user, PLUS_PRICE, "canceled", start);
    ended["canceled_at"] = (now() - 5).into();
    ended["ended_at"] = (now() - 5).into();
    ended["cancellation_details"]["reason"] = "cancellation_requested".into();
    deliver_signed(
        &app,
        &event(
            "evt_deleted",
            "customer.subscription.deleted",
            now() - 5,
            ended,
        ),
    )
    .await;
    until_plan(&app, &login, FREE_QUOTA, "FREE", Duration::from_secs(2)).await;
    assert_eq!(
        billing_count(
            &app,
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'canceled' \
             AND cancellationReason = 'cancellation_requested' AND cancellationDate IS NOT NULL"
        )
        .await,
        1
    );
    app.finish().await;
}

#[tokio::test]
async fn an_event_type_billing_does_not_handle_is_acknowledged() {
    let app = spawn().await;
    let body = event(
        "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "customer.created",
        now(),
        json!({"id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "jennyrosen@example.com"}),
    );
    deliver_signed(&app, &body).await;
    app.finish().await;
}

#[tokio::test]
async fn identity_keeps_the_newest_plan_tier_whatever_the_order_of_arrival() {
    use aichat_events::billing::SubscriptionChanged;

    let app = spawn().await;
    let login = app.signup(&unique_email()).await;
    let user = user_id(&login).parse().unwrap();
    let at = chrono::Utc::now();
    let change = |tier: &str, occurred_at| SubscriptionChanged {
        user_id: user,
        plan_tier: tier.to_owned(),
        status: "active".to_owned(),
        current_period_end: None,
        occurred_at,
        subscription_id: None,
        plan_id: None,
        interval: None,
        current_period_start: None,
    };
    let newer = app
        .billing
        .publish(&change("PRO", at - chrono::Duration::seconds(10)))
        .await
        .unwrap();
    let older = app
        .billing
        .publish(&change("PLUS", at - chrono::Duration::seconds(20)))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while app
        .count(&format!(
            "inbox WHERE eventId IN ('{}', '{}')",
            newer.id, older.id
        ))
        .await
        < 2
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "identity consumed both"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(plan_tier(&app, &login).await, "PRO");
    app.finish().await;
}
