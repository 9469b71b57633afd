//! The admin analytics endpoints' refusals, which all come before any call
//! to analytics (none runs in these tests): no token 401, not an admin
//! 403, a bad query 422 naming the fields; and an admin's call with
//! analytics down is a 503 problem, in either format.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, problem, unique_email};

/// Every admin analytics route, with a valid query.
const ROUTES: [&str; 11] = [
    "/api/v1/admin/analytics/signups?days=30",
    "/api/v1/admin/analytics/users-by-plan",
    "/api/v1/admin/analytics/token-usage/users?month=2026-12",
    "/api/v1/admin/analytics/token-usage/models?month=2026-12",
    "/api/v1/admin/analytics/subscriptions",
    "/api/v1/admin/analytics/mrr",
    "/api/v1/admin/analytics/top-users?days=30&limit=10",
    "/api/v1/admin/analytics/conversation-length?days=7",
    "/api/v1/admin/analytics/overdue-invoices",
    "/api/v1/admin/analytics/lifetime-value",
    "/api/v1/admin/analytics/daily?from=2026-11-01&to=2026-11-30",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_every_admin_route_answers_401() {
    let app = TestApp::spawn().await;
    for path in ROUTES {
        for accept in ["application/json", "text/csv"] {
            let r = app.get_as(path, None, accept).await;
            assert_eq!(
                r.headers().get("www-authenticate").unwrap(),
                "Bearer",
                "{path}"
            );
            problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
        let r = app
            .get_as(path, Some("not-a-token"), "application/json")
            .await;
        problem(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_is_not_an_admin_gets_403_on_every_admin_route_even_with_a_bad_query() {
    let app = TestApp::spawn().await;
    let user = app.signup(&unique_email()).await;
    assert_eq!(user.user["role"], "user");
    for path in ROUTES {
        let r = app.get_as(path, Some(&user.access), "text/csv").await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // The role is checked before the query: a user learns nothing of it.
    let r = app
        .get_as(
            "/api/v1/admin/analytics/signups?days=0",
            Some(&user.access),
            "application/json",
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_bad_query_is_refused_with_the_fields_before_analytics_is_called() {
    let app = TestApp::spawn().await;
    let admin = app.admin(&unique_email()).await;
    let cases: [(&str, &[&str]); 20] = [
        ("/signups?days=0", &["days"]),
        ("/signups?days=367", &["days"]),
        ("/signups?days=ten", &["days"]),
        ("/conversation-length?days=-1", &["days"]),
        ("/top-users?limit=101", &["limit"]),
        ("/top-users?days=0&limit=0", &["days", "limit"]),
        ("/token-usage/users?month=2026-13", &["month"]),
        (
            "/token-usage/users?month=2026-13&limit=0",
            &["limit", "month"],
        ),
        ("/overdue-invoices?limit=101", &["limit"]),
        ("/lifetime-value?limit=ten&cursor=abc", &["limit"]),
        ("/token-usage/models?month=2026-1", &["month"]),
        ("/token-usage/models?month=", &["month"]),
        ("/daily?from=2026-02-30", &["from"]),
        ("/daily?to=tomorrow", &["to"]),
        ("/daily?from=2026-1-01&to=2026-01-32", &["from", "to"]),
        ("/daily?from=2026-12-01&to=2026-11-30", &["to"]),
        ("/daily?from=2024-01-01&to=2025-01-01", &["to"]),
        ("/daily?from=2025-01-01", &["to"]),
        ("/daily?to=1999-12-31&from=1990-01-01", &["to"]),
        ("/daily?from=2026-11-01&to=2026-11-30&from=2026-11-02", &[]),
    ];
    for (path, fields) in cases {
        let path = format!("/api/v1/admin/analytics{path}");
        for accept in ["application/json", "text/csv"] {
            let r = app.get_as(&path, Some(&admin.access), accept).await;
            let body: Value =
                problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
            let named: Vec<&str> = body["errors"]
                .as_object()
                .map(|e| e.keys().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(named, fields, "{path}: {body}");
        }
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_with_analytics_down_gets_503_in_either_format() {
    let app = TestApp::spawn().await;
    let admin = app.admin(&unique_email()).await;
    for path in ROUTES {
        for accept in ["application/json", "text/csv"] {
            let r = app.get_as(path, Some(&admin.access), accept).await;
            problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
        }
    }
    // The defaults pass the checks too (and reach the service).
    for path in [
        "/api/v1/admin/analytics/signups",
        "/api/v1/admin/analytics/top-users",
        "/api/v1/admin/analytics/token-usage/users",
        "/api/v1/admin/analytics/daily",
    ] {
        let r = app
            .get_as(path, Some(&admin.access), "application/json")
            .await;
        problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    let r = app
        .client
        .get(app.url("/readyz?verbose"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["backends"]["analytics"], "down", "{body}");
    assert_eq!(body["backends"]["billing"], "up", "{body}");
    app.finish().await;
}
