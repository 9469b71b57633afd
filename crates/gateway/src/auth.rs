//! The authenticated caller: an extractor that checks the bearer access
//! token locally (signature, claims, deny list), with no call to identity;
//! and [`Admin`], a caller whose token carries role `admin`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use uuid::Uuid;

use crate::{
    problem::{Code, Problem},
    sessions::Refusal,
    state::AppState,
};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: String,
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(Problem::internal)?;
            let header = header.ok_or_else(|| {
                Problem::new(
                    Code::Unauthorized,
                    "Send an access token as `Authorization: Bearer <token>`.",
                )
            })?;
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Problem::new(
                        Code::Unauthorized,
                        "The Authorization header must be `Bearer <token>`.",
                    )
                })?;
            match state.sessions.authenticate(token).await {
                Ok(claims) => Ok(Caller {
                    user_id: claims.sub,
                    session_id: claims.sid,
                    role: claims.role,
                }),
                Err(Refusal::Revoked) => Err(Problem::new(
                    Code::InvalidToken,
                    "The session of this token has ended.",
                )),
                Err(Refusal::Invalid) => Err(Problem::new(
                    Code::InvalidToken,
                    "The access token is invalid or expired.",
                )),
                Err(Refusal::NotReady) => Err(Problem::new(
                    Code::Unavailable,
                    "Tokens cannot be checked yet; try again shortly.",
                )),
            }
        })
    }
}

/// A caller whose access token carries role `admin` (`identity
/// make-admin`). Refuses as [`Caller`] does without a valid token (401),
/// and with 403 `forbidden` for any other role, before the handler runs.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

/// The role that may read the operators' figures.
pub const ADMIN_ROLE: &str = "admin";

impl FromRequest for Admin {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            if caller.role == ADMIN_ROLE {
                Ok(Admin(caller))
            } else {
                Err(Problem::new(
                    Code::Forbidden,
                    "Only administrators may do this.",
                ))
            }
        })
    }
}
