//! API-key callers: [`ApiKeyAuth`] turns `Authorization: Bearer
//! sk-aichat-...` into the key's owner by asking identity (`VerifyApiKey`),
//! with a short in-process cache. For the OpenAI-compatible `/v1` surface;
//! the `/api/v1` routes keep taking access tokens ([`crate::auth`]).
//!
//! # Why a cache of at most [`CACHE_TTL`] and not a deny list
//!
//! A deleted key must stop working within a second on every replica. Access
//! tokens are checked locally and need a deny list ([`crate::sessions`]);
//! an API key cannot be checked locally at all, so the gateway asks identity
//! anyway, and the only question is how long it may trust an answer. Trusting
//! it for under a second bounds revocation by the clock alone: it holds while
//! RabbitMQ is away, after a lost event, and on a replica that just started,
//! with no deny list to load or keep in step. It costs at most one indexed
//! look-up per key per replica per [`CACHE_TTL`], whatever the request rate
//! of that key. On top of that, `identity.api_key.revoked` events (the
//! replica's private queue, see `follow_revocations` in `lib.rs`) and this
//! replica's own deletes drop a key's entry at once, so revocation is usually
//! seen in milliseconds; the TTL is the bound when they do not arrive.
//!
//! An answer never outlives the key's own `expiresAt` either. Refused keys
//! are remembered as such for [`INVALID_TTL`], so a client retrying a wrong
//! key does not reach identity on every request. Outages are not cached.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use aichat_proto::identity::v1::{VerifyApiKeyRequest, identity_client::IdentityClient};
use chrono::{DateTime, Utc};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::{
    problem::{Code, Problem},
    state::AppState,
};

/// How long an answer of identity is trusted. A deleted key works at most
/// this long plus one `VerifyApiKey` call (an answer fetched just before the
/// delete committed) after the delete: half a second leaves the other half
/// of the promised second to a slow call, a loaded machine and the client's
/// own request, for two look-ups per second per key and replica at most.
pub const CACHE_TTL: Duration = Duration::from_millis(500);

/// How long "not a valid key" is remembered. Such a key cannot become
/// valid (a secret is 256 random bits; an expired or deleted key stays so),
/// so this only bounds the memory a wrong key holds and lets a key of a
/// re-activated account work again.
pub const INVALID_TTL: Duration = Duration::from_secs(30);

/// Keys remembered at most (then the cache starts over).
const MAX_CACHED: usize = 100_000;

/// What every API key starts with.
pub const KEY_PREFIX: &str = "sk-aichat-";

/// The owner of a live API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    pub user_id: Uuid,
    pub api_key_id: Uuid,
    /// `FREE`, `PLUS` or `PRO`, as identity knew it when asked.
    pub plan_tier: String,
    pub role: String,
    /// When the key stops working by itself (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a key is refused.
#[derive(Debug)]
pub enum KeyRefusal {
    /// Malformed, unknown, expired, revoked, or its account is gone.
    Invalid,
    /// Identity could not answer (the problem to show).
    Unavailable(Problem),
}

struct Entry {
    /// `None`: identity said the key is not valid.
    answer: Option<ApiKeyPrincipal>,
    fetched: Instant,
}

/// The key checks of one gateway process, shared by its workers.
pub struct ApiKeys {
    identity: IdentityClient<Channel>,
    cache: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
}

impl ApiKeys {
    pub fn new(identity: IdentityClient<Channel>) -> Self {
        Self::with_ttl(identity, CACHE_TTL)
    }

    /// With another cache lifetime (tests).
    pub fn with_ttl(identity: IdentityClient<Channel>, ttl: Duration) -> Self {
        Self {
            identity,
            cache: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// The owner of `key`, if it is a live key.
    pub async fn authenticate(&self, key: &str) -> Result<ApiKeyPrincipal, KeyRefusal> {
        if !well_formed(key) {
            return Err(KeyRefusal::Invalid);
        }
        if let Some(answer) = self.cached(key) {
            return answer.ok_or(KeyRefusal::Invalid);
        }
        let answer = match self
            .identity
            .clone()
            .verify_api_key(VerifyApiKeyRequest {
                key: key.to_owned(),
            })
            .await
        {
            Ok(r) => {
                let p = r.into_inner();
                let principal = (|| {
                    Some(ApiKeyPrincipal {
                        user_id: Uuid::parse_str(&p.user_id).ok()?,
                        api_key_id: Uuid::parse_str(&p.api_key_id).ok()?,
                        plan_tier: p.plan_tier,
                        role: p.role,
                        expires_at: match p.expires_at {
                            Some(t) => Some(DateTime::from_timestamp(
                                t.seconds,
                                u32::try_from(t.nanos).unwrap_or(0),
                            )?),
                            None => None,
                        },
                    })
                })();
                let Some(principal) = principal else {
                    return Err(KeyRefusal::Unavailable(Problem::internal()));
                };
                Some(principal)
            }
            Err(status) if status.code() == tonic::Code::Unauthenticated => None,
            Err(status) => return Err(KeyRefusal::Unavailable(status.into())),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(
                key.to_owned(),
                Entry {
                    answer: answer.clone(),
                    fetched: Instant::now(),
                },
            );
        }
        answer.filter(is_live).ok_or(KeyRefusal::Invalid)
    }

    /// A fresh cached answer: `Some(None)` for a key known to be invalid.
    fn cached(&self, key: &str) -> Option<Option<ApiKeyPrincipal>> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(key)?;
        match &entry.answer {
            None if entry.fetched.elapsed() < INVALID_TTL => Some(None),
            None => None,
            Some(p) if entry.fetched.elapsed() < self.ttl => Some(Some(p.clone()).filter(is_live)),
            Some(_) => None,
        }
    }

    /// Drops what is cached about the key `id` (deleted just now, here or
    /// on another replica).
    pub fn forget(&self, id: Uuid) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, e| e.answer.as_ref().is_none_or(|p| p.api_key_id != id));
        }
    }

    /// Drops every cached key of `user_id`.
    pub fn forget_user(&self, user_id: Uuid) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, e| e.answer.as_ref().is_none_or(|p| p.user_id != user_id));
        }
    }
}

