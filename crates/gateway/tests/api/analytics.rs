//! The admin analytics endpoints through the whole stack: identity, chat
//! (mock LLM), billing (Stripe webhooks) and a real analytics service on
//! the test's exchange. A realistic scenario is driven over HTTP, then every
//! endpoint's answer is compared with the seed's sample query
//! (DATABASE_SCHEMA.md, with ARCHITECTURE.md's two faults mended) run on the
//! owning services' databases; then with duplicate deliveries, and with a
//! fresh analytics database rebuilt by `backfill`.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use aichat_analytics::testing::TestAnalytics;
use aichat_identity::testing::unique_exchange;
use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    chat::{billing_sql, conversation, send},
    helpers::{EventTap, Login, PASSWORD, TestApp, problem, unique_email},
    stripe::{PLUS_PRICE, deliver_signed, event, now, sell_plans, subscription, verify_webhooks},
};

/// Pro's yearly Stripe price.
const PRO_YEARLY_PRICE: &str = "price_1MowQWLkdIwHu7ixProYear";
const DAY: i64 = 86_400;

/// Every admin endpoint (name, path).
const ROUTES: [(&str, &str); 11] = [
    ("signups", "/api/v1/admin/analytics/signups"),
    ("users-by-plan", "/api/v1/admin/analytics/users-by-plan"),
    (
        "token-usage-users",
        "/api/v1/admin/analytics/token-usage/users",
    ),
    (
        "token-usage-models",
        "/api/v1/admin/analytics/token-usage/models",
    ),
    ("subscriptions", "/api/v1/admin/analytics/subscriptions"),
    ("mrr", "/api/v1/admin/analytics/mrr"),
    (
        "top-users",
        "/api/v1/admin/analytics/top-users?days=30&limit=10",
    ),
    (
        "conversation-length",
        "/api/v1/admin/analytics/conversation-length?days=30",
    ),
    (
        "overdue-invoices",
        "/api/v1/admin/analytics/overdue-invoices",
    ),
    ("lifetime-value", "/api/v1/admin/analytics/lifetime-value"),
    ("daily", "/api/v1/admin/analytics/daily"),
];

type Answers = BTreeMap<&'static str, Value>;

/// Lists as multisets (the seed orders ties arbitrarily), signups without
/// the zero days the API adds, timestamps in one format.
fn normalize(name: &str, mut body: Value) -> Value {
    if let Some(items) = body.get_mut("items").and_then(Value::as_array_mut) {
        if name == "signups" {
            items.retain(|d| d["newUsers"] != 0);
        }
        for item in items.iter_mut() {
            if let Some(at) = item.get("signupDate").and_then(Value::as_str) {
                let at = chrono::DateTime::parse_from_rfc3339(at)
                    .or_else(|_| {
                        chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S%.f")
                            .map(|t| t.and_utc().fixed_offset())
                    })
                    .unwrap();
                item["signupDate"] = json!(at.to_utc());
            }
        }
        items.sort_by_key(Value::to_string);
    }
    body
}

/// The endpoints that answer a page at a time.
const PAGED: [&str; 3] = ["token-usage-users", "overdue-invoices", "lifetime-value"];

