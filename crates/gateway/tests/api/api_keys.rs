//! API keys: `/api/v1/me/api-keys` and the `ApiKeyAuth` extractor (through
//! the test-only `GET /_test/api-key`, as the `/v1` routes do not exist
//! yet), against a real identity service.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, problem, unique_email};

const KEYS: &str = "/api/v1/me/api-keys";

async fn create(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.call(Method::POST, KEYS, Some(token), Some(body)).await
}

async fn create_ok(app: &TestApp, token: &str, name: &str) -> Value {
    let r = create(app, token, json!({"name": name})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn list(app: &TestApp, token: &str) -> Value {
    let r = app.call(Method::GET, KEYS, Some(token), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// `GET /_test/api-key` on the gateway at `base` with `key`.
async fn whoami(app: &TestApp, base: &str, key: &str) -> reqwest::Response {
    app.call_at(base, Method::GET, "/_test/api-key", Some(key), None)
        .await
}

/// Polls until the key is answered `status` at `base`; how long it took.
async fn until_key_is(
    app: &TestApp,
    base: &str,
    key: &str,
    status: StatusCode,
    within: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if whoami(app, base, key).await.status() == status {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_created_listed_without_its_secret_used_and_deleted() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let r = create(
        &app,
        &login.access,
        json!({"name": " CI ", "expiresAt": expires}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-aichat-") && key.len() == 53, "{key}");
    assert_eq!(created["prefix"], key[..14]);
    assert_eq!(created["name"], "CI");
    assert_eq!(
        created["expiresAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        expires.parse::<chrono::DateTime<chrono::Utc>>().unwrap()
    );
    assert!(created["createdAt"].is_string() && created["id"].is_string());

    // The list never carries the secret.
    let listed = list(&app, &login.access).await;
    let text = listed.to_string();
    assert!(!text.contains(&key[14..]), "{text}");
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = items[0].as_object().unwrap();
    let mut fields: Vec<&str> = item.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "createdAt",
            "expiresAt",
            "id",
            "lastUsedAt",
            "name",
            "prefix"
        ]
    );
    assert_eq!(item["lastUsedAt"], Value::Null);
    // Nor does the database: only the key's SHA-256.
    assert_eq!(
        app.count(&format!("apiKeys a WHERE a::text LIKE '%{}%'", &key[14..]))
            .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "apiKeys WHERE keyHash = encode(sha256(convert_to('{key}', 'UTF8')), 'hex')"
        ))
        .await,
        1
    );

    // The key authenticates its owner, and its use shows in the list.
    let r = whoami(&app, &app.base, &key).await;
    assert_eq!(r.status(), StatusCode::OK);
    let who: Value = r.json().await.unwrap();
    assert_eq!(who["userId"], login.user["id"]);
    assert_eq!(who["apiKeyId"], created["id"]);
    assert_eq!(who["planTier"], "FREE");
    assert!(list(&app, &login.access).await["items"][0]["lastUsedAt"].is_string());

    let id = created["id"].as_str().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("{KEYS}/{id}"),
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(list(&app, &login.access).await["items"], json!([]));
    problem(
        whoami(&app, &app.base, &key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    assert_eq!(app.count("apiKeys").await, 0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_each_field_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let cases = [
        (json!({}), vec!["name"]),
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "   "}), vec!["name"]),
        (json!({"name": "x".repeat(101)}), vec!["name"]),
        (json!({"name": "tab\u{7}bell"}), vec!["name"]),
        (
            json!({"name": "ok", "expiresAt": "next tuesday"}),
            vec!["expiresAt"],
        ),
        (json!({"name": "ok", "expiresAt": ""}), vec!["expiresAt"]),
        (json!({"name": "ok", "expiresAt": past}), vec!["expiresAt"]),
        (
            json!({"name": "ok", "expiresAt": "3026-01-01T00:00:00Z"}),
            vec!["expiresAt"],
        ),
        (
            json!({"name": "", "expiresAt": "2020-01-01T00:00:00Z"}),
            vec!["expiresAt", "name"],
        ),
    ];
    for (body, fields) in cases {
        let p = problem(
            create(&app, &login.access, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let errors = p["errors"].as_object().unwrap();
        let mut named: Vec<&str> = errors.keys().map(String::as_str).collect();
        named.sort_unstable();
        assert_eq!(named, fields, "{body}: {p}");
    }
    // Not JSON of the right shape: 400.
    for body in [
        json!({"name": 5}),
        json!({"name": "ok", "expiresAt": 17}),
        json!(["ok"]),
    ] {
        problem(
            create(&app, &login.access, body).await,
            StatusCode::BAD_REQUEST,
            "malformed_body",
        )
        .await;
    }
    let r = app
        .client
        .post(app.url(KEYS))
        .bearer_auth(&login.access)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // 101 characters is one too many; 100 are fine (below, not counted).
    assert_eq!(app.count("apiKeys").await, 0);
    create_ok(&app, &login.access, &"é".repeat(100)).await;
    assert_eq!(app.count("apiKeys").await, 1);

    // Without an access token: 401, and an API key is not an access token.
    problem(
        app.call(Method::GET, KEYS, None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_key_is_not_found_and_stays_untouched() {
    let app = TestApp::spawn().await;
    let ada = app.signup(&unique_email()).await;
    let eve = app.signup(&unique_email()).await;
    let created = create_ok(&app, &ada.access, "ada's").await;
    let id = created["id"].as_str().unwrap();
    let key = created["key"].as_str().unwrap();

    let mut bodies = Vec::new();
    for path in [
        format!("{KEYS}/{id}"),
        format!("{KEYS}/0190a1b2-0000-7000-8000-000000000000"),
        format!("{KEYS}/not-a-uuid"),
    ] {
        let mut p = problem(
            app.call(Method::DELETE, &path, Some(&eve.access), None)
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        p.as_object_mut().unwrap().remove("detail");
        bodies.push(p);
    }
    assert_eq!(bodies[0], bodies[1], "the same answer as an unknown key");
    assert_eq!(list(&app, &eve.access).await["items"], json!([]));
    assert_eq!(
        list(&app, &ada.access).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(whoami(&app, &app.base, key).await.status(), StatusCode::OK);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_at_the_limit_never_exceed_it() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    for i in 0..17 {
        create_ok(&app, &login.access, &format!("k{i}")).await;
    }
    let attempts = 8;
    let calls: Vec<_> = (0..attempts)
        .map(|i| create(&app, &login.access, json!({"name": format!("race{i}")})))
        .collect();
    let answers = futures::future::join_all(calls).await;
    let mut created = 0;
    for r in answers {
        if r.status() == StatusCode::CREATED {
            created += 1;
        } else {
            problem(r, StatusCode::CONFLICT, "api_key_limit").await;
        }
    }
    assert_eq!(created, 3);
    assert_eq!(app.count("apiKeys").await, 20);
    assert_eq!(
        list(&app, &login.access).await["items"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_key_is_refused_within_a_second_by_every_gateway() {
    let app = TestApp::spawn().await;
    // A second replica on the same broker, and a third that hears no events
    // (its own exchange): its cache lifetime alone must bound revocation.
    let second = app.gateway_with(|_| {}).await;
    let deaf = app
        .gateway_with(|c| c.amqp.exchange = aichat_identity::testing::unique_exchange())
        .await;
    let login = app.signup(&unique_email()).await;
    for round in 0..2 {
        let created = create_ok(&app, &login.access, &format!("round {round}")).await;
        let key = created["key"].as_str().unwrap().to_owned();
        // Every replica has the key cached as valid.
        for base in [&app.base, &second.base, &deaf.base] {
            assert_eq!(whoami(&app, base, &key).await.status(), StatusCode::OK);
        }
        let id = created["id"].as_str().unwrap();
        let r = app
            .call(
                Method::DELETE,
                &format!("{KEYS}/{id}"),
                Some(&login.access),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        // Polled on all three at once: each one's own delay after the 204.
        let polls = [
            ("the deleting gateway", &app.base),
            ("a second gateway", &second.base),
            ("a gateway without events", &deaf.base),
        ]
        .map(|(name, base)| {
            let key = key.clone();
            let app = &app;
            async move {
                let took = until_key_is(
                    app,
                    base,
                    &key,
                    StatusCode::UNAUTHORIZED,
                    Duration::from_secs(3),
                )
                .await;
                (name, took)
            }
        });
        for (name, took) in futures::future::join_all(polls).await {
            let took =
                took.unwrap_or_else(|| panic!("{name}: the deleted key still works after 3 s"));
            eprintln!("round {round}: {name} refuses the deleted key {took:?} after the 204");
            assert!(took < Duration::from_secs(1), "{name}: {took:?}");
        }
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_refused() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let r = create(
        &app,
        &login.access,
        json!({"name": "short", "expiresAt": soon}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert_eq!(whoami(&app, &app.base, key).await.status(), StatusCode::OK);
    let expires: chrono::DateTime<chrono::Utc> =
        created["expiresAt"].as_str().unwrap().parse().unwrap();
    let wait = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    problem(
        whoami(&app, &app.base, key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    // Still listed, so its owner sees why it stopped working.
    assert_eq!(
        list(&app, &login.access).await["items"][0]["expiresAt"],
        created["expiresAt"]
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_kills_its_keys() {
    let app = TestApp::spawn().await;
    let second = app.gateway_with(|_| {}).await;
    let login = app.signup(&unique_email()).await;
    let keys: Vec<String> = [
        create_ok(&app, &login.access, "one").await,
        create_ok(&app, &login.access, "two").await,
    ]
    .iter()
    .map(|k| k["key"].as_str().unwrap().to_owned())
    .collect();
    for key in &keys {
        assert_eq!(
            whoami(&app, &second.base, key).await.status(),
            StatusCode::OK
        );
    }
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&login.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let deleted = Instant::now();
    for key in &keys {
        until_key_is(
            &app,
            &second.base,
            key,
            StatusCode::UNAUTHORIZED,
            Duration::from_secs(3),
        )
        .await
        .expect("refused");
    }
    assert!(
        deleted.elapsed() < Duration::from_secs(1),
        "{:?}",
        deleted.elapsed()
    );
    assert_eq!(app.count("apiKeys").await, 0);
    assert_eq!(
        app.count("outbox WHERE eventType = 'identity.api_key.revoked' AND payload->'data'->>'reason' = 'account_deleted'")
            .await,
        2
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractor_refuses_what_is_not_a_live_key() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    let r = app
        .call_at(&app.base, Method::GET, "/_test/api-key", None, None)
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    for wrong in [
        login.access.as_str(),
        "sk-aichat-",
        "sk-aichat-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sk-other-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        problem(
            whoami(&app, &app.base, wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        )
        .await;
    }
    // An API key is not an access token for the /api/v1 routes.
    let key = create_ok(&app, &login.access, "k").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    problem(
        app.me(&key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    app.finish().await;
}
