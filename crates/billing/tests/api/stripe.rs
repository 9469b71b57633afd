//! The Stripe client against a local stand-in of Stripe's API: what it
//! sends (form encoding of nested params, headers, idempotency keys), how it
//! retries, and how it reads answers and errors. The answers are Stripe's
//! documented example objects (docs.stripe.com/api), trimmed.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failure fails the test"
)]

use std::{str::FromStr, time::Duration};

use aichat_billing::{
    config::StripeConfig,
    stripe::{
        API_VERSION, ErrorKind, ListSubscriptions, NewCheckoutSession, NewCustomer, NewPrice,
        NewProduct, Settings, StripeClient, StripeError,
        types::{Interval, Period, SubscriptionStatus, timestamp},
    },
};
use aichat_config::SecretString;
use bigdecimal::BigDecimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::stripe_standin::{Recorded, Reply, StandIn, sorted};

const SECRET_KEY: &str = "sk_test_51standin";

fn client(standin: &StandIn) -> StripeClient {
    client_with(&standin.base, Duration::from_secs(5))
}

fn client_with(base: &str, timeout: Duration) -> StripeClient {
    StripeClient::new(
        &StripeConfig {
            api_base: base.to_owned(),
            secret_key: SecretString::from(SECRET_KEY),
            webhook_secrets: Vec::new(),
        },
        Settings {
            timeout,
            max_retries: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        },
    )
    .unwrap()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// Every request Stripe gets from us carries these.
fn assert_authenticated_and_versioned(request: &Recorded) {
    assert_eq!(
        request.header("Authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );
    assert_eq!(request.header("Stripe-Version"), Some(API_VERSION));
}

/// A POST is form-encoded and has an idempotency key; returns the key.
fn assert_form_post(request: &Recorded, path: &str) -> String {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, path);
    assert_authenticated_and_versioned(request);
    assert_eq!(
        request.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    let key = request
        .header("Idempotency-Key")
        .expect("an idempotency key");
    assert!(!key.is_empty() && key.len() <= 255, "{key}");
    key.to_owned()
}

fn customer() -> Value {
    json!({
      "id": "cus_NffrFeUfNV2Hib",
      "object": "customer",
      "address": null,
      "balance": 0,
      "created": 1680893993,
      "currency": null,
      "default_source": null,
      "delinquent": false,
      "description": null,
      "email": "jennyrosen@example.com",
      "invoice_prefix": "0759376C",
      "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
      "livemode": false,
      "metadata": {"userId": "0193b5f0-0000-7000-8000-000000000001"},
      "name": "Jenny Rosen",
      "next_invoice_sequence": 1,
      "phone": null,
      "preferred_locales": [],
      "shipping": null,
      "tax_exempt": "none",
      "test_clock": null
    })
}

fn price(id: &str, lookup_key: &str, interval: &str, amount: i64) -> Value {
    json!({
      "id": id,
      "object": "price",
      "active": true,
      "billing_scheme": "per_unit",
      "created": 1679431181,
      "currency": "usd",
      "custom_unit_amount": null,
      "livemode": false,
      "lookup_key": lookup_key,
      "metadata": {},
      "nickname": null,
      "product": "prod_NZKdYqrwEYx6iK",
      "recurring": {"aggregate_usage": null, "interval": interval, "interval_count": 1, "trial_period_days": null, "usage_type": "licensed"},
      "tax_behavior": "unspecified",
      "tiers_mode": null,
      "transform_quantity": null,
      "type": "recurring",
      "unit_amount": amount,
      "unit_amount_decimal": amount.to_string()
    })
}

/// A subscription in the basil-and-later shape: the period on its item.
fn subscription(id: &str, status: &str, cancel_at_period_end: bool) -> Value {
    json!({
      "id": id,
      "object": "subscription",
      "application": null,
      "billing_cycle_anchor": 1679609767,
      "cancel_at": null,
      "cancel_at_period_end": cancel_at_period_end,
      "canceled_at": null,
      "cancellation_details": {"comment": null, "feedback": null, "reason": null},
      "collection_method": "charge_automatically",
      "created": 1679609767,
      "currency": "usd",
      "customer": "cus_Na6dX7aXxi11N4",
      "default_payment_method": null,
      "ended_at": null,
      "items": {
        "object": "list",
        "data": [{
          "id": "si_Na6dzxczY5fwHx",
          "object": "subscription_item",
          "created": 1679609768,
          "current_period_end": 1682288167,
          "current_period_start": 1679609767,
          "metadata": {},
          "price": price("price_1MowQULkdIwHu7ixraBm864M", "aichat_plus_month", "month", 2000),
          "quantity": 1,
          "subscription": id,
          "tax_rates": []
        }],
        "has_more": false,
        "total_count": 1,
        "url": format!("/v1/subscription_items?subscription={id}")
      },
      "latest_invoice": "in_1MowQWLkdIwHu7ixuzkSPfKd",
      "livemode": false,
      "metadata": {"userId": "0193b5f0-0000-7000-8000-000000000001"},
      "status": status,
      "trial_end": null,
      "trial_start": null
    })
}

#[tokio::test]
async fn create_customer_sends_email_name_and_the_user_id_in_metadata() {
    let standin = StandIn::start([Reply::ok(customer())]);
    let user_id = Uuid::from_str("0193b5f0-0000-7000-8000-000000000001").unwrap();

    let created = client(&standin)
        .create_customer(
            &NewCustomer {
                user_id,
                email: "jennyrosen@example.com",
                name: Some("Jenny Rosen"),
            },
            None,
        )
        .await
        .unwrap();

    assert_eq!(created.id, "cus_NffrFeUfNV2Hib");
    assert_eq!(created.metadata["userId"], user_id.to_string());
    let request = standin.only_request();
    assert_form_post(&request, "/v1/customers");
    assert_eq!(
        request.form(),
        pairs(&[
            ("email", "jennyrosen@example.com"),
            ("name", "Jenny Rosen"),
            ("metadata[userId]", "0193b5f0-0000-7000-8000-000000000001"),
        ])
    );
}

#[tokio::test]
async fn create_checkout_session_sends_subscription_mode_with_nested_line_items_and_metadata() {
    let standin = StandIn::start([Reply::ok(json!({
      "id": "cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u",
      "object": "checkout.session",
      "cancel_url": "https://app.example.com/billing?checkout=cancelled",
      "client_reference_id": "0193b5f0-0000-7000-8000-000000000001",
      "customer": "cus_NffrFeUfNV2Hib",
      "livemode": false,
      "metadata": {},
      "mode": "subscription",
      "payment_status": "unpaid",
      "status": "open",
      "subscription": null,
      "success_url": "https://app.example.com/billing?checkout=success",
      "url": "https://checkout.stripe.com/c/pay/cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u"
    }))]);
    let user_id = Uuid::from_str("0193b5f0-0000-7000-8000-000000000001").unwrap();

    let session = client(&standin)
        .create_checkout_session(
            &NewCheckoutSession {
                user_id,
                customer: "cus_NffrFeUfNV2Hib",
                price: "price_1MowQULkdIwHu7ixraBm864M",
                success_url: "https://app.example.com/billing?checkout=success",
                cancel_url: "https://app.example.com/billing?checkout=cancelled",
            },
            Some("checkout-0193b5f0"),
        )
        .await
        .unwrap();

    assert!(
        session
            .url
            .unwrap()
            .starts_with("https://checkout.stripe.com/")
    );
    assert_eq!(session.customer.as_deref(), Some("cus_NffrFeUfNV2Hib"));
    assert_eq!(session.subscription, None);
    let request = standin.only_request();
    let key = assert_form_post(&request, "/v1/checkout/sessions");
    assert_eq!(
        key, "checkout-0193b5f0",
        "the caller's key is sent as it is"
    );
    assert_eq!(
        request.form(),
        pairs(&[
            ("mode", "subscription"),
            ("customer", "cus_NffrFeUfNV2Hib"),
            ("line_items[0][price]", "price_1MowQULkdIwHu7ixraBm864M"),
            ("line_items[0][quantity]", "1"),
            (
                "client_reference_id",
                "0193b5f0-0000-7000-8000-000000000001"
            ),
            (
                "subscription_data[metadata][userId]",
                "0193b5f0-0000-7000-8000-000000000001"
            ),
            (
                "success_url",
                "https://app.example.com/billing?checkout=success"
            ),
            (
                "cancel_url",
                "https://app.example.com/billing?checkout=cancelled"
            ),
        ])
    );
    // Brackets travel percent-encoded, as any form encoder writes them.
    assert!(
        request.body.contains("line_items%5B0%5D%5Bprice%5D="),
        "{}",
        request.body
    );
}

#[tokio::test]
async fn create_portal_session_sends_the_customer_and_return_url() {
    let standin = StandIn::start([Reply::ok(json!({
      "id": "bps_1MrSjzLkdIwHu7ixex0IvU9b",
      "object": "billing_portal.session",
      "configuration": "bpc_1MAhNDLkdIwHu7ixckACO1Jq",
      "created": 1680210639,
      "customer": "cus_NciAYcXfLnqBoz",
      "flow": null,
      "livemode": false,
      "locale": null,
      "on_behalf_of": null,
      "return_url": "https://example.com/account",
      "url": "https://billing.stripe.com/p/session/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4LF9OY2lBYjJXcHY4a2NPck96UjBEbFVYRnU5bjlwVUF50100BUtQs3bl"
    }))]);

    let session = client(&standin)
        .create_portal_session("cus_NciAYcXfLnqBoz", "https://example.com/account", None)
        .await
        .unwrap();

    assert!(session.url.starts_with("https://billing.stripe.com/"));
    let request = standin.only_request();
    assert_form_post(&request, "/v1/billing_portal/sessions");
    assert_eq!(
        request.form(),
        pairs(&[
            ("customer", "cus_NciAYcXfLnqBoz"),
            ("return_url", "https://example.com/account"),
        ])
    );
}

#[tokio::test]
async fn prices_are_looked_up_with_a_get_and_bracketed_lookup_keys_without_a_key() {
    let standin = StandIn::start([Reply::ok(json!({
      "object": "list",
      "data": [
        price("price_month", "aichat_plus_month", "month", 2000),
        price("price_year", "aichat_plus_year", "year", 20000)
      ],
      "has_more": false,
      "url": "/v1/prices"
    }))]);

    let prices = client(&standin)
        .list_prices_by_lookup_keys(&["aichat_plus_month", "aichat_plus_year"])
        .await
        .unwrap();

    assert_eq!(prices.data.len(), 2);
    assert_eq!(
        prices.data[1].lookup_key.as_deref(),
        Some("aichat_plus_year")
    );
    assert_eq!(prices.data[1].unit_amount, Some(20000));
    assert_eq!(
        prices.data[1].recurring.as_ref().unwrap().interval,
        Interval::Year
    );
    assert_eq!(prices.data[1].product, "prod_NZKdYqrwEYx6iK");
    let request = standin.only_request();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/v1/prices");
    assert_authenticated_and_versioned(&request);
    assert_eq!(request.header("Idempotency-Key"), None);
    assert_eq!(request.body, "");
    assert_eq!(
        request.query(),
        pairs(&[
            ("lookup_keys[]", "aichat_plus_month"),
            ("lookup_keys[]", "aichat_plus_year"),
            ("limit", "100"),
        ])
    );
}

#[tokio::test]
async fn products_and_prices_are_created_with_exact_cents_and_lookup_keys() {
    let plan_id = Uuid::from_str("01a216c1-bf8f-7ea8-964c-3886ed72bdbe").unwrap();
    let standin = StandIn::start([
        Reply::ok(json!({
          "id": "prod_NWjs8kKbJWmuuc",
          "object": "product",
          "active": true,
          "created": 1678833149,
          "default_price": null,
          "description": null,
          "images": [],
          "livemode": false,
          "metadata": {"planId": plan_id.to_string()},
          "name": "Plus",
          "type": "service",
          "updated": 1678833149,
          "url": null
        })),
        Reply::ok(price("price_year", "aichat_plus_year", "year", 20000)),
    ]);
    let stripe = client(&standin);

    let product = stripe
        .create_product(
            &NewProduct {
                id: None,
                name: "Plus",
                plan_id,
            },
            None,
        )
        .await
        .unwrap();
    let created = stripe
        .create_price(
            &NewPrice {
                product: &product.id,
                amount: &BigDecimal::from_str("200.00").unwrap(),
                currency: "usd",
                interval: Interval::Year,
                lookup_key: "aichat_plus_year",
                transfer_lookup_key: true,
            },
            None,
        )
        .await
        .unwrap();

    assert_eq!(product.id, "prod_NWjs8kKbJWmuuc");
    assert_eq!(created.id, "price_year");
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    assert_form_post(&requests[0], "/v1/products");
    assert_eq!(
        requests[0].form(),
        pairs(&[
            ("name", "Plus"),
            ("metadata[planId]", "01a216c1-bf8f-7ea8-964c-3886ed72bdbe")
        ])
    );
    assert_form_post(&requests[1], "/v1/prices");
    assert_eq!(
        requests[1].form(),
        pairs(&[
            ("product", "prod_NWjs8kKbJWmuuc"),
            ("unit_amount", "20000"),
            ("currency", "usd"),
            ("recurring[interval]", "year"),
            ("lookup_key", "aichat_plus_year"),
            ("transfer_lookup_key", "true"),
        ])
    );
    assert_ne!(
        requests[0].header("Idempotency-Key"),
        requests[1].header("Idempotency-Key"),
        "each call has its own key"
    );
}

#[tokio::test]
async fn a_sub_cent_price_is_refused_before_anything_is_sent() {
    let standin = StandIn::start([]);

    let refused = client(&standin)
        .create_price(
            &NewPrice {
                product: "prod_NWjs8kKbJWmuuc",
                amount: &BigDecimal::from_str("19.999").unwrap(),
                currency: "usd",
                interval: Interval::Month,
                lookup_key: "aichat_plus_month",
                transfer_lookup_key: false,
            },
            None,
        )
        .await;

    assert!(
        matches!(refused, Err(StripeError::InvalidArgument(_))),
        "{refused:?}"
    );
    assert!(standin.requests().is_empty());
}

#[tokio::test]
async fn subscriptions_are_retrieved_cancelled_and_updated_at_their_own_paths() {
    let standin = StandIn::start([
        Reply::ok(subscription(
            "sub_1MowQVLkdIwHu7ixeRlqHVzs",
            "active",
            false,
        )),
        Reply::ok(subscription("sub_1MowQVLkdIwHu7ixeRlqHVzs", "active", true)),
        Reply::ok(subscription(
            "sub_1MowQVLkdIwHu7ixeRlqHVzs",
            "canceled",
            false,
        )),
    ]);
    let stripe = client(&standin);

    let current = stripe
        .retrieve_subscription("sub_1MowQVLkdIwHu7ixeRlqHVzs")
        .await
        .unwrap();
    let ending = stripe
        .set_cancel_at_period_end("sub_1MowQVLkdIwHu7ixeRlqHVzs", true, None)
        .await
        .unwrap();
    let cancelled = stripe
        .cancel_subscription("sub_1MowQVLkdIwHu7ixeRlqHVzs")
        .await
        .unwrap();

    assert_eq!(current.status, SubscriptionStatus::Active);
    assert_eq!(
        current.current_period(),
        Some(Period {
            start: timestamp(1_679_609_767).unwrap(),
            end: timestamp(1_682_288_167).unwrap(),
        }),
        "the basil shape: the period is on the item"
    );
    assert_eq!(
        current.price().unwrap().lookup_key.as_deref(),
        Some("aichat_plus_month")
    );
    assert_eq!(
        current.metadata["userId"],
        "0193b5f0-0000-7000-8000-000000000001"
    );
    assert!(ending.cancel_at_period_end);
    assert_eq!(cancelled.status, SubscriptionStatus::Canceled);

    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        "/v1/subscriptions/sub_1MowQVLkdIwHu7ixeRlqHVzs"
    );
    assert_authenticated_and_versioned(&requests[0]);
    assert_form_post(
        &requests[1],
        "/v1/subscriptions/sub_1MowQVLkdIwHu7ixeRlqHVzs",
    );
    assert_eq!(
        requests[1].form(),
        pairs(&[("cancel_at_period_end", "true")])
    );
    assert_eq!(requests[2].method, "DELETE");
    assert_eq!(
        requests[2].path,
        "/v1/subscriptions/sub_1MowQVLkdIwHu7ixeRlqHVzs"
    );
    assert_authenticated_and_versioned(&requests[2]);

    // An id that would change the path is refused unsent.
    let refused = stripe.retrieve_subscription("../customers/cus_1").await;
    assert!(
        matches!(refused, Err(StripeError::InvalidArgument(_))),
        "{refused:?}"
    );
    assert_eq!(standin.requests().len(), 3);
}

#[tokio::test]
async fn subscriptions_are_listed_page_by_page() {
    let standin = StandIn::start([Reply::ok(json!({
      "object": "list",
      "data": [subscription("sub_2", "past_due", false)],
      "has_more": true,
      "url": "/v1/subscriptions"
    }))]);

    let page = client(&standin)
        .list_subscriptions(&ListSubscriptions {
            status: Some("all"),
            limit: Some(1),
            starting_after: Some("sub_1"),
            ..Default::default()
        })
        .await
        .unwrap();

    assert!(page.has_more);
    assert_eq!(page.data[0].id, "sub_2");
    assert_eq!(page.data[0].status, SubscriptionStatus::PastDue);
    let request = standin.only_request();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/v1/subscriptions");
    assert_eq!(
        request.query(),
        pairs(&[
            ("status", "all"),
            ("limit", "1"),
            ("starting_after", "sub_1")
        ])
    );
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_idempotency_key_and_body() {
    let standin = StandIn::start([
        Reply::error(500, "api_error", None, "An unknown error occurred"),
        Reply::ok(customer()),
    ]);

    let created = client(&standin)
        .create_customer(
            &NewCustomer {
                user_id: Uuid::now_v7(),
                email: "jennyrosen@example.com",
                name: None,
            },
            None,
        )
        .await
        .unwrap();

    assert_eq!(created.id, "cus_NffrFeUfNV2Hib");
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    let first = assert_form_post(&requests[0], "/v1/customers");
    let second = assert_form_post(&requests[1], "/v1/customers");
    assert_eq!(first, second, "a retry is the same call to Stripe");
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn a_429_is_retried_with_the_same_key_until_the_retries_are_spent() {
    let rate_limited = || {
        Reply::error(
            429,
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests hit the API too quickly.",
        )
    };
    let standin = StandIn::start([
        rate_limited(),
        rate_limited(),
        rate_limited(),
        Reply::ok(customer()),
    ]);

    let failed = client(&standin)
        .create_portal_session("cus_NciAYcXfLnqBoz", "https://example.com/account", None)
        .await;

    let Err(StripeError::Api(error)) = &failed else {
        panic!("expected Stripe's error, got {failed:?}");
    };
    assert_eq!(error.status, 429);
    assert_eq!(error.code.as_deref(), Some("rate_limit"));
    assert!(failed.as_ref().unwrap_err().is_unavailable());
    let requests = standin.requests();
    assert_eq!(requests.len(), 3, "the first attempt and two retries");
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.header("Idempotency-Key"))
        .collect();
    assert!(
        keys.iter().all(|k| *k == keys[0] && k.is_some()),
        "{keys:?}"
    );
}

#[tokio::test]
async fn a_400_is_not_retried_and_maps_to_stripes_error() {
    let standin = StandIn::start([Reply::status(
        400,
        json!({"error": {
            "type": "invalid_request_error",
            "code": "parameter_missing",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-missing",
            "message": "Missing required param: customer.",
            "param": "customer",
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_standin"
        }}),
    )
    .header("Request-Id", "req_Gs9dpv2KsOiRmx")]);

    let failed = client(&standin)
        .create_portal_session("cus_NciAYcXfLnqBoz", "https://example.com/account", None)
        .await;

    let Err(StripeError::Api(error)) = &failed else {
        panic!("expected Stripe's error, got {failed:?}");
    };
    assert_eq!(error.status, 400);
    assert_eq!(error.kind, ErrorKind::InvalidRequestError);
    assert_eq!(error.code.as_deref(), Some("parameter_missing"));
    assert_eq!(
        error.message.as_deref(),
        Some("Missing required param: customer.")
    );
    assert_eq!(error.param.as_deref(), Some("customer"));
    assert!(error.request_id.is_some());
    assert!(!failed.as_ref().unwrap_err().is_unavailable());
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn a_missing_object_is_not_found_and_not_retried() {
    let standin = StandIn::start([Reply::error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        "No such subscription: 'sub_gone'",
    )]);

    let failed = client(&standin).retrieve_subscription("sub_gone").await;

    assert!(failed.as_ref().unwrap_err().is_not_found(), "{failed:?}");
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn stripe_should_retry_overrides_the_status() {
    // A 500 Stripe says not to retry, then a 400 it says to retry.
    let standin = StandIn::start([
        Reply::error(500, "api_error", None, "no").header("Stripe-Should-Retry", "false"),
        Reply::error(400, "invalid_request_error", Some("lock_timeout"), "busy")
            .header("Stripe-Should-Retry", "true"),
        Reply::ok(customer()),
    ]);
    let stripe = client(&standin);
    let new = NewCustomer {
        user_id: Uuid::now_v7(),
        email: "jennyrosen@example.com",
        name: None,
    };

    let first = stripe.create_customer(&new, None).await;
    assert!(
        matches!(&first, Err(StripeError::Api(e)) if e.status == 500),
        "{first:?}"
    );
    assert_eq!(standin.requests().len(), 1);

    let second = stripe.create_customer(&new, None).await.unwrap();
    assert_eq!(second.id, "cus_NffrFeUfNV2Hib");
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[1].header("Idempotency-Key"),
        requests[2].header("Idempotency-Key")
    );
    assert_ne!(
        requests[0].header("Idempotency-Key"),
        requests[1].header("Idempotency-Key")
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_each_attempt_and_retries_with_the_same_key() {
    let slow = || Reply::ok(customer()).delayed(Duration::from_secs(3));
    let standin = StandIn::start([slow(), slow(), slow()]);
    let stripe = client_with(&standin.base, Duration::from_millis(300));

    let started = std::time::Instant::now();
    let failed = stripe
        .create_customer(
            &NewCustomer {
                user_id: Uuid::now_v7(),
                email: "jennyrosen@example.com",
                name: None,
            },
            Some("customer-slow"),
        )
        .await;

    assert!(matches!(failed, Err(StripeError::Timeout(_))), "{failed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| r.header("Idempotency-Key") == Some("customer-slow"))
    );
}

#[tokio::test]
async fn an_unreachable_stripe_is_a_network_error_after_the_retries() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stripe = client_with(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));

    let failed = stripe.retrieve_subscription("sub_1").await;

    assert!(matches!(failed, Err(StripeError::Network(_))), "{failed:?}");
    assert!(failed.unwrap_err().is_unavailable());
}
