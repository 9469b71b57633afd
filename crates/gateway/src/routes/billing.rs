//! The billing endpoints of API.md that exist so far: plans and usage.

use actix_web::{HttpRequest, HttpResponse, web};
use aichat_proto::billing::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::grpc;
use crate::{auth::Caller, problem::Problem, state::AppState};

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

/// Mounts the billing routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/billing/plans", web::get().to(plans))
        .route("/billing/usage", web::get().to(usage));
}
