//! The web app's files: caching, the SPA fallback, the CSP, no way out of
//! `WEB_DIR`.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::path::{Path, PathBuf};

use reqwest::{StatusCode, header};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{TestApp, problem};

const APP_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const INDEX: &str =
    "<!doctype html><title>app</title><script type=module src=/assets/index-abc123.js></script>";

/// A built app in a fresh directory, with a secret next to it.
fn built_app() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aichat-web-{}", uuid::Uuid::now_v7()));
    let dist = dir.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), INDEX).unwrap();
    std::fs::write(dist.join("assets/index-abc123.js"), "console.log(1)").unwrap();
    std::fs::write(dist.join("assets/index-abc123.css"), "body{}").unwrap();
    std::fs::write(dist.join("favicon.svg"), "<svg/>").unwrap();
    std::fs::write(dir.join("secret.txt"), "do not serve").unwrap();
    dist
}

async fn get(app: &TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header(header::ACCEPT, accept)
        .send()
        .await
        .unwrap()
}

fn header_of<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The raw request line as sent (a client would normalise `..` away).
async fn raw_get(base: &str, target: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_app_is_served_with_its_caching_csp_and_fallback() {
    let dist = built_app();
    let web_dir = dist.clone();
    let app = TestApp::spawn_with(move |c| c.web_dir = web_dir).await;

    // The hashed assets: cached for a year.
    let r = get(&app, "/assets/index-abc123.js", "*/*").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_of(&r, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(header_of(&r, "content-type").starts_with("text/javascript"));
    assert_eq!(r.text().await.unwrap(), "console.log(1)");
    let r = get(&app, "/assets/index-abc123.css", "text/css").await;
    assert!(header_of(&r, "content-type").starts_with("text/css"));

    // index.html: revalidated every time, with the app's CSP.
    for path in ["/", "/login", "/verify-email?token=abc", "/chat/0193-x"] {
        let r = get(&app, path, "text/html,application/xhtml+xml,*/*;q=0.8").await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&r, "cache-control"), "no-cache", "{path}");
        assert_eq!(header_of(&r, "content-security-policy"), APP_CSP, "{path}");
        assert!(header_of(&r, "content-type").starts_with("text/html"));
        assert_eq!(r.text().await.unwrap(), INDEX, "{path}");
    }
    // A file at the root of the build.
    let r = get(&app, "/favicon.svg", "image/*").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header_of(&r, "content-type").starts_with("image/svg+xml"));

    // No fallback for what does not ask for a page, for a missing asset,
    // for anything but GET, nor ever under the API.
    let r = get(&app, "/chat/x", "application/json").await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = get(&app, "/assets/missing-1.js", "text/html").await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .client
        .post(app.url("/login"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for path in [
        "/api/v1/nope",
        "/api/nope",
        "/webhooks/nope",
        "/openapi.json/x",
    ] {
        let r = get(&app, path, "text/html").await;
        assert_eq!(
            header_of(&r, "content-type"),
            "application/problem+json",
            "{path}"
        );
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    // The OpenAI-compatible API answers in OpenAI's shape, never the app.
    let r = get(&app, "/v1/nope", "text/html").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&r, "content-type"), "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_url", "{body}");
    // The API keeps its own strict CSP and no-store.
    let r = get(&app, "/healthz", "text/html").await;
    assert_eq!(
        header_of(&r, "content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(header_of(&r, "cache-control"), "no-store");

    // No way out of WEB_DIR, however the path is spelt.
    for target in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..\\secret.txt",
    ] {
        let answer = raw_get(&app.base, target).await;
        assert!(!answer.contains("do not serve"), "{target}: {answer}");
    }
    app.finish().await;
    std::fs::remove_dir_all(dist.parent().unwrap_or(Path::new("/nonexistent"))).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_built_app_the_root_says_so() {
    let app = TestApp::spawn_with(|c| c.web_dir = PathBuf::from("/nonexistent/web/dist")).await;
    let r = get(&app, "/", "text/html").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        body["detail"].as_str().unwrap().contains("npm run build"),
        "{body}"
    );
    app.finish().await;
}
