#![doc = include_str!("../README.md")]

pub mod account;
pub mod config;
pub mod domain;
pub mod events;
pub mod export;
pub mod grpc;
pub mod invoicing;
pub mod reconcile;
pub mod service;
pub mod store;
pub mod stripe;
pub mod stripe_sync;
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
use reconcile::Reconciler;
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

/// A client of Stripe's API; `None` without `STRIPE_SECRET_KEY`.
pub fn stripe_client(config: &Config) -> anyhow::Result<Option<stripe::StripeClient>> {
    config
        .stripe
        .as_ref()
        .map(|stripe| stripe::StripeClient::new(stripe, stripe::Settings::default()))
        .transpose()
        .context("building the Stripe client")
}

/// The use cases, wired to their dependencies.
pub fn metering(config: &Config, pool: aichat_db::Pool) -> anyhow::Result<Metering> {
    let ttl = chrono::Duration::from_std(config.reservation_ttl).context("RESERVATION_TTL_SECS")?;
    Ok(Metering::new(pool, ttl).with_stripe(stripe_client(config)?))
}

/// Reconciliation with Stripe and the period-end step. `waker` wakes the
/// outbox relay.
pub fn reconciler(
    config: &Config,
    pool: aichat_db::Pool,
    waker: Waker,
) -> anyhow::Result<Reconciler> {
    Ok(Reconciler::new(pool, stripe_client(config)?, waker))
}

/// `billing stripe-sync`: the paid plans' Products and Prices in Stripe,
/// their ids in `plans`. Without Stripe configured it logs so and does
/// nothing.
pub async fn stripe_sync(config: &Config) -> anyhow::Result<Option<stripe_sync::Synced>> {
    let Some(stripe) = stripe_client(config)? else {
        tracing::info!("STRIPE_SECRET_KEY is not set: no prices to sync");
        return Ok(None);
    };
    let pool = pool(config)?;
    stripe_sync::sync(&pool, &stripe).await.map(Some)
}

/// `billing reconcile`: one reconciliation with Stripe (waiting for no
/// replica: the lock is taken or the run is skipped). Without Stripe
/// configured it logs so and does nothing.
pub async fn reconcile_once(config: &Config) -> anyhow::Result<Option<reconcile::Reconciled>> {
    if config.stripe.is_none() {
        tracing::info!("STRIPE_SECRET_KEY is not set: nothing to reconcile");
        return Ok(None);
    }
    let reconciler = reconciler(config, pool(config)?, Waker::default())?;
    match reconciler.reconcile_exclusively().await? {
        Some(done) => Ok(Some(done)),
        None => {
            tracing::info!("another billing is reconciling; skipped");
            Ok(None)
        }
    }
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
    let reconciler = reconciler(&config, pool.clone(), waker.clone())?;
    let account = account(&config, pool.clone(), waker.clone())?;

    // billing.subscription.changed and the rest of the outbox, to RabbitMQ.
    tasks.spawn(Relay::new(pool.clone(), config.amqp.clone(), waker.clone()).run(shutdown.clone()));

    // Events: runs of usage events up to `consume_batch` at once in one
    // transaction, two such batches at once; anything else (and a batch
    // that fails) one at a time, each in its own transaction.
    {
        let (one, batch) = (metering.clone(), metering.clone());
        let handler = move |envelope| {
            let metering = one.clone();
            async move { events::handle(&metering, envelope).await }
        };
        tasks.spawn(aichat_messaging::consumer::run_batched(
            config.amqp.clone(),
            events::spec(),
            aichat_messaging::consumer::Batch {
                max: config.consume_batch,
                wait: events::BATCH_WAIT,
                in_flight: events::BATCHES_IN_FLIGHT,
            },
            shutdown.clone(),
            || async {},
            handler,
            move |envelopes| {
                let metering = batch.clone();
                async move { events::handle_batch(&metering, envelopes).await }
            },
        ));
    }

    // The eager half of the monthly reset, the reservation sweeper, the
    // period-end step and the overdue invoices.
    tasks.spawn(maintain(
        metering.clone(),
        reconciler.clone(),
        invoicing::Overdue::new(pool.clone()),
        waker,
        pool.clone(),
        config.maintenance_interval,
        shutdown.clone(),
    ));

    // Local drift from Stripe (a lost webhook) repaired periodically.
    if config.stripe.is_some() {
        tasks.spawn(reconcile_periodically(
            reconciler,
            config.reconcile_interval,
            shutdown.clone(),
        ));
    }

    aichat_lifecycle::serve_grpc(
        <BillingServer<grpc::BillingService> as tonic::server::NamedService>::NAME,
        tonic::service::Routes::new(BillingServer::new(grpc::BillingService::new(
            metering,
            webhooks,
            account,
            export::Exports::new(pool.clone()),
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
/// inbox entries past the deduplication window, lowers quotas whose
/// subscription period ended ([`Reconciler::period_ends`]), and marks the
/// open invoices past their due date overdue (once per invoice: "daily" is
/// the marker's, not the interval's), waking the relay for their events.
async fn maintain(
    metering: Metering,
    reconciler: Reconciler,
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
        match reconciler.period_ends(chrono::Utc::now()).await {
            Ok(done) if done != reconcile::PeriodEnds::default() => {
                tracing::info!(
                    subscriptions.refreshed = done.refreshed,
                    usage.lowered = done.lowered,
                    "period ends applied"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "period-end step failed");
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

/// Every `interval` (the first time one interval after start), one
/// reconciliation with Stripe, on one replica at a time: the others find
/// the advisory lock taken and skip their turn.
async fn reconcile_periodically(
    reconciler: Reconciler,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        match reconciler.reconcile_exclusively().await {
            Ok(Some(done)) => tracing::info!(
                subscriptions.listed = done.listed,
                subscriptions.repaired = done.repaired,
                subscriptions.skipped = done.skipped,
                subscriptions.failed = done.failed,
                "reconciled with Stripe"
            ),
            Ok(None) => tracing::debug!("another replica is reconciling"),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "reconciliation with Stripe failed"
                );
            }
        }
    }
}
