//! The user's billing routes end to end (gateway → identity and billing →
//! Stripe): authentication, the answers without Stripe, checkout with the
//! caller's email reaching Stripe, the refusals as problems, and that no
//! user ever sees another's subscription, invoices or payments.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aichat_config::SecretString;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    chat::billing_sql,
    helpers::{Login, TestApp, problem, unique_email},
};

const PLUS_PRICE: &str = "price_plus_month";

fn user_id(login: &Login) -> String {
    login.user["id"].as_str().unwrap().to_owned()
}

async fn get(app: &TestApp, path: &str, login: &Login) -> reqwest::Response {
    app.call(Method::GET, path, Some(&login.access), None).await
}

async fn post(app: &TestApp, path: &str, login: &Login, body: Option<Value>) -> reqwest::Response {
    app.call(Method::POST, path, Some(&login.access), body)
        .await
}

async fn plan_id(app: &TestApp, name: &str) -> String {
    let plans: Value = app
        .call(Method::GET, "/api/v1/billing/plans", None, None)
        .await
        .json()
        .await
        .unwrap();
    plans["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A stack whose billing calls Stripe at `api_base`, with Plus sold monthly.
async fn spawn_with_stripe(api_base: &str) -> TestApp {
    let api_base = api_base.to_owned();
    let app = TestApp::spawn_with_billing(
        |_| {},
        move |billing| {
            billing.stripe = Some(aichat_billing::config::StripeConfig {
                api_base,
                secret_key: SecretString::from("sk_test_gateway".to_owned()),
                webhook_secrets: Vec::new(),
            });
        },
    )
    .await;
    billing_sql(
        &app,
        &format!("UPDATE plans SET stripePriceId = '{PLUS_PRICE}' WHERE name = 'Plus';"),
    )
    .await;
    app
}

#[tokio::test]
async fn the_billing_account_routes_need_a_token() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/api/v1/billing/subscription"),
        (Method::POST, "/api/v1/billing/checkout"),
        (Method::POST, "/api/v1/billing/portal"),
        (Method::POST, "/api/v1/billing/subscription/cancel"),
        (Method::POST, "/api/v1/billing/subscription/resume"),
        (Method::GET, "/api/v1/billing/invoices"),
        (Method::GET, "/api/v1/billing/payments"),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        let r = app.call(method.clone(), path, None, body.clone()).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let r = app.call(method, path, Some("not.a.token"), body).await;
        problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    app.finish().await;
}

#[tokio::test]
async fn without_stripe_buying_and_managing_are_503_and_the_rest_answers() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let plus = plan_id(&app, "Plus").await;

    let r = get(&app, "/api/v1/billing/subscription", &login).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({
            "plan": "Free",
            "status": "none",
            "currentPeriodStart": null,
            "currentPeriodEnd": null,
            "cancelAtPeriodEnd": false,
            "trialEndsAt": null
        })
    );
    for path in ["/api/v1/billing/invoices", "/api/v1/billing/payments"] {
        let r = get(&app, path, &login).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"items": [], "nextCursor": null})
        );
    }

    let checkout = json!({"planId": plus, "interval": "month"});
    for (path, body) in [
        ("/api/v1/billing/checkout", Some(checkout)),
        ("/api/v1/billing/portal", None),
        ("/api/v1/billing/subscription/cancel", Some(json!({}))),
        ("/api/v1/billing/subscription/resume", None),
    ] {
        let r = post(&app, path, &login, body).await;
        problem(r, StatusCode::SERVICE_UNAVAILABLE, "stripe_not_configured").await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_user_never_sees_another_users_subscription_invoices_or_payments() {
    // Stripe configured, but nothing listens: no call may reach it.
    let app = spawn_with_stripe(&TestApp::closed_port_url("http")).await;
    let (alice, bob) = (
        app.signup(&unique_email()).await,
        app.signup(&unique_email()).await,
    );
    let a = user_id(&alice);
    billing_sql(
        &app,
        &format!(
            "INSERT INTO subscriptions (userId, planId, stripeSubscriptionId, stripeCustomerId, status, \
               currentPeriodStart, currentPeriodEnd, cancelAtPeriodEnd, stripeEventCreatedAt) \
             SELECT '{a}', id, 'sub_alice', 'cus_alice', 'active', '2026-11-20 00:00:00', \
               '2026-12-20 00:00:00', true, now() FROM plans WHERE name = 'Plus';
             INSERT INTO stripeCustomers (userId, stripeCustomerId) VALUES ('{a}', 'cus_alice');
             INSERT INTO invoices (userId, invoiceNumber, stripeInvoiceId, subtotal, tax, total, status, dueDate) \
               VALUES ('{a}', 'ALICE-0001', 'in_alice', 20.00, 0, 20.00, 'paid', '2026-11-30');
             INSERT INTO payments (userId, stripePaymentIntentId, amount, currency, status, description) \
               VALUES ('{a}', 'pi_alice', 20.00, 'USD', 'succeeded', 'Plus, November');"
        ),
    )
    .await;

    // Alice sees hers.
    let mine: Value = get(&app, "/api/v1/billing/subscription", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["plan"], "Plus");
    assert_eq!(mine["status"], "active");
    assert_eq!(mine["cancelAtPeriodEnd"], true);
    assert_eq!(mine["currentPeriodEnd"], "2026-12-20T00:00:00Z");
    let invoices: Value = get(&app, "/api/v1/billing/invoices", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(invoices["items"][0]["invoiceNumber"], "ALICE-0001");
    assert_eq!(invoices["items"][0]["total"], "20.00");
    assert_eq!(invoices["items"][0]["dueDate"], "2026-11-30");
    let payments: Value = get(&app, "/api/v1/billing/payments", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payments["items"][0]["amount"], "20.00");
    assert_eq!(payments["items"][0]["currency"], "USD");
    assert!(payments["items"][0]["createdAt"].is_string());

    // Bob sees nothing of hers, and can touch none of it.
    let theirs: Value = get(&app, "/api/v1/billing/subscription", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["plan"], "Free");
    assert_eq!(theirs["status"], "none");
    for path in ["/api/v1/billing/invoices", "/api/v1/billing/payments"] {
        let page: Value = get(&app, path, &bob).await.json().await.unwrap();
        assert_eq!(page, json!({"items": [], "nextCursor": null}), "{path}");
    }
    let r = post(
        &app,
        "/api/v1/billing/subscription/cancel",
        &bob,
        Some(json!({"atPeriodEnd": false})),
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = post(&app, "/api/v1/billing/subscription/resume", &bob, None).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = post(&app, "/api/v1/billing/portal", &bob, None).await;
    problem(r, StatusCode::CONFLICT, "no_billing_account").await;
    // Alice cannot buy twice: she changes plans in the portal.
    let plus = plan_id(&app, "Plus").await;
    let r = post(
        &app,
        "/api/v1/billing/checkout",
        &alice,
        Some(json!({"planId": plus, "interval": "month"})),
    )
    .await;
    problem(r, StatusCode::CONFLICT, "already_subscribed").await;
    app.finish().await;
}

#[tokio::test]
async fn billing_refusals_are_problems_naming_the_field() {
    let app = spawn_with_stripe(&TestApp::closed_port_url("http")).await;
    let login = app.signup(&unique_email()).await;
    let (plus, free) = (plan_id(&app, "Plus").await, plan_id(&app, "Free").await);

    for (body, field) in [
        (json!({"planId": plus, "interval": "weekly"}), "interval"),
        (json!({"planId": plus, "interval": "year"}), "interval"),
        (json!({"planId": "plus", "interval": "month"}), "planId"),
        (json!({"planId": free, "interval": "month"}), "planId"),
    ] {
        let r = post(&app, "/api/v1/billing/checkout", &login, Some(body)).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(p["errors"][field].is_string(), "{p}");
    }
    let r = post(
        &app,
        "/api/v1/billing/checkout",
        &login,
        Some(json!({"planId": uuid::Uuid::now_v7(), "interval": "month"})),
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    for body in [
        json!({"interval": "month"}),
        json!({"planId": plus, "interval": 12}),
    ] {
        let r = post(&app, "/api/v1/billing/checkout", &login, Some(body)).await;
        problem(r, StatusCode::BAD_REQUEST, "malformed_body").await;
    }
    let r = post(
        &app,
        "/api/v1/billing/subscription/cancel",
        &login,
        Some(json!({"reason": "x".repeat(501)})),
    )
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(p["errors"]["reason"].is_string(), "{p}");
    let r = post(&app, "/api/v1/billing/subscription/resume", &login, None).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=garbage", "cursor"),
    ] {
        for list in ["invoices", "payments"] {
            let r = get(&app, &format!("/api/v1/billing/{list}?{query}"), &login).await;
            let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
            assert!(p["errors"][field].is_string(), "{list}?{query}: {p}");
        }
    }
    let r = get(&app, "/api/v1/billing/payments?limit=ten", &login).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    app.finish().await;
}

/// What a minimal Stripe saw.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, String)>>);

/// A stand-in for the two Stripe calls of a first checkout, answering by
/// path with Stripe's documented objects; records each request's path and
/// form body.
fn stripe_standin(seen: Arc<Seen>) -> (String, actix_web::dev::ServerHandle) {
    async fn answer(req: HttpRequest, body: web::Bytes, seen: web::Data<Seen>) -> HttpResponse {
        let body = String::from_utf8(body.to_vec()).unwrap();
        seen.0.lock().unwrap().push((req.path().to_owned(), body));
        let object = match req.path() {
            "/v1/customers" => json!({
                "id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": null,
                "name": null, "metadata": {}, "livemode": false
            }),
            "/v1/checkout/sessions" => json!({
                "id": "cs_test_gateway", "object": "checkout.session", "mode": "subscription",
                "status": "open", "customer": "cus_NffrFeUfNV2Hib", "subscription": null,
                "client_reference_id": null, "livemode": false,
                "url": "https://checkout.stripe.com/c/pay/cs_test_gateway"
            }),
            _ => {
                return HttpResponse::NotFound().json(json!({"error": {
                    "type": "invalid_request_error", "code": "resource_missing",
                    "message": "Unrecognized request URL"
                }}));
            }
        };
        HttpResponse::Ok().json(object)
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let data = web::Data::from(seen);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(answer))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    let tasks = tokio_util::task::TaskTracker::new();
    tasks.spawn(server);
    tasks.close();
    (base, handle)
}

#[tokio::test]
async fn checkout_sends_the_callers_email_to_stripe_and_answers_the_session() {
    let seen = Arc::new(Seen::default());
    let (base, server) = stripe_standin(seen.clone());
    let app = spawn_with_stripe(&base).await;
    let email = unique_email();
    let login = app.signup(&email).await;
    let plus = plan_id(&app, "Plus").await;

    let r = post(
        &app,
        "/api/v1/billing/checkout",
        &login,
        Some(json!({"planId": plus, "interval": "month"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({
            "url": "https://checkout.stripe.com/c/pay/cs_test_gateway",
            "sessionId": "cs_test_gateway"
        })
    );
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "/v1/customers");
    let form = &seen[0].1;
    let encoded_email = email.replace('@', "%40");
    assert!(form.contains(&format!("email={encoded_email}")), "{form}");
    assert!(form.contains("name=Ada+Lovelace"), "{form}");
    assert!(
        form.contains(&format!("metadata%5BuserId%5D={}", user_id(&login))),
        "{form}"
    );
    assert_eq!(seen[1].0, "/v1/checkout/sessions");
    assert!(
        seen[1]
            .1
            .contains(&format!("client_reference_id={}", user_id(&login))),
        "{}",
        seen[1].1
    );
    app.finish().await;
    server.stop(false).await;
}
