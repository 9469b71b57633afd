#![doc = include_str!("../README.md")]

pub mod account;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
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

/// How patient the user-facing calls are with Stripe: a user waits for
/// them (and the gateway gives up after its gRPC timeout, 15 s by
/// default), and the customer creation holds the user's customer lock,
/// which a concurrent checkout waits for within the database's statement
/// timeout (10 s). Two attempts of 4 s at most.
pub fn account_stripe_settings() -> stripe::Settings {
    stripe::Settings {
        timeout: std::time::Duration::from_secs(4),
        max_retries: 1,
        initial_backoff: std::time::Duration::from_millis(250),
        max_backoff: std::time::Duration::from_secs(1),
    }
}

/// The user's side of paid plans, with a Stripe client when
/// `STRIPE_SECRET_KEY` is set. `waker` wakes the outbox relay.
pub fn account(
    config: &Config,
    pool: aichat_db::Pool,
    waker: Waker,
) -> anyhow::Result<account::Account> {
    let stripe = config
        .stripe
        .as_ref()
        .map(|s| stripe::StripeClient::new(s, account_stripe_settings()))
        .transpose()
        .context("building the Stripe client")?;
    Ok(account::Account::new(
        pool,
        stripe,
        config.public_url.clone(),
        waker,
    ))
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
    let account = account(&config, pool.clone(), waker.clone())?;

    // billing.subscription.changed and the rest of the outbox, to RabbitMQ.
    tasks.spawn(Relay::new(pool.clone(), config.amqp.clone(), waker).run(shutdown.clone()));

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

    // The eager half of the monthly reset, and the reservation sweeper.
    tasks.spawn(maintain(
        metering.clone(),
        pool.clone(),
        config.maintenance_interval,
        shutdown.clone(),
    ));

    aichat_lifecycle::serve_grpc(
        <BillingServer<grpc::BillingService> as tonic::server::NamedService>::NAME,
        tonic::service::Routes::new(BillingServer::new(grpc::BillingService::new(
            metering, webhooks, account,
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
/// inbox entries past the deduplication window.
async fn maintain(
    metering: Metering,
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
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => {}
        }
    }
}
