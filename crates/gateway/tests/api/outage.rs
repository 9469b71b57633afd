//! A consumer's database outage does not dead-letter its events: billing's
//! database is unreachable for 90 s while users keep sending; the metering
//! events that arrive meanwhile wait (held, not redelivered: billing's
//! queue is a quorum queue with a delivery limit of 10) and are applied
//! once the database is back.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aichat_db::testing::ChaosProxy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Login, TestApp, unique_email};

/// How long billing's database is away (`AICHAT_TEST_OUTAGE_SECS` shortens
/// it for a quick local run; the scenario is 90 s).
fn outage() -> Duration {
    let secs = std::env::var("AICHAT_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    Duration::from_secs(secs)
}

/// `url` with its `host:port` replaced by the proxy's.
fn through(url: &str, proxy: &ChaosProxy) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let at = if userinfo.is_empty() { "" } else { "@" };
    format!("{scheme}://{userinfo}{at}127.0.0.1:{}{path}", proxy.port)
}

/// The `host:port` of a database URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap().to_owned()
}

#[derive(diesel::QueryableByName)]
struct Sum {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    tokens: i64,
}

async fn chat_usage(app: &TestApp, user_id: &str) -> Sum {
    use diesel_async::RunQueryDsl;
    let pool = app.chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(format!(
        "SELECT count(*) AS rows, COALESCE(SUM(totalTokens), 0)::bigint AS tokens \
         FROM tokenUsage WHERE userId = '{user_id}'"
    ))
    .get_result(&mut conn)
    .await
    .unwrap()
}

async fn sql(pool: aichat_db::Pool, statements: &str) {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(statements).await.unwrap();
}

async fn billing_usage(app: &TestApp, login: &Login) -> Value {
    app.call(
        Method::GET,
        "/api/v1/billing/usage",
        Some(&login.access),
        None,
    )
    .await
    .json()
    .await
    .unwrap()
}

/// What the senders saw.
#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    /// Answered after the database went away: their `chat.tokens.used`
    /// reached billing during the outage.
    answered_during_outage: AtomicUsize,
    refused: AtomicUsize,
}

/// A consumer on billing's dead-letter queue for the whole test: it counts
/// every message dead-lettered, even one that is gone by the end, and, as the
/// queue's consumer, keeps the (ephemeral, expiring when unused) queue alive
/// through the outage. It never acks: what it got goes back when it stops.
struct DeadLetterWatch {
    seen: Arc<AtomicUsize>,
    connection: lapin::Connection,
    tasks: tokio_util::task::TaskTracker,
}

