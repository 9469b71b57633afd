//! The account use cases. Each owns its transaction: it opens it, calls the
//! store, writes the outbox rows, commits, and only then wakes the relay and
//! sends mail. Password hashing happens outside transactions.

use std::{net::IpAddr, sync::Arc};

use aichat_events::identity as ev;
use aichat_messaging::{outbox, relay::Waker};
use aichat_tokens::{AccessClaims, Signer};
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    domain::{DisplayName, Email, FieldErrors, Password, Validator, token},
    hasher,
    mail::Mailer,
    store::{
        self, now,
        sessions::{self, Client},
        tokens::{self as mailed, Purpose},
        users::{self, User},
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
    pub user: User,
}

/// A session as the owner sees it.
pub type SessionView = sessions::Session;

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
    waker: Waker,
    mailer: Mailer,
    signer: Arc<Signer>,
    previous_keys: Vec<aichat_tokens::PublicKey>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    lifetimes: Lifetimes,
    tasks: tokio_util::task::TaskTracker,
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
        mailer: Mailer,
        signer: Arc<Signer>,
        previous_keys: Vec<aichat_tokens::PublicKey>,
        issuer: String,
        audience: String,
        lifetimes: Lifetimes,
        tasks: tokio_util::task::TaskTracker,
    ) -> Self {
        Self {
            pool,
            waker,
            mailer,
            signer,
            previous_keys,
            issuer,
            audience,
            lifetimes,
            tasks,
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

    /// Creates an account and mails the verification link.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> Result<User, Error> {
        let mut v = Validator::default();
        let email = v.check("email", Email::parse(email));
        let name = v.check("name", DisplayName::parse(name));
        let password = v.check(
            "password",
            Password::parse(password, email.as_ref().map(Email::as_str)),
        );
        v.finish().map_err(Error::Validation)?;
        let (Some(email), Some(name), Some(password)) = (email, name, password) else {
            return Err(Error::Unexpected(anyhow::anyhow!(
                "validated fields missing"
            )));
        };
        let hash = hasher::hash(password.expose()).await?;
        let (token, token_hash) = token::generate();
        let expires = (Utc::now() + self.lifetimes.verification).naive_utc();
        let mut conn = self.conn().await?;
        let user = conn
            .transaction::<User, DbError, _>(async |conn| {
                let user =
                    users::insert(conn, Uuid::now_v7(), email.as_str(), &hash, name.as_str())
                        .await?;
                mailed::issue(
                    conn,
                    Purpose::VerifyEmail,
                    user.id,
                    &user.email,
                    &token_hash,
                    expires,
                )
                .await?;
                outbox::enqueue(
                    conn,
                    &ev::UserRegistered {
                        user: snapshot(&user),
                    },
                )
                .await?;
                Ok(user)
            })
            .await
            .map_err(|e| match e {
                DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Error::EmailTaken,
                e => e.into(),
            })?;
        self.waker.wake();
        if let Err(error) = self
            .mailer
            .send_verification(&user.email, &user.name, &token)
            .await
        {
            // The account exists; the user can ask for the mail again.
            tracing::error!(error = format!("{error:#}"), user.id = %user.id, "verification mail not sent");
        }
        Ok(user)
    }

    /// Checks the password and opens a session.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: Client,
    ) -> Result<Tokens, Error> {
        let mut v = Validator::default();
        if email.trim().is_empty() {
            v.refuse("email", "is required");
        }
        if password.is_empty() {
            v.refuse("password", "is required");
        }
        v.finish().map_err(Error::Validation)?;
        let user = match Email::parse(email) {
            Ok(email) => {
                let mut conn = self.conn().await?;
                users::find_active_by_email(&mut conn, email.as_str()).await?
            }
            Err(_) => None,
        };
        // Always one argon2 verification, whether or not the user exists.
        let ok = hasher::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
        let Some(user) = user.filter(|_| ok) else {
            return Err(Error::InvalidCredentials);
        };
        self.open_session(user.id, client).await
    }

    async fn open_session(&self, user_id: Uuid, client: Client) -> Result<Tokens, Error> {
        let (refresh, refresh_hash) = token::generate();
        let expires = (Utc::now() + self.lifetimes.refresh_token).naive_utc();
        let mut conn = self.conn().await?;
        let (user, session_id) = conn
            .transaction::<_, DbError, _>(async |conn| {
                let session = sessions::insert(
                    conn,
                    Uuid::now_v7(),
                    user_id,
                    &refresh_hash,
                    &client,
                    expires,
                )
                .await?;
                let user = users::record_login(conn, user_id).await?;
                outbox::enqueue(
                    conn,
                    &ev::UserLoggedIn {
                        user_id,
                        session_id: session.id,
                        logged_in_at: Utc::now(),
                    },
                )
                .await?;
                Ok((user, session.id))
            })
            .await?;
        self.waker.wake();
        self.tokens(user, session_id, refresh)
    }

    fn tokens(&self, user: User, session_id: Uuid, refresh_token: String) -> Result<Tokens, Error> {
        let iat = Utc::now().timestamp();
        let ttl = self.lifetimes.access_token.num_seconds();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id,
            sid: session_id,
            role: user.role.clone(),
            iat,
            nbf: iat,
            exp: iat + ttl,
            jti: Uuid::now_v7(),
        };
        let access_token = self
            .signer
            .sign(&claims)
            .context("signing an access token")?;
        Ok(Tokens {
            access_token,
            refresh_token,
            expires_in: ttl,
            session_id,
            user,
        })
    }

    /// Rotates a refresh token. A rotated token presented again revokes its
    /// session (the token may have been stolen).
    pub async fn refresh(&self, refresh_token: &str, client: Client) -> Result<Tokens, Error> {
        if !token::well_formed(refresh_token) {
            return Err(Error::InvalidRefreshToken);
        }
        enum Outcome {
            Rotated(User, Uuid),
            Reused,
            Invalid,
        }
        let old_hash = token::hash(refresh_token);
        let (new_token, new_hash) = token::generate();
        let mut conn = self.conn().await?;
        let outcome = conn
            .transaction::<Outcome, DbError, _>(async |conn| {
                let at = now();
                if let Some(session) = sessions::lock_by_token(conn, &old_hash).await? {
                    if !session.is_live(at) {
                        return Ok(Outcome::Invalid);
                    }
                    let Some(user) = users::lock_active(conn, session.user_id).await? else {
                        return Ok(Outcome::Invalid);
                    };
                    sessions::rotate(conn, &session, &old_hash, &new_hash, &client).await?;
                    return Ok(Outcome::Rotated(user, session.id));
                }
                let Some(session) = sessions::find_by_rotated_token(conn, &old_hash).await? else {
                    return Ok(Outcome::Invalid);
                };
                let revoked = sessions::revoke(
                    conn,
                    session.user_id,
                    Some(&[session.id]),
                    None,
                    "refresh_token_reuse",
                )
                .await?;
                publish_revoked(conn, session.user_id, revoked, "refresh_token_reuse").await?;
                Ok(Outcome::Reused)
            })
            .await?;
        match outcome {
            Outcome::Rotated(user, session_id) => self.tokens(user, session_id, new_token),
            Outcome::Reused => {
                self.waker.wake();
                tracing::warn!(
                    "a rotated refresh token was presented again; its session is revoked"
                );
                Err(Error::InvalidRefreshToken)
            }
            Outcome::Invalid => Err(Error::InvalidRefreshToken),
        }
    }

    /// Ends the caller's session.
    pub async fn logout(&self, user_id: Uuid, session_id: Uuid) -> Result<(), Error> {
        self.revoke_sessions(user_id, Some(&[session_id]), None, "logout")
            .await
            .map(drop)
    }

    /// Ends one of the user's sessions; `NotFound` unless it is theirs and live.
    pub async fn revoke_session(&self, user_id: Uuid, session_id: Uuid) -> Result<(), Error> {
        let revoked = self
            .revoke_sessions(user_id, Some(&[session_id]), None, "session_deleted")
            .await?;
        if revoked.is_empty() {
            Err(Error::NotFound)
        } else {
            Ok(())
        }
    }

    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        only: Option<&[Uuid]>,
        except: Option<Uuid>,
        reason: &'static str,
    ) -> Result<Vec<Uuid>, Error> {
        let mut conn = self.conn().await?;
        let revoked = conn
            .transaction::<_, DbError, _>(async |conn| {
                let revoked = sessions::revoke(conn, user_id, only, except, reason).await?;
                publish_revoked(conn, user_id, revoked.clone(), reason).await?;
                Ok(revoked)
            })
            .await?;
        self.waker.wake();
        Ok(revoked)
    }

    /// Verifies the email of the token's user.
    pub async fn verify_email(&self, token: &str) -> Result<User, Error> {
        if token.trim().is_empty() {
            return Err(field("token", "is required"));
        }
        if !token::well_formed(token) {
            return Err(Error::InvalidLink);
        }
        let hash = token::hash(token);
        let mut conn = self.conn().await?;
        let user = conn
            .transaction::<Option<User>, DbError, _>(async |conn| {
                let Some(row) = mailed::present(conn, Purpose::VerifyEmail, &hash).await? else {
                    return Ok(None);
                };
                if !row.usable(now()) {
                    return Ok(None);
                }
                let Some(user) = users::lock_active(conn, row.user_id).await? else {
                    return Ok(None);
                };
                if user.email != row.email
                    || !mailed::consume(conn, Purpose::VerifyEmail, row.id).await?
                {
                    return Ok(None);
                }
                let user = users::mark_verified(conn, user.id).await?;
                outbox::enqueue(
                    conn,
                    &ev::UserEmailVerified {
                        user_id: user.id,
                        email: user.email.clone(),
                        verified_at: Utc::now(),
                    },
                )
                .await?;
                outbox::enqueue(
                    conn,
                    &ev::UserUpdated {
                        user: snapshot(&user),
                    },
                )
                .await?;
                Ok(Some(user))
            })
            .await?;
        self.waker.wake();
        user.ok_or(Error::InvalidLink)
    }

    /// Mails a new verification link (the earlier ones stop working). Does
    /// nothing for a verified address.
    pub async fn resend_verification(&self, user_id: Uuid) -> Result<(), Error> {
        let (token, token_hash) = token::generate();
        let expires = (Utc::now() + self.lifetimes.verification).naive_utc();
        let mut conn = self.conn().await?;
        let user = conn
            .transaction::<Option<User>, DbError, _>(async |conn| {
                let Some(user) = users::lock_active(conn, user_id).await? else {
                    return Ok(None);
                };
                if user.email_verified == Some(true) {
                    return Ok(None);
                }
                mailed::issue(
                    conn,
                    Purpose::VerifyEmail,
                    user.id,
                    &user.email,
                    &token_hash,
                    expires,
                )
                .await?;
                Ok(Some(user))
            })
            .await?;
        if let Some(user) = user {
            self.mailer
                .send_verification(&user.email, &user.name, &token)
                .await
                .context("sending the verification mail")?;
        }
        Ok(())
    }

    /// Mails a reset link if the address has an active account. Answers the
    /// same, in about the same time, either way: the mail leaves in the
    /// background.
    pub async fn forgot_password(&self, email: &str) -> Result<(), Error> {
        let email = Email::parse(email).map_err(|reason| field("email", &reason))?;
        let (token, token_hash) = token::generate();
        let expires = (Utc::now() + self.lifetimes.reset).naive_utc();
        let mut conn = self.conn().await?;
        let user = conn
            .transaction::<Option<User>, DbError, _>(async |conn| {
                let Some(user) = users::find_active_by_email(conn, email.as_str()).await? else {
                    return Ok(None);
                };
                mailed::issue(
                    conn,
                    Purpose::ResetPassword,
                    user.id,
                    &user.email,
                    &token_hash,
                    expires,
                )
                .await?;
                Ok(Some(user))
            })
            .await?;
        if let Some(user) = user {
            let mailer = self.mailer.clone();
            self.tasks.spawn(async move {
                if let Err(error) = mailer.send_password_reset(&user.email, &user.name, &token).await {
                    tracing::error!(error = format!("{error:#}"), user.id = %user.id, "reset mail not sent");
                }
            });
        }
        Ok(())
    }

    /// Sets a new password from a reset link; every session ends.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<(), Error> {
        let mut v = Validator::default();
        if token.trim().is_empty() {
            v.refuse("token", "is required");
        }
        if password.is_empty() {
            v.refuse("password", "is required");
        }
        v.finish().map_err(Error::Validation)?;
        if !token::well_formed(token) {
            return Err(Error::InvalidLink);
        }
        let hash = token::hash(token);
        // First look: count the attempt, check the link, learn the email.
        let mut conn = self.conn().await?;
        let row = conn
            .transaction::<_, DbError, _>(async |conn| {
                mailed::present(conn, Purpose::ResetPassword, &hash).await
            })
            .await?
            .filter(|row| row.usable(now()))
            .ok_or(Error::InvalidLink)?;
        let password =
            Password::parse(password, Some(&row.email)).map_err(|r| field("password", &r))?;
        let password_hash = hasher::hash(password.expose()).await?;
        let done = conn
            .transaction::<bool, DbError, _>(async |conn| {
                let Some(user) = users::lock_active(conn, row.user_id).await? else {
                    return Ok(false);
                };
                if user.email != row.email
                    || !mailed::consume(conn, Purpose::ResetPassword, row.id).await?
                {
                    return Ok(false);
                }
                users::set_password(conn, user.id, &password_hash).await?;
                let revoked = sessions::revoke(conn, user.id, None, None, "password_reset").await?;
                publish_revoked(conn, user.id, revoked, "password_reset").await?;
                Ok(true)
            })
            .await?;
        self.waker.wake();
        if done {
            Ok(())
        } else {
            Err(Error::InvalidLink)
        }
    }

    /// The user.
    pub async fn get_user(&self, user_id: Uuid) -> Result<User, Error> {
        let mut conn = self.conn().await?;
        users::find(&mut conn, user_id)
            .await?
            .filter(|u| u.is_active == Some(true))
            .ok_or(Error::NotFound)
    }

    /// Changes what the user may change about themselves.
    pub async fn update_user(&self, user_id: Uuid, name: Option<&str>) -> Result<User, Error> {
        let Some(name) = name else {
            return self.get_user(user_id).await;
        };
        let name = DisplayName::parse(name).map_err(|r| field("name", &r))?;
        let mut conn = self.conn().await?;
        let user = conn
            .transaction::<Option<User>, DbError, _>(async |conn| {
                if users::lock_active(conn, user_id).await?.is_none() {
                    return Ok(None);
                }
                let user = users::set_name(conn, user_id, name.as_str()).await?;
                outbox::enqueue(
                    conn,
                    &ev::UserUpdated {
                        user: snapshot(&user),
                    },
                )
                .await?;
                Ok(Some(user))
            })
            .await?;
        self.waker.wake();
        user.ok_or(Error::NotFound)
    }

    /// Changes the password; every other session ends.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        current: &str,
        new: &str,
    ) -> Result<(), Error> {
        let user = self.get_user(user_id).await?;
        let mut v = Validator::default();
        if current.is_empty() {
            v.refuse("currentPassword", "is required");
        }
        let new = v.check("newPassword", Password::parse(new, Some(&user.email)));
        v.finish().map_err(Error::Validation)?;
        if !hasher::verify(current, Some(user.password_hash.clone())).await? {
            return Err(field("currentPassword", "is incorrect"));
        }
        let Some(new) = new else {
            return Err(Error::Unexpected(anyhow::anyhow!(
                "validated field missing"
            )));
        };
        let hash = hasher::hash(new.expose()).await?;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            users::set_password(conn, user_id, &hash).await?;
            let revoked =
                sessions::revoke(conn, user_id, None, Some(session_id), "password_changed").await?;
            publish_revoked(conn, user_id, revoked, "password_changed").await
        })
        .await?;
        self.waker.wake();
        Ok(())
    }

    /// Deletes the account after checking the password. Every service
    /// deletes what the user owned when `identity.user.deleted` reaches it.
    pub async fn delete_user(&self, user_id: Uuid, password: &str) -> Result<(), Error> {
        if password.is_empty() {
            return Err(field("password", "is required"));
        }
        let user = self.get_user(user_id).await?;
        if !hasher::verify(password, Some(user.password_hash.clone())).await? {
            return Err(field("password", "is incorrect"));
        }
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let revoked = sessions::revoke(conn, user_id, None, None, "account_deleted").await?;
            publish_revoked(conn, user_id, revoked, "account_deleted").await?;
            users::delete(conn, user_id).await?;
            outbox::enqueue(conn, &ev::UserDeleted { user_id }).await?;
            Ok(())
        })
        .await?;
        self.waker.wake();
        Ok(())
    }

    /// The user's live sessions.
    pub async fn list_sessions(&self, user_id: Uuid) -> Result<Vec<SessionView>, Error> {
        let mut conn = self.conn().await?;
        Ok(sessions::list_live(&mut conn, user_id).await?)
    }

    /// Sessions revoked since `since`.
    pub async fn revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, Error> {
        let mut conn = self.conn().await?;
        Ok(sessions::revoked_since(&mut conn, since.naive_utc())
            .await?
            .into_iter()
            .map(|(id, at)| (id, at.and_utc()))
            .collect())
    }

    /// Makes the user with this email an admin (`make admin`).
    pub async fn make_admin(&self, email: &str) -> Result<User, Error> {
        let email = Email::parse(email).map_err(|r| field("email", &r))?;
        let mut conn = self.conn().await?;
        let user = conn
            .transaction::<Option<User>, DbError, _>(async |conn| {
                let Some(user) = users::set_role_by_email(conn, email.as_str(), "admin").await?
                else {
                    return Ok(None);
                };
                outbox::enqueue(
                    conn,
                    &ev::UserUpdated {
                        user: snapshot(&user),
                    },
                )
                .await?;
                Ok(Some(user))
            })
            .await?;
        self.waker.wake();
        user.ok_or(Error::NotFound)
    }
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
