//! The browser's session: the refresh token in an `HttpOnly` cookie
//! (`X-Session-Cookie: 1`), read by refresh and logout with the CSRF header.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, problem, unique_email};

/// The `aichat_refresh` cookies a response sets, whole.
fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("aichat_refresh="))
        .collect()
}

/// The one refresh token a response puts in the cookie.
fn cookie_token(r: &Response) -> String {
    let cookies = set_cookies(r);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let token = cookies[0]
        .strip_prefix("aichat_refresh=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 43, "{token}");
    token
}

fn assert_cleared(r: &Response) {
    assert_eq!(
        set_cookies(r),
        ["aichat_refresh=; Path=/api/v1/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict"]
    );
}

/// Logs in asking for the cookie: (access token, cookie's refresh token).
/// The `Max-Age` of a `Set-Cookie` value, in seconds.
fn max_age(set_cookie: &str) -> u64 {
    set_cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap()
}

async fn cookie_login(app: &TestApp, email: &str) -> (String, String) {
    assert_eq!(app.register(email).await.status(), StatusCode::CREATED);
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-session-cookie", "1")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = cookie_token(&r);
    let body: Value = r.json().await.unwrap();
    (body["accessToken"].as_str().unwrap().to_owned(), token)
}

/// `POST path` with `{}`, the cookie, and the CSRF header if `csrf`.
async fn by_cookie(app: &TestApp, path: &str, token: &str, csrf: bool) -> Response {
    let mut req = app
        .client
        .post(app.url(path))
        .header("cookie", format!("theme=dark; aichat_refresh={token}"))
        .json(&json!({}));
    if csrf {
        req = req.header("x-requested-with", "aichat");
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_the_opt_in_sets_the_cookie_and_keeps_the_token_out_of_the_json() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.status(), StatusCode::CREATED);
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-session-cookie", "1")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 1);
    let attributes: Vec<&str> = cookies[0].split("; ").skip(1).collect();
    assert_eq!(
        attributes,
        [
            "Path=/api/v1/auth",
            attributes[1],
            "HttpOnly",
            "Secure",
            "SameSite=Strict"
        ]
    );
    // As long as the new session (30 days), give or take the call's seconds.
    let max_age = max_age(&cookies[0]);
    assert!((2_591_990..=2_592_000).contains(&max_age), "{max_age}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert!(body.get("refreshToken").is_none(), "{body}");
    assert!(body["accessToken"].is_string());
    assert_eq!(body["user"]["email"], email);

    // Without the header: the JSON API as before, no cookie.
    let r = app.login_response(&email, PASSWORD).await;
    assert!(set_cookies(&r).is_empty());
    let body: Value = r.json().await.unwrap();
    let refresh = body["refreshToken"].as_str().unwrap().to_owned();
    let r = app
        .post("/api/v1/auth/refresh", json!({"refreshToken": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookies(&r).is_empty());
    assert!(r.json::<Value>().await.unwrap()["refreshToken"].is_string());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_by_the_cookie_rotates_it_and_reusing_the_old_one_revokes_the_session() {
    let app = TestApp::spawn().await;
    let (_, first) = cookie_login(&app, &unique_email()).await;

    let r = by_cookie(&app, "/api/v1/auth/refresh", &first, true).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = cookie_token(&r);
    assert_ne!(second, first);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("refreshToken").is_none(), "{body}");
    let access = body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);

    // The rotated-to cookie works once more...
    let r = by_cookie(&app, "/api/v1/auth/refresh", &second, true).await;
    assert_eq!(r.status(), StatusCode::OK);
    let third = cookie_token(&r);

    // ...and the stale one coming back ends the session, as a reused body
    // token does; the refusal clears the cookie.
    let r = by_cookie(&app, "/api/v1/auth/refresh", &first, true).await;
    assert_cleared(&r);
    problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let r = by_cookie(&app, "/api/v1/auth/refresh", &third, true).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(
        app.count("sessions WHERE NOT isActive AND revokedReason = 'refresh_token_reuse'")
            .await,
        1
    );
    let took = app
        .until_me_is(
            &app.base,
            &access,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(1),
        )
        .await;
    assert!(took.is_some(), "the session's access token is refused");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_call_without_the_csrf_header_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (access, token) = cookie_login(&app, &unique_email()).await;

    let r = by_cookie(&app, "/api/v1/auth/refresh", &token, false).await;
    assert!(set_cookies(&r).is_empty());
    problem(r, StatusCode::FORBIDDEN, "csrf").await;
    let r = by_cookie(&app, "/api/v1/auth/logout", &token, false).await;
    assert!(set_cookies(&r).is_empty());
    problem(r, StatusCode::FORBIDDEN, "csrf").await;
    // A wrong value is no better.
    let r = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("aichat_refresh={token}"))
        .header("x-requested-with", "XMLHttpRequest")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN, "csrf").await;

    // Nothing was rotated nor revoked: the same cookie still works, once.
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    assert_eq!(app.count("sessions WHERE NOT isActive").await, 0);
    let r = by_cookie(&app, "/api/v1/auth/refresh", &token, true).await;
    assert_eq!(r.status(), StatusCode::OK);

    // No token anywhere: the body's field is what is missing, as before.
    let body = problem(
        app.post("/api/v1/auth/refresh", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["errors"]["refreshToken"].is_string());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_by_the_cookie_revokes_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let (access, token) = cookie_login(&app, &email).await;
    let other = app.login(&email).await;

    let r = by_cookie(&app, "/api/v1/auth/logout", &token, true).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_cleared(&r);
    problem(
        app.me(&access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let r = by_cookie(&app, "/api/v1/auth/refresh", &token, true).await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(
        app.me(&other.access).await.status(),
        StatusCode::OK,
        "only that session ends"
    );
    assert_eq!(app.count("sessions WHERE NOT isActive").await, 1);

    // Logging out again with the dead cookie: already over, cleared again.
    let r = by_cookie(&app, "/api/v1/auth/logout", &token, true).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_cleared(&r);

    // A bearer log-out that sends the cookie along clears it too; one
    // without a cookie sets none (the JSON API as before).
    let (access, token) = {
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-session-cookie", "1")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let token = cookie_token(&r);
        let body: Value = r.json().await.unwrap();
        (body["accessToken"].as_str().unwrap().to_owned(), token)
    };
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .header("cookie", format!("aichat_refresh={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_cleared(&r);
    problem(
        app.me(&access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&other.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(set_cookies(&r).is_empty());
    // Neither a token nor a cookie: 401 as before.
    let r = app
        .call(Method::POST, "/api/v1/auth/logout", None, None)
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_never_outlives_its_session() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let (_, token) = cookie_login(&app, &email).await;
    // The session (a fixed 30-day life; rotation does not extend it) has an
    // hour left: the rotated cookie lives an hour, not the configured 30 days.
    app.execute(&format!(
        "UPDATE sessions SET expiresAt = now() AT TIME ZONE 'UTC' + interval '1 hour' \
         WHERE userId = (SELECT id FROM users WHERE email = '{email}')"
    ))
    .await;
    let r = by_cookie(&app, "/api/v1/auth/refresh", &token, true).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let max_age = max_age(&cookies[0]);
    assert!((3_590..=3_600).contains(&max_age), "{max_age}");
    app.finish().await;
}
