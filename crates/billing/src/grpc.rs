//! The `billing.v1.Billing` gRPC service: translates proto ⇄ domain and
//! maps errors to `Status`; nothing else.
//!
//! A refused call carries its stable problem code (and field errors) as JSON
//! in the status details: `{"code": "...", "errors": {...}}`, as identity's
//! do. The gateway turns that into the HTTP problem body.

use aichat_proto::billing::v1::{self as pb, billing_server::Billing};
use aichat_proto::{parse_uuid, problem_status as status, timestamp};
use tonic::{Code, Request, Response, Status};

use crate::{
    domain::money::{COST_SCALE, PRICE_SCALE, to_wire},
    service::{Error, Metering},
    store::plans::Plan,
    webhooks::{StripeWebhooks, WebhookError},
};

/// The gRPC face of [`Metering`].
pub struct BillingService {
    metering: Metering,
    webhooks: StripeWebhooks,
}

impl BillingService {
    pub fn new(metering: Metering, webhooks: StripeWebhooks) -> Self {
        Self { metering, webhooks }
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
            Error::MessageLimit => status(
                Code::FailedPrecondition,
                "message_limit",
                "the plan's message limit for this conversation is reached",
                None,
            ),
            Error::QuotaExceeded { remaining } => status(
                Code::ResourceExhausted,
                "quota_exceeded",
                &format!("the monthly token quota is used up ({remaining} tokens left)"),
                None,
            ),
            Error::NotFound => status(Code::NotFound, "not_found", "not found", None),
            Error::Unavailable(error) => aichat_proto::unavailable(&error),
            Error::Unexpected(error) => aichat_proto::internal(&error),
        }
    }
}

impl From<WebhookError> for Status {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::NotConfigured => status(
                Code::FailedPrecondition,
                "stripe_not_configured",
                "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)",
                None,
            ),
            WebhookError::Signature(reason) => status(
                Code::InvalidArgument,
                "invalid_signature",
                &format!("the Stripe-Signature is not valid: {reason}"),
                None,
            ),
            WebhookError::Malformed(reason) => status(
                Code::InvalidArgument,
                "invalid_event",
                &format!("not a Stripe event billing can read: {reason}"),
                None,
            ),
            WebhookError::Service(error) => error.into(),
        }
    }
}

fn plan(p: &Plan) -> pb::Plan {
    pb::Plan {
        id: p.id.to_string(),
        name: p.name.clone(),
        monthly_price: to_wire(&p.monthly_price, PRICE_SCALE),
        yearly_price: p.yearly_price.as_ref().map(|y| to_wire(y, PRICE_SCALE)),
        monthly_token_quota: i64::from(p.monthly_token_quota),
        max_conversations: p.max_conversations,
        max_messages_per_conversation: p.max_messages_per_conversation,
        features: p.feature_names(),
    }
}

#[tonic::async_trait]
impl Billing for BillingService {
    async fn list_plans(&self, _: Request<pb::Empty>) -> Answer<pb::PlanList> {
        let plans = self.metering.list_plans().await?;
        Ok(Response::new(pb::PlanList {
            items: plans.iter().map(plan).collect(),
        }))
    }

    async fn get_usage(&self, request: Request<pb::UserRef>) -> Answer<pb::Usage> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        let u = self.metering.usage(user_id).await?;
        Ok(Response::new(pb::Usage {
            billing_month: u.month.to_string(),
            tokens_used: u.balance.used,
            monthly_quota: u.balance.quota,
            reserved_tokens: u.balance.reserved,
            remaining: u.balance.remaining(),
            messages_count: u.messages,
            conversations_count: u.conversations,
            cost_this_month: to_wire(&u.cost, COST_SCALE),
        }))
    }

    async fn get_limits(&self, request: Request<pb::UserRef>) -> Answer<pb::Limits> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        let l = self.metering.limits(user_id).await?;
        Ok(Response::new(pb::Limits {
            plan_name: l.plan.name,
            monthly_quota: l.monthly_quota,
            max_conversations: l.plan.max_conversations,
            max_messages_per_conversation: l.plan.max_messages_per_conversation,
            conversations_count: l.conversations,
        }))
    }

    async fn reserve(&self, request: Request<pb::ReserveRequest>) -> Answer<pb::Reservation> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let granted = self
            .metering
            .reserve(user_id, r.tokens, r.conversation_messages)
            .await?;
        Ok(Response::new(pb::Reservation {
            reservation_id: granted.id.to_string(),
            expires_at: Some(timestamp(granted.expires_at)),
            remaining: granted.remaining,
            plan_name: granted.plan.name.clone(),
            max_messages_per_conversation: granted.plan.max_messages_per_conversation,
        }))
    }

    async fn release(&self, request: Request<pb::ReleaseRequest>) -> Answer<pb::ReleaseResponse> {
        let id = parse_uuid(&request.into_inner().reservation_id, "reservationId")?;
        let released = self.metering.release(id).await?;
        Ok(Response::new(pb::ReleaseResponse { released }))
    }

    async fn handle_stripe_webhook(
        &self,
        request: Request<pb::StripeWebhook>,
    ) -> Answer<pb::StripeWebhookAck> {
        let r = request.into_inner();
        self.webhooks
            .handle(&r.payload, r.signature.as_deref())
            .await?;
        Ok(Response::new(pb::StripeWebhookAck {}))
    }
}
