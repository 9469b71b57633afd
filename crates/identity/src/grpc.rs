//! The `identity.v1.Identity` gRPC service: translates proto ⇄ domain and
//! maps errors to `Status`; nothing else.
//!
//! A refused call carries its stable problem code (and field errors) as JSON
//! in the status details: `{"code": "...", "errors": {...}}`. The gateway
//! turns that into the HTTP problem body.

use aichat_proto::identity::v1::{self as pb, identity_server::Identity};
use aichat_proto::{parse_uuid, problem_status as status, timestamp};
use chrono::{DateTime, Utc};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::{
    service::{self, Accounts, Error},
    store::{api_keys::ApiKey, sessions::Session, users::User},
};

/// The gRPC face of [`Accounts`].
pub struct IdentityService {
    accounts: Accounts,
}

impl IdentityService {
    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

type Answer<T> = Result<Response<T>, Status>;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Validation(errors) => status(
                Code::InvalidArgument,
                "validation_failed",
                "some fields are invalid",
                serde_json::to_value(errors).ok(),
            ),
            Error::EmailTaken => status(
                Code::AlreadyExists,
                "email_taken",
                "an account with this email exists",
                None,
            ),
            Error::InvalidCredentials => status(
                Code::Unauthenticated,
                "invalid_credentials",
                "wrong email or password",
                None,
            ),
            Error::InvalidRefreshToken => status(
                Code::Unauthenticated,
                "invalid_token",
                "the refresh token is invalid, expired or revoked",
                None,
            ),
            Error::InvalidLink => status(
                Code::FailedPrecondition,
                "invalid_token",
                "the link is invalid, used or expired",
                None,
            ),
            Error::NotFound => status(Code::NotFound, "not_found", "not found", None),
            Error::InvalidApiKey => status(
                Code::Unauthenticated,
                "invalid_api_key",
                "the API key is invalid, expired or revoked",
                None,
            ),
            Error::ApiKeyLimit => status(
                Code::FailedPrecondition,
                "api_key_limit",
                "you have as many API keys as allowed; delete one first",
                None,
            ),
            Error::Unavailable(error) => aichat_proto::unavailable(&error),
            Error::Unexpected(error) => aichat_proto::internal(&error),
        }
    }
}

fn user(u: &User) -> pb::User {
    pb::User {
        id: u.id.to_string(),
        email: u.email.clone(),
        name: u.name.clone(),
        plan_tier: u.plan_tier.clone(),
        role: u.role.clone(),
        email_verified: u.email_verified == Some(true),
        created_at: u.created_at.map(|t| timestamp(t.and_utc())),
    }
}

fn session(s: &Session, current: Uuid) -> pb::Session {
    pb::Session {
        id: s.id.to_string(),
        user_agent: s.user_agent.clone().unwrap_or_default(),
        ip_address: s
            .ip_address
            .map(|ip| ip.ip().to_string())
            .unwrap_or_default(),
        created_at: s.created_at.map(|t| timestamp(t.and_utc())),
        last_activity_at: s.last_activity_at.map(|t| timestamp(t.and_utc())),
        expires_at: Some(timestamp(s.expires_at.and_utc())),
        current: s.id == current,
    }
}

fn api_key(k: &ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.to_string(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        created_at: Some(timestamp(k.created_at.and_utc())),
        last_used_at: k.last_used_at.map(|t| timestamp(t.and_utc())),
        expires_at: k.expires_at.map(|t| timestamp(t.and_utc())),
    }
}

fn tokens(t: service::Tokens) -> pb::TokenPair {
    pb::TokenPair {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_in: t.expires_in,
        user: Some(user(&t.user)),
        session_id: t.session_id.to_string(),
        refresh_expires_in: (t.refresh_expires_at - chrono::Utc::now())
            .num_seconds()
            .max(0),
    }
}

fn client(c: Option<pb::ClientInfo>) -> crate::store::sessions::Client {
    let c = c.unwrap_or_default();
    service::client(&c.user_agent, &c.ip_address)
}

