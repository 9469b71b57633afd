//! Bad input on every field of every account endpoint: a clear 4xx problem,
//! nothing written. And the rate limits.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, problem, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_each_bad_field_and_writes_nothing() {
    let app = TestApp::spawn_with(|c| c.rate_limit_multiplier = 0).await;
    let email = unique_email();
    let long = "x".repeat(129);
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({}), &["email", "password", "name"]),
        (
            json!({"email": "", "password": PASSWORD, "name": "Ada"}),
            &["email"],
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "Ada"}),
            &["email"],
        ),
        (
            json!({"email": format!("{}@example.com", "a".repeat(250)), "password": PASSWORD, "name": "Ada"}),
            &["email"],
        ),
        (
            json!({"email": email, "password": "", "name": "Ada"}),
            &["password"],
        ),
        (
            json!({"email": email, "password": "tooshort", "name": "Ada"}),
            &["password"],
        ),
        (
            json!({"email": email, "password": long, "name": "Ada"}),
            &["password"],
        ),
        (
            json!({"email": email, "password": email, "name": "Ada"}),
            &["password"],
        ),
        (
            json!({"email": email, "password": "password123", "name": "Ada"}),
            &["password"],
        ),
        (
            json!({"email": email, "password": PASSWORD, "name": ""}),
            &["name"],
        ),
        (
            json!({"email": email, "password": PASSWORD, "name": "   "}),
            &["name"],
        ),
        (
            json!({"email": email, "password": PASSWORD, "name": "n".repeat(256)}),
            &["name"],
        ),
        (
            json!({"email": "bad", "password": "short", "name": ""}),
            &["email", "password", "name"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post("/api/v1/auth/register", body.clone()).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let errors = p["errors"].as_object().unwrap();
        for field in fields {
            assert!(
                errors.contains_key(*field),
                "{body} should name {field}: {p}"
            );
        }
        assert_eq!(errors.len(), fields.len(), "{body}: {p}");
    }
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    assert!(app.identity.mails().is_empty());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_json_of_the_right_shape_are_refused() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/auth/register");
    let r = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "malformed_body").await;
    let r = app
        .client
        .post(&url)
        .json(&json!({"email": 42, "password": [], "name": null}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "malformed_body").await;
    // The contract says an object; serde alone would read a struct from an
    // array of its fields in order (and PATCH /me from [] answered 200).
    let r = app
        .client
        .post(&url)
        .json(&json!([unique_email(), PASSWORD, "Ada"]))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "malformed_body").await;
    let login = app.signup(&unique_email()).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&login.access),
            Some(json!([])),
        )
        .await;
    problem(r, StatusCode::BAD_REQUEST, "malformed_body").await;
    let r = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("email=a")
        .send()
        .await
        .unwrap();
    problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = json!({"email": unique_email(), "password": PASSWORD, "name": "x".repeat(300_000)});
    let r = app.client.post(&url).json(&huge).send().await.unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.count("users").await, 1, "only the one signed up");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reset_and_forgot_refuse_missing_or_malformed_fields() {
    let app = TestApp::spawn().await;
    let p = problem(
        app.post("/api/v1/auth/login", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(p["errors"]["email"].is_string() && p["errors"]["password"].is_string());
    // A malformed email at log-in is just wrong credentials: nothing to learn.
    problem(
        app.post(
            "/api/v1/auth/login",
            json!({"email": "nope", "password": PASSWORD}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let p = problem(
        app.post("/api/v1/auth/forgot-password", json!({"email": "nope"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(p["errors"]["email"].is_string());
    let p = problem(
        app.post("/api/v1/auth/reset-password", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(p["errors"]["token"].is_string() && p["errors"]["password"].is_string());
    problem(
        app.post(
            "/api/v1/auth/reset-password",
            json!({"token": "x".repeat(43), "password": "a fine long passphrase"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
    assert_eq!(app.count("passwordResets").await, 0);
    assert_eq!(app.count("sessions").await, 0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_and_delete_refuse_missing_fields() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(&login.access),
            Some(json!({})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(p["errors"]["currentPassword"].is_string() && p["errors"]["newPassword"].is_string());
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&login.access),
            Some(json!({})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(p["errors"]["password"].is_string());
    assert_eq!(app.count("users").await, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited_per_email_with_retry_after() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email).await;
    for _ in 0..10 {
        let r = app.login_response(&email, "wrong password, again").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.login_response(&email, PASSWORD).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(p["retryAfter"], retry_after);
    // The same limit does not hold another address back.
    assert_eq!(
        app.login_response(&unique_email(), PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_forgot_and_reset_are_rate_limited_per_ip() {
    let app = TestApp::spawn().await;
    for _ in 0..10 {
        assert_eq!(
            app.register(&unique_email()).await.status(),
            StatusCode::CREATED
        );
    }
    problem(
        app.register(&unique_email()).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;

    let email = unique_email();
    for _ in 0..5 {
        assert_eq!(
            app.post("/api/v1/auth/forgot-password", json!({"email": email}))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    // Per email: the sixth for the same address waits.
    problem(
        app.post("/api/v1/auth/forgot-password", json!({"email": email}))
            .await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;

    for _ in 0..10 {
        let r = app
            .post(
                "/api/v1/auth/reset-password",
                json!({"token": "x".repeat(43), "password": "a fine long passphrase"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = app
        .post(
            "/api/v1/auth/reset-password",
            json!({"token": "x".repeat(43), "password": "a fine long passphrase"}),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    app.finish().await;
}
