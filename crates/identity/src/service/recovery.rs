//! Password recovery: the mailed reset link and the reset it allows.

use chrono::Utc;
use diesel::result::Error as DbError;
use diesel_async::AsyncConnection;

use super::{Accounts, Error, field, publish_revoked, queue_mail};
use crate::{
    domain::{Email, Password, Validator, token},
    hasher,
    store::{
        now, sessions,
        tokens::{self as mailed, Purpose},
        users::{self, User},
    },
};

impl Accounts {
    /// Queues a mail with a reset link if the address has an active account.
    /// Answers the same, in about the same time, either way: the mail leaves
    /// from the mail worker.
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
                let mail = self.mailer.password_reset(&user.email, &user.name, &token);
                queue_mail(conn, user.id, &mail).await?;
                Ok(Some(user))
            })
            .await?;
        if user.is_some() {
            self.mail_waker.wake();
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
}
