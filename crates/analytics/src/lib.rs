#![doc = include_str!("../README.md")]

pub mod backfill;
pub mod config;
pub mod events;
pub mod grpc;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use aichat_proto::{
    analytics::v1::analytics_server::AnalyticsServer,
    billing::v1::{Empty, billing_client::BillingClient},
};
use anyhow::Context;
use chrono::Datelike;
use diesel_async::AsyncConnection;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::Config;

/// The analytics database's migrations, embedded in the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/analytics");

/// Runs the pending migrations (advisory-locked, idempotent).
pub async fn migrate(database_url: &str) -> anyhow::Result<usize> {
    aichat_db::migrate(database_url, "analytics", &MIGRATIONS).await
}

/// The broker half of `analytics migrate`: declares the event exchange (with
/// its alternate exchange) and analytics' queue, dead-letter queue and
/// bindings, so that events published before analytics first consumes wait
/// in its queue.
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

/// `analytics backfill`: reads the owning services' rows
/// (`IDENTITY_GRPC_URL`, `CHAT_GRPC_URL`, `BILLING_GRPC_URL`) into the read
/// models, resuming an unfinished run.
pub async fn backfill(config: &Config) -> anyhow::Result<backfill::Report> {
    let url = |value: &Option<String>, name: &str| {
        value
            .clone()
            .with_context(|| format!("{name} must be set for a backfill"))
    };
    let mut exporter = backfill::GrpcExporter::new(
        &url(&config.identity_grpc_url, "IDENTITY_GRPC_URL")?,
        &url(&config.chat_grpc_url, "CHAT_GRPC_URL")?,
        &url(&config.billing_grpc_url, "BILLING_GRPC_URL")?,
    )?;
    migrate(&config.database_url)
        .await
        .context("migrating the analytics database")?;
    let pool = pool(config)?;
    backfill::run(&pool, &mut exporter, backfill::PAGE_SIZE).await
}

/// Reads billing's plans (ListPlans) into `plans` and takes today's MRR
/// snapshot; returns how many plans it read.
pub async fn sync_plans(pool: &aichat_db::Pool, billing_url: &str) -> anyhow::Result<usize> {
    let mut client = BillingClient::connect(billing_url.to_owned())
        .await
        .context("connecting to billing")?;
    let plans = client
        .list_plans(Empty {})
        .await
        .context("ListPlans")?
        .into_inner()
        .items
        .iter()
        .map(backfill::plan)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut conn = pool.get().await?;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        for plan in &plans {
            store::apply::plan(conn, plan).await?;
        }
        store::apply::snapshot_mrr(conn).await
    })
    .await?;
    Ok(plans.len())
}

/// Migrates, then serves gRPC on `listener`, consumes events and runs the
/// maintenance round until `shutdown` is cancelled; returns once all have
/// stopped.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    migrate(&config.database_url)
        .await
        .context("migrating the analytics database")?;
    let pool = pool(&config)?;
    let tasks = TaskTracker::new();

    // Events: up to `consume_batch` at once in one transaction (1: each in
    // its own), two such transactions at once; a failed batch is applied
    // again one event at a time.
    {
        let (one, batch_pool) = (pool.clone(), pool.clone());
        let handler = move |envelope| {
            let pool = one.clone();
            async move { events::handle(&pool, envelope).await }
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
                let pool = batch_pool.clone();
                async move { events::handle_batch(&pool, envelopes).await }
            },
        ));
    }

    tasks.spawn(maintain(
        pool.clone(),
        config.billing_grpc_url.clone(),
        config.maintenance_interval,
        shutdown.clone(),
    ));

    aichat_lifecycle::serve_grpc(
        <AnalyticsServer<grpc::AnalyticsService> as tonic::server::NamedService>::NAME,
        tonic::service::Routes::new(AnalyticsServer::new(grpc::AnalyticsService::new(
            pool.clone(),
        ))),
        listener,
        pool,
        &tasks,
        shutdown,
    )
    .await
}

/// Every `interval` (and once at start): billing's plans (when
/// `BILLING_GRPC_URL` is set), today's MRR snapshot, the next 13 months'
/// partitions.
async fn maintain(
    pool: aichat_db::Pool,
    billing_url: Option<String>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if let Some(url) = &billing_url {
            match sync_plans(&pool, url).await {
                Ok(plans) => tracing::debug!(plans, "plans read from billing"),
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "reading billing's plans failed; the next round tries again"
                ),
            }
        }
        let round = async {
            let mut conn = pool.get().await?;
            let today = chrono::Utc::now().date_naive();
            let first = today.with_day(1).unwrap_or(today);
            let created = store::ensure_partitions(&mut conn, first, 13).await?;
            store::apply::snapshot_mrr(&mut conn).await?;
            anyhow::Ok(created)
        }
        .await;
        match round {
            Ok(0) => {}
            Ok(created) => tracing::info!(created, "partitions created"),
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
