//! The account endpoints of API.md (`/api/v1/auth/*`, `/api/v1/me*`).

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    http::header::{self, HeaderValue},
    web,
};
use aichat_proto::identity::v1 as pb;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Json, client_ip, grpc, limit, user_agent};
use crate::{
    auth::Caller,
    problem::{Code, Problem, ProblemBody},
    session_cookie,
    state::AppState,
};

type Data = web::Data<AppState>;
type Answer = Result<HttpResponse, Problem>;

/// `User`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// `FREE`, `PLUS` or `PRO`.
    pub plan_tier: String,
    /// `user` or `admin`.
    pub role: String,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

fn time(t: Option<aichat_proto::Timestamp>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl From<pb::User> for User {
    fn from(u: pb::User) -> Self {
        Self {
            id: Uuid::parse_str(&u.id).unwrap_or_default(),
            email: u.email,
            name: u.name,
            plan_tier: u.plan_tier,
            role: u.role,
            email_verified: u.email_verified,
            created_at: time(u.created_at),
        }
    }
}

/// `{user}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserEnvelope {
    pub user: User,
}

/// The answer of log-in and refresh.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub access_token: String,
    /// Present unless the answer set the `aichat_refresh` cookie instead
    /// (the client sent `X-Session-Cookie: 1`, or refreshed by the cookie):
    /// the refresh token is then only in the `HttpOnly` cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
}

impl From<pb::TokenPair> for TokenResponse {
    fn from(t: pb::TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: Some(t.refresh_token),
            token_type: "Bearer".to_owned(),
            expires_in: t.expires_in,
            user: t.user.unwrap_or_default().into(),
        }
    }
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: Uuid,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The session of the token making this request.
    pub current: bool,
}

/// `{items: [...]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionView>,
}

