//! API keys: a user creates, lists and deletes their own; the gateway
//! checks a presented key (`verify`). Creating holds the user's row lock
//! while it counts the live keys, so concurrent creates never pass the
//! limit. Creating publishes nothing (no service needs it, and an event
//! nobody binds would wait in the unrouted queue). Deleting a key, or the
//! account, publishes
//! `identity.api_key.revoked` per key in the same transaction.

use aichat_events::identity as ev;
use aichat_messaging::outbox;
use chrono::{DateTime, Utc};
use diesel::result::Error as DbError;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::{Accounts, Error};
use crate::{
    domain::{
        Validator,
        api_key::{self, KeyName, MAX_LIVE_KEYS},
    },
    store::{
        api_keys::{self, ApiKey, NewRow, Verified},
        now, users,
    },
};

/// How often a key's `lastUsedAt` is written at most: a used key shows
/// when it was last used to the minute, without a write per request.
pub const LAST_USED_THROTTLE: chrono::Duration = chrono::Duration::seconds(60);

/// A key just created: the row, and the secret shown this once.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Parses an optional RFC 3339 expiry that must lie in the future (`None`:
/// never expires; an empty string is not a time).
fn parse_expiry(raw: Option<&str>, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| "must be an RFC 3339 date-time".to_owned())?
        .with_timezone(&Utc);
    if t <= at {
        return Err("must be in the future".to_owned());
    }
    if t.naive_utc() > at.naive_utc() + chrono::Duration::days(3660) {
        return Err("must be within ten years".to_owned());
    }
    Ok(Some(t))
}

impl Accounts {
    /// Creates a key named `name` that expires at `expires_at` (RFC 3339;
    /// `None`: never). `ApiKeyLimit` when the user has [`MAX_LIVE_KEYS`]
    /// keys that have not expired.
    pub async fn create_api_key(
        &self,
        user_id: Uuid,
        name: &str,
        expires_at: Option<&str>,
    ) -> Result<CreatedKey, Error> {
        let at = Utc::now();
        let mut v = Validator::default();
        let name = v.check("name", KeyName::parse(name));
        let expires_at = v.check("expiresAt", parse_expiry(expires_at, at));
        v.finish().map_err(Error::Validation)?;
        let (Some(name), Some(expires_at)) = (name, expires_at) else {
            return Err(Error::Unexpected(anyhow::anyhow!(
                "validated field missing"
            )));
        };
        let new = api_key::generate();
        enum Outcome {
            Created(ApiKey),
            NoUser,
            Limit,
        }
        let mut conn = self.conn().await?;
        let outcome = conn
            .transaction::<Outcome, DbError, _>(async |conn| {
                // The row lock makes count-then-insert one step per user.
                if users::lock_active(conn, user_id).await?.is_none() {
                    return Ok(Outcome::NoUser);
                }
                let stored_at = now();
                if api_keys::count_live(conn, user_id, stored_at).await? >= MAX_LIVE_KEYS {
                    return Ok(Outcome::Limit);
                }
                let key = api_keys::insert(
                    conn,
                    &NewRow {
                        id: Uuid::now_v7(),
                        user_id,
                        name: name.as_str(),
                        key_hash: &new.hash,
                        prefix: &new.prefix,
                        created_at: stored_at,
                        expires_at: expires_at.map(|t| t.naive_utc()),
                    },
                )
                .await?;
                Ok(Outcome::Created(key))
            })
            .await?;
        match outcome {
            Outcome::Created(key) => Ok(CreatedKey {
                key,
                secret: new.secret,
            }),
            Outcome::NoUser => Err(Error::NotFound),
            Outcome::Limit => Err(Error::ApiKeyLimit),
        }
    }

    /// The user's keys, newest first.
    pub async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, Error> {
        let mut conn = self.conn().await?;
        Ok(api_keys::list(&mut conn, user_id).await?)
    }

    /// Deletes one of the user's keys; `NotFound` unless it is theirs.
    pub async fn revoke_api_key(&self, user_id: Uuid, id: Uuid) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        let deleted = conn
            .transaction::<bool, DbError, _>(async |conn| {
                let Some(key) = api_keys::delete(conn, user_id, id).await? else {
                    return Ok(false);
                };
                publish_key_revoked(conn, user_id, &[key.id], "key_deleted").await?;
                Ok(true)
            })
            .await?;
        if !deleted {
            return Err(Error::NotFound);
        }
        self.waker.wake();
        Ok(())
    }

    /// The key and its owner, if `key` is a live key of an active account;
    /// `InvalidApiKey` otherwise (unknown, malformed, expired, or its
    /// account gone: one answer). Records the use, at most once per
    /// [`LAST_USED_THROTTLE`].
    pub async fn verify_api_key(&self, key: &str) -> Result<Verified, Error> {
        if !api_key::well_formed(key) {
            return Err(Error::InvalidApiKey);
        }
        let hash = api_key::hash(key);
        let mut conn = self.conn().await?;
        let at = now();
        let Some(found) = api_keys::find_by_hash(&mut conn, &hash).await? else {
            return Err(Error::InvalidApiKey);
        };
        if !found.key.is_live(at) {
            return Err(Error::InvalidApiKey);
        }
        if found
            .key
            .last_used_at
            .is_none_or(|t| t < at - LAST_USED_THROTTLE)
        {
            api_keys::touch(&mut conn, found.key.id, at, at - LAST_USED_THROTTLE).await?;
        }
        Ok(found)
    }
}

/// Publishes one `identity.api_key.revoked` per key.
pub(super) async fn publish_key_revoked(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    ids: &[Uuid],
    reason: &str,
) -> Result<(), DbError> {
    let revoked_at = Utc::now();
    for id in ids {
        outbox::enqueue(
            conn,
            &ev::ApiKeyRevoked {
                user_id,
                api_key_id: *id,
                reason: reason.to_owned(),
                revoked_at,
            },
        )
        .await?;
    }
    Ok(())
}

/// The keys of a user about to be deleted: their revocations are published
/// (the rows go with the account, ON DELETE CASCADE).
pub(super) async fn revoke_all_of(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<(), DbError> {
    let ids = api_keys::ids_of(conn, user_id).await?;
    publish_key_revoked(conn, user_id, &ids, "account_deleted").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_optional_rfc3339_and_in_the_future() {
        let at = Utc::now();
        assert_eq!(parse_expiry(None, at), Ok(None));
        assert!(parse_expiry(Some(""), at).is_err());
        assert!(parse_expiry(Some("tomorrow"), at).is_err());
        assert!(parse_expiry(Some("2020-01-01T00:00:00Z"), at).is_err());
        let soon = (at + chrono::Duration::days(1)).to_rfc3339();
        assert!(parse_expiry(Some(&soon), at).unwrap().is_some());
        let far = (at + chrono::Duration::days(4000)).to_rfc3339();
        assert!(parse_expiry(Some(&far), at).is_err());
    }
}