fn is_live(p: &ApiKeyPrincipal) -> bool {
    p.expires_at.is_none_or(|t| t > Utc::now())
}

/// Whether `key` could be an API key (the check identity makes, done here
/// first so garbage never costs a call).
pub fn well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A caller authenticated by an API key (`Authorization: Bearer
/// sk-aichat-...`). Refuses with 401 `invalid_api_key` (no header, not a
/// key, unknown, expired, revoked) or 503 when identity cannot answer.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth(pub ApiKeyPrincipal);

impl FromRequest for ApiKeyAuth {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let key = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(|k| k.trim().to_owned());
        Box::pin(async move {
            let state = state.ok_or_else(Problem::internal)?;
            let key = key.ok_or_else(|| {
                Problem::new(
                    Code::InvalidApiKey,
                    "Send an API key as `Authorization: Bearer sk-aichat-...`.",
                )
            })?;
            match state.api_keys.authenticate(&key).await {
                Ok(principal) => Ok(ApiKeyAuth(principal)),
                Err(KeyRefusal::Invalid) => Err(Problem::new(
                    Code::InvalidApiKey,
                    "The API key is invalid, expired or revoked.",
                )),
                Err(KeyRefusal::Unavailable(problem)) => Err(problem),
            }
        })
    }
}

/// `GET /_test/api-key` (feature `testing` only, never in a release
/// build): who the presented API key belongs to, so the tests can drive
/// [`ApiKeyAuth`] before the `/v1` routes exist.
#[cfg(feature = "testing")]
pub async fn whoami(auth: ApiKeyAuth) -> actix_web::HttpResponse {
    let p = auth.0;
    actix_web::HttpResponse::Ok().json(serde_json::json!({
        "userId": p.user_id,
        "apiKeyId": p.api_key_id,
        "planTier": p.plan_tier,
        "role": p.role,
        "expiresAt": p.expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use tonic::transport::Endpoint;

    use super::*;

    fn principal(expires_at: Option<DateTime<Utc>>) -> ApiKeyPrincipal {
        ApiKeyPrincipal {
            user_id: Uuid::now_v7(),
            api_key_id: Uuid::now_v7(),
            plan_tier: "FREE".into(),
            role: "user".into(),
            expires_at,
        }
    }

    fn keys(ttl: Duration) -> ApiKeys {
        let identity =
            IdentityClient::new(Endpoint::from_static("http://127.0.0.1:1").connect_lazy());
        ApiKeys::with_ttl(identity, ttl)
    }

    const KEY: &str = "sk-aichat-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn only_well_formed_keys_are_checked() {
        assert!(well_formed(KEY));
        assert!(!well_formed(&KEY[..KEY.len() - 1]));
        assert!(!well_formed("sk-aichat-"));
        assert!(!well_formed(&KEY.replace("sk-aichat-", "sk-other-")));
        assert!(!well_formed(&format!("{}!", &KEY[..KEY.len() - 1])));
    }

    #[tokio::test]
    async fn a_cached_answer_lasts_its_ttl_and_never_past_the_keys_expiry() {
        let keys = keys(Duration::from_millis(200));
        let p = principal(None);
        keys.cache.lock().unwrap().insert(
            KEY.into(),
            Entry {
                answer: Some(p.clone()),
                fetched: Instant::now(),
            },
        );
        assert_eq!(keys.authenticate(KEY).await.unwrap(), p);
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Stale: identity is asked again (and is unreachable here).
        assert!(matches!(
            keys.authenticate(KEY).await,
            Err(KeyRefusal::Unavailable(_))
        ));

        let expired = principal(Some(Utc::now() - chrono::Duration::seconds(1)));
        keys.cache.lock().unwrap().insert(
            KEY.into(),
            Entry {
                answer: Some(expired),
                fetched: Instant::now(),
            },
        );
        assert!(matches!(
            keys.authenticate(KEY).await,
            Err(KeyRefusal::Invalid)
        ));
    }

    #[tokio::test]
    async fn forgetting_a_key_drops_its_entry_at_once() {
        let keys = keys(Duration::from_secs(60));
        let p = principal(None);
        keys.cache.lock().unwrap().insert(
            KEY.into(),
            Entry {
                answer: Some(p.clone()),
                fetched: Instant::now(),
            },
        );
        keys.forget(Uuid::now_v7());
        assert_eq!(keys.authenticate(KEY).await.unwrap(), p);
        keys.forget(p.api_key_id);
        assert!(matches!(
            keys.authenticate(KEY).await,
            Err(KeyRefusal::Unavailable(_))
        ));
        assert!(matches!(
            keys.authenticate("sk-aichat-nope").await,
            Err(KeyRefusal::Invalid)
        ));
    }
}
