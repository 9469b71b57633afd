//! `billing stripe-sync` against the stand-in of Stripe's API: the paid
//! plans' Products and Prices found by lookup key, the missing ones created
//! with the exact form fields and stable idempotency keys, the ids stored
//! in `plans`; a second run creates nothing.
#![expect(clippy::unwrap_used, reason = "tests: a failure fails the test")]

use std::time::Duration;

use aichat_billing::{
    config::StripeConfig,
    store::schema::plans,
    stripe::{Settings, StripeClient},
    stripe_sync::{Synced, sync},
    testing::TEMPLATE,
};
use aichat_config::SecretString;
use aichat_db::testing::TestDatabase;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::stripe_standin::{Recorded, Reply, StandIn, sorted};

const PLUS_ID: &str = "01a216c1-bf8f-7ea8-964c-3886ed72bdbe";
const PRO_ID: &str = "01a216c1-bf90-7d92-bc24-57cfe45f9fab";

struct Setup {
    _db: TestDatabase,
    pool: aichat_db::Pool,
    stripe: StripeClient,
}

async fn setup(standin: &StandIn) -> Setup {
    let db = TestDatabase::new(&TEMPLATE).await.unwrap();
    let pool = aichat_db::pool(db.url(), &aichat_db::PoolSettings::default()).unwrap();
    let stripe = StripeClient::new(
        &StripeConfig {
            api_base: standin.base.clone(),
            secret_key: SecretString::from("sk_test_sync"),
            webhook_secrets: Vec::new(),
        },
        Settings {
            timeout: Duration::from_secs(5),
            max_retries: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        },
    )
    .unwrap();
    Setup {
        _db: db,
        pool,
        stripe,
    }
}

/// A recurring price as `GET /v1/prices` and `POST /v1/prices` return it
/// (docs.stripe.com/api/prices/object, trimmed).
fn price(id: &str, product: &str, lookup_key: &str, interval: &str, amount: i64) -> Value {
    json!({
      "id": id,
      "object": "price",
      "active": true,
      "billing_scheme": "per_unit",
      "created": 1679431181,
      "currency": "usd",
      "livemode": false,
      "lookup_key": lookup_key,
      "metadata": {},
      "nickname": null,
      "product": product,
      "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
      "tax_behavior": "unspecified",
      "type": "recurring",
      "unit_amount": amount,
      "unit_amount_decimal": amount.to_string()
    })
}

/// A product (docs.stripe.com/api/products/object, trimmed).
fn product(id: &str, name: &str, plan_id: &str) -> Value {
    json!({
      "id": id,
      "object": "product",
      "active": true,
      "created": 1678833149,
      "default_price": null,
      "description": null,
      "livemode": false,
      "metadata": {"planId": plan_id},
      "name": name,
      "type": "service",
      "updated": 1678833149
    })
}

fn list(data: Vec<Value>) -> Reply {
    Reply::ok(json!({"object": "list", "data": data, "has_more": false, "url": "/v1/prices"}))
}

fn not_found() -> Reply {
    Reply::error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        "No such product",
    )
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// Every paid plan's price at both intervals, as they all exist.
fn all_prices() -> Vec<Value> {
    vec![
        price(
            "price_plus_m",
            "aichat_plus",
            "aichat_plus_month",
            "month",
            2000,
        ),
        price(
            "price_plus_y",
            "aichat_plus",
            "aichat_plus_year",
            "year",
            20000,
        ),
        price(
            "price_pro_m",
            "aichat_pro",
            "aichat_pro_month",
            "month",
            5000,
        ),
        price(
            "price_pro_y",
            "aichat_pro",
            "aichat_pro_year",
            "year",
            50000,
        ),
    ]
}

fn assert_lookup(request: &Recorded) {
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/v1/prices");
    assert_eq!(
        request.query(),
        pairs(&[
            ("limit", "100"),
            ("lookup_keys[]", "aichat_plus_month"),
            ("lookup_keys[]", "aichat_plus_year"),
            ("lookup_keys[]", "aichat_pro_month"),
            ("lookup_keys[]", "aichat_pro_year"),
        ])
    );
}

fn assert_price_post(
    request: &Recorded,
    product: &str,
    cents: &str,
    interval: &str,
    key: &str,
    transfer: bool,
) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/prices");
    assert_eq!(
        request.form(),
        pairs(&[
            ("product", product),
            ("unit_amount", cents),
            ("currency", "usd"),
            ("recurring[interval]", interval),
            ("lookup_key", key),
            (
                "transfer_lookup_key",
                if transfer { "true" } else { "false" }
            ),
        ])
    );
}

