//! RFC 9457 problem details: the one shape of every error the gateway
//! answers, with a stable machine `code` from a closed set.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The stable error codes clients can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ValidationFailed,
    MalformedBody,
    InvalidCredentials,
    InvalidToken,
    /// An API key that is missing, malformed, unknown, expired or revoked.
    InvalidApiKey,
    /// The user holds as many API keys as allowed.
    ApiKeyLimit,
    Unauthorized,
    Forbidden,
    /// A call authenticated by the session cookie without the required
    /// `X-Requested-With: aichat` header.
    Csrf,
    EmailTaken,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    QuotaExceeded,
    ConversationLimit,
    MessageLimit,
    ProviderUnavailable,
    ProviderError,
    /// A backend or the provider did not answer within its deadline.
    UpstreamTimeout,
    /// The conversation was deleted while its reply streamed (the reply
    /// was charged all the same).
    ConversationDeleted,
    /// A Stripe webhook whose `Stripe-Signature` is missing, forged or stale.
    InvalidSignature,
    /// A signed Stripe webhook whose body is not an event.
    InvalidEvent,
    /// Stripe is not configured on this deployment.
    StripeNotConfigured,
    /// A checkout while a subscription that has not ended exists.
    AlreadySubscribed,
    /// The billing portal before a first checkout.
    NoBillingAccount,
    /// A resume of a subscription that is not set to cancel.
    NotCanceling,
    /// Cancel or resume of a subscription that has ended.
    SubscriptionEnded,
    /// Stripe refused a request billing made for the user.
    StripeError,
    /// A completion named a model no active provider serves.
    ModelNotFound,
    Unavailable,
    Internal,
}

impl Code {
    /// The code as it appears in `code` and in the `type` URI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation_failed",
            Self::MalformedBody => "malformed_body",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken => "invalid_token",
            Self::InvalidApiKey => "invalid_api_key",
            Self::ApiKeyLimit => "api_key_limit",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Csrf => "csrf",
            Self::EmailTaken => "email_taken",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::ConversationLimit => "conversation_limit",
            Self::MessageLimit => "message_limit",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ProviderError => "provider_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::ConversationDeleted => "conversation_deleted",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidEvent => "invalid_event",
            Self::StripeNotConfigured => "stripe_not_configured",
            Self::AlreadySubscribed => "already_subscribed",
            Self::NoBillingAccount => "no_billing_account",
            Self::NotCanceling => "not_canceling",
            Self::SubscriptionEnded => "subscription_ended",
            Self::StripeError => "stripe_error",
            Self::ModelNotFound => "model_not_found",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    fn from_wire(code: &str) -> Option<Self> {
        Some(match code {
            "validation_failed" => Self::ValidationFailed,
            "invalid_credentials" => Self::InvalidCredentials,
            "invalid_token" => Self::InvalidToken,
            "invalid_api_key" => Self::InvalidApiKey,
            "api_key_limit" => Self::ApiKeyLimit,
            "email_taken" => Self::EmailTaken,
            "not_found" => Self::NotFound,
            "rate_limited" => Self::RateLimited,
            "quota_exceeded" => Self::QuotaExceeded,
            "conversation_limit" => Self::ConversationLimit,
            "message_limit" => Self::MessageLimit,
            "provider_unavailable" => Self::ProviderUnavailable,
            "provider_error" | "provider_interrupted" => Self::ProviderError,
            "upstream_timeout" => Self::UpstreamTimeout,
            "conversation_deleted" => Self::ConversationDeleted,
            "invalid_signature" => Self::InvalidSignature,
            "invalid_event" => Self::InvalidEvent,
            "stripe_not_configured" => Self::StripeNotConfigured,
            "already_subscribed" => Self::AlreadySubscribed,
            "no_billing_account" => Self::NoBillingAccount,
            "not_canceling" => Self::NotCanceling,
            "subscription_ended" => Self::SubscriptionEnded,
            "stripe_error" => Self::StripeError,
            "model_not_found" => Self::ModelNotFound,
            "unavailable" => Self::Unavailable,
            _ => return None,
        })
    }

    fn status(self) -> StatusCode {
        match self {
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody | Self::InvalidSignature | Self::InvalidEvent => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidCredentials
            | Self::InvalidToken
            | Self::InvalidApiKey
            | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::EmailTaken
            | Self::ApiKeyLimit
            | Self::AlreadySubscribed
            | Self::NoBillingAccount
            | Self::NotCanceling
            | Self::SubscriptionEnded => StatusCode::CONFLICT,
            Self::NotFound | Self::ModelNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::QuotaExceeded | Self::ConversationLimit | Self::MessageLimit => {
                StatusCode::PAYMENT_REQUIRED
            }
            Self::ProviderUnavailable | Self::Unavailable | Self::StripeNotConfigured => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::ProviderError | Self::StripeError => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::ConversationDeleted => StatusCode::GONE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::ValidationFailed => "Some fields are invalid",
            Self::MalformedBody => "The request body is not valid JSON of the expected shape",
            Self::InvalidCredentials => "Wrong email or password",
            Self::InvalidToken => "The token is invalid, expired or revoked",
            Self::InvalidApiKey => "The API key is invalid, expired or revoked",
            Self::ApiKeyLimit => "You have as many API keys as allowed; delete one first",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "Not allowed",
            Self::Csrf => "The request lacks the header cookie-authenticated calls need",
            Self::EmailTaken => "An account with this email already exists",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "The request body must be application/json",
            Self::RateLimited => "Too many requests",
            Self::QuotaExceeded => "The monthly token quota of your plan is used up",
            Self::ConversationLimit => "Your plan allows no more conversations",
            Self::MessageLimit => "Your plan allows no more messages in this conversation",
            Self::ProviderUnavailable => "The model's provider is unavailable; try again shortly",
            Self::ProviderError => "The model's provider failed",
            Self::UpstreamTimeout => "No answer in time; try again",
            Self::ConversationDeleted => "The conversation was deleted while its reply streamed",
            Self::InvalidSignature => "The Stripe-Signature header is missing, forged or stale",
            Self::InvalidEvent => "The body is not a Stripe event",
            Self::StripeNotConfigured => "Payments through Stripe are not configured",
            Self::AlreadySubscribed => {
                "You already have a subscription; change it in the billing portal"
            }
            Self::NoBillingAccount => "There is no billing account yet; subscribe to a plan first",
            Self::NotCanceling => "The subscription is not set to cancel",
            Self::SubscriptionEnded => "The subscription has ended",
            Self::StripeError => "The payment provider refused the request",
            Self::ModelNotFound => "No model of that name is offered",
            Self::Unavailable => "The service is unavailable; try again shortly",
            Self::Internal => "Internal error",
        }
    }
}