/// Every endpoint's JSON answer at `base`, as `token`; a paged list read a
/// row a page (`?limit=1`), following `nextCursor`, its pages joined.
async fn answers(app: &TestApp, base: &str, token: &str) -> Answers {
    let mut all = Answers::new();
    for (name, path) in ROUTES {
        let paged = PAGED.contains(&name);
        let mut cursor: Option<String> = None;
        let mut joined: Option<Value> = None;
        loop {
            let url = match (&cursor, paged) {
                (_, false) => format!("{base}{path}"),
                (None, true) => format!("{base}{path}?limit=1"),
                (Some(c), true) => format!("{base}{path}?limit=1&cursor={c}"),
            };
            let r = app
                .client
                .get(url)
                .bearer_auth(token)
                .header("Accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let mut body: Value = r.json().await.unwrap();
            if !paged {
                joined = Some(body);
                break;
            }
            assert!(body.get("nextCursor").is_some(), "{path}: {body}");
            let next = body.as_object_mut().unwrap().remove("nextCursor").unwrap();
            let page = body["items"].as_array().unwrap().clone();
            assert!(page.len() <= 1, "{path}: {page:?}");
            match &mut joined {
                None => joined = Some(body),
                Some(j) => j["items"].as_array_mut().unwrap().extend(page),
            }
            match next.as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        all.insert(name, normalize(name, joined.unwrap()));
    }
    let today = chrono::Utc::now().date_naive().to_string();
    let daily = all["daily"]["items"].as_array().unwrap();
    let today = daily.iter().find(|d| d["date"] == today.as_str()).unwrap();
    let today = json!({"tokens": today["tokens"], "cost": today["cost"]});
    all.insert("daily-today", today);
    all
}

#[derive(QueryableByName)]
struct Json {
    #[diesel(sql_type = Text)]
    value: String,
}

/// The rows of `sql` as JSON objects (column aliases as keys).
async fn rows(pool: &aichat_db::Pool, sql: &str) -> Vec<Value> {
    let mut conn = pool.get().await.unwrap();
    let found: Json = diesel::sql_query(format!(
        "SELECT COALESCE(json_agg(t), '[]')::text AS value FROM ({sql}) t"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    serde_json::from_str(&found.value).unwrap()
}

/// The seed's sample queries on identity's, chat's and billing's tables,
/// in the API's shapes (decimals as text), normalized as [`normalize`]
/// does. Mended as ARCHITECTURE.md says: overdue is `open` past `dueDate`;
/// MRR counts a yearly subscription as yearlyPrice / 12. Token usage by
/// model also sums the cost (the dashboard's cost by model).
async fn seed(app: &TestApp) -> Answers {
    let identity = app.identity.pool().unwrap();
    let chat = app.chat.pool().unwrap();
    let billing = app.billing.pool().unwrap();
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let mut all = Answers::new();
    let list = |items: Vec<Value>| json!({ "items": items });
    all.insert(
        "signups",
        list(
            rows(
                &identity,
                r#"SELECT DATE_TRUNC('day', createdAt)::date::text AS "date", COUNT(*) AS "newUsers"
                   FROM users
                   WHERE createdAt >= NOW() - INTERVAL '30 days'
                   GROUP BY DATE_TRUNC('day', createdAt)
                   ORDER BY 1 DESC"#,
            )
            .await,
        ),
    );
    all.insert(
        "users-by-plan",
        list(
            rows(
                &identity,
                r#"SELECT planTier AS "planTier", COUNT(*) AS "count"
                   FROM users WHERE isActive = TRUE GROUP BY planTier"#,
            )
            .await,
        ),
    );
    let mut by_user = list(
        rows(
            &chat,
            r#"SELECT userId::text AS "userId", SUM(totalTokens) AS "totalTokens",
                 SUM(costUsd)::text AS "totalCost"
               FROM tokenUsage
               WHERE billingMonth = DATE_TRUNC('month', CURRENT_DATE)::date
               GROUP BY userId ORDER BY 2 DESC"#,
        )
        .await,
    );
    by_user["month"] = json!(month);
    all.insert("token-usage-users", by_user);
    let mut by_model = list(
        rows(
            &chat,
            r#"SELECT model, COUNT(*) AS "usageCount", SUM(totalTokens) AS "totalTokens",
                 AVG(totalTokens)::text AS "avgTokens", SUM(costUsd)::text AS "totalCost"
               FROM tokenUsage
               WHERE billingMonth = DATE_TRUNC('month', CURRENT_DATE)::date
               GROUP BY model ORDER BY 3 DESC"#,
        )
        .await,
    );
    by_model["month"] = json!(month);
    all.insert("token-usage-models", by_model);
    all.insert(
        "subscriptions",
        list(
            rows(
                &billing,
                r#"SELECT p.name AS "plan", COUNT(s.id) AS "subscriptionCount",
                     COUNT(DISTINCT s.userId) AS "userCount"
                   FROM subscriptions s JOIN plans p ON s.planId = p.id
                   WHERE s.status = 'active' GROUP BY p.name"#,
            )
            .await,
        ),
    );
    all.insert(
        "mrr",
        rows(
            &billing,
            r#"SELECT COALESCE(round(SUM(CASE WHEN s.billingInterval = 'year'
                     THEN p.yearlyPrice / 12 ELSE p.monthlyPrice END), 2), 0)::numeric(14, 2)::text
                   AS "mrr", 'USD' AS "currency"
               FROM subscriptions s JOIN plans p ON s.planId = p.id
               WHERE s.status = 'active'
                 AND s.currentPeriodStart <= CURRENT_DATE
                 AND s.currentPeriodEnd > CURRENT_DATE"#,
        )
        .await
        .remove(0),
    );
    all.insert(
        "top-users",
        list(
            rows(
                &chat,
                r#"SELECT userId::text AS "userId", COUNT(DISTINCT id) AS "conversationCount",
                     SUM(tokenCount) AS "totalTokens"
                   FROM conversations
                   WHERE createdAt >= NOW() - INTERVAL '30 days'
                   GROUP BY userId ORDER BY 3 DESC LIMIT 10"#,
            )
            .await,
        ),
    );
    all.insert(
        "conversation-length",
        rows(
            &chat,
            r#"SELECT AVG(messageCount)::text AS "avgMessages", AVG(tokenCount)::text AS "avgTokens"
               FROM conversations WHERE createdAt >= NOW() - INTERVAL '30 days'"#,
        )
        .await
        .remove(0),
    );
    all.insert(
        "overdue-invoices",
        list(
            rows(
                &billing,
                r#"SELECT id::text AS "id", invoiceNumber AS "invoiceNumber",
                     userId::text AS "userId", total::text AS "total", dueDate::text AS "dueDate"
                   FROM invoices
                   WHERE status = 'open' AND dueDate < CURRENT_DATE
                   ORDER BY dueDate ASC"#,
            )
            .await,
        ),
    );
    // payments JOIN users, across billing's and identity's databases.
    let signed_up: HashMap<String, Value> = rows(
        &identity,
        r#"SELECT id::text AS "id", createdAt AS "createdAt" FROM users"#,
    )
    .await
    .into_iter()
    .map(|u| (u["id"].as_str().unwrap().to_owned(), u["createdAt"].clone()))
    .collect();
    let lifetime = rows(
        &billing,
        r#"SELECT userId::text AS "userId", amount::text AS "amount", COUNT(id) AS "paymentCount",
             SUM(amount)::text AS "totalSpent"
           FROM payments WHERE status = 'succeeded'
           GROUP BY userId, amount"#,
    )
    .await
    .into_iter()
    .filter_map(|mut p| {
        let at = signed_up.get(p["userId"].as_str().unwrap())?;
        p["signupDate"] = at.clone();
        Some(p)
    })
    .collect();
    all.insert("lifetime-value", list(lifetime));
    // Not a seed query: the daily series' tokens and cost of today, which
    // analytics sums from its own aggregate (chatAnalytics).
    all.insert(
        "daily-today",
        rows(
            &chat,
            r#"SELECT COALESCE(SUM(totalTokens), 0) AS "tokens",
                 COALESCE(SUM(costUsd), 0)::numeric(20, 6)::text AS "cost"
               FROM tokenUsage WHERE createdAt >= CURRENT_DATE"#,
        )
        .await
        .remove(0),
    );
    all.into_iter()
        .map(|(name, body)| (name, normalize(name, body)))
        .collect()
}

/// Analytics' answers without the daily series (the seed has no query for
/// it).
fn without_daily(mut answers: Answers) -> Answers {
    answers.remove("daily");
    answers
}

/// Polls the endpoints until they equal the seed; how long it took.
async fn until_caught_up(app: &TestApp, admin: &Login, expected: &Answers) -> Duration {
    let started = Instant::now();
    loop {
        let got = without_daily(answers(app, &app.base, &admin.access).await);
        if &got == expected {
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(20) {
            for (name, want) in expected {
                assert_eq!(&got[name], want, "{name}: analytics (left) != seed (right)");
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A subscription to `price` (billed each `interval`) that began two days
/// ago, for `user` as Stripe customer `customer`.
fn stripe_subscription(
    user: &Login,
    id: &str,
    customer: &str,
    price: &str,
    interval: &str,
    status: &str,
) -> Value {
    let start = now() - 2 * DAY;
    let mut s = subscription(user.user["id"].as_str().unwrap(), price, status, start);
    s["id"] = json!(id);
    s["customer"] = json!(customer);
    s["items"]["data"][0]["subscription"] = json!(id);
    s["items"]["data"][0]["price"]["recurring"]["interval"] = json!(interval);
    let days = if interval == "year" { 365 } else { 30 };
    s["current_period_end"] = json!(start + days * DAY);
    s
}

fn payment_intent(id: &str, customer: &str, cents: i64, status: &str) -> Value {
    let failed = status != "succeeded";
    json!({
      "id": id,
      "object": "payment_intent",
      "amount": cents,
      "currency": "usd",
      "customer": customer,
      "description": "Subscription update",
      "metadata": {},
      "status": status,
      "last_payment_error": if failed {
          json!({"code": "card_declined", "decline_code": "insufficient_funds",
                 "message": "Your card has insufficient funds."})
      } else {
          Value::Null
      },
      "invoice": null
    })
}

fn refunded_charge(id: &str, intent: &str, customer: &str, cents: i64) -> Value {
    json!({
      "id": id,
      "object": "charge",
      "amount": cents,
      "amount_refunded": cents,
      "currency": "usd",
      "customer": customer,
      "description": null,
      "metadata": {},
      "payment_intent": intent,
      "refunded": true
    })
}

/// A finalized invoice of `subscription`, due at `due`.
fn invoice(id: &str, number: &str, subscription: &str, status: &str, due: i64) -> Value {
    let finalized = now() - 10 * DAY;
    json!({
      "id": id,
      "object": "invoice",
      "number": number,
      "customer": null,
      "currency": "usd",
      "status": status,
      "subtotal": 2000,
      "total": 2000,
      "total_taxes": [],
      "due_date": due,
      "status_transitions": {
        "finalized_at": finalized,
        "paid_at": if status == "paid" { json!(finalized + DAY) } else { Value::Null },
        "voided_at": null,
        "marked_uncollectible_at": null
      },
      "invoice_pdf": null,
      "parent": {"subscription_details": {"subscription": subscription, "metadata": {}}},
      "payments": null,
      "created": finalized
    })
}

/// Delivers a signed Stripe event (a fresh id) created `ago` seconds ago.
async fn stripe(app: &TestApp, kind: &str, ago: i64, object: Value) {
    let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
    deliver_signed(app, &event(&id, kind, now() - ago, object)).await;
}

/// A conversation with `sends` messages answered by the mock LLM.
async fn chat(app: &TestApp, login: &Login, model: &str, sends: usize) {
    let c = conversation(app, login, json!({ "model": model })).await;
    let id = c["id"].as_str().unwrap();
    for n in 0..sends {
        let r = send(app, login, id, &format!("question {n}")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.text().await.unwrap();
    }
}

async fn billing_rows(app: &TestApp, sql: &str) -> i64 {
    rows(&app.billing.pool().unwrap(), sql).await.len() as i64
}

/// Polls until `check` holds, or panics after 15 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(15), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_answer_equals_the_seed_query_on_the_owning_services_tables() {
    let app = TestApp::spawn_with_analytics(verify_webhooks).await;
    sell_plans(&app).await;
    billing_sql(
        &app,
        &format!("UPDATE plans SET stripeYearlyPriceId = '{PRO_YEARLY_PRICE}' WHERE name = 'Pro';"),
    )
    .await;
    // Every event the services publish, to deliver some again later.
    let tap = EventTap::bind(&app.amqp, "#").await;

    let admin = app.admin(&unique_email()).await;
    let alice = app.signup(&unique_email()).await; // Plus monthly, paid + refunded
    let bob = app.signup(&unique_email()).await; // Pro yearly, paid, invoice not due
    let carol = app.signup(&unique_email()).await; // Plus, failed payment, overdue, cancelled
    let dave = app.signup(&unique_email()).await; // Free, chats, deletes the account
    let erin = app.signup(&unique_email()).await; // Free, chats

    // Subscriptions (Plus monthly, Pro yearly) and Carol's cancellation.
    let subs = [
        (&alice, "sub_alice", "cus_alice", PLUS_PRICE, "month"),
        (&bob, "sub_bob", "cus_bob", PRO_YEARLY_PRICE, "year"),
        (&carol, "sub_carol", "cus_carol", PLUS_PRICE, "month"),
    ];
    for (user, id, customer, price, interval) in subs {
        let s = stripe_subscription(user, id, customer, price, interval, "active");
        stripe(&app, "customer.subscription.created", 300, s).await;
    }
    assert_eq!(
        billing_rows(&app, "SELECT 1 FROM subscriptions WHERE status = 'active'").await,
        3
    );
    // Payments: paid, paid then refunded, a yearly one, a failed one.
    for (intent, customer, cents, status, kind) in [
        (
            "pi_alice_1",
            "cus_alice",
            2000,
            "succeeded",
            "payment_intent.succeeded",
        ),
        (
            "pi_alice_2",
            "cus_alice",
            2000,
            "succeeded",
            "payment_intent.succeeded",
        ),
        (
            "pi_bob_1",
            "cus_bob",
            50000,
            "succeeded",
            "payment_intent.succeeded",
        ),
        (
            "pi_carol_1",
            "cus_carol",
            2000,
            "requires_payment_method",
            "payment_intent.payment_failed",
        ),
    ] {
        stripe(
            &app,
            kind,
            200,
            payment_intent(intent, customer, cents, status),
        )
        .await;
    }
    stripe(
        &app,
        "charge.refunded",
        100,
        refunded_charge("ch_alice_2", "pi_alice_2", "cus_alice", 2000),
    )
    .await;
    // Invoices: Alice's paid, Bob's open but not due, Carol's overdue.
    for (id, number, sub, status, due) in [
        (
            "in_alice_1",
            "ALICE-0001",
            "sub_alice",
            "paid",
            now() - 5 * DAY,
        ),
        ("in_bob_1", "BOB-0001", "sub_bob", "open", now() + 5 * DAY),
        (
            "in_carol_1",
            "CAROL-0001",
            "sub_carol",
            "open",
            now() - 5 * DAY,
        ),
    ] {
        let kind = if status == "paid" {
            "invoice.paid"
        } else {
            "invoice.finalized"
        };
        stripe(&app, kind, 150, invoice(id, number, sub, status, due)).await;
    }
    let mut cancelled = stripe_subscription(
        &carol,
        "sub_carol",
        "cus_carol",
        PLUS_PRICE,
        "month",
        "canceled",
    );
    cancelled["canceled_at"] = json!(now() - 50);
    cancelled["ended_at"] = json!(now() - 50);
    stripe(&app, "customer.subscription.deleted", 50, cancelled).await;
    assert_eq!(billing_rows(&app, "SELECT 1 FROM payments").await, 4);
    assert_eq!(billing_rows(&app, "SELECT 1 FROM invoices").await, 3);

    // Conversations on two models.
    chat(&app, &alice, "gpt-4o", 3).await;
    chat(&app, &alice, "claude-3-sonnet", 1).await;
    chat(&app, &bob, "claude-3-sonnet", 2).await;
    chat(&app, &dave, "gpt-4o", 2).await;
    chat(&app, &erin, "gpt-4o", 1).await;
    // Dave leaves.
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/me",
            Some(&dave.access),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // The producers settle: tiers from billing's events, Dave gone everywhere.
    let dave_id = dave.user["id"].as_str().unwrap().to_owned();
    until("identity's plan tiers follow billing", async || {
        app.count("users WHERE planTier = 'PLUS'").await == 1
            && app.count("users WHERE planTier = 'PRO'").await == 1
    })
    .await;
    until("chat forgets the deleted user", async || {
        crate::chat::chat_count(&app, &format!("conversations WHERE userId = '{dave_id}'")).await
            == 0
    })
    .await;
    app.identity.outbox_drained().await.unwrap();
    app.chat.outbox_drained().await.unwrap();

    let expected = seed(&app).await;
    // The scenario is there to compare: not a vacuous equality.
    assert_eq!(
        expected["overdue-invoices"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        expected["overdue-invoices"]["items"][0]["invoiceNumber"],
        "CAROL-0001"
    );
    assert_eq!(
        expected["mrr"]["mrr"], "61.67",
        "Plus 20.00 + Pro 500.00 / 12"
    );
    assert_eq!(
        expected["lifetime-value"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        expected["token-usage-models"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(expected["top-users"]["items"].as_array().unwrap().len(), 3);
    let lag = until_caught_up(&app, &admin, &expected).await;
    println!("analytics caught up {lag:?} after the producers settled");

    // CSV: the same rows.
    for (name, path, columns) in [
        (
            "overdue-invoices",
            "/api/v1/admin/analytics/overdue-invoices",
            "id,invoiceNumber,userId,total,dueDate",
        ),
        (
            "users-by-plan",
            "/api/v1/admin/analytics/users-by-plan",
            "planTier,count",
        ),
        ("mrr", "/api/v1/admin/analytics/mrr", "mrr,currency"),
    ] {
        let r = app.get_as(path, Some(&admin.access), "text/csv").await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv"),
            "{path}"
        );
        let text = r.text().await.unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.remove(0), columns, "{path}");
        let mut from_json: Vec<String> = match expected[name].get("items") {
            Some(items) => items
                .as_array()
                .unwrap()
                .iter()
                .map(|item| csv_line(item, columns))
                .collect(),
            None => vec![csv_line(&expected[name], columns)],
        };
        let mut lines: Vec<String> = lines.into_iter().map(str::to_owned).collect();
        lines.sort();
        from_json.sort();
        assert_eq!(lines, from_json, "{path}");
    }

    // The daily series: 30 days, today's signups as the seed counts them.
    let daily = &answers(&app, &app.base, &admin.access).await["daily"];
    let days = daily["items"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let today = chrono::Utc::now().date_naive().to_string();
    let today_row = days.iter().find(|d| d["date"] == today.as_str()).unwrap();
    let seed_today = expected["signups"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == today.as_str())
        .unwrap();
    assert_eq!(today_row["signups"], seed_today["newUsers"]);
    assert_eq!(today_row["signups"], 5, "six signed up, one left");

    // A user who is not an admin is refused every endpoint.
    for (_, path) in ROUTES {
        let r = app
            .get_as(path, Some(&erin.access), "application/json")
            .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // Every event delivered again, newest first: nothing changes. A new
    // send after them shows they were consumed.
    let mut envelopes = Vec::new();
    while let Some(e) = tap.next(Duration::from_millis(300)).await {
        envelopes.push(serde_json::from_value::<aichat_events::Envelope>(e).unwrap());
    }
    tap.close().await;
    assert!(envelopes.len() > 20, "{} events", envelopes.len());
    envelopes.reverse();
    let analytics = app.analytics.as_ref().unwrap();
    analytics.publish_envelopes(&envelopes).await.unwrap();
    let sent = Instant::now();
    chat(&app, &erin, "gpt-4o", 1).await;
    app.chat.outbox_drained().await.unwrap();
    let expected = seed(&app).await;
    let lag = until_caught_up(&app, &admin, &expected).await;
    println!(
        "{} duplicates, then a send: answered {:?} after the send began ({lag:?} after its events were out)",
        envelopes.len(),
        sent.elapsed()
    );
    let first = answers(&app, &app.base, &admin.access).await;

    // A wiped analytics database, rebuilt by backfill alone (its own
    // exchange: no events reach it), gives the same answers.
    let mut amqp = app.amqp.clone();
    amqp.exchange = unique_exchange();
    let fresh = TestAnalytics::spawn_with(amqp.clone(), |c| {
        c.billing_grpc_url = Some(app.billing.url.clone());
        c.identity_grpc_url = Some(app.identity.url.clone());
        c.chat_grpc_url = Some(app.chat.url.clone());
    })
    .await
    .unwrap();
    let report = aichat_analytics::backfill(&fresh.config).await.unwrap();
    println!("backfill: {:?}", report.applied);
    let gateway = app
        .gateway_with(|c| c.analytics_url = fresh.url.clone())
        .await;
    let (rebuilt, first) = (
        comparable_daily(answers(&app, &gateway.base, &admin.access).await),
        comparable_daily(first),
    );
    let differ: Vec<_> = first
        .iter()
        .filter(|(name, want)| rebuilt.get(*name) != Some(want))
        .map(|(name, want)| format!("{name}: backfilled {} != events {want}", rebuilt[name]))
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
    fresh.stop().await;
    aichat_billing::testing::delete_exchange(&amqp)
        .await
        .unwrap();
    app.finish().await;
}

/// The daily series without the two figures backfill cannot rebuild as
/// events built them (known divergences, reported): `newSubscriptions`
/// (billing.subscription.changed carries no creation time, so events date
/// a subscription by its currentPeriodStart while backfill uses billing's
/// row createdAt) and `messages` (events counted a deleted user's messages;
/// chat deletes them, so backfill cannot see them).
fn comparable_daily(mut answers: Answers) -> Answers {
    if let Some(days) = answers
        .get_mut("daily")
        .and_then(|d| d["items"].as_array_mut())
    {
        for day in days {
            let day = day.as_object_mut().unwrap();
            day.remove("newSubscriptions");
            day.remove("messages");
        }
    }
    answers
}

/// `item`'s cells in `columns`' order, as the CSV writes plain values.
fn csv_line(item: &Value, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| match &item[c] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
