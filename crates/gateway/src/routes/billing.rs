//! The billing endpoints of API.md: plans, usage, the user's subscription
//! (checkout, portal, cancel, resume) and their invoices and payments.

use actix_web::{HttpRequest, HttpResponse, web};
use aichat_proto::{billing::v1 as pb, identity::v1 as identity_pb};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Json,
    accounts::gone_is_unauthorized,
    chat::{PageQuery, limit_of},
    grpc,
};
use crate::{
    auth::Caller,
    problem::{Problem, ProblemBody},
    state::AppState,
};

type Data = web::Data<AppState>;
type Answer = Result<HttpResponse, Problem>;

/// A plan on sale.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// USD, decimal strings.
    pub monthly_price: String,
    pub yearly_price: Option<String>,
    pub monthly_token_quota: i64,
    /// `null`: unlimited.
    pub max_conversations: Option<i32>,
    pub max_messages_per_conversation: Option<i32>,
    pub features: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanList {
    pub items: Vec<Plan>,
}

/// This month's usage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MonthlyUsage)]
pub struct Usage {
    /// First day of the month (UTC).
    pub billing_month: String,
    pub tokens_used: i64,
    pub monthly_quota: i64,
    pub remaining: i64,
    pub messages_count: i32,
    pub conversations_count: i32,
    /// USD, a decimal string.
    pub cost_this_month: String,
}

pub(crate) fn time(t: Option<aichat_proto::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

/// The caller's subscription (`subscription` of API.md).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The plan's name (`Free`, `Plus`, `Pro`): `Free` without a
    /// subscription; for a `canceled` one, the plan that ended (the user is
    /// on Free again).
    pub plan: String,
    /// `none` (no subscription: the Free plan), `active` (also during a
    /// trial), `past_due`, `unpaid`, `paused` or `canceled`.
    pub status: String,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    /// The subscription ends at `currentPeriodEnd` (until resumed).
    pub cancel_at_period_end: bool,
    pub trial_ends_at: Option<DateTime<Utc>>,
}

impl From<pb::Subscription> for Subscription {
    fn from(s: pb::Subscription) -> Self {
        Self {
            plan: s.plan,
            status: s.status,
            current_period_start: time(s.current_period_start),
            current_period_end: time(s.current_period_end),
            cancel_at_period_end: s.cancel_at_period_end,
            trial_ends_at: time(s.trial_ends_at),
        }
    }
}

/// How often a subscription bills.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BillingInterval {
    Month,
    Year,
}

/// `POST /billing/checkout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutBody {
    /// A paid plan's id (from `GET /billing/plans`).
    // Read as text, as `interval`: billing names the field when it is no id.
    #[schema(format = Uuid)]
    pub plan_id: String,
    /// `month` or `year` (the plan must be sold at that interval).
    // Read as text, so that a wrong value is a `validation_failed` naming
    // the field (billing decides) rather than a malformed body.
    #[schema(value_type = BillingInterval)]
    pub interval: String,
}

/// A started checkout.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutSession {
    /// Stripe's payment page: send the user there. Stripe sends them back to
    /// `{PUBLIC_URL}/billing?checkout=success&session_id=...` or
    /// `?checkout=canceled`.
    pub url: String,
    pub session_id: String,
}

/// A Billing Portal session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PortalSession {
    /// Stripe's portal: send the user there; it returns to
    /// `{PUBLIC_URL}/billing`.
    pub url: String,
}

/// `POST /billing/subscription/cancel` (`{}` for the defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelBody {
    /// `true` (the default): at the end of the paid period; `false`: now.
    pub at_period_end: Option<bool>,
    /// Why, in the user's words (at most 500 characters).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// An invoice of the caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: String,
    pub invoice_number: String,
    /// Decimal strings.
    pub subtotal: String,
    pub tax: String,
    pub total: String,
    /// `draft`, `open`, `paid`, `void` or `uncollectible`.
    pub status: String,
    /// `YYYY-MM-DD`.
    pub due_date: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub pdf_url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoicePage {
    /// Newest first.
    pub items: Vec<Invoice>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A payment of the caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: String,
    /// A decimal string.
    pub amount: String,
    /// ISO 4217, upper case.
    pub currency: String,
    /// `succeeded`, `failed`, `pending` or `refunded`.
    pub status: String,
    pub description: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPage {
    /// Newest first.
    pub items: Vec<Payment>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

fn user_ref(caller: &Caller) -> pb::UserRef {
    pb::UserRef {
        user_id: caller.user_id.to_string(),
    }
}

fn page_request(caller: &Caller, q: &PageQuery) -> Result<pb::PageRequest, Problem> {
    Ok(pb::PageRequest {
        user_id: caller.user_id.to_string(),
        limit: limit_of(q.limit)?,
        cursor: q.cursor.clone().unwrap_or_default(),
    })
}

#[utoipa::path(get, path = "/api/v1/billing/plans", tag = "billing",
    responses((status = 200, body = PlanList)))]
