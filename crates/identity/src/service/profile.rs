//! The user's own account: reading it, changing the name or the password,
//! deleting it; and `make admin`.

use aichat_events::identity as ev;
use aichat_messaging::outbox;
use diesel::result::Error as DbError;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{Accounts, Error, field, publish_revoked, snapshot};
use crate::{
    domain::{DisplayName, Email, Password, Validator},
    hasher,
    store::{
        sessions,
        users::{self, User},
    },
};

impl Accounts {
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
    /// deletes what the user owned when `identity.user.deleted` reaches it;
    /// the API keys go at once, each with an `identity.api_key.revoked`.
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
            super::api_keys::revoke_all_of(conn, user_id).await?;
            users::delete(conn, user_id).await?;
            outbox::enqueue(conn, &ev::UserDeleted { user_id }).await?;
            Ok(())
        })
        .await?;
        self.waker.wake();
        Ok(())
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
