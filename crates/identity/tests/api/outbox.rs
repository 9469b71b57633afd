//! Events survive a broker outage: every committed change is delivered,
//! and an idempotent consumer applies each exactly once.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use aichat_db::testing::TestDatabase;
use aichat_events::{Event, identity::UserRegistered};
use aichat_identity::testing::{TEMPLATE, TestIdentity, amqp_url, unique_exchange};
use aichat_messaging::{
    AmqpConfig,
    consumer::{self, HandlerError, Queue, Spec},
    inbox,
};
use aichat_proto::identity::v1::{RegisterRequest, identity_client::IdentityClient};
use diesel_async::{AsyncConnection, RunQueryDsl};
use lapin::{BasicProperties, options::*};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use aichat_db::testing::ChaosProxy;

const USERS: usize = 40;

#[derive(Default)]
struct Seen {
    deliveries: usize,
    applied: HashSet<uuid::Uuid>,
    applied_twice: usize,
    failed_once: HashSet<uuid::Uuid>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_broker_outage_and_are_applied_once() {
    let exchange = unique_exchange();
    let direct = AmqpConfig {
        url: amqp_url(),
        exchange: exchange.clone(),
        ephemeral: true,
    };
    let queue = format!("test.consumer.{}", uuid::Uuid::now_v7().simple());

    // The consumer: applies each event in a transaction with its inbox row.
    // Every fourth event fails once *after* its commit, as a crash between
    // commit and ack would: RabbitMQ redelivers it and the inbox skips it.
    let consumer_db = TestDatabase::new(&TEMPLATE).await.unwrap();
    let consumer_pool = aichat_db::pool(consumer_db.url(), &Default::default()).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop_consumer = CancellationToken::new();
    let tasks = TaskTracker::new();
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    {
        let (pool, seen, spec) = (
            consumer_pool.clone(),
            seen.clone(),
            Spec {
                queue: Queue::Durable(queue.clone()),
                bindings: vec![UserRegistered::TYPE.to_owned()],
                prefetch: 8,
                retry: Default::default(),
            },
        );
        let ready_tx = Arc::new(ready_tx);
        tasks.spawn(consumer::run(
            direct.clone(),
            spec,
            stop_consumer.clone(),
            move || {
                let ready_tx = ready_tx.clone();
                async move {
                    let _ = ready_tx.send(true);
                }
            },
            move |envelope| {
                let (pool, seen) = (pool.clone(), seen.clone());
                async move {
                    envelope
                        .decode::<UserRegistered>()
                        .ok_or_else(|| HandlerError::Permanent(anyhow::anyhow!("unexpected type")))?
                        .map_err(|e| HandlerError::Permanent(e.into()))?;
                    let mut conn = pool
                        .get()
                        .await
                        .map_err(|e| HandlerError::Transient(e.into()))?;
                    let first = conn
                        .transaction::<bool, diesel::result::Error, _>(async |conn| {
                            inbox::claim(conn, &envelope).await
                        })
                        .await
                        .map_err(|e| HandlerError::Transient(e.into()))?;
                    let mut seen = seen.lock().unwrap();
                    seen.deliveries += 1;
                    if !first {
                        return Ok(());
                    }
                    if !seen.applied.insert(envelope.id) {
                        seen.applied_twice += 1;
                    }
                    if seen.applied.len() % 4 == 0 && seen.failed_once.insert(envelope.id) {
                        return Err(HandlerError::Transient(anyhow::anyhow!(
                            "crash after commit"
                        )));
                    }
                    Ok(())
                }
            },
        ));
    }
    let mut ready_rx = ready_rx;
    tokio::time::timeout(Duration::from_secs(10), ready_rx.wait_for(|r| *r))
        .await
        .unwrap()
        .unwrap();

    // Identity reaches RabbitMQ only through the chaos proxy.
    let proxy = ChaosProxy::start("127.0.0.1:5672").await.unwrap();
    let through_proxy = AmqpConfig {
        url: format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port),
        exchange: exchange.clone(),
        ephemeral: true,
    };
    let identity = TestIdentity::spawn(through_proxy).await.unwrap();
    let client = IdentityClient::connect(identity.url.clone()).await.unwrap();

    // Register in waves, cutting the broker off during each. The third wave
    // commits entirely while the broker is unreachable: its events wait in
    // the outbox.
    let pool = identity.pool().unwrap();
    for wave in 0..4 {
        if wave == 2 {
            proxy.break_connections();
        }
        let mut calls = Vec::new();
        for i in 0..USERS / 4 {
            let mut client = client.clone();
            calls.push(async move {
                client
                    .register(RegisterRequest {
                        email: format!(
                            "wave{wave}-user{i}-{}@example.com",
                            uuid::Uuid::now_v7().simple()
                        ),
                        password: "correct horse battery staple".into(),
                        name: "Outage Tester".into(),
                    })
                    .await
            });
        }
        let (results, ()) = tokio::join!(futures::future::join_all(calls), async {
            if wave != 2 {
                tokio::time::sleep(Duration::from_millis(40)).await;
                proxy.break_connections();
                tokio::time::sleep(Duration::from_millis(200)).await;
                proxy.restore();
            }
        });
        assert!(
            results.iter().all(Result::is_ok),
            "registrations commit whether or not the broker is there"
        );
        if wave == 2 {
            let mut conn = pool.get().await.unwrap();
            let waiting = aichat_messaging::outbox::pending(&mut conn).await.unwrap();
            assert!(
                waiting >= (USERS / 4) as i64,
                "events wait in the outbox: {waiting}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            proxy.restore();
        }
    }

    identity
        .outbox_drained()
        .await
        .expect("every committed event is published after the outage");
    assert!(
        std::sync::atomic::AtomicUsize::load(
            &proxy.connections,
            std::sync::atomic::Ordering::SeqCst
        ) >= 2,
        "the relay lost its connection and reconnected after each cut"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().applied.len() < USERS && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let any late redelivery arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.applied.len(), USERS, "nothing lost");
        assert_eq!(seen.applied_twice, 0, "nothing applied twice");
        assert!(
            seen.deliveries >= USERS + seen.failed_once.len(),
            "the failed ones came back"
        );
        assert!(!seen.failed_once.is_empty());
    }
    let mut conn = consumer_pool.get().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let inbox_rows: N = diesel::sql_query("SELECT count(*) AS n FROM inbox")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(inbox_rows.n, USERS as i64);

    // A poison message goes to the dead-letter queue instead of looping.
    let (connection, channel) = aichat_messaging::connect(&direct).await.unwrap();
    channel
        .basic_publish(
            exchange.as_str().into(),
            UserRegistered::TYPE.into(),
            BasicPublishOptions::default(),
            b"not json",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let queue = aichat_messaging::consumer::durable_queue_name(&direct, &queue);
    let dlq = format!("{queue}.dlq");
    let mut dead = None;
    for _ in 0..100 {
        if let Some(message) = channel
            .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            dead = Some(message.delivery.data.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.as_deref(), Some(&b"not json"[..]));

    stop_consumer.cancel();
    tasks.close();
    tasks.wait().await;
    identity.stop().await;
    proxy.stop().await;
    for q in [queue.as_str(), dlq.as_str()] {
        let _ = channel
            .queue_delete(q.into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = channel
        .exchange_delete(
            direct.dead_letter_exchange().as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = connection.close(200, "done".into()).await;
}
