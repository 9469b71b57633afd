#![doc = include_str!("../README.md")]

pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod hasher;
pub mod mail;
pub mod retention;
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
use mail::worker::MailWaker;
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

/// The broker half of `identity migrate`: declares the event exchange with
/// its alternate exchange, and identity's queue, dead-letter queue and
/// bindings (`billing.subscription.changed`).
pub async fn declare_queues(amqp: &aichat_messaging::AmqpConfig) -> anyhow::Result<()> {
    aichat_messaging::consumer::declare_durable(amqp, &[events::spec()]).await
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

/// The mailer: renders mails and sends them within `SMTP_TIMEOUT_SECS`.
pub fn mailer(config: &Config) -> anyhow::Result<mail::Mailer> {
    mail::Mailer::new(
        &config.mail,
        &config.mail_from,
        &config.public_url,
        config.smtp_timeout,
    )
}

/// The use cases, wired to their dependencies. `waker` wakes the outbox
/// relay, `mail_waker` the mail worker.
pub fn accounts(
    config: &Config,
    pool: aichat_db::Pool,
    waker: Waker,
    mail_waker: MailWaker,
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
        mail_waker,
        mailer(config)?,
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
    ))
}

/// What the retention task keeps, and how often it runs.
pub fn retention(config: &Config) -> anyhow::Result<retention::Retention> {
    Ok(retention::Retention {
        ended: chrono::Duration::days(i64::from(config.retention_days)),
        access_token: chrono::Duration::from_std(config.access_token_ttl)?,
        inbox: aichat_messaging::inbox::DEDUP_WINDOW,
        interval: config.retention_interval,
    })
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

/// Migrates, then serves gRPC on `listener`, relays the outbox, consumes
/// billing's plan changes, sends the
/// queued mails and prunes old rows until `shutdown` is cancelled; returns
/// once all have stopped.
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
    let mail_waker = MailWaker::default();
    let accounts = accounts(&config, pool.clone(), waker.clone(), mail_waker.clone())?;
    hasher::warm_up();

    tasks.spawn(Relay::new(pool.clone(), config.amqp.clone(), waker).run(shutdown.clone()));
    tasks.spawn(events::consume(
        config.amqp.clone(),
        pool.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(
        mail::worker::Worker::new(
            pool.clone(),
            mailer(&config)?,
            mail_waker,
            mail::worker::Retry {
                max_attempts: config.mail_max_attempts.max(1),
                base: config.mail_retry_base,
                max: std::time::Duration::from_secs(600),
            },
            config.smtp_timeout,
        )
        .run(shutdown.clone()),
    );
    tasks.spawn(retention::run(
        pool.clone(),
        retention(&config)?,
        shutdown.clone(),
    ));

    aichat_lifecycle::serve_grpc(
        <IdentityServer<grpc::IdentityService> as tonic::server::NamedService>::NAME,
        tonic::service::Routes::new(IdentityServer::new(grpc::IdentityService::new(accounts))),
        listener,
        pool,
        &tasks,
        shutdown,
    )
    .await
}
