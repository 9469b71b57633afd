//! An analytics service for tests (feature `testing`): its own fresh
//! database, its queue on the caller's exchange (a unique exchange per test
//! keeps tests apart), serving gRPC on a free port of 127.0.0.1, plus a
//! publisher that puts events on that exchange. Used by analytics' tests
//! and by the gateway's.

use std::time::Duration;

use aichat_db::testing::{Template, TestDatabase};
use aichat_events::{
    Envelope, Event, TraceContext,
    chat::{ConversationCounters, MessageCreated, TokensUsed},
};
use aichat_messaging::{AmqpConfig, consumer::durable_queue_name};
use aichat_proto::analytics::v1::{Empty, analytics_client::AnalyticsClient};
use anyhow::Context;
use bigdecimal::BigDecimal;
use chrono::{Datelike, NaiveDate, Utc};
use lapin::{
    BasicProperties, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions},
};
use tokio::sync::OnceCell;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::config::Config;

/// The analytics migrations as a test template.
pub static TEMPLATE: Template = Template::new("analytics", &crate::MIGRATIONS);

/// A running analytics service.
pub struct TestAnalytics {
    pub db: TestDatabase,
    pub config: Config,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pool: aichat_db::Pool,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    publisher: OnceCell<Publisher>,
}

/// A confirmed channel on the test's exchange.
struct Publisher {
    connection: lapin::Connection,
    channel: lapin::Channel,
}

impl TestAnalytics {
    /// Starts one, consuming from `amqp`, without a billing to read plans
    /// from.
    pub async fn spawn(amqp: AmqpConfig) -> anyhow::Result<Self> {
        Self::spawn_with(amqp, |_| {}).await
    }

