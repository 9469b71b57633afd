//! The user's side of paid plans over gRPC: checkout (the exact form sent
//! to Stripe, one customer per user however many checkouts run at once),
//! the portal, cancel and resume (Stripe's answer stored newest-first, the
//! quota following), the invoice and payment lists (keyset pages), and the
//! refusals, each writing nothing and calling no Stripe. Stripe is the
//! stand-in of `stripe_standin.rs`, answering Stripe's documented objects
//! (docs.stripe.com/api), trimmed.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failure fails the test"
)]

use std::time::Duration;

use aichat_billing::{
    account::customer_idempotency_key, config::StripeConfig, stripe::webhook::sign,
};
use aichat_config::SecretString;
use aichat_proto::billing::v1::{
    CancelRequest, CheckoutRequest, PageRequest, StripeWebhook, Subscription, UserRef,
};
use diesel::QueryableByName;
use serde_json::{Value, json};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::{
    helpers::{Harness, details, registered},
    stripe_standin::{Recorded, Reply, StandIn, sorted},
    webhooks::plan_id,
};

const SECRET_KEY: &str = "sk_test_51accountapi";
const WEBHOOK_SECRET: &str = "whsec_account_api";
const PLUS_MONTH: &str = "price_plus_month";
const PRO_MONTH: &str = "price_pro_month";
const PRO_YEAR: &str = "price_pro_year";
const CUSTOMER: &str = "cus_NffrFeUfNV2Hib";
const SUBSCRIPTION: &str = "sub_1MowQVLkdIwHu7ixeRlqHVzs";
const PUBLIC_URL: &str = "http://127.0.0.1:8080";
const FREE_QUOTA: i32 = 100_000;
const PLUS_QUOTA: i32 = 2_000_000;

/// Billing with Stripe at `standin` (and webhooks signed with
/// [`WEBHOOK_SECRET`]), Plus sold monthly, Pro monthly and yearly.
async fn start(standin: &StandIn) -> Harness {
    let base = standin.base.clone();
    let h = Harness::start_with(move |config| {
        config.stripe = Some(StripeConfig {
            api_base: base,
            secret_key: SecretString::from(SECRET_KEY.to_owned()),
            webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET.to_owned())],
        });
    })
    .await;
    h.execute(&format!(
        "UPDATE plans SET stripePriceId = CASE name WHEN 'Plus' THEN '{PLUS_MONTH}' \
         WHEN 'Pro' THEN '{PRO_MONTH}' END, \
         stripeYearlyPriceId = CASE name WHEN 'Pro' THEN '{PRO_YEAR}' END \
         WHERE name IN ('Plus', 'Pro')"
    ))
    .await;
    h
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(h: &Harness, sql: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    let mut conn = h.pool.get().await.unwrap();
    let row: N = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
    row.n
}

fn checkout_request(user: Uuid, plan: Uuid, interval: &str) -> CheckoutRequest {
    CheckoutRequest {
        user_id: user.to_string(),
        plan_id: plan.to_string(),
        interval: interval.to_owned(),
        email: "jennyrosen@example.com".to_owned(),
        name: Some("Jenny Rosen".to_owned()),
    }
}

