//! The account use cases. Each owns its transaction: it opens it, calls the
//! store, writes the outbox rows and queues the mails, commits, and only then
//! wakes the relay and the mail worker. No use case waits for a mail server.
//! Password hashing happens outside transactions.
//!
//! One module per job: `register` (sign-up and email verification),
//! `sessions` (log-in, refresh, log-out, revocation), `recovery`
//! (password reset), `profile` (the user's own account), `api_keys` (the
//! user's API keys and the gateway's check of one), `export` (analytics'
//! backfill). This module holds
//! what they share: the error, the service's dependencies, the event shapes.

mod api_keys;
mod export;
mod profile;
mod recovery;
mod register;
mod sessions;

use std::{net::IpAddr, sync::Arc};

use aichat_events::identity as ev;
use aichat_messaging::{outbox, relay::Waker};
use aichat_tokens::Signer;
use chrono::{Duration, Utc};
use diesel::result::Error as DbError;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::{
    domain::FieldErrors,
    mail::{Mail, Mailer, worker::MailWaker},
    store::{
        self,
        sessions::{self as session_store, Client},
        users::User,
    },
};

/// What a use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input refused field by field.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// Register with an address that has an account.
    #[error("email taken")]
    EmailTaken,
    /// Wrong email or password: the same answer for both.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A refresh token that is unknown, expired, revoked or reused.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A mailed link's token that is unknown, used or expired.
    #[error("invalid or expired link")]
    InvalidLink,
    /// No such thing for this user.
    #[error("not found")]
    NotFound,
    /// An API key that is unknown, malformed, expired or whose account is
    /// gone: one answer for all.
    #[error("invalid api key")]
    InvalidApiKey,
    /// The user holds as many live API keys as allowed.
    #[error("api key limit")]
    ApiKeyLimit,
    /// The database cannot be reached in time.
    #[error("unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an outage we did not plan for.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DbError> for Error {
    /// A lost connection or a cancelled statement is an outage (503), not
    /// a bug.
    fn from(e: DbError) -> Self {
        if aichat_db::is_outage(&e) {
            Self::Unavailable(anyhow::Error::new(e))
        } else {
            Self::Unexpected(anyhow::Error::new(e))
        }
    }
}

impl From<aichat_db::PoolError> for Error {
    fn from(e: aichat_db::PoolError) -> Self {
        Self::Unavailable(anyhow::Error::new(e))
    }
}

fn field(name: &str, reason: &str) -> Error {
    let mut errors = FieldErrors::new();
    errors.insert(name.to_owned(), reason.to_owned());
    Error::Validation(errors)
}

/// A new access + refresh token pair.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub session_id: Uuid,
    /// When the session ends, and the refresh token with it.
    pub refresh_expires_at: chrono::DateTime<chrono::Utc>,
    pub user: User,
}

/// A session as the owner sees it.
pub type SessionView = session_store::Session;

pub use api_keys::{CreatedKey, LAST_USED_THROTTLE};

/// Lifetimes of what the service issues.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub access_token: Duration,
    pub refresh_token: Duration,
    pub verification: Duration,
    pub reset: Duration,
}

/// The identity use cases over their dependencies.
#[derive(Clone)]
pub struct Accounts {
    pool: aichat_db::Pool,
    /// Wakes the outbox relay after a commit that wrote events.
    waker: Waker,
    /// Wakes the mail worker after a commit that queued a mail.
    mail_waker: MailWaker,
    /// Renders the mails; the worker sends them.
    mailer: Mailer,
    signer: Arc<Signer>,
    previous_keys: Vec<aichat_tokens::PublicKey>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    lifetimes: Lifetimes,
}

/// The caller's client as the gateway saw it.
pub fn client(user_agent: &str, ip: &str) -> Client {
    Client {
        user_agent: (!user_agent.is_empty()).then(|| user_agent.chars().take(500).collect()),
        ip_address: ip.parse::<IpAddr>().ok().map(ipnetwork::IpNetwork::from),
    }
}

impl Accounts {
    #[expect(clippy::too_many_arguments, reason = "wired once, in lib.rs")]
    pub fn new(
        pool: aichat_db::Pool,
        waker: Waker,
        mail_waker: MailWaker,
        mailer: Mailer,
        signer: Arc<Signer>,
        previous_keys: Vec<aichat_tokens::PublicKey>,
        issuer: String,
        audience: String,
        lifetimes: Lifetimes,
    ) -> Self {
        Self {
            pool,
            waker,
            mail_waker,
            mailer,
            signer,
            previous_keys,
            issuer,
            audience,
            lifetimes,
        }
    }

    /// The keys access tokens verify with: the current one first, then those
    /// still accepted while rotating.
    pub fn public_keys(&self) -> Vec<aichat_tokens::PublicKey> {
        std::iter::once(self.signer.public_key().clone())
            .chain(self.previous_keys.iter().cloned())
            .collect()
    }

    async fn conn(&self) -> Result<aichat_db::PooledConnection, Error> {
        Ok(self.pool.get().await?)
    }
}

/// Queues `mail` to `user_id`; the worker sends it once the transaction
/// commits.
async fn queue_mail(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    mail: &Mail,
) -> Result<(), DbError> {
    store::mail::enqueue(conn, user_id, &mail.to, &mail.subject, &mail.body)
        .await
        .map(drop)
}

async fn publish_revoked(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    session_ids: Vec<Uuid>,
    reason: &str,
) -> Result<(), DbError> {
    if session_ids.is_empty() {
        return Ok(());
    }
    outbox::enqueue(
        conn,
        &ev::SessionRevoked {
            user_id,
            session_ids,
            reason: reason.to_owned(),
            revoked_at: Utc::now(),
        },
    )
    .await
    .map(drop)
}

/// The user as events describe it.
pub fn snapshot(user: &User) -> ev::UserSnapshot {
    ev::UserSnapshot {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        plan_tier: user.plan_tier.clone(),
        role: user.role.clone(),
        email_verified: user.email_verified == Some(true),
        created_at: user.created_at.unwrap_or_else(store::now).and_utc(),
    }
}
