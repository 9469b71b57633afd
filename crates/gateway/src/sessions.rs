//! What the gateway knows about access tokens without asking identity on
//! every request: the signing keys, and the sessions revoked before their
//! access tokens expire (the deny list).
//!
//! The deny list is loaded from identity's `ListRevokedSessions` at start-up,
//! before any token is accepted (whether or not RabbitMQ can be reached),
//! then fed by `identity.session.revoked` events (a private queue per
//! gateway), reloaded after every (re)connection to RabbitMQ and every
//! `REVOCATION_RESYNC_SECS` (which bounds how late a revocation is seen while
//! the broker is away or an event is lost), and filled at once by this
//! gateway's own log-outs. An entry lives as long as an access token can.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aichat_proto::identity::v1::{
    Empty, ListRevokedSessionsRequest, identity_client::IdentityClient,
};
use aichat_tokens::{AccessClaims, PublicKey, TokenError, Verifier};
use tonic::transport::Channel;
use uuid::Uuid;

/// Verified tokens remembered at most (then the cache starts over).
const MAX_VERIFIED: usize = 100_000;

/// The key set and deny list, shared by all workers.
pub struct Sessions {
    verifier: RwLock<Option<Arc<Verifier>>>,
    /// Tokens whose signature and claims were checked already. An access
    /// token is sent with every request for 15 minutes; checking an Ed25519
    /// signature costs tens of microseconds, a look-up far less. Expiry and
    /// revocation are still checked on every request; the cache is emptied
    /// whenever the key set is reloaded.
    verified: Mutex<HashMap<String, AccessClaims>>,
    last_key_fetch: Mutex<Option<Instant>>,
    revoked: RwLock<HashMap<Uuid, Instant>>,
    /// Whether the deny list was loaded from identity once: until then a
    /// revoked token cannot be told from a live one, so none is accepted.
    revocations_loaded: AtomicBool,
    /// Whether the revocation event consumer has bound its queue (since
    /// start-up; shown by `/readyz?verbose`).
    events_subscribed: AtomicBool,
    /// How long an access token lives: how long a revocation must be kept.
    token_ttl: Duration,
    identity: IdentityClient<Channel>,
}

/// Why a bearer token is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Bad signature, expired, wrong issuer...
    Invalid,
    /// The session was revoked.
    Revoked,
    /// Tokens cannot be checked yet: the signing keys or the deny list have
    /// not been loaded from identity since start-up.
    NotReady,
}

impl Sessions {
    pub fn new(identity: IdentityClient<Channel>, token_ttl: Duration) -> Self {
        Self {
            verifier: RwLock::new(None),
            verified: Mutex::new(HashMap::new()),
            last_key_fetch: Mutex::new(None),
            revoked: RwLock::new(HashMap::new()),
            revocations_loaded: AtomicBool::new(false),
            events_subscribed: AtomicBool::new(false),
            token_ttl,
            identity,
        }
    }

    /// Whether the signing keys are loaded (part of readiness).
    pub fn has_keys(&self) -> bool {
        self.verifier.read().is_ok_and(|v| v.is_some())
    }

    /// Whether the deny list was loaded from identity (part of readiness).
    pub fn has_revocations(&self) -> bool {
        self.revocations_loaded.load(Ordering::Acquire)
    }

    /// Whether tokens can be checked: keys and deny list loaded.
    pub fn is_ready(&self) -> bool {
        self.has_keys() && self.has_revocations()
    }

    /// Notes that the revocation event consumer is bound to its queue.
    pub fn events_subscribed(&self) {
        self.events_subscribed.store(true, Ordering::Release);
    }

    /// Whether the revocation event consumer has bound its queue.
    pub fn has_subscribed_to_events(&self) -> bool {
        self.events_subscribed.load(Ordering::Acquire)
    }

