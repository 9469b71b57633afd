#![doc = include_str!("../README.md")]

pub mod billing;
pub mod breaker;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod send;
pub mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use aichat_llm::{LlmClient, ProviderConfig, ProviderKind, RetryPolicy};
use aichat_messaging::relay::{Relay, Waker};
use aichat_proto::chat::v1::chat_server::ChatServer;
use anyhow::Context;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::Config;

/// The chat database's migrations, embedded in the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/chat");

/// Runs the pending migrations (advisory-locked, idempotent).
pub async fn migrate(database_url: &str) -> anyhow::Result<usize> {
    aichat_db::migrate(database_url, "chat", &MIGRATIONS).await
}

/// The broker half of `chat migrate`: declares the event exchange (with its
/// alternate exchange) and chat's queue, dead-letter queue and bindings, so
/// that events published before chat first consumes wait in its queue.
pub async fn declare_queues(amqp: &aichat_messaging::AmqpConfig) -> anyhow::Result<()> {
    aichat_messaging::consumer::declare_durable(amqp, &[events::spec()]).await
}

/// The pool the service uses.
pub fn pool(config: &Config) -> anyhow::Result<aichat_db::Pool> {
    aichat_db::pool(
        &config.database_url,
        &aichat_db::PoolSettings {
            max_size: config.db_pool_size,
            ..Default::default()
        },
    )
}

fn providers(config: &Config) -> Vec<ProviderConfig> {
    [
        (ProviderKind::OpenAi, &config.openai),
        (ProviderKind::Anthropic, &config.anthropic),
        (ProviderKind::Google, &config.google),
    ]
    .into_iter()
    .map(|(kind, e)| ProviderConfig {
        kind,
        base_url: e.base_url.clone(),
        api_key: e.api_key.clone(),
    })
    .collect()
}

/// Keeps next months' tokenUsage partitions created ahead of time, and
/// forgets inbox entries past the deduplication window.
async fn keep_partitions(pool: aichat_db::Pool, shutdown: CancellationToken) {
    loop {
        let first = send::billing_month(chrono::Utc::now().date_naive());
        match pool.get().await {
            Ok(mut conn) => match store::usage::ensure_partitions(&mut conn, first, 13).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(created = n, "tokenUsage partitions created"),
                Err(error) => tracing::error!(%error, "creating tokenUsage partitions failed"),
            },
            Err(error) => tracing::warn!(%error, "cannot reach the database to create partitions"),
        }
        aichat_messaging::inbox::prune_expired(&pool).await;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(6 * 3600)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Migrates, then serves gRPC on `listener`, relays the outbox and consumes
/// events until `shutdown` is cancelled; returns once all have stopped.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    migrate(&config.database_url)
        .await
        .context("migrating the chat database")?;
    let pool = pool(&config)?;
    let tasks = TaskTracker::new();
    let waker = Waker::default();
    let chat = service::Chat::new(pool.clone(), waker.clone());
    // This process's identity for its calls in flight, registered before it
    // serves: a call of an unregistered replica looks orphaned.
    let replica = uuid::Uuid::now_v7();
    send::charge::heartbeat(&chat, replica)
        .await
        .context("registering the replica")?;
    let llm = LlmClient::new(RetryPolicy {
        max_attempts: config.provider_max_attempts.max(1),
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
    })
    .context("building the HTTP client for the providers")?;
    let sender = send::Sender::new(
        llm,
        providers(&config),
        billing::Billing::new(&config.billing_url).context("BILLING_GRPC_URL")?,
        breaker::Breakers::new(
            config.breaker_threshold,
            Duration::from_secs(config.breaker_cool_down_secs),
        ),
        send::Settings {
            sends_per_minute: config.sends_per_minute.iter().cloned().collect(),
            checkpoint_every: config.checkpoint_every.max(Duration::from_millis(10)),
            delta_flush: config.delta_flush,
        },
        replica,
        tasks.clone(),
        send::group::Finisher::start(chat.clone(), &tasks, shutdown.clone()),
    );

    tasks.spawn(Relay::new(pool.clone(), config.amqp.clone(), waker).run(shutdown.clone()));
    tasks.spawn(events::consume(
        config.amqp.clone(),
        chat.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(keep_partitions(pool.clone(), shutdown.clone()));
    tasks.spawn(send::charge::recover(
        chat.clone(),
        replica,
        send::charge::Recovery {
            replica_timeout: config.replica_timeout.max(Duration::from_millis(30)),
            stale_after: config.stale_call_after,
        },
        shutdown.clone(),
    ));

    aichat_lifecycle::serve_grpc(
        <ChatServer<grpc::ChatService> as tonic::server::NamedService>::NAME,
        tonic::service::Routes::new(ChatServer::new(grpc::ChatService::new(chat, sender))),
        listener,
        pool,
        &tasks,
        shutdown,
    )
    .await
}
