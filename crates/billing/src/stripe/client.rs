//! A client of Stripe's REST API (docs.stripe.com/api): form-encoded
//! requests, `Authorization: Bearer <secret key>`, the API version pinned
//! with `Stripe-Version`, an `Idempotency-Key` on every POST (the same one on
//! each retry of a call, so Stripe applies it once and replays its first
//! answer: docs.stripe.com/idempotency), bounded retries with jittered
//! exponential backoff on network errors, timeouts, 409, 429 and 5xx (or as
//! `Stripe-Should-Retry` says), a timeout per attempt, and Stripe's error
//! object as a typed error.
//!
//! Only the calls billing makes are here, each with the form fields of the
//! API reference; what to do with the answers is the service's.

use std::time::Duration;

use aichat_config::{ExposeSecret, SecretString};
use bigdecimal::BigDecimal;
use rand::Rng;
use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use serde::{Deserialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{
    form::Form,
    types::{
        CheckoutSession, Customer, Interval, List, PortalSession, Price, Product, Subscription,
    },
};
use crate::{config::StripeConfig, domain::money};

/// The API version every request pins: responses have this shape whatever
/// the account's default version (the subscription's period is on its
/// items, as from `2025-03-31.basil`). The version stripe-ruby 18 and
/// stripe-php 19 pin.
pub const API_VERSION: &str = "2025-11-17.clover";

/// Stripe's own API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// Stripe's longest idempotency key.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// How patient the client is.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The longest one attempt may take, connection to last byte.
    pub timeout: Duration,
    /// Attempts after the first one, when the failure is worth retrying.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles with each retry (half of
    /// it jittered away at random), up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What a Stripe call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with its error object (after the retries, for the
    /// retryable ones).
    #[error("Stripe refused the request: {0}")]
    Api(ApiError),
    /// No complete answer within the per-attempt timeout, after the retries.
    #[error("Stripe did not answer within {0:?}")]
    Timeout(Duration),
    /// Stripe could not be reached, after the retries.
    #[error("Stripe could not be reached")]
    Network(#[source] reqwest::Error),
    /// A success whose body is not the documented object.
    #[error("Stripe's answer could not be read")]
    Decode(#[source] serde_json::Error),
    /// A call this client refuses to make (nothing was sent).
    #[error("invalid Stripe request: {0}")]
    InvalidArgument(String),
}

impl StripeError {
    /// The object does not exist (`404`, `resource_missing`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api(error)
            if error.status == 404 || error.code.as_deref() == Some("resource_missing"))
    }

    /// Stripe is down, slow or unreachable: the caller may answer 503 and
    /// try later. Refusals of the request itself are not.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Api(error) => error.status == 429 || error.status >= 500,
            Self::Timeout(_) | Self::Network(_) => true,
            Self::Decode(_) | Self::InvalidArgument(_) => false,
        }
    }
}

/// Stripe's error object (`{"error": {"type", "code", "message", "param"}}`,
/// docs.stripe.com/api/errors) with the HTTP status and the request's id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {kind:?} {code:?}: {message:?} (request {request_id:?})")]
pub struct ApiError {
    pub status: u16,
    pub kind: ErrorKind,
    /// A short string for the error (`resource_missing`, `card_declined`).
    pub code: Option<String>,
    /// Stripe's human-readable explanation: for logs, never for responses.
    pub message: Option<String>,
    /// The parameter the error relates to.
    pub param: Option<String>,
    /// The `Request-Id` header, to find the request in Stripe's dashboard.
    pub request_id: Option<String>,
}

/// Stripe's error `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    ApiError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
    /// A type newer than this code, or an answer without Stripe's error
    /// object (a proxy's error page).
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<ErrorKind>,
    code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

impl ApiError {
    fn from_response(status: StatusCode, body: &[u8], request_id: Option<String>) -> Self {
        let object = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .map(|b| b.error);
        let (kind, code, message, param) = match object {
            Some(o) => (
                o.kind.unwrap_or(ErrorKind::Unknown),
                o.code,
                o.message,
                o.param,
            ),
            None => (ErrorKind::Unknown, None, None, None),
        };
        Self {
            status: status.as_u16(),
            kind,
            code,
            message,
            param,
            request_id,
        }
    }
}

/// A customer to create: one per user, found again by `metadata[userId]`.
#[derive(Debug, Clone)]
pub struct NewCustomer<'a> {
    pub user_id: Uuid,
    pub email: &'a str,
    pub name: Option<&'a str>,
}

/// A Checkout Session in subscription mode for one price.
#[derive(Debug, Clone)]
pub struct NewCheckoutSession<'a> {
    pub user_id: Uuid,
    pub customer: &'a str,
    pub price: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// A product for a plan.
#[derive(Debug, Clone)]
pub struct NewProduct<'a> {
    /// Our own id for it (Stripe's `id` parameter; unique in the account),
    /// so it can be found again by id; `None`: Stripe makes one up.
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub plan_id: Uuid,
}