    /// Fetches the key set from identity.
    pub async fn refresh_keys(&self) -> anyhow::Result<()> {
        if let Ok(mut last) = self.last_key_fetch.lock() {
            *last = Some(Instant::now());
        }
        let keys = self
            .identity
            .clone()
            .get_signing_keys(Empty {})
            .await?
            .into_inner();
        let public: Vec<PublicKey> = keys
            .keys
            .iter()
            .map(|k| PublicKey::from_x(&k.x))
            .collect::<Result<_, _>>()?;
        let verifier = Verifier::new(&public, &keys.issuer, &keys.audience)?;
        if let Ok(mut slot) = self.verifier.write() {
            *slot = Some(Arc::new(verifier));
        }
        if let Ok(mut verified) = self.verified.lock() {
            verified.clear();
        }
        tracing::debug!(keys = public.len(), "signing keys loaded");
        Ok(())
    }

    /// The claims of a valid, unrevoked access token. A token signed with a
    /// key we do not know yet triggers one key refresh (at most every 5 s),
    /// so a key rotation at identity needs no gateway restart.
    pub async fn authenticate(&self, token: &str) -> Result<AccessClaims, Refusal> {
        if !self.has_revocations() {
            return Err(Refusal::NotReady);
        }
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|v| v.get(token).cloned());
        let claims = match cached {
            Some(claims) => {
                let now = chrono::Utc::now().timestamp();
                if claims.exp <= now {
                    return Err(Refusal::Invalid);
                }
                claims
            }
            None => {
                let claims = self.verify(token).await?;
                if let Ok(mut verified) = self.verified.lock() {
                    if verified.len() >= MAX_VERIFIED {
                        verified.clear();
                    }
                    verified.insert(token.to_owned(), claims.clone());
                }
                claims
            }
        };
        if self.is_revoked(claims.sid) {
            return Err(Refusal::Revoked);
        }
        Ok(claims)
    }

    async fn verify(&self, token: &str) -> Result<AccessClaims, Refusal> {
        match self.current_verifier()?.verify(token) {
            Ok(claims) => Ok(claims),
            Err(TokenError::UnknownKey) if self.may_refetch_keys() => {
                if let Err(error) = self.refresh_keys().await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "refreshing signing keys failed"
                    );
                }
                self.current_verifier()?
                    .verify(token)
                    .map_err(|_| Refusal::Invalid)
            }
            Err(_) => Err(Refusal::Invalid),
        }
    }

    fn current_verifier(&self) -> Result<Arc<Verifier>, Refusal> {
        self.verifier
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(Refusal::NotReady)
    }

    fn may_refetch_keys(&self) -> bool {
        self.last_key_fetch
            .lock()
            .map(|last| last.is_none_or(|t| t.elapsed() > Duration::from_secs(5)))
            .unwrap_or(false)
    }

    /// Whether the session is on the deny list.
    pub fn is_revoked(&self, session_id: Uuid) -> bool {
        self.revoked
            .read()
            .is_ok_and(|r| r.contains_key(&session_id))
    }

    /// How long a revocation is kept: as long as one of the session's access
    /// tokens may be alive, with a minute for clock skew.
    fn keep(&self) -> Duration {
        self.token_ttl + Duration::from_secs(60)
    }

    /// Puts sessions revoked just now on the deny list.
    pub fn revoke(&self, session_ids: impl IntoIterator<Item = Uuid>) {
        let until = Instant::now() + self.keep();
        self.deny_until(session_ids.into_iter().map(|id| (id, until)));
    }

    /// Puts sessions on the deny list until the given instants; an entry is
    /// never shortened.
    fn deny_until(&self, entries: impl IntoIterator<Item = (Uuid, Instant)>) {
        if let Ok(mut revoked) = self.revoked.write() {
            for (id, until) in entries {
                let slot = revoked.entry(id).or_insert(until);
                *slot = (*slot).max(until);
            }
        }
    }

    /// Drops entries whose tokens have all expired.
    pub fn prune(&self) {
        let now = Instant::now();
        if let Ok(mut revoked) = self.revoked.write() {
            revoked.retain(|_, until| *until > now);
        }
    }

    /// Rebuilds the deny list from identity: every revocation recent enough
    /// for one of its access tokens to be alive.
    pub async fn load_revocations(&self) -> anyhow::Result<usize> {
        let window = chrono::Duration::from_std(self.keep())?;
        let now = chrono::Utc::now();
        let since = now - window;
        let answer = self
            .identity
            .clone()
            .list_revoked_sessions(ListRevokedSessionsRequest {
                since: Some(aichat_proto::Timestamp {
                    seconds: since.timestamp(),
                    nanos: 0,
                }),
            })
            .await?
            .into_inner();
        // Kept for what is left of their window, not a whole one from now:
        // reloaded every REVOCATION_RESYNC_SECS, they would never expire.
        let started = Instant::now();
        let entries: Vec<(Uuid, Instant)> = answer
            .items
            .iter()
            .filter_map(|r| {
                let id = Uuid::parse_str(&r.session_id).ok()?;
                let revoked_at = r
                    .revoked_at
                    .as_ref()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
                    .unwrap_or(now);
                Some((id, started + remaining(self.keep(), revoked_at, now)))
            })
            .collect();
        let n = entries.len();
        self.deny_until(entries);
        self.revocations_loaded.store(true, Ordering::Release);
        Ok(n)
    }
}