impl DeadLetterWatch {
    async fn start(app: &TestApp) -> Self {
        use futures::StreamExt;
        let (connection, channel) = aichat_messaging::connect(&app.amqp).await.unwrap();
        let queue = aichat_messaging::dlq::queue_name(&app.amqp, aichat_billing::events::QUEUE);
        let mut deliveries = channel
            .basic_consume(
                queue.as_str().into(),
                "outage-test-dlq-watch".into(),
                lapin::options::BasicConsumeOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await
            .unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let tasks = tokio_util::task::TaskTracker::new();
        // Ends when the connection closes.
        tasks.spawn(async move {
            while let Some(Ok(_delivery)) = deliveries.next().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        tasks.close();
        Self {
            seen,
            connection,
            tasks,
        }
    }

    fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }

    async fn stop(self) {
        let _ = self.connection.close(200, "done".into()).await;
        // lapin ends the consumer's stream when its connection closes.
        let ended = tokio::time::timeout(Duration::from_secs(10), self.tasks.wait()).await;
        assert!(ended.is_ok(), "the watcher stops with its connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_database_down_for_90_s_while_users_send_loses_no_usage_and_dead_letters_nothing() {
    let database = aichat_db::testing::server_url();
    let proxy = ChaosProxy::start(authority(&database)).await.unwrap();
    let app = TestApp::spawn_with_billing(
        |gateway| gateway.rate_limit_multiplier = 100,
        |billing| billing.database_url = through(&billing.database_url, &proxy),
    )
    .await;
    let dead_lettered = DeadLetterWatch::start(&app).await;
    let login = app.signup(&unique_email()).await;
    let user_id = login.user["id"].as_str().unwrap().to_owned();
    sql(
        app.billing.pool().unwrap(),
        "UPDATE plans SET maxConversations = NULL, maxMessagesPerConversation = NULL;
         UPDATE usageTracking SET monthlyQuota = 2000000000",
    )
    .await;
    sql(
        app.chat.pool().unwrap(),
        "UPDATE aiProviders SET requestsPerMinute = NULL, requestsPerDay = NULL",
    )
    .await;
    // Replies of about 2.4 s: sends are mid-stream when the database goes.
    let r = app
        .client
        .put(format!("{}/_mock/config", app.mock))
        .json(&json!({"tokenDelayMs": 200}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = app
        .call(
            Method::POST,
            "/api/v1/conversations",
            Some(&login.access),
            Some(json!({"model": "gpt-4o-mini"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let conversation: Value = r.json().await.unwrap();
    let path = format!(
        "/api/v1/conversations/{}/messages",
        conversation["id"].as_str().unwrap()
    );

    // Three users' worth of sending, each a send at a time, a few per second
    // in all, until told to stop.
    let tally = Arc::new(Tally::default());
    let down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let senders = (0..3u32).map(|sender| {
        let (app, login, path) = (&app, &login, &path);
        let (tally, down, stop) = (tally.clone(), down.clone(), stop.clone());
        async move {
            // Staggered, so some sends are always mid-stream.
            tokio::time::sleep(Duration::from_millis(800) * sender).await;
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let r = app
                    .call(
                        Method::POST,
                        path,
                        Some(&login.access),
                        Some(json!({ "content": format!("sender {sender}, message {n}") })),
                    )
                    .await;
                // Answered (201) once the reply is saved and charged.
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                if status == StatusCode::CREATED {
                    tally.answered.fetch_add(1, Ordering::SeqCst);
                    if down.load(Ordering::SeqCst) {
                        tally.answered_during_outage.fetch_add(1, Ordering::SeqCst);
                    }
                } else {
                    assert!(
                        status == StatusCode::SERVICE_UNAVAILABLE,
                        "only billing's outage refuses a send: {status} {body}"
                    );
                    tally.refused.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    });
    let scenario = async {
        // Some sends get through first.
        while tally.answered.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Into the next round of streams.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let started = Instant::now();
        down.store(true, Ordering::SeqCst);
        proxy.break_connections();
        tokio::time::sleep(outage()).await;
        proxy.restore();
        down.store(false, Ordering::SeqCst);
        let outage_took = started.elapsed();
        // And after.
        let before = tally.answered.load(Ordering::SeqCst);
        let recovered = Instant::now();
        while tally.answered.load(Ordering::SeqCst) < before + 3
            && recovered.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::SeqCst);
        outage_took
    };
    let (outage_took, _) = tokio::join!(scenario, futures::future::join_all(senders));
    assert!(outage_took >= outage());
    let during = tally.answered_during_outage.load(Ordering::SeqCst);
    assert!(
        during >= 1,
        "some replies finished while billing's database was away, so their \
         metering events reached billing then"
    );
    assert!(
        tally.refused.load(Ordering::SeqCst) >= 1,
        "sends went on during the outage (refused: billing cannot reserve)"
    );

    // Billing catches up with chat: every tokenUsage row charged once.
    let chat = chat_usage(&app, &user_id).await;
    assert!(chat.rows >= i64::try_from(tally.answered.load(Ordering::SeqCst)).unwrap());
    let mut usage = Value::Null;
    for _ in 0..600 {
        usage = billing_usage(&app, &login).await;
        if usage["messagesCount"].as_i64() == Some(chat.rows) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(usage["messagesCount"].as_i64(), Some(chat.rows), "{usage}");
    assert_eq!(usage["tokensUsed"].as_i64(), Some(chat.tokens), "{usage}");
    assert_eq!(dead_lettered.seen(), 0, "nothing dead-lettered");
    assert_eq!(
        aichat_messaging::dlq::depth(&app.amqp, aichat_billing::events::QUEUE)
            .await
            .unwrap(),
        0,
        "nothing dead-lettered"
    );
    dead_lettered.stop().await;
    app.finish().await;
    proxy.stop().await;
}
