//! A billing service for tests (feature `testing`): its own fresh database,
//! its queue on the caller's exchange (a unique exchange per test keeps
//! tests apart), serving gRPC on a free port of 127.0.0.1, plus a publisher
//! that puts events on that exchange. Used by billing's tests and, later, by
//! the tests of its callers.

use std::time::Duration;

use aichat_db::testing::{Template, TestDatabase};
use aichat_events::{Envelope, Event, TraceContext};
use aichat_messaging::{AmqpConfig, consumer::durable_queue_name};
use aichat_proto::billing::v1::{Empty, billing_client::BillingClient};
use anyhow::Context;
use lapin::{
    BasicProperties, Confirmation,
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
    },
};
use tokio::sync::OnceCell;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use crate::config::Config;

/// The billing migrations as a test template.
pub static TEMPLATE: Template = Template::new("billing", &crate::MIGRATIONS);

/// A RabbitMQ exchange name no other test uses.
pub fn unique_exchange() -> String {
    format!("aichat.test.{}", Uuid::now_v7().simple())
}

/// The broker the tests use: `TEST_AMQP_URL`, or the local one.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The local broker with an exchange of its own.
pub fn unique_amqp() -> AmqpConfig {
    AmqpConfig {
        url: amqp_url(),
        exchange: unique_exchange(),
        ephemeral: true,
    }
}

/// Deletes a test's exchange and its dead-letter exchange.
pub async fn delete_exchange(amqp: &AmqpConfig) -> anyhow::Result<()> {
    let (connection, channel) = aichat_messaging::connect(amqp).await?;
    for exchange in [amqp.exchange.clone(), amqp.dead_letter_exchange()] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    connection.close(200, "done".into()).await?;
    Ok(())
}

/// A running billing service.
pub struct TestBilling {
    pub db: TestDatabase,
    pub config: Config,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    publisher: OnceCell<Publisher>,
}

/// A confirmed channel on the test's exchange.
struct Publisher {
    connection: lapin::Connection,
    channel: lapin::Channel,
}

impl TestBilling {
    /// Starts one, consuming from `amqp`.
    pub async fn spawn(amqp: AmqpConfig) -> anyhow::Result<Self> {
        Self::spawn_with(amqp, |_| {}).await
    }

    /// Starts one after `adjust` has changed the test configuration.
    pub async fn spawn_with(
        amqp: AmqpConfig,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let db = TestDatabase::new(&TEMPLATE).await?;
        let mut config = Config {
            database_url: db.url().to_owned(),
            db_pool_size: 8,
            grpc_addr: "127.0.0.1:0".to_owned(),
            amqp,
            reservation_ttl: Duration::from_secs(120),
            maintenance_interval: Duration::from_secs(60),
            reconcile_interval: Duration::from_secs(3600),
            // Tests that need Stripe point it at their stand-in.
            stripe: None,
            public_url: "http://127.0.0.1:8080".to_owned(),
            consume_batch: 100,
        };
        adjust(&mut config);
        // As `billing migrate` does before any service starts.
        crate::declare_queues(&config.amqp).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (run_config, run_shutdown) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(error) = crate::run(listener, run_config, run_shutdown).await {
                tracing::error!(error = format!("{error:#}"), "test billing failed");
            }
        });
        let me = Self {
            db,
            config,
            url,
            shutdown,
            tasks,
            publisher: OnceCell::new(),
        };
        me.wait_until_serving().await?;
        Ok(me)
    }

    async fn wait_until_serving(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            if let Ok(mut client) = BillingClient::connect(self.url.clone()).await
                && client.list_plans(Empty {}).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("the test billing service did not come up")
    }

    /// A client of its gRPC service.
    pub async fn client(&self) -> anyhow::Result<BillingClient<tonic::transport::Channel>> {
        Ok(BillingClient::connect(self.url.clone()).await?)
    }

    /// A pool on its database, for assertions.
    pub fn pool(&self) -> anyhow::Result<aichat_db::Pool> {
        crate::pool(&self.config)
    }

    /// Publishes `event` in a new envelope; returns the envelope (publish
    /// it again to simulate a redelivery).
    pub async fn publish<E: Event>(&self, event: &E) -> anyhow::Result<Envelope> {
        let envelope = Envelope::new(event, TraceContext::default())?;
        self.publish_envelopes(std::slice::from_ref(&envelope))
            .await?;
        Ok(envelope)
    }

    /// Publishes envelopes as persistent messages and waits for the broker's
    /// confirms. Billing's queue is bound before the service starts (as
    /// `billing migrate` does), so every event reaches it; they are also
    /// published `mandatory`, and one the broker returns (an exchange without
    /// an alternate exchange and a queue not bound yet) is published again.
    pub async fn publish_envelopes(&self, envelopes: &[Envelope]) -> anyhow::Result<()> {
        let publisher = self
            .publisher
            .get_or_try_init(|| async {
                let (connection, channel) = aichat_messaging::connect(&self.config.amqp).await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                anyhow::Ok(Publisher {
                    connection,
                    channel,
                })
            })
            .await?;
        let exchange = self.config.amqp.exchange.as_str();
        let mut pending: Vec<&Envelope> = envelopes.iter().collect();
        for _ in 0..400 {
            let mut confirms = Vec::with_capacity(pending.len());
            for envelope in &pending {
                let body = serde_json::to_vec(envelope)?;
                let confirm = publisher
                    .channel
                    .basic_publish(
                        exchange.into(),
                        envelope.event_type.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &body,
                        BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into())
                            .with_message_id(envelope.id.to_string().as_str().into())
                            .with_type(envelope.event_type.as_str().into()),
                    )
                    .await
                    .context("publishing")?;
                confirms.push((*envelope, confirm));
            }
            let mut unrouted = Vec::new();
            for (envelope, confirm) in confirms {
                match confirm.await.context("waiting for a confirm")? {
                    Confirmation::Ack(None) => {}
                    Confirmation::Ack(Some(_)) => unrouted.push(envelope),
                    Confirmation::Nack(_) | Confirmation::NotRequested => {
                        anyhow::bail!("the broker refused an event")
                    }
                }
            }
            if unrouted.is_empty() {
                return Ok(());
            }
            pending = unrouted;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("events were not routed: the billing consumer never bound its queue")
    }

    /// Stops the service, waits for it, and deletes its queues.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Ok((connection, channel)) = aichat_messaging::connect(&self.config.amqp).await {
            let queue = durable_queue_name(&self.config.amqp, crate::events::QUEUE);
            for queue in [format!("{queue}.dlq"), queue] {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            let _ = connection.close(200, "done".into()).await;
        }
        if let Some(publisher) = self.publisher.get() {
            let _ = publisher.connection.close(200, "done".into()).await;
        }
    }
}

impl Drop for TestBilling {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
