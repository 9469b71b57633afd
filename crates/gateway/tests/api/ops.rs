//! Operations endpoints, cross-cutting headers and error shapes.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, problem, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["signingKeys"], true);
    assert_eq!(body["checks"]["denyList"], true);
    assert!(body.get("backends").is_none(), "details only on request");
    let r = app
        .client
        .get(app.url("/readyz?verbose"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    for backend in ["identity", "chat", "billing"] {
        assert_eq!(body["backends"][backend], "up", "{body}");
    }
    assert_eq!(body["revocationEvents"], "subscribed");

    app.signup(&unique_email()).await;
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#"gateway_http_requests_total{method="POST",route="/api/v1/auth/register",status="201"} 1"#), "{text}");
    assert!(
        text.contains("gateway_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"gateway_backend_up{backend="billing"} 1"#),
        "{text}"
    );
    app.finish().await;
}

/// The gateway keeps an idle connection as long as `HTTP_KEEP_ALIVE_SECS`
/// says (actix's own default, 5 s, is shorter than a proxy's idle upstream
/// connections): a second request on a connection idle for 2 s is answered
/// with a keep-alive of 3 s, and the connection is closed after 1 s idle
/// with a keep-alive of 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_lives_as_long_as_the_configured_keep_alive() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(stream: &mut tokio::net::TcpStream) -> String {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            .await
            .unwrap();
        // The whole answer (headers, then Content-Length bytes), so the next
        // request's read starts at its own answer.
        let mut answer = Vec::new();
        let mut buf = [0; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer ended");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if answer.len() >= end + 4 + length {
                    return text;
                }
            }
        }
    }

    let app = TestApp::spawn().await;
    for (keep_alive, idle, stays_open) in [(3, 2_000, true), (1, 2_000, false)] {
        let gateway = app
            .gateway_with(|c| c.keep_alive = Duration::from_secs(keep_alive))
            .await;
        let mut stream = tokio::net::TcpStream::connect(gateway.base.trim_start_matches("http://"))
            .await
            .unwrap();
        assert!(get(&mut stream).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(idle)).await;
        if stays_open {
            let answer = get(&mut stream).await;
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "keep-alive {keep_alive} s: {answer:?}"
            );
        } else {
            let mut buf = [0; 64];
            let n = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf))
                .await
                .expect("closed by the gateway, not left open")
                .unwrap_or(0);
            assert_eq!(
                n, 0,
                "keep-alive {keep_alive} s: the idle connection is closed"
            );
        }
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backend_fails_only_its_routes_and_shows_without_unreadiness() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    // A replica whose billing is down (nothing listens at its address).
    let gateway = app
        .gateway_with(|c| c.billing_url = TestApp::closed_port_url("http"))
        .await;
    let get = |path: &str| app.client.get(format!("{}{path}", gateway.base)).send();

    let r = get("/readyz").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "this replica can serve");
    let r = get("/readyz?verbose").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["backends"]["billing"], "down", "{body}");
    assert_eq!(body["backends"]["identity"], "up", "{body}");
    assert_eq!(body["backends"]["chat"], "up", "{body}");

    let r = app
        .call_at(
            &gateway.base,
            Method::GET,
            "/api/v1/me",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "identity's routes work");
    let r = app
        .call_at(
            &gateway.base,
            Method::GET,
            "/api/v1/conversations",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "chat's reads work");
    let r = app
        .call_at(
            &gateway.base,
            Method::GET,
            "/api/v1/billing/usage",
            Some(&login.access),
            None,
        )
        .await;
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let r = get("/api/v1/billing/plans").await.unwrap();
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;

    let r = get("/metrics").await.unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains(r#"gateway_backend_up{backend="billing"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gateway_backend_up{backend="identity"} 1"#),
        "{text}"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_and_security_headers() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a fresh UUID replaces an unusable one");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(r.headers()[name], value, "{name}");
    }
    assert!(r.headers().contains_key("content-security-policy"));
    assert!(r.headers().contains_key("strict-transport-security"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let r = preflight("https://evil.example.net").await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    problem(
        app.call(Method::GET, "/api/v1/nothing-here", None, None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = app
        .call(Method::GET, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(r.headers()["allow"], "POST", "405 says what is allowed");
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let r = app
        .call(Method::PUT, "/api/v1/conversations/x", None, None)
        .await;
    assert_eq!(r.headers()["allow"], "GET, PATCH, DELETE");
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_committed_contract() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let served: Value = r.json().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .expect("crates/gateway/openapi.json (UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(
        pretty, committed,
        "the contract changed: review it, then run with UPDATE_SNAPSHOTS=1"
    );
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/me/sessions/{id}",
    ] {
        assert!(served["paths"][path].is_object(), "{path}");
    }
    // Each operation declares its path parameters, and every error answer
    // is a problem document; those needing a token declare 401.
    for (path, item) in served["paths"].as_object().unwrap() {
        let params: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, params, "{method} {path}: path parameters");
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status}: {response}"
                    );
                }
            }
            if operation["security"].is_array() {
                assert!(responses.contains_key("401"), "{method} {path}: 401");
            }
        }
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_shows_in_verbose_readiness_only() {
    let app = TestApp::spawn().await;
    let login = app.signup(&unique_email()).await;
    // Cut identity off its database: no new connections, existing ones killed.
    let db = app.identity.db.name().to_owned();
    let admin = format!("{}/postgres", aichat_db::testing::server_url());
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&admin)
            .await
            .unwrap();
    use diesel_async::SimpleAsyncConnection as _;
    conn.batch_execute(&format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ))
    .await
    .unwrap();

    let r = app.me(&login.access).await;
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    // Identity reports NOT_SERVING within its 5 s check: the gateway shows it
    // and stays ready (it still checks tokens, and chat's routes work).
    let mut shown = false;
    for _ in 0..80 {
        let r = app
            .client
            .get(app.url("/readyz?verbose"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        if body["backends"]["identity"] == "down" {
            shown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        shown,
        "readyz?verbose shows identity down while its database is away"
    );
    let r = app
        .call(
            Method::GET,
            "/api/v1/conversations",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "chat's routes keep working");

    conn.batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let mut back = false;
    for _ in 0..100 {
        if app.me(&login.access).await.status() == StatusCode::OK {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(back, "service resumes when the database is back");
    app.finish().await;
}
