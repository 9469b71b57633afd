//! Events applied once and in any order: duplicates and out-of-order
//! deliveries change nothing, and a consumer stopped mid-stream loses
//! nothing.

use crate::{
    helpers::{Harness, answers_of, applied, assert_aggregates_match, dump, marker, seed_plans},
    scenario::Scenario,
};

#[tokio::test]
async fn duplicates_and_out_of_order_events_change_nothing() {
    let s = Scenario::new();
    let reference = Harness::start().await;
    seed_plans(&reference.pool).await;
    reference.deliver(&s.events).await;
    let expected = reference.answers().await;

    // Every event twice, the second copies and the first ones in reverse:
    // deletions before registrations, cancellations before purchases,
    // refunds before payments, counters before conversations.
    let shuffled = Harness::start().await;
    seed_plans(&shuffled.pool).await;
    let mut events: Vec<_> = s.events.iter().rev().cloned().collect();
    events.extend(s.events.iter().cloned());
    let last = marker();
    events.push(last.clone());
    shuffled.deliver(&events).await;
    assert_eq!(shuffled.answers().await, expected);
    // The query aggregates, moved by every write of either history, are
    // their read models' sums.
    assert_aggregates_match(&reference.pool).await;
    assert_aggregates_match(&shuffled.pool).await;

    // The reference's read models do not move on redeliveries either.
    let before = dump(&reference.pool).await;
    let mut again: Vec<_> = s.events.clone();
    let last = marker();
    again.push(last.clone());
    reference.deliver(&again).await;
    assert_eq!(dump(&reference.pool).await, before);
    assert_eq!(reference.answers().await, expected);

    // Each event applied once: one userEvents row per event.
    {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = shuffled.pool.get().await.unwrap();
        let n: N = diesel::sql_query("SELECT count(*) AS n FROM userEvents")
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(n.n, i64::try_from(s.events.len()).unwrap() + 1);
    }
    reference.stop().await;
    shuffled.stop().await;
}

