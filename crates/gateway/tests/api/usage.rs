//! `GET /me/usage/daily`: the caller's own tokens and cost per UTC day,
//! answered by chat from tokenUsage.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    chat::{conversation, send},
    helpers::{Login, TestApp, problem, unique_email},
};

async fn daily(app: &TestApp, login: &Login, query: &str) -> reqwest::Response {
    app.call(
        Method::GET,
        &format!("/api/v1/me/usage/daily{query}"),
        Some(&login.access),
        None,
    )
    .await
}

fn date(item: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(item["date"].as_str().unwrap(), "%Y-%m-%d").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_usage_needs_a_token_and_a_day_count_from_1_to_366() {
    let app = TestApp::spawn().await;
    problem(
        app.call(Method::GET, "/api/v1/me/usage/daily", None, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let login = app.signup(&unique_email()).await;
    for days in ["0", "367"] {
        let p = problem(
            daily(&app, &login, &format!("?days={days}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(p["errors"]["days"], "must be between 1 and 366", "{days}");
    }
    for days in ["abc", "-1", "1.5", "99999999999"] {
        problem(
            daily(&app, &login, &format!("?days={days}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/usage/daily",
            Some(&login.access),
            None,
        )
        .await;
    assert_eq!(r.headers()["allow"], "GET");
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    for (query, len) in [("", 30), ("?days=1", 1), ("?days=366", 366)] {
        let r = daily(&app, &login, query).await;
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), len, "{query}");
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_their_own_send_in_todays_usage_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let alice = app.signup(&unique_email()).await;
    let bob = app.signup(&unique_email()).await;
    let c = conversation(&app, &alice, json!({"model": "gpt-4o"})).await;
    let before = Utc::now().date_naive();
    let r = send(&app, &alice, c["id"].as_str().unwrap(), "hello there").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sent: Value = r.json().await.unwrap();
    let usage = &sent["usage"];
    assert!(usage["totalTokens"].as_i64().unwrap() > 0);

    let mut items = Vec::new();
    for _ in 0..100 {
        let r = daily(&app, &alice, "?days=7").await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        items = body["items"].as_array().unwrap().clone();
        if items.iter().any(|i| i["tokens"] != 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = Utc::now().date_naive();
    let today = |item: &Value| (before..=after).contains(&date(item));
    assert_eq!(items.len(), 7);
    assert!(today(items.last().unwrap()), "today last: {items:?}");
    for pair in items.windows(2) {
        assert_eq!(
            date(&pair[0]).succ_opt().unwrap(),
            date(&pair[1]),
            "consecutive days, oldest first"
        );
    }
    // The send is on the day it was charged (today, unless midnight passed
    // during the test); every other day is zero.
    let (used, empty): (Vec<&Value>, Vec<&Value>) = items.iter().partition(|i| i["tokens"] != 0);
    assert_eq!(used.len(), 1, "{items:?}");
    assert!(today(used[0]), "{}", used[0]);
    assert_eq!(used[0]["tokens"], usage["totalTokens"]);
    assert_eq!(used[0]["costUsd"], usage["costUsd"], "exact decimal text");
    for day in empty {
        assert_eq!(day["costUsd"], "0.000000", "{day}");
    }

    // Bob used nothing: thirty empty days, none of Alice's tokens.
    let r = daily(&app, &bob, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let bobs = body["items"].as_array().unwrap();
    assert_eq!(bobs.len(), 30);
    assert!(
        bobs.iter()
            .all(|d| d["tokens"] == 0 && d["costUsd"] == "0.000000"),
        "{body}"
    );
    app.finish().await;
}
