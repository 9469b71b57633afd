//! Retention: a periodic task that deletes the rows identity no longer
//! needs, in batches (one short statement each), so its tables stay the
//! size of what is live.
//!
//! | rows | deleted when |
//! |---|---|
//! | sessions (their rotated tokens cascade) | ended (expired or revoked) more than `RETENTION_DAYS` ago |
//! | rotated refresh tokens | their session is no longer live (reuse detection is moot) |
//! | session revocations | older than an access token's life plus an hour: no token of the session can still be valid, so no gateway's deny list needs it |
//! | email verification / password reset tokens | expired more than `RETENTION_DAYS` ago |
//! | API keys | expired more than `RETENTION_DAYS` ago (listed to their owner as expired until then; a deleted key's row goes at once) |
//! | inbox | older than [`aichat_messaging::inbox::DEDUP_WINDOW`] |
//!
//! Published outbox rows are pruned by the outbox relay; sent mails are
//! deleted by the mail worker.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use tokio_util::sync::CancellationToken;

use crate::store::{
    self, Timestamp, api_keys, sessions,
    tokens::{self, Purpose},
};

/// Rows deleted per statement.
const BATCH: i64 = 1000;
/// How long past an access token's life a revocation is kept (clock skew,
/// a gateway's reload window).
const REVOCATION_MARGIN: chrono::Duration = chrono::Duration::hours(1);

/// How long rows are kept, and how often the task runs.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Ended sessions, expired mailed tokens and API keys (`RETENTION_DAYS`).
    pub ended: chrono::Duration,
    /// An access token's life (`ACCESS_TOKEN_TTL_SECS`): revocations are
    /// kept this long plus a margin.
    pub access_token: chrono::Duration,
    /// Applied events' ids.
    pub inbox: chrono::Duration,
    /// Between two rounds (`RETENTION_INTERVAL_SECS`).
    pub interval: Duration,
}

/// What one round deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: usize,
    pub rotated_tokens: usize,
    pub revocations: usize,
    pub mailed_tokens: usize,
    pub api_keys: usize,
    pub inbox: usize,
}

/// Every `interval` (the first round right away), prunes; stops when
/// `shutdown` is cancelled, between two batches at the latest.
pub async fn run(pool: aichat_db::Pool, retention: Retention, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match prune(&pool, &retention, store::now(), &shutdown).await {
            Ok(pruned) if pruned != Pruned::default() => {
                tracing::info!(
                    sessions = pruned.sessions,
                    rotated_tokens = pruned.rotated_tokens,
                    revocations = pruned.revocations,
                    mailed_tokens = pruned.mailed_tokens,
                    api_keys = pruned.api_keys,
                    inbox = pruned.inbox,
                    "retention round"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "retention round failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(retention.interval) => {}
            () = shutdown.cancelled() => {}
        }
    }
}

/// One round, as of `at`.
pub async fn prune(
    pool: &aichat_db::Pool,
    retention: &Retention,
    at: Timestamp,
    shutdown: &CancellationToken,
) -> anyhow::Result<Pruned> {
    let mut conn = pool.get().await?;
    let cutoffs = Cutoffs {
        at,
        ended: at - retention.ended,
        revoked: at - (retention.access_token + REVOCATION_MARGIN),
    };
    let mut pruned = Pruned::default();
    for step in [
        Step::RotatedTokens,
        Step::Sessions,
        Step::Revocations,
        Step::MailedTokens(Purpose::VerifyEmail),
        Step::MailedTokens(Purpose::ResetPassword),
        Step::ApiKeys,
    ] {
        let mut total = 0;
        // Batch after batch until one comes back short (or shutdown).
        while !shutdown.is_cancelled() {
            let n = step.run(&mut conn, &cutoffs).await?;
            total += n;
            if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
                break;
            }
        }
        match step {
            Step::RotatedTokens => pruned.rotated_tokens = total,
            Step::Sessions => pruned.sessions = total,
            Step::Revocations => pruned.revocations = total,
            Step::MailedTokens(_) => pruned.mailed_tokens += total,
            Step::ApiKeys => pruned.api_keys = total,
        }
    }
    pruned.inbox = aichat_messaging::inbox::prune(&mut conn, retention.inbox).await?;
    Ok(pruned)
}

/// The times before which rows go.
struct Cutoffs {
    at: Timestamp,
    ended: Timestamp,
    revoked: Timestamp,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    RotatedTokens,
    Sessions,
    Revocations,
    MailedTokens(Purpose),
    ApiKeys,
}

impl Step {
    /// Deletes one batch; returns its size.
    async fn run(self, conn: &mut AsyncPgConnection, cut: &Cutoffs) -> diesel::QueryResult<usize> {
        match self {
            Self::RotatedTokens => sessions::prune_rotated(conn, cut.at, BATCH).await,
            Self::Sessions => sessions::prune_ended(conn, cut.ended, BATCH).await,
            Self::Revocations => sessions::prune_revocations(conn, cut.revoked, BATCH).await,
            Self::MailedTokens(purpose) => {
                tokens::prune_expired(conn, purpose, cut.ended, BATCH).await
            }
            Self::ApiKeys => api_keys::prune_expired(conn, cut.ended, BATCH).await,
        }
    }
}
