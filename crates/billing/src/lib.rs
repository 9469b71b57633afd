#![doc = include_str!("../README.md")]

pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod invoicing;
pub mod service;
pub mod store;
pub mod stripe;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

use aichat_messaging::relay::{Relay, Waker};
use aichat_proto::billing::v1::billing_server::BillingServer;
use anyhow::Context;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::Config;
use service::Metering;

/// The billing database's migrations, embedded in the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/billing");

/// Runs the pending migrations (advisory-locked, idempotent).
pub async fn migrate(database_url: &str) -> anyhow::Result<usize> {
    aichat_db::migrate(database_url, "billing", &MIGRATIONS).await
}

/// The broker half of `billing migrate`: declares the event exchange (with its
/// alternate exchange) and billing's queue, dead-letter queue and bindings, so
/// that events published before billing first consumes wait in its queue.
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

/// The use cases, wired to their dependencies.
pub fn metering(config: &Config, pool: aichat_db::Pool) -> anyhow::Result<Metering> {
    let ttl = chrono::Duration::from_std(config.reservation_ttl).context("RESERVATION_TTL_SECS")?;
    Ok(Metering::new(pool, ttl))
}

/// Stripe's webhooks, verified with `STRIPE_WEBHOOK_SECRET` (none without
/// Stripe configured). `waker` wakes the outbox relay.
pub fn webhooks(config: &Config, pool: aichat_db::Pool, waker: Waker) -> webhooks::StripeWebhooks {
    let secrets = config
        .stripe
        .as_ref()
        .map(|s| s.webhook_secrets.clone())
        .unwrap_or_default();
    webhooks::StripeWebhooks::new(pool, secrets, waker)
}

/// Migrates, then serves gRPC on `listener`, consumes events and runs the
/// monthly rollover until `shutdown` is cancelled; returns once all have
/// stopped.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    migrate(&config.database_url)
        .await
        .context("migrating the billing database")?;
    let pool = pool(&config)?;
    let tasks = TaskTracker::new();
    let metering = metering(&config, pool.clone())?;
    let waker = Waker::default();
    let webhooks = webhooks(&config, pool.clone(), waker.clone());

    // billing.subscription.changed and the rest of the outbox, to RabbitMQ.
    tasks.spawn(Relay::new(pool.clone(), config.amqp.clone(), waker.clone()).run(shutdown.clone()));

    // Events: applied one at a time, each in its own transaction.
    {
        let metering = metering.clone();
        tasks.spawn(aichat_messaging::consumer::run(
            config.amqp.clone(),
            events::spec(),
            shutdown.clone(),
            || async {},
            move |envelope| {
                let metering = metering.clone();
                async move { events::handle(&metering, envelope).await }
            },
        ));
    }

    // The eager half of the monthly reset, the reservation sweeper and the
    // overdue invoices.
    tasks.spawn(maintain(
        metering.clone(),
        invoicing::Overdue::new(pool.clone()),
        waker,
        pool.clone(),
        config.maintenance_interval,
        shutdown.clone(),
    ));

    aichat_lifecycle::serve_grpc(
        <BillingServer<grpc::BillingService> as tonic::server::NamedService>::NAME,
        tonic::service::Routes::new(BillingServer::new(grpc::BillingService::new(
            metering, webhooks,
        ))),
        listener,
        pool,
        &tasks,
        shutdown,
    )
    .await
}

/// Every `interval` (and once at start): resets the usage rows of past
/// months and deletes expired reservations. Requests do both lazily for the
/// rows they touch; this keeps idle rows and the table tidy. Also forgets
/// inbox entries past the deduplication window, and marks the open
/// invoices past their due date overdue (once per invoice: "daily" is the
/// marker's, not the interval's), waking the relay for their events.
async fn maintain(
    metering: Metering,
    overdue: invoicing::Overdue,
    waker: Waker,
    pool: aichat_db::Pool,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        aichat_messaging::inbox::prune_expired(&pool).await;
        match metering.maintain(chrono::Utc::now()).await {
            Ok(done) if done != service::Maintenance::default() => {
                tracing::info!(
                    usage.rolled_over = done.rolled_over,
                    reservations.expired = done.expired,
                    "maintenance round"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "maintenance round failed");
            }
        }
        match overdue.mark(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(marked) => {
                tracing::info!(invoices.overdue = marked, "overdue invoices marked");
                waker.wake();
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "marking overdue invoices failed"
                );
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => {}
        }
    }
}
