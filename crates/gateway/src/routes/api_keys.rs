//! The caller's API keys (`/api/v1/me/api-keys`): create (the secret is in
//! that answer only), list, delete. Identity owns the keys; a deleted key
//! is dropped from this replica's key cache at once (others drop it on the
//! `identity.api_key.revoked` event, or within `api_keys::CACHE_TTL`).

use actix_web::{HttpRequest, HttpResponse, web};
use aichat_proto::identity::v1 as pb;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Json, grpc};
use crate::{
    auth::Caller,
    problem::{Problem, ProblemBody},
    state::AppState,
};

type Data = web::Data<AppState>;
type Answer = Result<HttpResponse, Problem>;

fn time(t: Option<aichat_proto::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

/// One of the caller's API keys (never the secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key (`sk-aichat-AbCd`), to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When the key was last used, to the minute; `null`: never.
    pub last_used_at: Option<DateTime<Utc>>,
    /// `null`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<pb::ApiKey> for ApiKeyView {
    fn from(k: pb::ApiKey) -> Self {
        Self {
            id: Uuid::parse_str(&k.id).unwrap_or_default(),
            name: k.name,
            prefix: k.prefix,
            created_at: time(k.created_at).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            last_used_at: time(k.last_used_at),
            expires_at: time(k.expires_at),
        }
    }
}

/// `{items: [...]}`, newest first; an expired key stays listed until deleted,
/// or until identity's retention removes it (`RETENTION_DAYS`, 7, after it expired).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// A key just created: the only answer that carries the secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    pub id: Uuid,
    pub name: String,
    /// The whole key, `sk-aichat-` and 43 characters: shown this once, never
    /// again (identity keeps only its SHA-256).
    pub key: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The bounds are identity's (crates/identity/src/domain/api_key.rs).
/// A missing name reads as empty, so identity answers `validation_failed`
/// naming it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"name": "CI pipeline", "expiresAt": "2027-06-30T00:00:00Z"}))]
pub struct CreateApiKeyBody {
    /// 1 to 100 characters as sent, not only white space, no control
    /// characters (the pattern of `RegisterBody`'s name says exactly that).
    #[serde(default)]
    #[schema(
        required,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// RFC 3339, in the future (within ten years); absent or `null`: the key
    /// never expires.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/me/api-keys", tag = "accounts", security(("bearer" = [])), request_body = CreateApiKeyBody,
    responses((status = 201, body = CreatedApiKey, description = "the key; its secret (`key`) is shown this once"),
        (status = 409, body = ProblemBody, description = "`api_key_limit`: 20 keys that have not expired already; delete one first"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `name` or `expiresAt`, in `errors`")))]
pub async fn create_api_key(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    body: Json<CreateApiKeyBody>,
) -> Answer {
    let body = body.into_inner();
    let created = state
        .identity
        .clone()
        .create_api_key(grpc(
            &req,
            pb::CreateApiKeyRequest {
                user_id: caller.user_id.to_string(),
                name: body.name,
                expires_at: body.expires_at,
            },
        ))
        .await
        .map_err(super::accounts::gone_is_unauthorized)?
        .into_inner();
    let key = ApiKeyView::from(created.key.unwrap_or_default());
    Ok(HttpResponse::Created().json(CreatedApiKey {
        id: key.id,
        name: key.name,
        key: created.secret,
        prefix: key.prefix,
        created_at: key.created_at,
        expires_at: key.expires_at,
    }))
}

#[utoipa::path(get, path = "/api/v1/me/api-keys", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = ApiKeyList)))]
pub async fn list_api_keys(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    let list = state
        .identity
        .clone()
        .list_api_keys(grpc(
            &req,
            pb::UserRef {
                user_id: caller.user_id.to_string(),
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(ApiKeyList {
        items: list.items.into_iter().map(ApiKeyView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/me/api-keys/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "a key id from GET /me/api-keys")),
    responses((status = 204, description = "the key is deleted and stops working within a second on every replica"),
        (status = 404, body = ProblemBody, description = "`not_found`: no such key of the caller")))]
pub async fn delete_api_key(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Answer {
    let id = id.into_inner();
    state
        .identity
        .clone()
        .revoke_api_key(grpc(
            &req,
            pb::RevokeApiKeyRequest {
                user_id: caller.user_id.to_string(),
                api_key_id: id.clone(),
            },
        ))
        .await?;
    if let Ok(id) = Uuid::parse_str(&id) {
        state.api_keys.forget(id);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Mounts the API-key routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/me/api-keys", web::get().to(list_api_keys))
        .route("/me/api-keys", web::post().to(create_api_key))
        .route("/me/api-keys/{id}", web::delete().to(delete_api_key));
}