#[tokio::test]
async fn a_consumer_stopped_mid_stream_loses_nothing() {
    let s = Scenario::new();
    let reference = Harness::start().await;
    seed_plans(&reference.pool).await;
    reference.deliver(&s.events).await;
    let expected = reference.answers().await;

    let mut h = Harness::start().await;
    seed_plans(&h.pool).await;
    h.analytics.publish_envelopes(&s.events).await.unwrap();
    // Stopped wherever it is: what was not committed and acked comes back.
    h.analytics.restart().await.unwrap();
    h.client = h.analytics.client().await.unwrap();
    h.analytics.wait_processed(&s.events).await.unwrap();
    assert_eq!(h.answers().await, expected);
    reference.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn a_malformed_event_is_dead_lettered_and_the_rest_applied() {
    let s = Scenario::new();
    let h = Harness::start().await;
    let mut bad = s.events[0].clone();
    bad.id = uuid::Uuid::now_v7();
    bad.data = serde_json::json!({ "user": { "userId": "not a uuid" } });
    let mut future = s.events[0].clone();
    future.id = uuid::Uuid::now_v7();
    future.version = 2;
    let mut unknown_tier = s.events[0].clone();
    unknown_tier.id = uuid::Uuid::now_v7();
    unknown_tier.data["user"]["planTier"] = serde_json::json!("GOLD");
    h.analytics
        .publish_envelopes(&[bad.clone(), future.clone(), unknown_tier.clone()])
        .await
        .unwrap();
    h.deliver(&s.events[..1]).await;
    for refused in [&bad, &future, &unknown_tier] {
        assert!(!h.analytics.processed(refused).await.unwrap());
    }
    let by_plan = h
        .client
        .clone()
        .users_by_plan(aichat_proto::analytics::v1::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_plan.items.len(), 1);
    assert_eq!(by_plan.items[0].count, 1);
    h.stop().await;
}

#[tokio::test]
async fn the_database_going_away_mid_stream_loses_and_doubles_nothing() {
    use aichat_db::testing::ChaosProxy;
    let s = Scenario::new();
    let reference = Harness::start().await;
    seed_plans(&reference.pool).await;
    reference.deliver(&s.events).await;
    let expected = reference.answers().await;

    // analytics reaches PostgreSQL through a proxy the test cuts.
    let proxy = ChaosProxy::start("127.0.0.1:5432").await.unwrap();
    let port = proxy.port;
    let amqp = aichat_billing::testing::unique_amqp();
    let analytics = aichat_analytics::testing::TestAnalytics::spawn_with(amqp.clone(), |c| {
        c.database_url = c
            .database_url
            .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
        // Retried transactions find the database back quickly.
        c.db_pool_size = 4;
        // One event per transaction, so the cut falls mid-stream (the
        // batched consumer's test follows).
        c.consume_batch = 1;
    })
    .await
    .unwrap();
    seed_plans(&analytics.pool().unwrap()).await;
    // The same database, not through the proxy, for the test's own looks.
    let direct = aichat_db::pool(analytics.db.url(), &aichat_db::PoolSettings::default()).unwrap();
    analytics.publish_envelopes(&s.events).await.unwrap();
    // Cut while the consumer is in the middle of the stream: the
    // transaction in flight is lost, its delivery held and retried.
    let total = i64::try_from(s.events.len()).unwrap();
    while applied(&direct).await < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    proxy.break_connections();
    let at_cut = applied(&direct).await;
    assert!(at_cut < total, "the stream was over before the cut");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(applied(&direct).await, at_cut, "applied without a database");
    proxy.restore();
    analytics.wait_processed(&s.events).await.unwrap();
    assert_eq!(
        answers_of(&analytics.client().await.unwrap()).await,
        expected
    );
    analytics.stop().await;
    aichat_billing::testing::delete_exchange(&amqp)
        .await
        .unwrap();
    proxy.stop().await;
    reference.stop().await;
}

#[tokio::test]
async fn a_batch_with_a_duplicate_and_a_poison_event_applies_the_rest_once() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    async fn count(pool: &aichat_db::Pool, sql: &str) -> i64 {
        let mut conn = pool.get().await.unwrap();
        let n: N = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
        n.n
    }

    let s = Scenario::new();
    let reference = Harness::start().await;
    seed_plans(&reference.pool).await;
    reference.deliver(&s.events).await;
    let expected = reference.answers().await;

    let mut h = Harness::start().await;
    seed_plans(&h.pool).await;
    let (first, rest) = s.events.split_at(s.events.len() / 2);

    // Queued while the consumer is away, then consumed in batches: fewer
    // transactions than events (the userEvents rows of one transaction
    // share its id, xmin).
    h.analytics.pause().await;
    h.analytics.publish_envelopes(first).await.unwrap();
    h.analytics.resume().await.unwrap();
    h.client = h.analytics.client().await.unwrap();
    h.analytics.wait_processed(first).await.unwrap();
    let transactions = count(
        &h.pool,
        "SELECT count(DISTINCT xmin::text) AS n FROM userEvents",
    )
    .await;
    assert!(
        transactions < i64::try_from(first.len()).unwrap(),
        "{transactions} transactions for {} events",
        first.len()
    );

    // One batch with the rest, a copy of one of them, a copy of an event
    // applied before, and a poison event (an unknown plan tier) among them.
    let mut poison = s.events[0].clone();
    poison.id = uuid::Uuid::now_v7();
    poison.data["user"]["planTier"] = serde_json::json!("GOLD");
    let mut batch: Vec<_> = rest.to_vec();
    let middle = batch.len() / 2;
    batch.insert(middle, poison.clone());
    batch.insert(middle, rest[0].clone());
    batch.insert(1, first[0].clone());
    h.analytics.pause().await;
    h.analytics.publish_envelopes(&batch).await.unwrap();
    h.analytics.resume().await.unwrap();
    h.client = h.analytics.client().await.unwrap();
    h.analytics.wait_processed(rest).await.unwrap();

    // Only the poison dead-lettered; everything else applied exactly once.
    assert!(!h.analytics.processed(&poison).await.unwrap());
    let mut depth = 0;
    for _ in 0..100 {
        depth = aichat_messaging::dlq::depth(&h.analytics.config.amqp, "analytics")
            .await
            .unwrap();
        if depth > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(depth, 1);
    assert_eq!(
        count(&h.pool, "SELECT count(*) AS n FROM userEvents").await,
        i64::try_from(s.events.len()).unwrap()
    );
    assert_eq!(h.answers().await, expected);
    reference.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn the_database_going_away_under_a_batch_loses_and_doubles_nothing() {
    use aichat_db::testing::ChaosProxy;
    let s = Scenario::new();
    let reference = Harness::start().await;
    seed_plans(&reference.pool).await;
    reference.deliver(&s.events).await;
    let expected = reference.answers().await;

    let proxy = ChaosProxy::start("127.0.0.1:5432").await.unwrap();
    let port = proxy.port;
    let amqp = aichat_billing::testing::unique_amqp();
    let analytics = aichat_analytics::testing::TestAnalytics::spawn_with(amqp.clone(), |c| {
        c.database_url = c
            .database_url
            .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
        c.db_pool_size = 4;
    })
    .await
    .unwrap();
    seed_plans(&analytics.pool().unwrap()).await;
    let direct = aichat_db::pool(analytics.db.url(), &aichat_db::PoolSettings::default()).unwrap();
    let (first, rest) = s.events.split_at(s.events.len() / 2);
    analytics.publish_envelopes(first).await.unwrap();
    analytics.wait_processed(first).await.unwrap();
    // The batch of the rest finds the database gone: nothing of it is
    // applied, its deliveries are held (one at a time, retried) until the
    // database is back.
    proxy.break_connections();
    let at_cut = applied(&direct).await;
    analytics.publish_envelopes(rest).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(applied(&direct).await, at_cut, "applied without a database");
    proxy.restore();
    analytics.wait_processed(&s.events).await.unwrap();
    assert_eq!(
        answers_of(&analytics.client().await.unwrap()).await,
        expected
    );
    analytics.stop().await;
    aichat_billing::testing::delete_exchange(&amqp)
        .await
        .unwrap();
    proxy.stop().await;
    reference.stop().await;
}

/// Applies `a` and `b` as two batches at once, each in its own transaction
/// as the consumer does (`events::handle_batch`); both must commit.
#[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
async fn apply_at_once(
    pool: &aichat_db::Pool,
    a: &[aichat_events::Envelope],
    b: &[aichat_events::Envelope],
) {
    use aichat_analytics::events::handle_batch;
    use aichat_messaging::consumer::RawEnvelope;
    fn raw(envelopes: &[aichat_events::Envelope]) -> Vec<RawEnvelope> {
        envelopes
            .iter()
            .map(|e| serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap())
            .collect()
    }
    let (ra, rb) = tokio::join!(handle_batch(pool, raw(a)), handle_batch(pool, raw(b)));
    ra.unwrap();
    rb.unwrap();
}

/// The consumer applies two batches at once, each in its own transaction.
/// Batches of one busy hour share rows (a user's day and model in
/// chatAnalytics, the day's totals, the month's per model), and an
/// exchange's messages and usage can fall in different batches: both
/// transactions must still commit (locking those rows in one order, so
/// one waits for the other), never deadlock, and count everything once.
#[tokio::test]
async fn two_batches_applied_at_once_share_rows_without_deadlock() {
    let h = Harness::start().await;
    // Few users, so every batch touches every user's rows.
    const EXCHANGES: i64 = 4000;
    let events = aichat_analytics::testing::chat_events(3 * EXCHANGES as usize, 12).unwrap();
    for round in events.chunks(300) {
        // One batch: every exchange's user message and usage; the other:
        // the assistant messages, in reverse order.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, e) in round.iter().enumerate() {
            if i % 3 == 1 {
                b.push(e.clone())
            } else {
                a.push(e.clone())
            }
        }
        b.reverse();
        apply_at_once(&h.pool, &a, &b).await;
    }

    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Totals {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        messages: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        daily_messages: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        tokens: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        daily_tokens: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        usages: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        user_usages: i64,
    }
    let mut conn = h.pool.get().await.unwrap();
    let totals: Totals = diesel::sql_query(
        "SELECT (SELECT SUM(messages) FROM chatAnalytics)::bigint AS messages, \
           (SELECT SUM(messages) FROM chatDaily)::bigint AS daily_messages, \
           (SELECT SUM(totalTokens) FROM chatAnalytics)::bigint AS tokens, \
           (SELECT SUM(totalTokens) FROM chatDaily)::bigint AS daily_tokens, \
           (SELECT SUM(usageCount) FROM tokenUsageMonthly)::bigint AS usages, \
           (SELECT SUM(usageCount) FROM tokenUsageUserMonthly)::bigint AS user_usages",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        totals,
        Totals {
            messages: 2 * EXCHANGES,
            daily_messages: 2 * EXCHANGES,
            tokens: 200 * EXCHANGES,
            daily_tokens: 200 * EXCHANGES,
            usages: EXCHANGES,
            user_usages: EXCHANGES,
        }
    );
    drop(conn);
    h.stop().await;
}

/// Batches with every kind of event (registrations, subscriptions,
/// payments, conversations created and deleted, besides chat facts),
/// applied two at once as the consumer does: the kinds applied one after
/// another lock rows in their events' order, so such a batch is applied
/// alone; none deadlocks, and every aggregate equals its recomputation.
#[tokio::test]
async fn batches_of_every_kind_applied_at_once_never_deadlock() {
    let h = Harness::start().await;
    seed_plans(&h.pool).await;
    for _ in 0..15 {
        // Two histories, each split over both batches (the second half in
        // reverse), plus chat facts of the same few users in both.
        let (one, two) = (Scenario::new(), Scenario::new());
        let chat = aichat_analytics::testing::chat_events(300, 6).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, e) in one
            .events
            .iter()
            .chain(&two.events)
            .chain(&chat)
            .enumerate()
        {
            if i % 2 == 0 {
                a.push(e.clone())
            } else {
                b.push(e.clone())
            }
        }
        b.reverse();
        apply_at_once(&h.pool, &a, &b).await;
    }
    assert_aggregates_match(&h.pool).await;
    h.stop().await;
}