/// (name, monthly, yearly) of each plan.
async fn stored(pool: &aichat_db::Pool) -> Vec<(String, Option<String>, Option<String>)> {
    let mut conn = pool.get().await.unwrap();
    plans::table
        .order(plans::monthly_price.asc())
        .select((
            plans::name,
            plans::stripe_price_id,
            plans::stripe_yearly_price_id,
        ))
        .load(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn stripe_sync_creates_what_is_missing_stores_the_ids_and_a_second_run_creates_nothing() {
    let standin = StandIn::start([
        list(vec![]),
        not_found(),
        Reply::ok(product("aichat_plus", "Plus", PLUS_ID)),
        Reply::ok(price(
            "price_plus_m",
            "aichat_plus",
            "aichat_plus_month",
            "month",
            2000,
        )),
        Reply::ok(price(
            "price_plus_y",
            "aichat_plus",
            "aichat_plus_year",
            "year",
            20000,
        )),
        not_found(),
        Reply::ok(product("aichat_pro", "Pro", PRO_ID)),
        Reply::ok(price(
            "price_pro_m",
            "aichat_pro",
            "aichat_pro_month",
            "month",
            5000,
        )),
        Reply::ok(price(
            "price_pro_y",
            "aichat_pro",
            "aichat_pro_year",
            "year",
            50000,
        )),
    ]);
    let s = setup(&standin).await;

    let done = sync(&s.pool, &s.stripe).await.unwrap();

    assert_eq!(
        done,
        Synced {
            plans: 2,
            products_created: 2,
            prices_created: 4,
            plans_updated: 2,
        }
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 9, "{requests:#?}");
    assert_lookup(&requests[0]);
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("GET", "/v1/products/aichat_plus")
    );
    assert_eq!(requests[2].path, "/v1/products");
    assert_eq!(
        requests[2].form(),
        pairs(&[
            ("id", "aichat_plus"),
            ("name", "Plus"),
            ("metadata[planId]", PLUS_ID)
        ])
    );
    assert_eq!(
        requests[2].header("Idempotency-Key"),
        Some(format!("aichat-product-{PLUS_ID}").as_str())
    );
    assert_price_post(
        &requests[3],
        "aichat_plus",
        "2000",
        "month",
        "aichat_plus_month",
        false,
    );
    assert_eq!(
        requests[3].header("Idempotency-Key"),
        Some(format!("aichat-price-{PLUS_ID}-month-2000-none").as_str())
    );
    assert_price_post(
        &requests[4],
        "aichat_plus",
        "20000",
        "year",
        "aichat_plus_year",
        false,
    );
    assert_eq!(requests[5].path, "/v1/products/aichat_pro");
    assert_eq!(
        requests[6].form(),
        pairs(&[
            ("id", "aichat_pro"),
            ("name", "Pro"),
            ("metadata[planId]", PRO_ID)
        ])
    );
    assert_price_post(
        &requests[7],
        "aichat_pro",
        "5000",
        "month",
        "aichat_pro_month",
        false,
    );
    assert_price_post(
        &requests[8],
        "aichat_pro",
        "50000",
        "year",
        "aichat_pro_year",
        false,
    );
    let expected = vec![
        ("Free".to_owned(), None, None),
        (
            "Plus".to_owned(),
            Some("price_plus_m".to_owned()),
            Some("price_plus_y".to_owned()),
        ),
        (
            "Pro".to_owned(),
            Some("price_pro_m".to_owned()),
            Some("price_pro_y".to_owned()),
        ),
    ];
    assert_eq!(stored(&s.pool).await, expected);

    // Run again: everything is found by its key, nothing is created.
    standin.push([list(all_prices())]);
    let again = sync(&s.pool, &s.stripe).await.unwrap();
    assert_eq!(
        again,
        Synced {
            plans: 2,
            ..Synced::default()
        }
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 10, "{requests:#?}");
    assert_lookup(&requests[9]);
    assert_eq!(stored(&s.pool).await, expected);
}

#[tokio::test]
async fn stripe_sync_moves_the_key_to_a_new_price_when_the_amount_differs_and_reuses_a_found_product()
 {
    let standin = StandIn::start([
        // Plus's monthly price is of an older amount; Pro has its product
        // (a run that stopped before its prices) but no prices.
        list(vec![
            price(
                "price_plus_old",
                "prod_plus",
                "aichat_plus_month",
                "month",
                1500,
            ),
            price(
                "price_plus_y",
                "prod_plus",
                "aichat_plus_year",
                "year",
                20000,
            ),
        ]),
        Reply::ok(price(
            "price_plus_new",
            "prod_plus",
            "aichat_plus_month",
            "month",
            2000,
        )),
        Reply::ok(product("aichat_pro", "Pro", PRO_ID)),
        Reply::ok(price(
            "price_pro_m",
            "aichat_pro",
            "aichat_pro_month",
            "month",
            5000,
        )),
        Reply::ok(price(
            "price_pro_y",
            "aichat_pro",
            "aichat_pro_year",
            "year",
            50000,
        )),
    ]);
    let s = setup(&standin).await;

    let done = sync(&s.pool, &s.stripe).await.unwrap();

    assert_eq!(done.products_created, 0);
    assert_eq!(done.prices_created, 3);
    let requests = standin.requests();
    assert_eq!(requests.len(), 5, "{requests:#?}");
    assert_price_post(
        &requests[1],
        "prod_plus",
        "2000",
        "month",
        "aichat_plus_month",
        true,
    );
    assert_eq!(
        requests[1].header("Idempotency-Key"),
        Some(format!("aichat-price-{PLUS_ID}-month-2000-price_plus_old").as_str())
    );
    assert_eq!(
        (requests[2].method.as_str(), requests[2].path.as_str()),
        ("GET", "/v1/products/aichat_pro")
    );
    assert_price_post(
        &requests[3],
        "aichat_pro",
        "5000",
        "month",
        "aichat_pro_month",
        false,
    );
    assert_eq!(
        stored(&s.pool).await[1..],
        [
            (
                "Plus".to_owned(),
                Some("price_plus_new".to_owned()),
                Some("price_plus_y".to_owned()),
            ),
            (
                "Pro".to_owned(),
                Some("price_pro_m".to_owned()),
                Some("price_pro_y".to_owned()),
            ),
        ]
    );
}

#[tokio::test]
async fn stripe_sync_stores_nothing_when_stripe_fails() {
    let standin = StandIn::start([
        Reply::error(503, "api_error", None, "down"),
        Reply::error(503, "api_error", None, "down"),
        Reply::error(503, "api_error", None, "down"),
    ]);
    let s = setup(&standin).await;
    assert!(sync(&s.pool, &s.stripe).await.is_err());
    assert!(
        stored(&s.pool)
            .await
            .iter()
            .all(|(_, m, y)| m.is_none() && y.is_none())
    );
}