/// What is left at `now` of a revocation's `keep` window that began at
/// `revoked_at` (all of it if the clocks disagree the other way).
fn remaining(
    keep: Duration,
    revoked_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Duration {
    let age = (now - revoked_at).to_std().unwrap_or(Duration::ZERO);
    keep.saturating_sub(age)
}

#[cfg(test)]
mod tests {
    use aichat_tokens::Signer;
    use tonic::transport::Endpoint;

    use super::*;

    fn token(signer: &Signer) -> (String, AccessClaims) {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "identity".into(),
            aud: "aichat".into(),
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            role: "user".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: Uuid::now_v7(),
        };
        (signer.sign(&claims).unwrap(), claims)
    }

    #[tokio::test]
    async fn no_token_is_accepted_before_the_deny_list_is_loaded() {
        // Identity is unreachable: nothing but this test loads anything.
        let identity =
            IdentityClient::new(Endpoint::from_static("http://127.0.0.1:1").connect_lazy());
        let sessions = Sessions::new(identity, Duration::from_secs(900));
        let signer = Signer::generate();
        let verifier = Verifier::new(&[signer.public_key().clone()], "identity", "aichat").unwrap();
        *sessions.verifier.write().unwrap() = Some(Arc::new(verifier));
        let (token, claims) = token(&signer);

        assert!(sessions.has_keys() && !sessions.is_ready());
        assert_eq!(sessions.authenticate(&token).await, Err(Refusal::NotReady));
        assert!(sessions.load_revocations().await.is_err());
        assert_eq!(sessions.authenticate(&token).await, Err(Refusal::NotReady));

        // Once loaded (here: as if identity had answered an empty list).
        sessions.revocations_loaded.store(true, Ordering::Release);
        assert!(sessions.is_ready());
        assert_eq!(sessions.authenticate(&token).await, Ok(claims.clone()));
        sessions.revoke([claims.sid]);
        assert_eq!(sessions.authenticate(&token).await, Err(Refusal::Revoked));
    }

    #[test]
    fn a_loaded_revocation_is_kept_for_what_is_left_of_its_window() {
        let keep = Duration::from_secs(960);
        let now = chrono::Utc::now();
        let ten_minutes_ago = now - chrono::Duration::minutes(10);
        assert_eq!(
            remaining(keep, ten_minutes_ago, now),
            Duration::from_secs(360)
        );
        let long_ago = now - chrono::Duration::hours(1);
        assert_eq!(remaining(keep, long_ago, now), Duration::ZERO);
        let ahead = now + chrono::Duration::seconds(5);
        assert_eq!(remaining(keep, ahead, now), keep);
    }

    #[tokio::test]
    async fn an_entry_is_never_shortened() {
        let identity =
            IdentityClient::new(Endpoint::from_static("http://127.0.0.1:1").connect_lazy());
        let sessions = Sessions::new(identity, Duration::from_secs(900));
        let sid = Uuid::now_v7();
        sessions.revoke([sid]);
        sessions.deny_until([(sid, Instant::now())]);
        sessions.prune();
        assert!(sessions.is_revoked(sid));
        sessions.deny_until([(Uuid::now_v7(), Instant::now())]);
        sessions.prune();
        assert_eq!(sessions.revoked.read().unwrap().len(), 1);
    }
}
