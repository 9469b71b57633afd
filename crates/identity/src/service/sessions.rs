//! Sessions: log-in, refresh-token rotation, log-out and revocation, and
//! what the gateway needs to refuse a revoked session's access tokens.

use aichat_events::identity as ev;
use aichat_messaging::outbox;
use aichat_tokens::AccessClaims;
use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel::result::Error as DbError;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{Accounts, Error, SessionView, Tokens, publish_revoked};
use crate::{
    domain::{Email, Validator, token},
    hasher,
    store::{
        now,
        sessions::{self, Client},
        users::{self, User},
    },
};

impl Accounts {
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
        self.tokens(user, session_id, expires, refresh)
    }

    fn tokens(
        &self,
        user: User,
        session_id: Uuid,
        session_expires_at: chrono::NaiveDateTime,
        refresh_token: String,
    ) -> Result<Tokens, Error> {
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
            refresh_expires_at: session_expires_at.and_utc(),
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
            Rotated(Box<User>, Uuid, chrono::NaiveDateTime),
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
                    return Ok(Outcome::Rotated(
                        Box::new(user),
                        session.id,
                        session.expires_at,
                    ));
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
            Outcome::Rotated(user, session_id, expires_at) => {
                self.tokens(*user, session_id, expires_at, new_token)
            }
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
}
