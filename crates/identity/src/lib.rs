#![doc = include_str!("../README.md")]

pub mod config;
pub mod domain;
pub mod grpc;
pub mod hasher;
pub mod mail;
pub mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use aichat_messaging::relay::{Relay, Waker};
use aichat_proto::identity::v1::identity_server::IdentityServer;
use aichat_tokens::{PublicKey, Signer};
use anyhow::Context;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::Config;
use service::{Accounts, Lifetimes};

/// The identity database's migrations, embedded in the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/identity");

/// Runs the pending migrations (advisory-locked, idempotent).
pub async fn migrate(database_url: &str) -> anyhow::Result<usize> {
    aichat_db::migrate(database_url, "identity", &MIGRATIONS).await
}

/// The signing key: from `JWT_PRIVATE_KEY_FILE`, or a new one for this run.
pub fn signer(config: &Config) -> anyhow::Result<Signer> {
    match &config.jwt_private_key_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading JWT_PRIVATE_KEY_FILE {}", path.display()))?;
            Signer::from_pem(&pem).context("JWT_PRIVATE_KEY_FILE")
        }
        None => {
            tracing::warn!(
                "JWT_PRIVATE_KEY_FILE is not set: signing with a key made for this run; \
                 tokens will not survive a restart"
            );
            Ok(Signer::generate())
        }
    }
}

/// The use cases, wired to their dependencies.
pub fn accounts(
    config: &Config,
    pool: aichat_db::Pool,
    waker: Waker,
    tasks: TaskTracker,
) -> anyhow::Result<Accounts> {
    let previous = config
        .jwt_previous_public_keys
        .iter()
        .map(|x| PublicKey::from_x(x))
        .collect::<Result<Vec<_>, _>>()
        .context("JWT_PREVIOUS_PUBLIC_KEYS")?;
    Ok(Accounts::new(
        pool,
        waker,
        mail::Mailer::new(&config.mail, &config.mail_from, &config.public_url)?,
        Arc::new(signer(config)?),
        previous,
        config.jwt_issuer.clone(),
        config.jwt_audience.clone(),
        Lifetimes {
            access_token: chrono::Duration::from_std(config.access_token_ttl)?,
            refresh_token: chrono::Duration::from_std(config.refresh_token_ttl)?,
            verification: chrono::Duration::hours(24),
            reset: chrono::Duration::hours(1),
        },
        tasks,
    ))
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

/// Migrates, then serves gRPC on `listener` and relays the outbox until
/// `shutdown` is cancelled; returns once both have stopped.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    migrate(&config.database_url)
        .await
        .context("migrating the identity database")?;
    let pool = pool(&config)?;
    let tasks = TaskTracker::new();
    let waker = Waker::default();
    let accounts = accounts(&config, pool.clone(), waker.clone(), tasks.clone())?;
    hasher::warm_up();

    tasks.spawn(Relay::new(pool.clone(), config.amqp.clone(), waker).run(shutdown.clone()));

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<IdentityServer<grpc::IdentityService>>()
        .await;
    // Readiness follows the database: NOT_SERVING while it cannot be reached.
    {
        let pool = pool.clone();
        let shutdown = shutdown.clone();
        let reporter = health_reporter.clone();
        tasks.spawn(async move {
            loop {
                let up = aichat_db::check(&pool).await.is_ok();
                if up {
                    reporter
                        .set_serving::<IdentityServer<grpc::IdentityService>>()
                        .await;
                } else {
                    reporter
                        .set_not_serving::<IdentityServer<grpc::IdentityService>>()
                        .await;
                }
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            reporter
                .set_not_serving::<IdentityServer<grpc::IdentityService>>()
                .await;
        });
    }

    let addr = listener.local_addr()?;
    tracing::info!(%addr, "identity gRPC listening");
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .trace_fn(|request| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let span =
                tracing::info_span!("grpc", path = %request.uri().path(), request_id = %request_id);
            // Continue the caller's trace (W3C trace context in the metadata).
            let headers: std::collections::HashMap<String, String> = ["traceparent", "tracestate"]
                .into_iter()
                .filter_map(|k| {
                    Some((
                        k.to_owned(),
                        request.headers().get(k)?.to_str().ok()?.to_owned(),
                    ))
                })
                .collect();
            if !headers.is_empty() {
                aichat_telemetry::set_parent_from_headers(&span, &headers);
            }
            span
        })
        .add_service(health_service)
        .add_service(IdentityServer::new(grpc::IdentityService::new(accounts)))
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    let served = server.await.context("serving gRPC");
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!("identity stopped");
    served
}
