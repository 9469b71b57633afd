//! Registration and the email verification it starts.

use aichat_events::identity as ev;
use aichat_messaging::outbox;
use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{Accounts, Error, field, queue_mail, snapshot};
use crate::{
    domain::{DisplayName, Email, Password, Validator, token},
    hasher,
    store::{
        now,
        tokens::{self as mailed, Purpose},
        users::{self, User},
    },
};

impl Accounts {
    /// Creates an account and queues the verification mail with it: the
    /// account never exists without its mail on the way, and no mail server
    /// is waited for.
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
                let mail = self.mailer.verification(&user.email, &user.name, &token);
                queue_mail(conn, user.id, &mail).await?;
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
        self.mail_waker.wake();
        Ok(user)
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

    /// Queues a mail with a new verification link (the earlier ones stop
    /// working). Does nothing for a verified address.
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
                let mail = self.mailer.verification(&user.email, &user.name, &token);
                queue_mail(conn, user.id, &mail).await?;
                Ok(Some(user))
            })
            .await?;
        if user.is_some() {
            self.mail_waker.wake();
        }
        Ok(())
    }
}
