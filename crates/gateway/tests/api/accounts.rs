//! The account flow of API.md, and what each step refuses.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, problem, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_verify_log_in_and_read_me() {
    let app = TestApp::spawn().await;
    let email = unique_email();

    let r = app.register(&email.to_uppercase()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["email"], email, "emails are stored lower-cased");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["planTier"], "FREE");
    assert_eq!(user["role"], "user");
    assert_eq!(user["emailVerified"], false);
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password").is_none());

    // The stored password is an argon2id hash, never the password.
    assert_eq!(
        app.count("users WHERE password LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'")
            .await,
        1
    );

    // The verification mail is an RFC 5322 file with a ?token= link.
    app.identity.mail_sent().await.unwrap();
    let mails = app.identity.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains(&format!("To: {email}")));
    assert!(mails[0].contains("Subject: Confirm your email address"));
    assert!(mails[0].contains("http://localhost:8080/verify-email?token="));
    let token = app
        .identity
        .wait_for_token(&email, "verify-email")
        .await
        .unwrap();
    assert_eq!(token.len(), 43);
    // Only its hash is stored.
    assert_eq!(
        app.count(&format!("emailVerifications WHERE token = '{token}'"))
            .await,
        0
    );

    let r = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["emailVerified"], true);
    assert_eq!(
        app.count("users WHERE emailVerified AND emailVerifiedAt IS NOT NULL")
            .await,
        1
    );

    let r = app.login_response(&email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let login: Value = r.json().await.unwrap();
    assert_eq!(login["tokenType"], "Bearer");
    assert_eq!(login["expiresIn"], 900);
    assert_eq!(login["user"]["email"], email);
    let access = login["accessToken"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert!(login["refreshToken"].as_str().unwrap().len() >= 43);

    let r = app.me(access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], email);
    assert_eq!(me["emailVerified"], true);
    assert_eq!(me["id"], body["user"]["id"]);

    // Log-in bookkeeping is kept true.
    assert_eq!(
        app.count(
            "users WHERE loginCount = 1 AND lastLoginAt IS NOT NULL AND updatedAt >= lastLoginAt"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("sessions WHERE userAgent = 'aichat-tests/1' AND ipAddress = '127.0.0.1' AND lastActivityAt IS NOT NULL AND isActive").await,
        1
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_taken_email_answers_409_whatever_its_case() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.status(), StatusCode::CREATED);
    let r = app.register(&format!("  {}  ", email.to_uppercase())).await;
    problem(r, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(app.count("users").await, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_unknown_email_and_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email).await;

    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..7 {
        let t = Instant::now();
        let r = app
            .login_response(&format!("nobody{i}@example.com"), PASSWORD)
            .await;
        unknown.push(t.elapsed());
        bodies.push(problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await);
        let t = Instant::now();
        let r = app.login_response(&email, "a wrong password here").await;
        wrong.push(t.elapsed());
        bodies.push(problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical bodies: {bodies:?}"
    );

    // Both pay one argon2 verification: medians within a factor of two.
    unknown.sort();
    wrong.sort();
    let (u, w) = (unknown[3].as_secs_f64(), wrong[3].as_secs_f64());
    assert!(
        u > w / 2.0 && u < w * 2.0,
        "unknown email {u:.4}s vs wrong password {w:.4}s"
    );
    assert_eq!(app.count("sessions").await, 0);
    assert_eq!(
        app.count("users WHERE COALESCE(loginCount, 0) = 0").await,
        1
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_link_works_once_and_a_resend_replaces_it() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let login = app.signup(&email).await;
    let first = app
        .identity
        .wait_for_token(&email, "verify-email")
        .await
        .unwrap();

    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/resend-verification",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let second = app
        .identity
        .wait_for_token(&email, "verify-email")
        .await
        .unwrap();
    assert_ne!(first, second);

    // The first link no longer works; the second does, once.
    problem(
        app.post("/api/v1/auth/verify-email", json!({"token": first}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
    assert_eq!(
        app.post("/api/v1/auth/verify-email", json!({"token": second}))
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        app.post("/api/v1/auth/verify-email", json!({"token": second}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
    // Each presentation is counted.
    assert_eq!(
        app.count("emailVerifications WHERE attemptCount = 2").await,
        1
    );
    assert_eq!(
        app.count("emailVerifications WHERE attemptCount = 1").await,
        1
    );

    // Resending for a verified address sends nothing.
    let before = app.identity.mails().len();
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/resend-verification",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.identity.mail_sent().await.unwrap();
    assert_eq!(app.identity.mails().len(), before);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_unknown_verification_token_is_refused() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email).await;
    let token = app
        .identity
        .wait_for_token(&email, "verify-email")
        .await
        .unwrap();
    app.execute("UPDATE emailVerifications SET expiresAt = now() - interval '1 second'")
        .await;
    problem(
        app.post("/api/v1/auth/verify-email", json!({"token": token}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
    for bad in ["x".repeat(43), "short".into(), format!("{}!", &token[..42])] {
        problem(
            app.post("/api/v1/auth/verify-email", json!({"token": bad}))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_token",
        )
        .await;
    }
    let body = problem(
        app.post("/api/v1/auth/verify-email", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["errors"]["token"].is_string());
    assert_eq!(app.count("users WHERE emailVerified").await, 0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_answers_the_same_for_any_email_and_mails_only_accounts() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email).await;
    app.identity.mail_sent().await.unwrap();
    let mails_before = app.identity.mails().len();

    let known = app
        .post("/api/v1/auth/forgot-password", json!({"email": email}))
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/forgot-password",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());

    // The mail leaves in the background.
    let token = app.identity.wait_for_token(&email, "reset-password").await;
    assert!(token.is_some(), "a reset mail for the account");
    assert_eq!(
        app.identity.mails().len(),
        mails_before + 1,
        "and none for the unknown address"
    );
    assert_eq!(app.count("passwordResets").await, 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_sets_the_password_revokes_every_session_and_works_once() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let a = app.signup(&email).await;
    let b = app.login(&email).await;
    app.post("/api/v1/auth/forgot-password", json!({"email": email}))
        .await;
    let token = app
        .identity
        .wait_for_token(&email, "reset-password")
        .await
        .unwrap();

    // A weak password is refused and the link stays usable.
    let body = problem(
        app.post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "1234567890"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["errors"]["password"].is_string());
    let new_password = "a brand new long passphrase";
    let r = app
        .post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Every session is over: access tokens (within a second) and refresh tokens.
    for login in [&a, &b] {
        assert!(
            app.until_me_is(
                &app.base,
                &login.access,
                StatusCode::UNAUTHORIZED,
                Duration::from_secs(1)
            )
            .await
            .is_some()
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
    }
    problem(
        app.login_response(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login_response(&email, new_password).await.status(),
        StatusCode::OK
    );

    // The link worked once.
    problem(
        app.post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "yet another passphrase"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
    assert_eq!(
        app.count("passwordResets WHERE isUsed AND usedAt IS NOT NULL AND attemptCount = 3")
            .await,
        1
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reset_link_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email).await;
    app.post("/api/v1/auth/forgot-password", json!({"email": email}))
        .await;
    let token = app
        .identity
        .wait_for_token(&email, "reset-password")
        .await
        .unwrap();
    app.execute("UPDATE passwordResets SET expiresAt = now() - interval '1 second'")
        .await;
    problem(
        app.post(
            "/api/v1/auth/reset-password",
            json!({"token": token, "password": "a brand new long passphrase"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    )
    .await;
    assert_eq!(
        app.login_response(&email, PASSWORD).await.status(),
        StatusCode::OK
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_me_renames_and_refuses_a_bad_name() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&login.access),
            Some(json!({"name": "  Grace Hopper "})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["name"], "Grace Hopper");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(256)}),
        json!({"name": "a\u{7}b"}),
    ] {
        let r = app
            .call(Method::PATCH, "/api/v1/me", Some(&login.access), Some(bad))
            .await;
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(body["errors"]["name"].is_string());
    }
    assert_eq!(
        app.count("users WHERE name = 'Grace Hopper' AND updatedAt > createdAt")
            .await,
        1
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_keeps_this_session_and_ends_the_others() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let this = app.signup(&email).await;
    let other = app.login(&email).await;

    let r = app
        .call(Method::POST, "/api/v1/me/password", Some(&this.access), Some(json!({"currentPassword": "not my password", "newPassword": "a brand new long passphrase"})))
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["errors"]["currentPassword"].is_string());
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(&this.access),
            Some(json!({"currentPassword": PASSWORD, "newPassword": email})),
        )
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["errors"]["newPassword"].is_string());
    assert_eq!(
        app.count("sessions WHERE isActive").await,
        2,
        "refusals change nothing"
    );

    let r = app
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(&this.access),
            Some(
                json!({"currentPassword": PASSWORD, "newPassword": "a brand new long passphrase"}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        app.until_me_is(
            &app.base,
            &other.access,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(1)
        )
        .await
        .is_some()
    );
    assert_eq!(app.me(&this.access).await.status(), StatusCode::OK);
    problem(
        app.post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": other.refresh}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_eq!(
        app.post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": this.refresh})
        )
        .await
        .status(),
        StatusCode::OK
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_needs_the_password_and_removes_everything() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let login = app.signup(&email).await;

    // Listen for the deletion event like a downstream service would.
    let events = crate::helpers::EventTap::bind(&app.amqp, "identity.user.deleted").await;

    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&login.access),
            Some(json!({"password": "not my password"})),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.count("users").await, 1);

    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&login.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("sessions").await, 0);
    assert_eq!(app.count("emailVerifications").await, 0);
    problem(
        app.me(&login.access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    problem(
        app.login_response(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;

    let event = events
        .next(Duration::from_secs(5))
        .await
        .expect("identity.user.deleted published");
    assert_eq!(event["type"], "identity.user.deleted");
    assert_eq!(event["version"], 1);
    assert_eq!(event["data"]["userId"], login.user["id"]);
    assert!(event["id"].is_string() && event["occurredAt"].is_string());
    events.close().await;
    app.finish().await;
}