fn session_ref(r: Option<pb::SessionRef>) -> Result<(Uuid, Uuid), Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("session is required"))?;
    Ok((
        parse_uuid(&r.user_id, "userId")?,
        parse_uuid(&r.session_id, "sessionId")?,
    ))
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn export_users(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Answer<pb::UserExportPage> {
        let r = request.into_inner();
        let page = self.accounts.export_users(&r.after, r.limit).await?;
        let at = |t: Option<crate::store::Timestamp>| t.map(|t| timestamp(t.and_utc()));
        Ok(Response::new(pb::UserExportPage {
            items: page
                .items
                .iter()
                .map(|u| pb::UserExport {
                    user_id: u.id.to_string(),
                    plan_tier: u.plan_tier.clone(),
                    role: u.role.clone(),
                    email_verified: u.email_verified == Some(true),
                    is_active: u.is_active == Some(true),
                    created_at: at(u.created_at),
                    plan_tier_changed_at: at(u.plan_tier_changed_at),
                })
                .collect(),
            next: page.next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Answer<pb::User> {
        let r = request.into_inner();
        let u = self
            .accounts
            .register(&r.email, &r.password, &r.name)
            .await?;
        Ok(Response::new(user(&u)))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Answer<pb::TokenPair> {
        let r = request.into_inner();
        let t = self
            .accounts
            .login(&r.email, &r.password, client(r.client))
            .await?;
        Ok(Response::new(tokens(t)))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Answer<pb::TokenPair> {
        let r = request.into_inner();
        let t = self
            .accounts
            .refresh(&r.refresh_token, client(r.client))
            .await?;
        Ok(Response::new(tokens(t)))
    }

    async fn logout(&self, request: Request<pb::SessionRef>) -> Answer<pb::Empty> {
        let (user_id, session_id) = session_ref(Some(request.into_inner()))?;
        self.accounts.logout(user_id, session_id).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn verify_email(&self, request: Request<pb::TokenRequest>) -> Answer<pb::User> {
        let u = self
            .accounts
            .verify_email(&request.into_inner().token)
            .await?;
        Ok(Response::new(user(&u)))
    }

    async fn resend_verification(&self, request: Request<pb::UserRef>) -> Answer<pb::Empty> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        self.accounts.resend_verification(user_id).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn forgot_password(
        &self,
        request: Request<pb::ForgotPasswordRequest>,
    ) -> Answer<pb::Empty> {
        self.accounts
            .forgot_password(&request.into_inner().email)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Answer<pb::Empty> {
        let r = request.into_inner();
        self.accounts.reset_password(&r.token, &r.password).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn get_user(&self, request: Request<pb::UserRef>) -> Answer<pb::User> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        let u = self.accounts.get_user(user_id).await?;
        Ok(Response::new(user(&u)))
    }

    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Answer<pb::User> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let u = self
            .accounts
            .update_user(user_id, r.name.as_deref())
            .await?;
        Ok(Response::new(user(&u)))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Answer<pb::Empty> {
        let r = request.into_inner();
        let (user_id, session_id) = session_ref(r.session)?;
        self.accounts
            .change_password(user_id, session_id, &r.current_password, &r.new_password)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn delete_user(&self, request: Request<pb::DeleteUserRequest>) -> Answer<pb::Empty> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        self.accounts.delete_user(user_id, &r.password).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_sessions(&self, request: Request<pb::SessionRef>) -> Answer<pb::SessionList> {
        let (user_id, current) = session_ref(Some(request.into_inner()))?;
        let items = self.accounts.list_sessions(user_id).await?;
        Ok(Response::new(pb::SessionList {
            items: items.iter().map(|s| session(s, current)).collect(),
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Answer<pb::Empty> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        // A malformed id names no session of this user: 404, like any other.
        let Ok(session_id) = Uuid::parse_str(&r.session_id) else {
            return Err(Error::NotFound.into());
        };
        self.accounts.revoke_session(user_id, session_id).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn get_signing_keys(&self, _: Request<pb::Empty>) -> Answer<pb::SigningKeys> {
        let keys = self.accounts.public_keys();
        Ok(Response::new(pb::SigningKeys {
            keys: keys
                .into_iter()
                .map(|k| pb::SigningKey {
                    kid: k.kid,
                    alg: "EdDSA".to_owned(),
                    x: k.x,
                })
                .collect(),
            issuer: self.accounts.issuer.clone(),
            audience: self.accounts.audience.clone(),
        }))
    }

    async fn list_revoked_sessions(
        &self,
        request: Request<pb::ListRevokedSessionsRequest>,
    ) -> Answer<pb::RevokedSessions> {
        let since = request
            .into_inner()
            .since
            .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let items = self.accounts.revoked_since(since).await?;
        Ok(Response::new(pb::RevokedSessions {
            items: items
                .into_iter()
                .map(|(id, at)| pb::RevokedSession {
                    session_id: id.to_string(),
                    revoked_at: Some(timestamp(at)),
                })
                .collect(),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Answer<pb::CreatedApiKey> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let created = self
            .accounts
            .create_api_key(user_id, &r.name, r.expires_at.as_deref())
            .await?;
        Ok(Response::new(pb::CreatedApiKey {
            key: Some(api_key(&created.key)),
            secret: created.secret,
        }))
    }

    async fn list_api_keys(&self, request: Request<pb::UserRef>) -> Answer<pb::ApiKeyList> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        let items = self.accounts.list_api_keys(user_id).await?;
        Ok(Response::new(pb::ApiKeyList {
            items: items.iter().map(api_key).collect(),
        }))
    }

    async fn revoke_api_key(&self, request: Request<pb::RevokeApiKeyRequest>) -> Answer<pb::Empty> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        // A malformed id names no key of this user: 404, like any other.
        let Ok(id) = Uuid::parse_str(&r.api_key_id) else {
            return Err(Error::NotFound.into());
        };
        self.accounts.revoke_api_key(user_id, id).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn verify_api_key(
        &self,
        request: Request<pb::VerifyApiKeyRequest>,
    ) -> Answer<pb::ApiKeyPrincipal> {
        let v = self
            .accounts
            .verify_api_key(&request.into_inner().key)
            .await?;
        Ok(Response::new(pb::ApiKeyPrincipal {
            user_id: v.key.user_id.to_string(),
            api_key_id: v.key.id.to_string(),
            plan_tier: v.plan_tier,
            role: v.role,
            expires_at: v.key.expires_at.map(|t| timestamp(t.and_utc())),
        }))
    }
}
