//! Tokens and sessions: rotation, reuse, revocation, and who may touch what.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_the_token_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;

    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": login.refresh}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let next: Value = r.json().await.unwrap();
    let next_refresh = next["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(next_refresh, login.refresh);
    assert_eq!(next["tokenType"], "Bearer");
    assert_eq!(next["user"]["email"], login.user["email"]);
    assert_eq!(
        app.me(next["accessToken"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );

    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": next_refresh}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the rotated-to token works");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_rotated_refresh_token_revokes_the_session() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": login.refresh}),
        )
        .await;
    let next: Value = r.json().await.unwrap();
    let (access, refresh) = (
        next["accessToken"].as_str().unwrap(),
        next["refreshToken"].as_str().unwrap(),
    );

    // The stolen old token comes back: refused, and the whole session ends.
    problem(
        app.post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": login.refresh}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    problem(
        app.post("/api/v1/auth/refresh", json!({"refreshToken": refresh}))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let took = app
        .until_me_is(
            &app.base,
            access,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(1),
        )
        .await;
    assert!(
        took.is_some(),
        "the session's access token is refused within a second"
    );
    assert_eq!(
        app.count("sessions WHERE NOT isActive AND revokedReason = 'refresh_token_reuse'")
            .await,
        1
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_refresh_tokens_are_refused_alike() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    for bad in [
        json!({"refreshToken": "x".repeat(43)}),
        json!({"refreshToken": "short"}),
        json!({"refreshToken": login.access}),
    ] {
        problem(
            app.post("/api/v1/auth/refresh", bad).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    let body = problem(
        app.post("/api/v1/auth/refresh", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["errors"]["refreshToken"].is_string());
    // An expired session's token is refused too.
    app.execute("UPDATE sessions SET expiresAt = now() - interval '1 second'")
        .await;
    problem(
        app.post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": login.refresh}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_everywhere_within_a_second() {
    let app = TestApp::spawn().await;
    let other_gateway = app.gateway_with(|_| {}).await;
    let login = app.signup(&unique_email()).await;
    assert_eq!(
        app.call_at(
            &other_gateway.base,
            Method::GET,
            "/api/v1/me",
            Some(&login.access),
            None
        )
        .await
        .status(),
        StatusCode::OK
    );

    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // This gateway refuses at once; the other learns it from identity's event.
    problem(
        app.me(&login.access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let took = app
        .until_me_is(
            &other_gateway.base,
            &login.access,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(1),
        )
        .await;
    assert!(
        took.is_some(),
        "the other gateway refuses the token within a second"
    );
    problem(
        app.post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": login.refresh}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_after_a_logout_still_refuses_the_token() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // A new replica loads its deny list from identity before it is ready,
    // and before it accepts any token: its very first answer refuses.
    let late = app.gateway_with(|_| {}).await;
    let r = app
        .call_at(
            &late.base,
            Method::GET,
            "/api/v1/me",
            Some(&login.access),
            None,
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_cannot_reach_the_broker_still_refuses_revoked_tokens() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let gone = app.signup(&email).await;
    let kept = app.login(&email).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&gone.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let isolated = app
        .gateway_with(|c| {
            c.amqp.url = format!("{}/%2f", TestApp::closed_port_url("amqp"));
            c.revocation_resync = Duration::from_millis(200);
        })
        .await;
    let r = app
        .call_at(
            &isolated.base,
            Method::GET,
            "/api/v1/me",
            Some(&gone.access),
            None,
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let r = app
        .call_at(
            &isolated.base,
            Method::GET,
            "/api/v1/me",
            Some(&kept.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a live session's token works");
    let r = app
        .client
        .get(format!("{}/readyz?verbose", isolated.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["revocationEvents"], "not_subscribed", "{body}");

    // A log-out at another replica reaches it without events, by the
    // periodic reload from identity.
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&kept.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let took = app
        .until_me_is(
            &isolated.base,
            &kept.access,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(5),
        )
        .await;
    assert!(took.is_some(), "the reload picks the revocation up");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_one_can_be_ended() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let a = app.signup(&email).await;
    let b = app.login(&email).await;

    let r = app
        .call(Method::GET, "/api/v1/me/sessions", Some(&a.access), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = r.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    for s in items {
        assert_eq!(s["userAgent"], "aichat-tests/1");
        assert_eq!(s["ipAddress"], "127.0.0.1");
        for field in ["createdAt", "lastActivityAt", "expiresAt"] {
            assert!(s[field].as_str().unwrap().ends_with('Z'), "{field}");
        }
    }
    let other = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{other}"),
            Some(&a.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        app.me(&b.access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_eq!(app.me(&a.access).await.status(), StatusCode::OK);
    // Ending it again: it is no longer there.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{other}"),
            Some(&a.access),
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_can_neither_see_nor_end_another_users_session() {
    let app = TestApp::spawn().await;
    let mallory = app.signup(&unique_email()).await;
    let alice = app.signup(&unique_email()).await;

    let r = app
        .call(
            Method::GET,
            "/api/v1/me/sessions",
            Some(&mallory.access),
            None,
        )
        .await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "only her own");

    let r = app
        .call(
            Method::GET,
            "/api/v1/me/sessions",
            Some(&alice.access),
            None,
        )
        .await;
    let list: Value = r.json().await.unwrap();
    let alices = list["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{alices}"),
            Some(&mallory.access),
            None,
        )
        .await;
    let not_hers = problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{}", uuid::Uuid::now_v7()),
            Some(&mallory.access),
            None,
        )
        .await;
    let missing = problem(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        not_hers, missing,
        "another user's session looks exactly like a missing one"
    );
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me/sessions/not-a-uuid",
            Some(&mallory.access),
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.me(&alice.access).await.status(), StatusCode::OK);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_access_token_are_refused() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let r = app.call(Method::GET, "/api/v1/me", None, None).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    for bad in ["garbage", "a.b.c", &login.refresh] {
        problem(app.me(bad).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    // A token whose payload was edited (role: admin) fails its signature.
    let mut parts: Vec<&str> = login.access.split('.').collect();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let forged = engine.encode(serde_json::to_vec(&claims).unwrap());
    parts[1] = &forged;
    problem(
        app.me(&parts.join(".")).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .header("Authorization", format!("Basic {}", login.access))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_client_ip_is_the_entry_it_appended() {
    let app = TestApp::spawn().await;
    let proxied = app.gateway_with(|c| c.trusted_proxies = 1).await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.status(), StatusCode::CREATED);
    // The client sent a spoofed entry; the proxy appended the address it saw.
    let r = app
        .client
        .post(format!("{}/api/v1/auth/login", proxied.base))
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.7")
        .json(&json!({"email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let access = r.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(Method::GET, "/api/v1/me/sessions", Some(&access), None)
        .await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["items"][0]["ipAddress"], "203.0.113.7");
    app.finish().await;
}