async fn checkout(
    h: &Harness,
    request: CheckoutRequest,
) -> Result<aichat_proto::billing::v1::CheckoutSession, Status> {
    h.client
        .clone()
        .create_checkout_session(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn get_subscription(h: &Harness, user: Uuid) -> Subscription {
    h.client
        .clone()
        .get_subscription(UserRef {
            user_id: user.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn cancel(
    h: &Harness,
    user: Uuid,
    at_period_end: Option<bool>,
    reason: Option<&str>,
) -> Result<Subscription, Status> {
    h.client
        .clone()
        .cancel_subscription(CancelRequest {
            user_id: user.to_string(),
            at_period_end,
            reason: reason.map(str::to_owned),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn resume(h: &Harness, user: Uuid) -> Result<Subscription, Status> {
    h.client
        .clone()
        .resume_subscription(UserRef {
            user_id: user.to_string(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts a refusal's gRPC code and problem code.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, problem: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(details(&status)["code"], problem, "{status:?}");
}

/// Asserts a `validation_failed` naming `field`.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = details(&status);
    assert_eq!(details["code"], "validation_failed", "{details}");
    assert!(details["errors"][field].is_string(), "{details}");
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn assert_post(request: &Recorded, path: &str) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, path);
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );
    assert!(request.header("Idempotency-Key").is_some());
}

/// A customer as `POST /v1/customers` answers it.
fn customer(user: Uuid) -> Value {
    json!({
      "id": CUSTOMER,
      "object": "customer",
      "address": null,
      "balance": 0,
      "created": 1_680_893_993,
      "currency": null,
      "default_source": null,
      "delinquent": false,
      "description": null,
      "email": "jennyrosen@example.com",
      "invoice_prefix": "0759376C",
      "livemode": false,
      "metadata": {"userId": user.to_string()},
      "name": "Jenny Rosen",
      "next_invoice_sequence": 1,
      "phone": null,
      "preferred_locales": [],
      "shipping": null,
      "tax_exempt": "none",
      "test_clock": null
    })
}

/// A Checkout Session in subscription mode as `POST
/// /v1/checkout/sessions` answers it.
fn checkout_session(id: &str, user: Uuid) -> Value {
    json!({
      "id": id,
      "object": "checkout.session",
      "cancel_url": format!("{PUBLIC_URL}/billing?checkout=canceled"),
      "client_reference_id": user.to_string(),
      "customer": CUSTOMER,
      "livemode": false,
      "metadata": {},
      "mode": "subscription",
      "payment_status": "unpaid",
      "status": "open",
      "subscription": null,
      "success_url": format!("{PUBLIC_URL}/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"),
      "url": format!("https://checkout.stripe.com/c/pay/{id}")
    })
}

/// A subscription in the shape of the pinned API version (the period on
/// its item), as the subscription calls answer it.
fn stripe_subscription(user: Uuid, status: &str, cancel_at_period_end: bool) -> Value {
    let start = chrono::Utc::now().timestamp() - 86_400;
    json!({
      "id": SUBSCRIPTION,
      "object": "subscription",
      "application": null,
      "billing_cycle_anchor": start,
      "cancel_at": if cancel_at_period_end { json!(start + 2_592_000) } else { Value::Null },
      "cancel_at_period_end": cancel_at_period_end,
      "canceled_at": null,
      "cancellation_details": {"comment": null, "feedback": null, "reason": null},
      "collection_method": "charge_automatically",
      "created": start,
      "currency": "usd",
      "customer": CUSTOMER,
      "default_payment_method": null,
      "ended_at": null,
      "items": {
        "object": "list",
        "data": [{
          "id": "si_Na6dzxczY5fwHx",
          "object": "subscription_item",
          "created": start,
          "current_period_end": start + 2_592_000,
          "current_period_start": start,
          "metadata": {},
          "price": {
            "id": PLUS_MONTH,
            "object": "price",
            "active": true,
            "currency": "usd",
            "lookup_key": "aichat_plus_month",
            "product": "prod_NZKdYqrwEYx6iK",
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": 2000
          },
          "quantity": 1,
          "subscription": SUBSCRIPTION,
          "tax_rates": []
        }],
        "has_more": false,
        "total_count": 1,
        "url": format!("/v1/subscription_items?subscription={SUBSCRIPTION}")
      },
      "latest_invoice": "in_1MowQWLkdIwHu7ixuzkSPfKd",
      "livemode": false,
      "metadata": {"userId": user.to_string()},
      "status": status,
      "trial_end": null,
      "trial_start": null
    })
}

/// Stores an active Plus subscription for `user`, written from an event
/// of `event_age` ago (negative: in the future, i.e. newer than anything
/// asked now).
async fn store_plus_subscription(h: &Harness, user: Uuid, event_age: &str) {
    h.execute(&format!(
        "INSERT INTO subscriptions (userId, planId, stripeSubscriptionId, stripeCustomerId, status, \
           currentPeriodStart, currentPeriodEnd, cancelAtPeriodEnd, stripeEventCreatedAt) \
         SELECT '{user}', id, '{SUBSCRIPTION}', '{CUSTOMER}', 'active', \
           now() - interval '1 day', now() + interval '29 days', false, now() - interval '{event_age}' \
         FROM plans WHERE name = 'Plus'"
    ))
    .await;
    h.execute(&format!(
        "INSERT INTO stripeCustomers (userId, stripeCustomerId) VALUES ('{user}', '{CUSTOMER}')"
    ))
    .await;
}

/// Makes `user` known to billing (a usage row on the Free plan).
async fn register(h: &Harness, user: Uuid) {
    let envelope = h.billing.publish(&registered(user)).await.unwrap();
    h.wait_processed(&envelope).await;
}

async fn quota(h: &Harness, user: Uuid) -> i32 {
    h.row(user).await.unwrap().monthly_quota
}

#[tokio::test]
async fn without_stripe_what_needs_it_is_refused_and_the_rest_answers_empty() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let plus = plan_id(&h, "Plus").await;

    for refused in [
        checkout(&h, checkout_request(user, plus, "month"))
            .await
            .map(drop),
        h.client
            .clone()
            .create_portal_session(UserRef {
                user_id: user.to_string(),
            })
            .await
            .map(drop),
        cancel(&h, user, None, None).await.map(drop),
        resume(&h, user).await.map(drop),
    ] {
        assert_refused(refused, Code::FailedPrecondition, "stripe_not_configured");
    }

    let free = get_subscription(&h, user).await;
    assert_eq!(free.plan, "Free");
    assert_eq!(free.status, "none");
    assert_eq!(free.current_period_end, None);
    assert!(!free.cancel_at_period_end);
    let page = PageRequest {
        user_id: user.to_string(),
        limit: 0,
        cursor: String::new(),
    };
    let invoices = h
        .client
        .clone()
        .list_invoices(page.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(invoices.items.is_empty() && invoices.next_cursor.is_none());
    let payments = h
        .client
        .clone()
        .list_payments(page)
        .await
        .unwrap()
        .into_inner();
    assert!(payments.items.is_empty() && payments.next_cursor.is_none());
    h.stop().await;
}

#[tokio::test]
async fn a_first_checkout_creates_the_customer_and_the_next_one_reuses_it() {
    let user = Uuid::now_v7();
    let standin = StandIn::start([
        Reply::ok(customer(user)),
        Reply::ok(checkout_session("cs_test_first", user)),
        Reply::ok(checkout_session("cs_test_second", user)),
    ]);
    let h = start(&standin).await;
    let (plus, pro) = (plan_id(&h, "Plus").await, plan_id(&h, "Pro").await);

    let first = checkout(&h, checkout_request(user, plus, "month"))
        .await
        .unwrap();
    assert_eq!(first.session_id, "cs_test_first");
    assert_eq!(first.url, "https://checkout.stripe.com/c/pay/cs_test_first");
    // The user leaves Checkout and comes back for Pro, yearly.
    let second = checkout(&h, checkout_request(user, pro, "year"))
        .await
        .unwrap();
    assert_eq!(second.session_id, "cs_test_second");

    let requests = standin.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    // The customer, once, with a key derived from the user id.
    assert_post(&requests[0], "/v1/customers");
    assert_eq!(
        requests[0].header("Idempotency-Key"),
        Some(customer_idempotency_key(user).as_str())
    );
    assert_eq!(
        requests[0].form(),
        pairs(&[
            ("email", "jennyrosen@example.com"),
            ("name", "Jenny Rosen"),
            ("metadata[userId]", &user.to_string()),
        ])
    );
    let session_form = |price: &str| {
        pairs(&[
            ("mode", "subscription"),
            ("customer", CUSTOMER),
            ("line_items[0][price]", price),
            ("line_items[0][quantity]", "1"),
            ("client_reference_id", &user.to_string()),
            ("subscription_data[metadata][userId]", &user.to_string()),
            (
                "success_url",
                &format!(
                    "{PUBLIC_URL}/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"
                ),
            ),
            (
                "cancel_url",
                &format!("{PUBLIC_URL}/billing?checkout=canceled"),
            ),
        ])
    };
    assert_post(&requests[1], "/v1/checkout/sessions");
    assert_eq!(requests[1].form(), session_form(PLUS_MONTH));
    // The second checkout creates no customer: it reuses the stored one.
    assert_post(&requests[2], "/v1/checkout/sessions");
    assert_eq!(requests[2].form(), session_form(PRO_YEAR));
    assert_ne!(
        requests[1].header("Idempotency-Key"),
        requests[2].header("Idempotency-Key"),
        "each checkout is its own request"
    );
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM stripeCustomers \
                 WHERE userId = '{user}' AND stripeCustomerId = '{CUSTOMER}'"
            )
        )
        .await,
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn two_checkouts_at_once_create_one_customer() {
    let user = Uuid::now_v7();
    // Stripe takes its time creating the customer: without the user's lock
    // the second checkout would find none and create another.
    let standin = StandIn::start([
        Reply::ok(customer(user)).delayed(Duration::from_millis(400)),
        Reply::ok(checkout_session("cs_test_a", user)),
        Reply::ok(checkout_session("cs_test_b", user)),
    ]);
    let h = start(&standin).await;
    let plus = plan_id(&h, "Plus").await;

    let (a, b) = tokio::join!(
        checkout(&h, checkout_request(user, plus, "month")),
        checkout(&h, checkout_request(user, plus, "month")),
    );
    let mut sessions = vec![a.unwrap().session_id, b.unwrap().session_id];
    sessions.sort();
    assert_eq!(sessions, ["cs_test_a", "cs_test_b"]);

    let requests = standin.requests();
    let customers: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v1/customers")
        .collect();
    assert_eq!(customers.len(), 1, "{requests:#?}");
    assert!(
        requests
            .iter()
            .filter(|r| r.path == "/v1/checkout/sessions")
            .all(|r| r
                .form()
                .contains(&("customer".to_owned(), CUSTOMER.to_owned())))
    );
    assert_eq!(
        count(&h, "SELECT count(*) AS n FROM stripeCustomers").await,
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn checkout_refusals_call_no_stripe_and_write_nothing() {
    let standin = StandIn::start([]);
    let h = start(&standin).await;
    let user = Uuid::now_v7();
    let (free, plus) = (plan_id(&h, "Free").await, plan_id(&h, "Plus").await);

    assert_invalid(
        checkout(&h, checkout_request(user, plus, "weekly")).await,
        "interval",
    );
    assert_invalid(
        checkout(&h, checkout_request(user, plus, "")).await,
        "interval",
    );
    let mut bad_plan = checkout_request(user, plus, "month");
    bad_plan.plan_id = "plus".to_owned();
    assert_invalid(checkout(&h, bad_plan).await, "planId");
    assert_refused(
        checkout(&h, checkout_request(user, Uuid::now_v7(), "month")).await,
        Code::NotFound,
        "not_found",
    );
    assert_invalid(
        checkout(&h, checkout_request(user, free, "month")).await,
        "planId",
    );
    // Plus has no yearly price.
    assert_invalid(
        checkout(&h, checkout_request(user, plus, "year")).await,
        "interval",
    );
    let mut no_email = checkout_request(user, plus, "month");
    no_email.email = "  ".to_owned();
    assert_invalid(checkout(&h, no_email).await, "email");
    // A plan withdrawn from sale.
    h.execute("UPDATE plans SET isActive = false WHERE name = 'Pro'")
        .await;
    let pro = plan_id(&h, "Pro").await;
    assert_refused(
        checkout(&h, checkout_request(user, pro, "month")).await,
        Code::NotFound,
        "not_found",
    );

    // A subscriber changes plans in the portal, not with a second checkout.
    let subscriber = Uuid::now_v7();
    store_plus_subscription(&h, subscriber, "1 hour").await;
    for status in ["active", "past_due", "unpaid", "paused"] {
        h.execute(&format!(
            "UPDATE subscriptions SET status = '{status}' WHERE userId = '{subscriber}'"
        ))
        .await;
        assert_refused(
            checkout(&h, checkout_request(subscriber, plus, "month")).await,
            Code::AlreadyExists,
            "already_subscribed",
        );
    }

    assert!(standin.requests().is_empty(), "{:#?}", standin.requests());
    assert_eq!(
        count(
            &h,
            &format!("SELECT count(*) AS n FROM stripeCustomers WHERE userId <> '{subscriber}'")
        )
        .await,
        0
    );
    h.stop().await;
}

#[tokio::test]
async fn stripe_failures_are_told_apart_and_never_show_stripes_message_or_the_key() {
    let user = Uuid::now_v7();
    let standin = StandIn::start([
        // Down: answered 503, retried once, still down.
        Reply::error(503, "api_error", None, "Stripe is down"),
        Reply::error(503, "api_error", None, "Stripe is down"),
        // A refusal: not retried.
        Reply::error(
            400,
            "invalid_request_error",
            Some("parameter_invalid_empty"),
            &format!("Invalid API Key provided: {SECRET_KEY}"),
        ),
    ]);
    let h = start(&standin).await;
    let plus = plan_id(&h, "Plus").await;

    assert_refused(
        checkout(&h, checkout_request(user, plus, "month")).await,
        Code::Unavailable,
        "unavailable",
    );
    let refused = checkout(&h, checkout_request(user, plus, "month"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Internal);
    assert_eq!(details(&refused)["code"], "stripe_error");
    let shown = format!("{} {}", refused.message(), details(&refused));
    assert!(
        !shown.contains(SECRET_KEY) && !shown.contains("Invalid API Key"),
        "{shown}"
    );
    assert_eq!(standin.requests().len(), 3);
    assert_eq!(
        count(&h, "SELECT count(*) AS n FROM stripeCustomers").await,
        0
    );
    h.stop().await;
}

#[tokio::test]
async fn a_stripe_too_slow_to_answer_is_an_upstream_timeout() {
    // Each attempt waits 4 s (`account_stripe_settings`); both answers
    // come later than that.
    let late = Reply::ok(json!({})).delayed(Duration::from_secs(6));
    let standin = StandIn::start([late.clone(), late]);
    let h = start(&standin).await;
    let user = Uuid::now_v7();
    h.execute(&format!(
        "INSERT INTO stripeCustomers (userId, stripeCustomerId) VALUES ('{user}', '{CUSTOMER}')"
    ))
    .await;
    let started = std::time::Instant::now();
    let refused = h
        .client
        .clone()
        .create_portal_session(UserRef {
            user_id: user.to_string(),
        })
        .await;
    assert_refused(refused, Code::DeadlineExceeded, "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(standin.requests().len(), 2, "one retry");
    h.stop().await;
}

#[tokio::test]
async fn the_portal_needs_a_customer_and_returns_to_the_billing_page() {
    let standin = StandIn::start([Reply::ok(json!({
      "id": "bps_1MrSjzLkdIwHu7ixex0IvU9b",
      "object": "billing_portal.session",
      "configuration": "bpc_1MAhNDLkdIwHu7ixckACO1Jq",
      "created": 1_680_210_639,
      "customer": CUSTOMER,
      "flow": null,
      "livemode": false,
      "locale": null,
      "on_behalf_of": null,
      "return_url": format!("{PUBLIC_URL}/billing"),
      "url": "https://billing.stripe.com/p/session/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4"
    }))]);
    let h = start(&standin).await;
    let user = Uuid::now_v7();
    let portal = |user: Uuid| {
        let mut client = h.client.clone();
        async move {
            client
                .create_portal_session(UserRef {
                    user_id: user.to_string(),
                })
                .await
                .map(tonic::Response::into_inner)
        }
    };

    assert_refused(
        portal(user).await,
        Code::FailedPrecondition,
        "no_billing_account",
    );
    assert!(standin.requests().is_empty());

    h.execute(&format!(
        "INSERT INTO stripeCustomers (userId, stripeCustomerId) VALUES ('{user}', '{CUSTOMER}')"
    ))
    .await;
    let session = portal(user).await.unwrap();
    assert_eq!(
        session.url,
        "https://billing.stripe.com/p/session/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4"
    );
    let request = standin.only_request();
    assert_post(&request, "/v1/billing_portal/sessions");
    assert_eq!(
        request.form(),
        pairs(&[
            ("customer", CUSTOMER),
            ("return_url", &format!("{PUBLIC_URL}/billing")),
        ])
    );
    h.stop().await;
}

#[tokio::test]
async fn cancel_at_period_end_and_resume_store_stripes_answer() {
    let user = Uuid::now_v7();
    let mut cancelling = stripe_subscription(user, "active", true);
    cancelling["canceled_at"] = chrono::Utc::now().timestamp().into();
    cancelling["cancellation_details"] =
        json!({"comment": "too pricey", "feedback": null, "reason": "cancellation_requested"});
    let standin = StandIn::start([
        Reply::ok(cancelling),
        Reply::ok(stripe_subscription(user, "active", false)),
    ]);
    let h = start(&standin).await;
    store_plus_subscription(&h, user, "1 hour").await;

    let cancelled = cancel(&h, user, None, Some("  too pricey ")).await.unwrap();
    assert_eq!(cancelled.plan, "Plus");
    assert_eq!(cancelled.status, "active");
    assert!(cancelled.cancel_at_period_end);
    let request = &standin.requests()[0];
    assert_post(request, &format!("/v1/subscriptions/{SUBSCRIPTION}"));
    assert_eq!(
        request.form(),
        pairs(&[
            ("cancel_at_period_end", "true"),
            ("cancellation_details[comment]", "too pricey"),
        ])
    );
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM subscriptions WHERE userId = '{user}' \
                 AND cancelAtPeriodEnd AND cancellationReason = 'cancellation_requested' \
                 AND cancellationDate IS NOT NULL \
                 AND stripeEventCreatedAt > now() - interval '1 minute'"
            )
        )
        .await,
        1
    );
    assert_eq!(get_subscription(&h, user).await, cancelled);

    let resumed = resume(&h, user).await.unwrap();
    assert!(!resumed.cancel_at_period_end);
    assert_eq!(resumed.status, "active");
    let request = &standin.requests()[1];
    assert_post(request, &format!("/v1/subscriptions/{SUBSCRIPTION}"));
    assert_eq!(request.form(), pairs(&[("cancel_at_period_end", "false")]));

    // Nothing to resume any more: refused before Stripe is called.
    assert_refused(
        resume(&h, user).await,
        Code::FailedPrecondition,
        "not_canceling",
    );
    assert_eq!(standin.requests().len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn cancelling_now_ends_the_subscription_and_the_quota_returns_to_free() {
    let user = Uuid::now_v7();
    let mut ended = stripe_subscription(user, "canceled", false);
    let now = chrono::Utc::now().timestamp();
    ended["canceled_at"] = now.into();
    ended["ended_at"] = now.into();
    ended["cancellation_details"] =
        json!({"comment": null, "feedback": null, "reason": "cancellation_requested"});
    let standin = StandIn::start([Reply::ok(ended)]);
    let h = start(&standin).await;
    register(&h, user).await;
    store_plus_subscription(&h, user, "1 hour").await;
    h.execute(&format!(
        "UPDATE usageTracking SET monthlyQuota = {PLUS_QUOTA} WHERE userId = '{user}'"
    ))
    .await;

    let cancelled = cancel(&h, user, Some(false), None).await.unwrap();
    assert_eq!(cancelled.status, "canceled");
    let request = standin.only_request();
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.path, format!("/v1/subscriptions/{SUBSCRIPTION}"));
    assert!(request.query().is_empty(), "{request:?}");
    // The plan is gone at once: the quota is Free's, and identity hears of it.
    assert_eq!(quota(&h, user).await, FREE_QUOTA);
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM outbox WHERE eventType = 'billing.subscription.changed' \
                 AND payload->'data'->>'userId' = '{user}' \
                 AND payload->'data'->>'planTier' = 'FREE' \
                 AND payload->'data'->>'status' = 'canceled'"
            )
        )
        .await,
        1
    );

    // An ended subscription can be neither cancelled nor resumed; a new
    // checkout may start another.
    assert_refused(
        cancel(&h, user, None, None).await,
        Code::FailedPrecondition,
        "subscription_ended",
    );
    assert_refused(
        resume(&h, user).await,
        Code::FailedPrecondition,
        "subscription_ended",
    );
    assert_eq!(standin.requests().len(), 1);
    h.stop().await;
}

/// Delivers `object` as a signed webhook event of `kind` created at
/// `created` (Unix seconds).
async fn deliver(h: &Harness, id: &str, kind: &str, created: i64, object: Value) {
    let payload = serde_json::to_vec(&json!({
      "id": id,
      "object": "event",
      "api_version": aichat_billing::stripe::API_VERSION,
      "created": created,
      "data": {"object": object},
      "livemode": false,
      "pending_webhooks": 1,
      "request": {"id": null, "idempotency_key": null},
      "type": kind
    }))
    .unwrap();
    let signature = sign(&payload, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
    h.client
        .clone()
        .handle_stripe_webhook(StripeWebhook {
            payload,
            signature: Some(signature),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn stripes_answer_never_overwrites_newer_state_and_older_events_never_overwrite_it() {
    let (newer_user, user) = (Uuid::now_v7(), Uuid::now_v7());
    let mut second = stripe_subscription(user, "active", true);
    second["id"] = "sub_second".into();
    second["customer"] = "cus_second".into();
    let standin = StandIn::start([
        Reply::ok(stripe_subscription(newer_user, "active", true)),
        Reply::ok(second),
    ]);
    let h = start(&standin).await;

    // A webhook event newer than our call was stored meanwhile (its time is
    // after the call's): Stripe's answer does not replace it.
    store_plus_subscription(&h, newer_user, "-1 hour").await;
    let shown = cancel(&h, newer_user, None, None).await.unwrap();
    assert!(!shown.cancel_at_period_end, "the newer state stays");
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM subscriptions WHERE userId = '{newer_user}' \
                 AND NOT cancelAtPeriodEnd AND stripeEventCreatedAt > now()"
            )
        )
        .await,
        1
    );

    // Our answer stored, then an event from before the call arrives late:
    // it is recorded and ignored; the cancellation stays.
    store_plus_subscription_of(&h, user, "sub_second", "cus_second").await;
    let before_the_call = chrono::Utc::now().timestamp() - 30;
    assert!(
        cancel(&h, user, None, None)
            .await
            .unwrap()
            .cancel_at_period_end
    );
    let mut late = stripe_subscription(user, "active", false);
    late["id"] = "sub_second".into();
    late["customer"] = "cus_second".into();
    deliver(
        &h,
        "evt_late",
        "customer.subscription.updated",
        before_the_call,
        late,
    )
    .await;
    assert!(get_subscription(&h, user).await.cancel_at_period_end);
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM stripeEvents WHERE stripeEventId = 'evt_late'"
        )
        .await,
        1
    );

    // An event after the call (the user resumed in the portal) wins.
    let mut resumed = stripe_subscription(user, "active", false);
    resumed["id"] = "sub_second".into();
    resumed["customer"] = "cus_second".into();
    deliver(
        &h,
        "evt_resumed",
        "customer.subscription.updated",
        chrono::Utc::now().timestamp() + 1,
        resumed,
    )
    .await;
    assert!(!get_subscription(&h, user).await.cancel_at_period_end);
    h.stop().await;
}

/// [`store_plus_subscription`] with other Stripe ids, written an hour ago.
async fn store_plus_subscription_of(h: &Harness, user: Uuid, subscription: &str, customer: &str) {
    h.execute(&format!(
        "INSERT INTO subscriptions (userId, planId, stripeSubscriptionId, stripeCustomerId, status, \
           currentPeriodStart, currentPeriodEnd, cancelAtPeriodEnd, stripeEventCreatedAt) \
         SELECT '{user}', id, '{subscription}', '{customer}', 'active', \
           now() - interval '1 day', now() + interval '29 days', false, now() - interval '1 hour' \
         FROM plans WHERE name = 'Plus'"
    ))
    .await;
}

#[tokio::test]
async fn cancel_and_resume_refusals_call_no_stripe_and_write_nothing() {
    let standin = StandIn::start([]);
    let h = start(&standin).await;
    let nobody = Uuid::now_v7();
    assert_refused(
        cancel(&h, nobody, None, None).await,
        Code::NotFound,
        "not_found",
    );
    assert_refused(resume(&h, nobody).await, Code::NotFound, "not_found");

    let user = Uuid::now_v7();
    store_plus_subscription(&h, user, "1 hour").await;
    assert_invalid(
        cancel(&h, user, None, Some(&"x".repeat(501))).await,
        "reason",
    );
    assert_invalid(
        cancel(&h, user, Some(false), Some(&"é".repeat(501))).await,
        "reason",
    );
    assert_refused(
        resume(&h, user).await,
        Code::FailedPrecondition,
        "not_canceling",
    );
    // Another user's subscription is not theirs to cancel.
    assert_refused(
        cancel(&h, nobody, Some(false), None).await,
        Code::NotFound,
        "not_found",
    );

    assert!(standin.requests().is_empty(), "{:#?}", standin.requests());
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT count(*) AS n FROM subscriptions WHERE userId = '{user}' \
                 AND status = 'active' AND NOT cancelAtPeriodEnd \
                 AND stripeEventCreatedAt < now() - interval '30 minutes'"
            )
        )
        .await,
        1
    );
    h.stop().await;
}

async fn list_payments(
    h: &Harness,
    user: Uuid,
    limit: u32,
    cursor: &str,
) -> Result<aichat_proto::billing::v1::PaymentPage, Status> {
    h.client
        .clone()
        .list_payments(PageRequest {
            user_id: user.to_string(),
            limit,
            cursor: cursor.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn list_invoices(
    h: &Harness,
    user: Uuid,
    limit: u32,
    cursor: &str,
) -> Result<aichat_proto::billing::v1::InvoicePage, Status> {
    h.client
        .clone()
        .list_invoices(PageRequest {
            user_id: user.to_string(),
            limit,
            cursor: cursor.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn payments_come_newest_first_in_pages_without_overlap_and_only_the_users_own() {
    let h = Harness::start().await;
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    // Seven payments: two at the same instant (the id breaks the tie), one
    // without a time (it sorts first), and the other user's in between.
    h.execute(&format!(
        "INSERT INTO payments (id, userId, stripePaymentIntentId, amount, currency, status, description, createdAt) VALUES
         ('00000000-0000-7000-8000-000000000001', '{user}', 'pi_1', 20.00, 'USD', 'succeeded', 'Plus, January', '2026-01-01 10:00:00'),
         ('00000000-0000-7000-8000-000000000002', '{user}', 'pi_2', 20.5, 'USD', 'failed', NULL, '2026-02-01 10:00:00'),
         ('00000000-0000-7000-8000-000000000003', '{user}', 'pi_3', 20.00, 'USD', 'succeeded', 'Plus, February', '2026-02-01 10:00:00'),
         ('00000000-0000-7000-8000-000000000004', '{user}', 'pi_4', 200.00, 'EUR', 'refunded', 'Pro, yearly', '2026-03-01 10:00:00.000001'),
         ('00000000-0000-7000-8000-000000000005', '{user}', 'pi_5', 0.99, 'USD', 'pending', NULL, '2026-04-01 10:00:00'),
         ('00000000-0000-7000-8000-000000000006', '{user}', 'pi_6', 1.00, 'USD', 'succeeded', NULL, NULL),
         ('00000000-0000-7000-8000-000000000007', '{user}', 'pi_7', 2.00, 'USD', 'succeeded', NULL, '2025-12-31 23:59:59'),
         ('00000000-0000-7000-8000-000000000099', '{other}', 'pi_99', 99.00, 'USD', 'succeeded', 'not yours', '2026-02-15 10:00:00')"
    ))
    .await;
    let expected = ["6", "5", "4", "3", "2", "1", "7"]
        .map(|n| format!("00000000-0000-7000-8000-00000000000{n}"));

    for limit in [1, 2, 3, 7, 100] {
        let (mut seen, mut cursor, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let page = list_payments(&h, user, limit, &cursor).await.unwrap();
            pages += 1;
            assert!(page.items.len() <= limit as usize);
            seen.extend(page.items.iter().map(|p| p.id.clone()));
            match page.next_cursor {
                Some(next) => cursor = next,
                None => break,
            }
        }
        assert_eq!(seen, expected, "limit {limit}");
        assert_eq!(
            pages,
            expected.len().div_ceil(limit as usize).max(1),
            "limit {limit}"
        );
    }

    let first = list_payments(&h, user, 0, "").await.unwrap();
    assert_eq!(first.items.len(), 7, "the default page holds 20");
    let refunded = &first.items[2];
    assert_eq!(
        (
            refunded.amount.as_str(),
            refunded.currency.as_str(),
            refunded.status.as_str()
        ),
        ("200.00", "EUR", "refunded")
    );
    assert_eq!(refunded.description.as_deref(), Some("Pro, yearly"));
    assert_eq!(first.items[4].amount, "20.50");
    assert_eq!(first.items[0].created_at, None);
    assert_eq!(
        first.items[5].created_at.unwrap().seconds,
        chrono::DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .timestamp()
    );

    // A new payment does not shift the pages already handed out.
    let page = list_payments(&h, user, 3, "").await.unwrap();
    h.execute(&format!(
        "INSERT INTO payments (userId, stripePaymentIntentId, amount, currency, status) \
         VALUES ('{user}', 'pi_new', 5.00, 'USD', 'succeeded')"
    ))
    .await;
    let next = list_payments(&h, user, 3, page.next_cursor.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        next.items.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        expected[3..6]
    );

    let theirs = list_payments(&h, other, 100, "").await.unwrap();
    assert_eq!(theirs.items.len(), 1);
    assert_eq!(theirs.items[0].description.as_deref(), Some("not yours"));
    h.stop().await;
}

#[tokio::test]
async fn invoices_come_newest_first_in_pages_and_only_the_users_own() {
    let h = Harness::start().await;
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    h.execute(&format!(
        "INSERT INTO invoices (id, userId, invoiceNumber, stripeInvoiceId, subtotal, tax, total, status, dueDate, paidAt, pdfUrl, createdAt) VALUES
         ('00000000-0000-7000-8000-000000000001', '{user}', 'A1B2C3-0001', 'in_1', 20.00, 0, 20.00, 'paid', '2026-01-31', '2026-01-01 10:00:05', 'https://pay.stripe.com/invoice/acct_1/in_1/pdf', '2026-01-01 10:00:00'),
         ('00000000-0000-7000-8000-000000000002', '{user}', 'A1B2C3-0002', 'in_2', 20.00, 1.6, 21.6, 'open', '2026-02-28', NULL, NULL, '2026-02-01 10:00:00'),
         ('00000000-0000-7000-8000-000000000003', '{user}', 'A1B2C3-0003', 'in_3', -5.00, 0, -5.00, 'void', NULL, NULL, NULL, '2026-03-01 10:00:00'),
         ('00000000-0000-7000-8000-000000000099', '{other}', 'ZZZ-0001', 'in_99', 9.00, 0, 9.00, 'paid', NULL, NULL, NULL, '2026-02-15 10:00:00')"
    ))
    .await;

    let first = list_invoices(&h, user, 2, "").await.unwrap();
    let numbers: Vec<_> = first
        .items
        .iter()
        .map(|i| i.invoice_number.as_str())
        .collect();
    assert_eq!(numbers, ["A1B2C3-0003", "A1B2C3-0002"]);
    let open = &first.items[1];
    assert_eq!(
        (
            open.subtotal.as_str(),
            open.tax.as_str(),
            open.total.as_str()
        ),
        ("20.00", "1.60", "21.60")
    );
    assert_eq!(open.due_date.as_deref(), Some("2026-02-28"));
    assert_eq!(open.paid_at, None);
    assert_eq!(first.items[0].total, "-5.00");
    let rest = list_invoices(&h, user, 2, first.next_cursor.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);
    let paid = &rest.items[0];
    assert_eq!(paid.invoice_number, "A1B2C3-0001");
    assert_eq!(paid.status, "paid");
    assert_eq!(
        paid.pdf_url.as_deref(),
        Some("https://pay.stripe.com/invoice/acct_1/in_1/pdf")
    );
    assert!(paid.paid_at.is_some());

    let theirs = list_invoices(&h, other, 20, "").await.unwrap();
    assert_eq!(
        theirs
            .items
            .iter()
            .map(|i| i.invoice_number.as_str())
            .collect::<Vec<_>>(),
        ["ZZZ-0001"]
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_page_requests_are_refused_naming_the_field() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    assert_invalid(list_payments(&h, user, 101, "").await, "limit");
    assert_invalid(list_invoices(&h, user, 101, "").await, "limit");
    for garbage in ["garbage!", "bm9wZQ", "MTI6bm90LWEtdXVpZA"] {
        assert_invalid(list_payments(&h, user, 10, garbage).await, "cursor");
        assert_invalid(list_invoices(&h, user, 10, garbage).await, "cursor");
    }
    let mut bad_user = PageRequest {
        user_id: "nope".to_owned(),
        limit: 10,
        cursor: String::new(),
    };
    assert_invalid(
        h.client.clone().list_payments(bad_user.clone()).await,
        "userId",
    );
    bad_user.limit = 0;
    assert_invalid(h.client.clone().list_invoices(bad_user).await, "userId");
    h.stop().await;
}