pub async fn plans(state: Data, req: HttpRequest) -> Answer {
    let list = state
        .billing
        .clone()
        .list_plans(grpc(&req, pb::Empty {}))
        .await?
        .into_inner();
    let items = list
        .items
        .into_iter()
        .map(|p| Plan {
            id: p.id,
            name: p.name,
            monthly_price: p.monthly_price,
            yearly_price: p.yearly_price,
            monthly_token_quota: p.monthly_token_quota,
            max_conversations: p.max_conversations,
            max_messages_per_conversation: p.max_messages_per_conversation,
            features: p.features,
        })
        .collect();
    Ok(HttpResponse::Ok().json(PlanList { items }))
}

#[utoipa::path(get, path = "/api/v1/billing/usage", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Usage)))]
pub async fn usage(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    let u = state
        .billing
        .clone()
        .get_usage(grpc(
            &req,
            pb::UserRef {
                user_id: caller.user_id.to_string(),
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(Usage {
        billing_month: u.billing_month,
        tokens_used: u.tokens_used,
        monthly_quota: u.monthly_quota,
        remaining: u.remaining,
        messages_count: u.messages_count,
        conversations_count: u.conversations_count,
        cost_this_month: u.cost_this_month,
    }))
}

#[utoipa::path(get, path = "/api/v1/billing/subscription", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Subscription, description = "The caller's subscription; plan `Free` and status `none` without one")))]
pub async fn subscription(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    let s = state
        .billing
        .clone()
        .get_subscription(grpc(&req, user_ref(&caller)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(Subscription::from(s)))
}

#[utoipa::path(post, path = "/api/v1/billing/checkout", tag = "billing", security(("bearer" = [])),
    request_body = CheckoutBody,
    responses(
        (status = 200, body = CheckoutSession, description = "A Stripe Checkout Session (subscription mode) for the plan"),
        (status = 404, body = ProblemBody, description = "`not_found`: no such plan on sale"),
        (status = 409, body = ProblemBody, description = "`already_subscribed`: the caller has a subscription that has not ended; change it in the billing portal (`POST /billing/portal`)"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `planId` (not an id, or the Free plan), `interval` (not `month` or `year`, or the plan is not sold at that interval)"),
        (status = 502, body = ProblemBody, description = "`stripe_error`: Stripe refused the request"),
        (status = 503, body = ProblemBody, description = "`stripe_not_configured`: this deployment has no Stripe key; `unavailable`: Stripe or a service is down"),
        (status = 504, body = ProblemBody, description = "`upstream_timeout`: Stripe did not answer in time"),
    ))]
pub async fn checkout(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    body: Json<CheckoutBody>,
) -> Answer {
    let body = body.into_inner();
    // The email and name of the Stripe customer a first checkout creates.
    let user = state
        .identity
        .clone()
        .get_user(grpc(
            &req,
            identity_pb::UserRef {
                user_id: caller.user_id.to_string(),
            },
        ))
        .await
        .map_err(gone_is_unauthorized)?
        .into_inner();
    let session = state
        .billing
        .clone()
        .create_checkout_session(grpc(
            &req,
            pb::CheckoutRequest {
                user_id: caller.user_id.to_string(),
                plan_id: body.plan_id,
                interval: body.interval,
                email: user.email,
                name: Some(user.name).filter(|n| !n.is_empty()),
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(CheckoutSession {
        url: session.url,
        session_id: session.session_id,
    }))
}

#[utoipa::path(post, path = "/api/v1/billing/portal", tag = "billing", security(("bearer" = [])),
    responses(
        (status = 200, body = PortalSession, description = "A Stripe Billing Portal session for the caller"),
        (status = 409, body = ProblemBody, description = "`no_billing_account`: no checkout yet, so nothing to manage"),
        (status = 502, body = ProblemBody, description = "`stripe_error`: Stripe refused the request"),
        (status = 503, body = ProblemBody, description = "`stripe_not_configured`: this deployment has no Stripe key; `unavailable`: Stripe or a service is down"),
        (status = 504, body = ProblemBody, description = "`upstream_timeout`: Stripe did not answer in time"),
    ))]
pub async fn portal(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    let session = state
        .billing
        .clone()
        .create_portal_session(grpc(&req, user_ref(&caller)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(PortalSession { url: session.url }))
}

#[utoipa::path(post, path = "/api/v1/billing/subscription/cancel", tag = "billing", security(("bearer" = [])),
    request_body = CancelBody,
    responses(
        (status = 200, body = Subscription, description = "The subscription as Stripe answered: `cancelAtPeriodEnd` true, or status `canceled` when cancelled now"),
        (status = 404, body = ProblemBody, description = "`not_found`: the caller has no subscription"),
        (status = 409, body = ProblemBody, description = "`subscription_ended`: it has ended already"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `reason` over 500 characters"),
        (status = 502, body = ProblemBody, description = "`stripe_error`: Stripe refused the request"),
        (status = 503, body = ProblemBody, description = "`stripe_not_configured`: this deployment has no Stripe key; `unavailable`: Stripe or a service is down"),
        (status = 504, body = ProblemBody, description = "`upstream_timeout`: Stripe did not answer in time"),
    ))]
pub async fn cancel(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    body: Json<CancelBody>,
) -> Answer {
    let body = body.into_inner();
    let s = state
        .billing
        .clone()
        .cancel_subscription(grpc(
            &req,
            pb::CancelRequest {
                user_id: caller.user_id.to_string(),
                at_period_end: body.at_period_end,
                reason: body.reason,
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(Subscription::from(s)))
}

#[utoipa::path(post, path = "/api/v1/billing/subscription/resume", tag = "billing", security(("bearer" = [])),
    responses(
        (status = 200, body = Subscription, description = "The subscription as Stripe answered: no longer set to cancel"),
        (status = 404, body = ProblemBody, description = "`not_found`: the caller has no subscription"),
        (status = 409, body = ProblemBody, description = "`not_canceling`: it is not set to cancel; `subscription_ended`: it has ended (start a new one with a checkout)"),
        (status = 502, body = ProblemBody, description = "`stripe_error`: Stripe refused the request"),
        (status = 503, body = ProblemBody, description = "`stripe_not_configured`: this deployment has no Stripe key; `unavailable`: Stripe or a service is down"),
        (status = 504, body = ProblemBody, description = "`upstream_timeout`: Stripe did not answer in time"),
    ))]
pub async fn resume(state: Data, req: HttpRequest, caller: Caller) -> Answer {
    let s = state
        .billing
        .clone()
        .resume_subscription(grpc(&req, user_ref(&caller)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(Subscription::from(s)))
}

#[utoipa::path(get, path = "/api/v1/billing/invoices", tag = "billing", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = InvoicePage, description = "The caller's invoices, newest first"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `limit` (1..100) or `cursor` (not one this API made)"),
    ))]