/// An RFC 9457 problem: kept small (it travels in every `Result`), and
/// written out as [`ProblemBody`].
#[derive(Debug, Clone)]
pub struct Problem {
    code: Code,
    status: u16,
    detail: String,
    errors: Option<BTreeMap<String, String>>,
    retry_after: Option<u64>,
}

/// The `application/problem+json` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// `https://aichat.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code, e.g. `invalid_credentials`.
    pub code: String,
    /// For `validation_failed`: field name → what is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
    /// Seconds to wait, for `rate_limited` (also in `Retry-After`).
    #[serde(
        rename = "retryAfter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `code` with a human `detail`.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            status: code.status().as_u16(),
            detail: detail.into(),
            errors: None,
            retry_after: None,
        }
    }

    /// `validation_failed` with field errors.
    pub fn validation(errors: BTreeMap<String, String>) -> Self {
        let mut p = Self::new(
            Code::ValidationFailed,
            "Some fields are invalid; see errors.",
        );
        p.errors = Some(errors);
        p
    }

    /// `validation_failed` for one field.
    pub fn field(name: &str, reason: &str) -> Self {
        Self::validation(BTreeMap::from([(name.to_owned(), reason.to_owned())]))
    }

    /// `malformed_body`: JSON, but not of the expected shape.
    pub fn malformed_body(error: &impl std::fmt::Display) -> Self {
        Self::new(
            Code::MalformedBody,
            format!("The body is not valid: {error}"),
        )
    }

    /// `rate_limited`, to be retried after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut p = Self::new(Code::RateLimited, "Slow down and try again later.");
        p.retry_after = Some(seconds.max(1));
        p
    }

    /// The problem an internal failure shows: nothing of the cause.
    pub fn internal() -> Self {
        Self::new(Code::Internal, "Something went wrong on our side.")
    }

    /// The problem of a failure reported inside a stream (a stable code
    /// from a service, and its message).
    pub fn from_code(code: &str, detail: &str) -> Self {
        let code = Code::from_wire(code).unwrap_or(Code::Internal);
        if code == Code::Internal {
            return Self::internal();
        }
        Self::new(code, detail)
    }

    /// Its stable code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The body it is written as.
    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            type_uri: format!("https://aichat.dev/problems/{}", self.code.as_str()),
            title: self.code.title().to_owned(),
            status: self.status,
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
            errors: self.errors.clone(),
            retry_after: self.retry_after,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code.as_str(), self.status)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        if self.status == 401 {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(self.body())
    }
}

#[derive(Deserialize)]
struct Details {
    code: String,
    #[serde(default)]
    errors: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "retryAfter")]
    retry_after: Option<String>,
}

/// The one place a gRPC refusal becomes an HTTP problem. The status message
/// is never shown for internal errors.
impl From<tonic::Status> for Problem {
    fn from(status: tonic::Status) -> Self {
        let details: Option<Details> = serde_json::from_slice(status.details()).ok();
        let known = details.as_ref().and_then(|d| Code::from_wire(&d.code));
        match (status.code(), known) {
            (_, Some(Code::ValidationFailed)) => {
                Self::validation(details.and_then(|d| d.errors).unwrap_or_default())
            }
            (tonic::Code::FailedPrecondition, Some(Code::InvalidToken)) => {
                // A mailed link: the client sent a bad value, not bad credentials.
                let mut p = Self::new(Code::InvalidToken, status.message());
                p.status = 400;
                p
            }
            (_, Some(Code::RateLimited)) => {
                let seconds = details
                    .and_then(|d| d.retry_after)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1);
                Self::rate_limited(seconds)
            }
            (_, Some(code)) => Self::new(code, status.message()),
            // A deadline passed (ours, enforced by the client as Cancelled,
            // or the backend's): the call may still finish over there.
            (tonic::Code::DeadlineExceeded | tonic::Code::Cancelled, None) => {
                tracing::warn!(grpc.code = ?status.code(), grpc.message = status.message(), "upstream deadline passed");
                Self::new(
                    Code::UpstreamTimeout,
                    "The service did not answer in time; try again.",
                )
            }
            (tonic::Code::Unavailable, None) => {
                tracing::error!(grpc.code = ?status.code(), grpc.message = status.message(), "upstream unavailable");
                Self::new(
                    Code::Unavailable,
                    "A service is unavailable; try again shortly.",
                )
            }
            _ => {
                tracing::error!(grpc.code = ?status.code(), grpc.message = status.message(), "upstream failed");
                Self::internal()
            }
        }
    }
}
