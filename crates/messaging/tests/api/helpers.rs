//! A unique exchange per test, a confirmed publisher, and a consumer run on
//! a task tracker.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test harness: a failure fails the test"
)]

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aichat_events::{Envelope, Event, TraceContext, identity::UserDeleted};
use aichat_messaging::{
    AmqpConfig,
    consumer::{self, HandlerError, Queue, Retry, Spec},
};
use lapin::{
    BasicProperties, Confirmation,
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
    },
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub fn unique_amqp() -> AmqpConfig {
    AmqpConfig {
        url: std::env::var("TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
        exchange: format!("aichat.test.{}", uuid::Uuid::now_v7().simple()),
        ephemeral: true,
    }
}

/// A durable consumer's spec, bound to `identity.user.deleted`, retrying
/// transient failures quickly.
pub fn spec(service: &str) -> Spec {
    Spec {
        queue: Queue::Durable(service.to_owned()),
        bindings: vec![UserDeleted::TYPE.to_owned()],
        prefetch: 8,
        retry: Retry {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
    }
}

pub fn event() -> Envelope {
    Envelope::new(
        &UserDeleted {
            user_id: uuid::Uuid::now_v7(),
        },
        TraceContext::default(),
    )
    .unwrap()
}

/// Publishes `body` with routing key `key` and waits for the confirm.
pub async fn publish_raw(amqp: &AmqpConfig, key: &str, body: &[u8]) {
    let (connection, channel) = aichat_messaging::connect(amqp).await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = channel
        .basic_publish(
            amqp.exchange.as_str().into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(confirm, Confirmation::Ack(None)), "{confirm:?}");
    connection.close(200, "done".into()).await.unwrap();
}

pub async fn publish(amqp: &AmqpConfig, envelope: &Envelope) {
    publish_raw(
        amqp,
        &envelope.event_type,
        &serde_json::to_vec(envelope).unwrap(),
    )
    .await;
}

/// Messages ready in `queue`.
pub async fn depth(amqp: &AmqpConfig, queue: &str) -> u32 {
    let (connection, channel) = aichat_messaging::connect(amqp).await.unwrap();
    let depth = aichat_messaging::dlq::depth_on(&channel, queue)
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
    depth
}

/// Polls until `check` holds, for up to ten seconds.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not within 10 s: {what}");
}

/// A consumer running `handler` until [`Running::stop`].
pub struct Running {
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Running {
    pub fn start<H, Fut>(amqp: &AmqpConfig, spec: Spec, handler: H) -> Self
    where
        H: Fn(Envelope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(consumer::run(
            amqp.clone(),
            spec,
            shutdown.clone(),
            || async {},
            handler,
        ));
        Self { shutdown, tasks }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Counts calls; `fails(n)` makes the first `n` fail with `error`.
#[derive(Clone, Default)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// The call number (1-based) of this call.
    pub fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Deletes what a test declared on its exchange.
pub async fn cleanup(amqp: &AmqpConfig, services: &[&str]) {
    let (connection, channel) = aichat_messaging::connect(amqp).await.unwrap();
    for service in services {
        let queue = consumer::durable_queue_name(amqp, service);
        for q in [format!("{queue}.dlq"), queue] {
            let _ = channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    let _ = channel
        .queue_delete(
            amqp.unrouted().as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await;
    for exchange in [
        amqp.exchange.clone(),
        amqp.dead_letter_exchange(),
        amqp.unrouted(),
    ] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}