/// A recurring price, in a two-decimal currency.
#[derive(Debug, Clone)]
pub struct NewPrice<'a> {
    pub product: &'a str,
    /// The plan's `NUMERIC` price; sent as whole cents, exactly.
    pub amount: &'a BigDecimal,
    /// Lower-case ISO 4217 (`usd`).
    pub currency: &'a str,
    pub interval: Interval,
    pub lookup_key: &'a str,
    /// Moves `lookup_key` from the price holding it to this one (a price
    /// change).
    pub transfer_lookup_key: bool,
}

/// A page of subscriptions.
#[derive(Debug, Clone, Default)]
pub struct ListSubscriptions<'a> {
    /// Stripe lists all but `canceled` ones by default; `all` lists every one.
    pub status: Option<&'a str>,
    pub customer: Option<&'a str>,
    /// 1 to 100 (Stripe's default: 10).
    pub limit: Option<u8>,
    /// The last id of the previous page.
    pub starting_after: Option<&'a str>,
}

/// A client of Stripe's API; cheap to clone.
#[derive(Debug, Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    secret_key: SecretString,
    settings: Settings,
}

impl StripeClient {
    /// A client of the API at `config.api_base` with `config.secret_key`.
    pub fn new(config: &StripeConfig, settings: Settings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self {
            http,
            base: config.api_base.trim_end_matches('/').to_owned(),
            secret_key: config.secret_key.clone(),
            settings,
        })
    }

    /// `POST /v1/customers`.
    pub async fn create_customer(
        &self,
        new: &NewCustomer<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<Customer, StripeError> {
        let form = Form::new()
            .field("email", new.email)
            .optional("name", new.name)
            .map("metadata", [("userId", new.user_id)]);
        self.post("/v1/customers", form, idempotency_key).await
    }

    /// `POST /v1/checkout/sessions`: the user's id as `client_reference_id`
    /// and in the subscription's metadata, so every later event names them.
    pub async fn create_checkout_session(
        &self,
        new: &NewCheckoutSession<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<CheckoutSession, StripeError> {
        let form = Form::new()
            .field("mode", "subscription")
            .field("customer", new.customer)
            .field("line_items[0][price]", new.price)
            .field("line_items[0][quantity]", 1)
            .field("client_reference_id", new.user_id)
            .field("subscription_data[metadata][userId]", new.user_id)
            .field("success_url", new.success_url)
            .field("cancel_url", new.cancel_url);
        self.post("/v1/checkout/sessions", form, idempotency_key)
            .await
    }

    /// `POST /v1/billing_portal/sessions`.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: Option<&str>,
    ) -> Result<PortalSession, StripeError> {
        let form = Form::new()
            .field("customer", customer)
            .field("return_url", return_url);
        self.post("/v1/billing_portal/sessions", form, idempotency_key)
            .await
    }

    /// `GET /v1/prices?lookup_keys[]=...`: the prices holding these keys
    /// (at most 10, Stripe's limit).
    pub async fn list_prices_by_lookup_keys(
        &self,
        lookup_keys: &[&str],
    ) -> Result<List<Price>, StripeError> {
        if lookup_keys.is_empty() || lookup_keys.len() > 10 {
            return Err(StripeError::InvalidArgument(
                "between 1 and 10 lookup keys".to_owned(),
            ));
        }
        let query = Form::new()
            .list("lookup_keys", lookup_keys)
            .field("limit", 100);
        self.call(Method::GET, "/v1/prices", query, None).await
    }

    /// `POST /v1/products`.
    pub async fn create_product(
        &self,
        new: &NewProduct<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<Product, StripeError> {
        let form = Form::new()
            .optional("id", new.id)
            .field("name", new.name)
            .map("metadata", [("planId", new.plan_id)]);
        self.post("/v1/products", form, idempotency_key).await
    }

    /// `GET /v1/products/{id}`.
    pub async fn retrieve_product(&self, id: &str) -> Result<Product, StripeError> {
        let path = format!("/v1/products/{}", path_id(id)?);
        self.call(Method::GET, &path, Form::new(), None).await
    }

    /// `POST /v1/prices`: a recurring price of `amount` in whole cents; a
    /// sub-cent amount is refused before anything is sent.
    pub async fn create_price(
        &self,
        new: &NewPrice<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<Price, StripeError> {
        let cents = money::to_cents(new.amount)
            .map_err(|reason| StripeError::InvalidArgument(format!("the amount {reason}")))?;
        let form = Form::new()
            .field("product", new.product)
            .field("unit_amount", cents)
            .field("currency", new.currency)
            .field("recurring[interval]", new.interval.as_str())
            .field("lookup_key", new.lookup_key)
            .field("transfer_lookup_key", new.transfer_lookup_key);
        self.post("/v1/prices", form, idempotency_key).await
    }

    /// `GET /v1/subscriptions/{id}`: the subscription as it is now.
    pub async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        let path = format!("/v1/subscriptions/{}", path_id(id)?);
        self.call(Method::GET, &path, Form::new(), None).await
    }

    /// `DELETE /v1/subscriptions/{id}`: cancels now (not at the period's end).
    pub async fn cancel_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        self.cancel_subscription_with_comment(id, None).await
    }

    /// `DELETE /v1/subscriptions/{id}` with the user's words as
    /// `cancellation_details[comment]` (in the query, as Stripe's libraries
    /// send a DELETE's parameters).
    pub async fn cancel_subscription_with_comment(
        &self,
        id: &str,
        comment: Option<&str>,
    ) -> Result<Subscription, StripeError> {
        let path = format!("/v1/subscriptions/{}", path_id(id)?);
        let query = Form::new().optional("cancellation_details[comment]", comment);
        self.call(Method::DELETE, &path, query, None).await
    }

    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`: cancel at
    /// the period's end (`true`) or resume (`false`).
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel_at_period_end: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Subscription, StripeError> {
        self.update_cancellation(id, cancel_at_period_end, None, idempotency_key)
            .await
    }

    /// [`set_cancel_at_period_end`](Self::set_cancel_at_period_end), with
    /// the user's words as `cancellation_details[comment]` when cancelling.
    pub async fn update_cancellation(
        &self,
        id: &str,
        cancel_at_period_end: bool,
        comment: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Subscription, StripeError> {
        let path = format!("/v1/subscriptions/{}", path_id(id)?);
        let form = Form::new()
            .field("cancel_at_period_end", cancel_at_period_end)
            .optional("cancellation_details[comment]", comment);
        self.post(&path, form, idempotency_key).await
    }

    /// `GET /v1/subscriptions`: one page; follow `has_more` with
    /// `starting_after` set to the last id.
    pub async fn list_subscriptions(
        &self,
        page: &ListSubscriptions<'_>,
    ) -> Result<List<Subscription>, StripeError> {
        let query = Form::new()
            .optional("status", page.status)
            .optional("customer", page.customer)
            .optional("limit", page.limit)
            .optional("starting_after", page.starting_after);
        self.call(Method::GET, "/v1/subscriptions", query, None)
            .await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: Form,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let key = match idempotency_key {
            Some(key) if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN => {
                return Err(StripeError::InvalidArgument(
                    "an idempotency key has 1 to 255 characters".to_owned(),
                ));
            }
            Some(key) => key.to_owned(),
            None => Uuid::now_v7().to_string(),
        };
        self.call(Method::POST, path, form, Some(&key)).await
    }

    /// One call: attempts until a success, a failure not worth retrying, or
    /// the retries are spent. Every attempt carries the same idempotency key.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: Form,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let mut retries = 0;
        loop {
            match self.attempt(&method, path, &params, idempotency_key).await {
                Ok(value) => return Ok(value),
                Err(failure) if failure.retry && retries < self.settings.max_retries => {
                    let wait = self.backoff(retries);
                    tracing::warn!(
                        stripe.method = %method,
                        stripe.path = path,
                        error = %failure.error,
                        retry = retries + 1,
                        wait_ms = wait.as_millis(),
                        "Stripe call failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        params: &Form,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        let mut url = format!("{}{path}", self.base);
        let has_body = *method == Method::POST;
        if !has_body && !params.is_empty() {
            url.push('?');
            url.push_str(&params.encode());
        }
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(self.secret_key.expose_secret())
            .header("Stripe-Version", API_VERSION)
            .timeout(self.settings.timeout);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if has_body {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(params.encode());
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let should_retry = response
            .headers()
            .get("Stripe-Should-Retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim() == "true");
        let request_id = response
            .headers()
            .get("Request-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| Failure {
                retry: false,
                error: StripeError::Decode(e),
            });
        }
        Err(Failure {
            // Stripe's own advice first; else conflicts (a concurrent
            // request with the same key), rate limits and server errors.
            retry: should_retry.unwrap_or(
                status == StatusCode::CONFLICT
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error(),
            ),
            error: StripeError::Api(ApiError::from_response(status, &body, request_id)),
        })
    }

    fn unreachable(&self, error: reqwest::Error) -> Failure {
        Failure {
            retry: true,
            error: if error.is_timeout() {
                StripeError::Timeout(self.settings.timeout)
            } else {
                StripeError::Network(error)
            },
        }
    }

    /// `initial × 2^retry`, capped, then jittered into its upper half.
    fn backoff(&self, retry: u32) -> Duration {
        let full = self
            .settings
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.settings.max_backoff);
        full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// A failed attempt, and whether another may succeed.
struct Failure {
    retry: bool,
    error: StripeError,
}

/// An object id fit for a URL path (Stripe's ids are `prefix_alnum`).
fn path_id(id: &str) -> Result<&str, StripeError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(StripeError::InvalidArgument(format!(
            "{id:?} is not a Stripe id"
        )))
    }
}