// The bounds below are identity's (crates/identity/src/domain), stated for
// clients. Missing fields read as empty strings, so identity answers
// `validation_failed` naming them instead of a parse error; the schema still
// says they are required. A name is trimmed of Unicode white space, must keep
// a character, and has no control characters: the pattern says exactly that
// (white space spelled out, as `\s` differs between regex dialects).

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple", "name": "Ada Lovelace"}))]
pub struct RegisterBody {
    #[serde(default)]
    #[schema(required, format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 128 characters, not a common password, not the email address.
    #[serde(default)]
    #[schema(required, format = Password, min_length = 10, max_length = 128)]
    pub password: String,
    #[serde(default)]
    #[schema(
        required,
        max_length = 255,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple"}))]
pub struct LoginBody {
    /// Not blank; any other text is answered 401 like a wrong password.
    #[serde(default)]
    #[schema(
        required,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub email: String,
    #[serde(default)]
    #[schema(required, format = Password, min_length = 1)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"refreshToken": "q3Yx0mB1c2dEf4GhIj5KlMn6OpQr7StUv8WxYz9Ab0C"}))]
pub struct RefreshBody {
    /// Required, unless the `aichat_refresh` cookie carries the token (send
    /// `{}` and `X-Requested-With: aichat` then).
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9_-]{43}$")]
    pub refresh_token: String,
}

/// A token from a mailed link (`?token=`).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"token": "q3Yx0mB1c2dEf4GhIj5KlMn6OpQr7StUv8WxYz9Ab0C"}))]
pub struct TokenBody {
    #[serde(default)]
    #[schema(required, pattern = r"^[A-Za-z0-9_-]{43}$")]
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com"}))]
pub struct EmailBody {
    #[serde(default)]
    #[schema(required, format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"token": "q3Yx0mB1c2dEf4GhIj5KlMn6OpQr7StUv8WxYz9Ab0C", "password": "another horse battery staple"}))]
pub struct ResetPasswordBody {
    /// The token from the mailed link (`?token=`).
    #[serde(default)]
    #[schema(required, pattern = r"^[A-Za-z0-9_-]{43}$")]
    pub token: String,
    /// 10 to 128 characters, not a common password, not the email address.
    #[serde(default)]
    #[schema(required, format = Password, min_length = 10, max_length = 128)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Ada King"}))]
pub struct UpdateMeBody {
    /// The new display name; absent or `null` leaves it unchanged.
    #[serde(default)]
    #[schema(
        max_length = 255,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"currentPassword": "correct horse battery staple", "newPassword": "another horse battery staple"}))]
pub struct ChangePasswordBody {
    #[serde(default)]
    #[schema(required, format = Password, min_length = 1)]
    pub current_password: String,
    /// 10 to 128 characters, not a common password, not the email address.
    #[serde(default)]
    #[schema(required, format = Password, min_length = 10, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"password": "correct horse battery staple"}))]
pub struct DeleteMeBody {
    #[serde(default)]
    #[schema(required, format = Password, min_length = 1)]
    pub password: String,
}

fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn client(req: &HttpRequest, state: &AppState) -> Option<pb::ClientInfo> {
    Some(pb::ClientInfo {
        user_agent: user_agent(req),
        ip_address: client_ip(req, state),
    })
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterBody,
    responses((status = 201, body = UserEnvelope), (status = 409, body = ProblemBody, description = "`email_taken`"),
        (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`"), (status = 429, body = ProblemBody, description = "`rate_limited`; wait `Retry-After` seconds")))]
pub async fn register(state: Data, req: HttpRequest, body: Json<RegisterBody>) -> Answer {
    limit(&state.limits.register_ip, &client_ip(&req, &state))?;
    limit(&state.limits.register_email, &email_key(&body.email))?;
    let body = body.into_inner();
    let user = state
        .identity
        .clone()
        .register(grpc(
            &req,
            pb::RegisterRequest {
                email: body.email,
                password: body.password,
                name: body.name,
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Created().json(UserEnvelope { user: user.into() }))
}

/// `X-Session-Cookie`, documented on log-in and refresh.
const OPT_IN_DOC: &str = "`1`: set the refresh token as the `aichat_refresh` cookie (`HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth`) and leave `refreshToken` out of the JSON. For browsers.";

/// The token pair as the client asked for it: with the refresh token in the
/// JSON, or in the cookie (see [`session_cookie`]).
fn tokens_answer(state: &AppState, tokens: pb::TokenPair, cookie: bool) -> HttpResponse {
    let max_age = cookie_max_age(
        state.config.refresh_cookie_max_age,
        tokens.refresh_expires_in,
    );
    let mut body = TokenResponse::from(tokens);
    let mut response = HttpResponse::Ok();
    if cookie && let Some(refresh) = body.refresh_token.take() {
        response.append_header((header::SET_COOKIE, session_cookie::set(&refresh, max_age)));
    }
    response.json(body)
}

/// The cookie lives as long as its token: no longer than the session
/// (`refresh_expires_in`; 0 from an identity that does not say) nor than
/// `REFRESH_COOKIE_MAX_AGE_SECS`.
fn cookie_max_age(configured: std::time::Duration, refresh_expires_in: i64) -> std::time::Duration {
    match u64::try_from(refresh_expires_in) {
        Ok(secs) if secs > 0 => configured.min(std::time::Duration::from_secs(secs)),
        _ => configured,
    }
}

/// `response` with the cookie cleared.
fn clearing_cookie(mut response: HttpResponse) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(&session_cookie::clear()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginBody,
    params(("X-Session-Cookie" = Option<String>, Header, nullable = false, description = OPT_IN_DOC)),
    responses((status = 200, body = TokenResponse, description = "the tokens; with `X-Session-Cookie: 1`, `Set-Cookie: aichat_refresh=…` and no `refreshToken`"), (status = 401, body = ProblemBody, description = "`invalid_credentials`, whether the email has an account or not"),
        (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`"), (status = 429, body = ProblemBody, description = "`rate_limited`; wait `Retry-After` seconds")))]
pub async fn login(state: Data, req: HttpRequest, body: Json<LoginBody>) -> Answer {
    limit(&state.limits.login_ip, &client_ip(&req, &state))?;
    limit(&state.limits.login_email, &email_key(&body.email))?;
    let body = body.into_inner();
    let tokens = state
        .identity
        .clone()
        .login(grpc(
            &req,
            pb::LoginRequest {
                email: body.email,
                password: body.password,
                client: client(&req, &state),
            },
        ))
        .await?
        .into_inner();
    Ok(tokens_answer(
        &state,
        tokens,
        session_cookie::asked_for(&req),
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "accounts", request_body = RefreshBody,
    security((), ("refreshCookie" = [])),
    params(("X-Session-Cookie" = Option<String>, Header, nullable = false, description = OPT_IN_DOC),
        ("X-Requested-With" = Option<String>, Header, nullable = false, description = "`aichat`: required when the token comes from the cookie (the body has no `refreshToken`)")),
    responses((status = 200, body = TokenResponse, description = "the rotated tokens; refreshed by the cookie (or with `X-Session-Cookie: 1`), the new refresh token is in `Set-Cookie` and not in the JSON"),
        (status = 401, body = ProblemBody, description = "`invalid_token`: unknown, expired, rotated or revoked (a refused cookie is cleared)"),
        (status = 403, body = ProblemBody, description = "`csrf`: the token came from the cookie without `X-Requested-With: aichat`; nothing is rotated"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: no `refreshToken` in the body and no cookie"), (status = 429, body = ProblemBody, description = "`rate_limited`; wait `Retry-After` seconds")))]
pub async fn refresh(state: Data, req: HttpRequest, body: Json<RefreshBody>) -> Answer {
    limit(&state.limits.refresh_ip, &client_ip(&req, &state))?;
    let body = body.into_inner();
    let (token, by_cookie) = if !body.refresh_token.trim().is_empty() {
        (body.refresh_token, false)
    } else if let Some(token) = session_cookie::read(&req) {
        session_cookie::check_csrf(&req)?;
        (token, true)
    } else {
        return Err(Problem::field("refreshToken", "is required"));
    };
    let rotated = state
        .identity
        .clone()
        .refresh(grpc(
            &req,
            pb::RefreshRequest {
                refresh_token: token,
                client: client(&req, &state),
            },
        ))
        .await;
    match rotated {
        Ok(tokens) => Ok(tokens_answer(
            &state,
            tokens.into_inner(),
            by_cookie || session_cookie::asked_for(&req),
        )),
        Err(status) => {
            let problem = Problem::from(status);
            if by_cookie && problem.code() == Code::InvalidToken {
                // A dead cookie: the browser may as well forget it.
                return Ok(clearing_cookie(problem.error_response()));
            }
            Err(problem)
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", security(("bearer" = []), ("refreshCookie" = [])),
    params(("X-Requested-With" = Option<String>, Header, nullable = false, description = "`aichat`: required when the cookie names the session (no `Authorization`)")),
    responses((status = 204, description = "the session is revoked; a cookie sent along is cleared (`Max-Age=0`)"),
        (status = 403, body = ProblemBody, description = "`csrf`: the cookie names the session but `X-Requested-With: aichat` is missing; nothing is revoked")))]
pub async fn logout(state: Data, req: HttpRequest) -> Answer {
    let cookie = session_cookie::read(&req);
    let had_cookie = cookie.is_some();
    let session = match cookie {
        // The JSON API's way, unchanged: the bearer token names the session.
        _ if req.headers().contains_key(header::AUTHORIZATION) => {
            let caller = Caller::extract(&req).await?;
            Some((caller.user_id.to_string(), caller.session_id))
        }
        Some(token) => {
            session_cookie::check_csrf(&req)?;
            limit(&state.limits.refresh_ip, &client_ip(&req, &state))?;
            cookie_session(&state, &req, token).await?
        }
        None => {
            return Err(Problem::new(
                Code::Unauthorized,
                "Send an access token as `Authorization: Bearer <token>`, or the session cookie.",
            ));
        }
    };
    if let Some((user_id, session_id)) = session {
        state
            .identity
            .clone()
            .logout(grpc(
                &req,
                pb::SessionRef {
                    user_id,
                    session_id: session_id.to_string(),
                },
            ))
            .await?;
        // This replica refuses the token at once; the others learn it from the event.
        state.sessions.revoke([session_id]);
    }
    let done = HttpResponse::NoContent().finish();
    Ok(if had_cookie {
        clearing_cookie(done)
    } else {
        done
    })
}

/// The session a refresh-token cookie belongs to, or `None` when identity
/// no longer knows the token (the session is already over).
///
/// Identity names sessions by access token, not by refresh token, so the
/// token is rotated once to learn its session, which is then revoked: the
/// new pair dies with it. A rotated (stolen or stale) token presented here
/// revokes its session too (reuse), which is what a log-out wants anyway.
async fn cookie_session(
    state: &AppState,
    req: &HttpRequest,
    token: String,
) -> Result<Option<(String, Uuid)>, Problem> {
    let rotated = state
        .identity
        .clone()
        .refresh(grpc(
            req,
            pb::RefreshRequest {
                refresh_token: token,
                client: client(req, state),
            },
        ))
        .await;
    match rotated {
        Ok(pair) => {
            let pair = pair.into_inner();
            let session_id = Uuid::parse_str(&pair.session_id).map_err(|error| {
                tracing::error!(%error, "identity answered a refresh without a session id");
                Problem::internal()
            })?;
            Ok(Some((pair.user.unwrap_or_default().id, session_id)))
        }
        Err(status) => {
            let problem = Problem::from(status);
            if problem.code() == Code::InvalidToken {
                Ok(None)
            } else {
                Err(problem)
            }
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "accounts", request_body = TokenBody,
    responses((status = 200, body = UserEnvelope), (status = 400, body = ProblemBody, description = "`invalid_token`: not a link of ours, used or expired"),
        (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`"), (status = 429, body = ProblemBody, description = "`rate_limited`; wait `Retry-After` seconds")))]
pub async fn verify_email(state: Data, req: HttpRequest, body: Json<TokenBody>) -> Answer {
    limit(&state.limits.verify_ip, &client_ip(&req, &state))?;
    let user = state
        .identity
        .clone()
        .verify_email(grpc(
            &req,
            pb::TokenRequest {
                token: body.into_inner().token,
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(UserEnvelope { user: user.into() }))
}

#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "accounts", security(("bearer" = [])),
    responses((status = 202, description = "a new link is mailed (none if already verified)"), (status = 429, body = ProblemBody, description = "`rate_limited`; wait `Retry-After` seconds")))]
pub async fn resend_verification(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    limit(&state.limits.resend_user, &caller.user_id.to_string())?;
    state
        .identity
        .clone()
        .resend_verification(grpc(
            &req,
            pb::UserRef {
                user_id: caller.user_id.to_string(),
            },
        ))
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "accounts", request_body = EmailBody,
    responses((status = 202, description = "always, whether or not the email has an account"),
        (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`"), (status = 429, body = ProblemBody, description = "`rate_limited`; wait `Retry-After` seconds")))]
pub async fn forgot_password(state: Data, req: HttpRequest, body: Json<EmailBody>) -> Answer {
    limit(&state.limits.forgot_ip, &client_ip(&req, &state))?;
    limit(&state.limits.forgot_email, &email_key(&body.email))?;
    state
        .identity
        .clone()
        .forgot_password(grpc(
            &req,
            pb::ForgotPasswordRequest {
                email: body.into_inner().email,
            },
        ))
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "accounts", request_body = ResetPasswordBody,
    responses((status = 204, description = "changed; every session of the user is revoked"), (status = 400, body = ProblemBody, description = "`invalid_token`: not a link of ours, used or expired"),
        (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`"), (status = 429, body = ProblemBody, description = "`rate_limited`; wait `Retry-After` seconds")))]
pub async fn reset_password(
    state: Data,
    req: HttpRequest,
    body: Json<ResetPasswordBody>,
) -> Answer {
    limit(&state.limits.reset_ip, &client_ip(&req, &state))?;
    let body = body.into_inner();
    state
        .identity
        .clone()
        .reset_password(grpc(
            &req,
            pb::ResetPasswordRequest {
                token: body.token,
                password: body.password,
            },
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = User)))]
pub async fn me(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    let user = state
        .identity
        .clone()
        .get_user(grpc(
            &req,
            pb::UserRef {
                user_id: caller.user_id.to_string(),
            },
        ))
        .await
        .map_err(gone_is_unauthorized)?
        .into_inner();
    Ok(HttpResponse::Ok().json(User::from(user)))
}

/// The caller's own account not being found means the token outlived it.
pub(crate) fn gone_is_unauthorized(status: tonic::Status) -> Problem {
    if status.code() == tonic::Code::NotFound {
        Problem::new(
            crate::problem::Code::InvalidToken,
            "The account of this token no longer exists.",
        )
    } else {
        status.into()
    }
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])), request_body = UpdateMeBody,
    responses((status = 200, body = User), (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`")))]
pub async fn update_me(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    body: Json<UpdateMeBody>,
) -> Answer {
    let user = state
        .identity
        .clone()
        .update_user(grpc(
            &req,
            pb::UpdateUserRequest {
                user_id: caller.user_id.to_string(),
                name: body.into_inner().name,
            },
        ))
        .await
        .map_err(gone_is_unauthorized)?
        .into_inner();
    Ok(HttpResponse::Ok().json(User::from(user)))
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", security(("bearer" = [])), request_body = ChangePasswordBody,
    responses((status = 204, description = "changed; every other session is revoked"), (status = 422, body = ProblemBody, description = "`validation_failed`: `currentPassword` is incorrect, or `newPassword` is not acceptable")))]
pub async fn change_password(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    body: Json<ChangePasswordBody>,
) -> Answer {
    let body = body.into_inner();
    state
        .identity
        .clone()
        .change_password(grpc(
            &req,
            pb::ChangePasswordRequest {
                session: Some(pb::SessionRef {
                    user_id: caller.user_id.to_string(),
                    session_id: caller.session_id.to_string(),
                }),
                current_password: body.current_password,
                new_password: body.new_password,
            },
        ))
        .await
        .map_err(gone_is_unauthorized)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])), request_body = DeleteMeBody,
    responses((status = 204, description = "the account and everything it owns goes"), (status = 422, body = ProblemBody, description = "`validation_failed`: `password` is incorrect")))]
pub async fn delete_me(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    body: Json<DeleteMeBody>,
) -> Answer {
    state
        .identity
        .clone()
        .delete_user(grpc(
            &req,
            pb::DeleteUserRequest {
                user_id: caller.user_id.to_string(),
                password: body.into_inner().password,
            },
        ))
        .await
        .map_err(gone_is_unauthorized)?;
    state.sessions.revoke([caller.session_id]);
    // Its API keys are gone too: this replica stops taking them at once.
    state.api_keys.forget_user(caller.user_id);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = SessionList)))]
pub async fn list_sessions(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    let list = state
        .identity
        .clone()
        .list_sessions(grpc(
            &req,
            pb::SessionRef {
                user_id: caller.user_id.to_string(),
                session_id: caller.session_id.to_string(),
            },
        ))
        .await?
        .into_inner();
    let items = list
        .items
        .into_iter()
        .map(|s| SessionView {
            id: Uuid::parse_str(&s.id).unwrap_or_default(),
            user_agent: (!s.user_agent.is_empty()).then_some(s.user_agent),
            ip_address: (!s.ip_address.is_empty()).then_some(s.ip_address),
            created_at: time(s.created_at),
            last_activity_at: time(s.last_activity_at),
            expires_at: time(s.expires_at),
            current: s.current,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { items }))
}

#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "a session id from GET /me/sessions")),
    responses((status = 204, description = "the session is revoked"), (status = 404, body = ProblemBody, description = "`not_found`: no such session of the caller")))]
pub async fn delete_session(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Answer {
    let id = id.into_inner();
    state
        .identity
        .clone()
        .revoke_session(grpc(
            &req,
            pb::RevokeSessionRequest {
                user_id: caller.user_id.to_string(),
                session_id: id.clone(),
            },
        ))
        .await?;
    if let Ok(id) = Uuid::parse_str(&id) {
        state.sessions.revoke([id]);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Mounts the account routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/verify-email", web::post().to(verify_email))
        .route(
            "/auth/resend-verification",
            web::post().to(resend_verification),
        )
        .route("/auth/forgot-password", web::post().to(forgot_password))
        .route("/auth/reset-password", web::post().to(reset_password))
        .service(
            web::resource("/me")
                .default_service(web::to(crate::not_found))
                .route(web::get().to(me))
                .route(web::patch().to(update_me))
                .route(web::delete().to(delete_me)),
        )
        .route("/me/password", web::post().to(change_password))
        .route("/me/sessions", web::get().to(list_sessions))
        .route("/me/sessions/{id}", web::delete().to(delete_session));
}