    /// Starts one after `adjust` has changed the test configuration (e.g.
    /// `billing_grpc_url`, so it reads billing's plans at start-up).
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
            maintenance_interval: Duration::from_secs(300),
            consume_batch: 500,
            identity_grpc_url: None,
            chat_grpc_url: None,
            billing_grpc_url: None,
        };
        adjust(&mut config);
        // As `analytics migrate` does before any service starts.
        crate::declare_queues(&config.amqp).await?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let url = Self::serve(&config, &shutdown, &tasks).await?;
        let pool = crate::pool(&config)?;
        let me = Self {
            db,
            config,
            url,
            pool,
            shutdown,
            tasks,
            publisher: OnceCell::new(),
        };
        me.wait_until_serving().await?;
        Ok(me)
    }

    /// Spawns `run` on a free port; returns its URL.
    async fn serve(
        config: &Config,
        shutdown: &CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (run_config, run_shutdown) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(error) = crate::run(listener, run_config, run_shutdown).await {
                tracing::error!(error = format!("{error:#}"), "test analytics failed");
            }
        });
        Ok(url)
    }

    /// Stops the service wherever it is (deliveries not acked yet go back
    /// to the queue, as when the process dies) and starts it again on the
    /// same database and queue, on a new port ([`Self::url`] changes).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.pause().await;
        self.resume().await
    }

    /// Stops the service (consumer and gRPC) and waits for it; events
    /// published meanwhile wait in its queue until [`Self::resume`].
    pub async fn pause(&mut self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Starts the service again after [`Self::pause`], on the same database
    /// and queue, on a new port ([`Self::url`] changes).
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        self.shutdown = CancellationToken::new();
        self.tasks = TaskTracker::new();
        self.url = Self::serve(&self.config, &self.shutdown, &self.tasks).await?;
        self.wait_until_serving().await
    }

    async fn wait_until_serving(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            if let Ok(mut client) = AnalyticsClient::connect(self.url.clone()).await
                && client.users_by_plan(Empty {}).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("the test analytics service did not come up")
    }

    /// A client of its gRPC service.
    pub async fn client(&self) -> anyhow::Result<AnalyticsClient<tonic::transport::Channel>> {
        Ok(AnalyticsClient::connect(self.url.clone()).await?)
    }

    /// A pool on its database, for assertions.
    pub fn pool(&self) -> anyhow::Result<aichat_db::Pool> {
        Ok(self.pool.clone())
    }

    /// Publishes `event` in a new envelope; returns the envelope (publish
    /// it again to simulate a redelivery).
    pub async fn publish<E: Event>(&self, event: &E) -> anyhow::Result<Envelope> {
        let envelope = Envelope::new(event, TraceContext::default())?;
        self.publish_envelopes(std::slice::from_ref(&envelope))
            .await?;
        Ok(envelope)
    }

    /// Publishes envelopes as persistent messages, in order, and waits for
    /// the broker's confirms. Analytics' queue is bound before the service
    /// starts (as `analytics migrate` does), so every event reaches it.
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
        let mut confirms = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let body = serde_json::to_vec(envelope)?;
            let confirm = publisher
                .channel
                .basic_publish(
                    exchange.into(),
                    envelope.event_type.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_content_type("application/json".into())
                        .with_message_id(envelope.id.to_string().as_str().into())
                        .with_type(envelope.event_type.as_str().into()),
                )
                .await
                .context("publishing")?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match confirm.await.context("waiting for a confirm")? {
                Confirmation::Ack(_) => {}
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    anyhow::bail!("the broker refused an event")
                }
            }
        }
        Ok(())
    }

    /// Whether the consumer has applied (or skipped as a duplicate) the
    /// event.
    pub async fn processed(&self, envelope: &Envelope) -> anyhow::Result<bool> {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await?;
        let found: N = diesel::sql_query("SELECT count(*) AS n FROM userEvents WHERE eventId = $1")
            .bind::<diesel::sql_types::Uuid, _>(envelope.id)
            .get_result(&mut conn)
            .await?;
        Ok(found.n == 1)
    }

    /// Waits (up to 10 s) until the consumer has applied every envelope.
    pub async fn wait_processed(&self, envelopes: &[Envelope]) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for envelope in envelopes {
            while !self.processed(envelope).await? {
                if std::time::Instant::now() > deadline {
                    anyhow::bail!("event {} was not applied in time", envelope.id);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
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

impl Drop for TestAnalytics {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `events` chat events, as chat publishes them: per exchange (3 events) a
/// user message, the assistant's and its tokenUsage, each with the
/// conversation's counters, over `users` users' 10,000 conversations, all
/// now. What `analytics-bench ingest` publishes.
pub fn chat_events(events: usize, users: usize) -> anyhow::Result<Vec<Envelope>> {
    let models = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"];
    let mut out = Vec::with_capacity(events);
    let mut counters: std::collections::HashMap<usize, (i32, i32)> = Default::default();
    let now = Utc::now();
    let month = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).context("month")?;
    let mut i = 0usize;
    while out.len() < events {
        let conversation = (i * 7919) % 10_000;
        let user = uuid::Uuid::from_u128(1 + (conversation % users.max(1)) as u128);
        let conversation_id = uuid::Uuid::from_u128(1_000_000 + conversation as u128);
        let model = models[i % models.len()];
        let at = now;
        let entry = counters.entry(conversation).or_default();
        for role in ["user", "assistant"] {
            entry.0 += 1;
            entry.1 += 100;
            out.push(Envelope::new(
                &MessageCreated {
                    message_id: uuid::Uuid::now_v7(),
                    conversation_id,
                    user_id: user,
                    role: role.to_owned(),
                    token_count: 100,
                    model: (role == "assistant").then(|| model.to_owned()),
                    language: None,
                    created_at: at,
                    counters: Some(ConversationCounters {
                        message_count: entry.0,
                        token_count: entry.1,
                        updated_at: at,
                    }),
                },
                TraceContext::default(),
            )?);
        }
        out.push(Envelope::new(
            &TokensUsed {
                usage_id: uuid::Uuid::now_v7(),
                user_id: user,
                conversation_id: Some(conversation_id),
                message_id: None,
                reservation_id: None,
                provider: "openai".to_owned(),
                model: model.to_owned(),
                prompt_tokens: 120,
                completion_tokens: 80,
                total_tokens: 200,
                cost_usd: "0.000400".parse::<BigDecimal>()?,
                billing_month: month,
                occurred_at: at,
                counters: Some(ConversationCounters {
                    message_count: entry.0,
                    token_count: entry.1,
                    updated_at: at,
                }),
                api_key_id: None,
            },
            TraceContext::default(),
        )?);
        i += 1;
    }
    out.truncate(events);
    Ok(out)
}