pub async fn invoices(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    q: web::Query<PageQuery>,
) -> Answer {
    let page = state
        .billing
        .clone()
        .list_invoices(grpc(&req, page_request(&caller, &q)?))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(InvoicePage {
        items: page
            .items
            .into_iter()
            .map(|i| Invoice {
                id: i.id,
                invoice_number: i.invoice_number,
                subtotal: i.subtotal,
                tax: i.tax,
                total: i.total,
                status: i.status,
                due_date: i.due_date,
                paid_at: time(i.paid_at),
                pdf_url: i.pdf_url,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/billing/payments", tag = "billing", security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = PaymentPage, description = "The caller's payments, newest first"),
        (status = 422, body = ProblemBody, description = "`validation_failed`: `limit` (1..100) or `cursor` (not one this API made)"),
    ))]
pub async fn payments(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    q: web::Query<PageQuery>,
) -> Answer {
    let page = state
        .billing
        .clone()
        .list_payments(grpc(&req, page_request(&caller, &q)?))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(PaymentPage {
        items: page
            .items
            .into_iter()
            .map(|p| Payment {
                id: p.id,
                amount: p.amount,
                currency: p.currency,
                status: p.status,
                description: p.description,
                created_at: time(p.created_at),
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Mounts the billing routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/billing/plans", web::get().to(plans))
        .route("/billing/usage", web::get().to(usage))
        .route("/billing/subscription", web::get().to(subscription))
        .route("/billing/checkout", web::post().to(checkout))
        .route("/billing/portal", web::post().to(portal))
        .route("/billing/subscription/cancel", web::post().to(cancel))
        .route("/billing/subscription/resume", web::post().to(resume))
        .route("/billing/invoices", web::get().to(invoices))
        .route("/billing/payments", web::get().to(payments));
}
