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
    account::{Account, AccountError, CheckoutOrder, Page, SubscriptionView},
    domain::money::{COST_SCALE, PRICE_SCALE, to_wire},
    export::{Exports, version},
    service::{Error, Metering},
    store::{
        Timestamp,
        export::{InvoiceRow, PaymentRow, SubscriptionRow},
        history::{InvoiceEntry, PaymentEntry},
        plans::Plan,
    },
    stripe::StripeError,
    webhooks::{StripeWebhooks, WebhookError},
};

/// The gRPC face of [`Metering`], [`StripeWebhooks`], [`Account`] and
/// [`Exports`].
pub struct BillingService {
    metering: Metering,
    webhooks: StripeWebhooks,
    account: Account,
    exports: Exports,
}

impl BillingService {
    pub fn new(
        metering: Metering,
        webhooks: StripeWebhooks,
        account: Account,
        exports: Exports,
    ) -> Self {
        Self {
            metering,
            webhooks,
            account,
            exports,
        }
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

impl From<AccountError> for Status {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotConfigured => status(
                Code::FailedPrecondition,
                "stripe_not_configured",
                "Stripe is not configured (STRIPE_SECRET_KEY)",
                None,
            ),
            AccountError::AlreadySubscribed => status(
                Code::AlreadyExists,
                "already_subscribed",
                "you already have a subscription: change or cancel it in the billing portal",
                None,
            ),
            AccountError::NoCustomer => status(
                Code::FailedPrecondition,
                "no_billing_account",
                "there is no billing account to manage yet: subscribe to a plan first",
                None,
            ),
            AccountError::NotCanceling => status(
                Code::FailedPrecondition,
                "not_canceling",
                "the subscription is not set to cancel: there is nothing to resume",
                None,
            ),
            AccountError::Ended => status(
                Code::FailedPrecondition,
                "subscription_ended",
                "the subscription has ended: start a new one with a checkout",
                None,
            ),
            AccountError::Stripe(error) => stripe_status(&error),
            AccountError::Service(error) => error.into(),
        }
    }
}

/// A failed Stripe call: logged here with Stripe's error object (never our
/// key: the client does not put it in errors); the caller learns only
/// whether to try again.
fn stripe_status(error: &StripeError) -> Status {
    match error {
        StripeError::Timeout(_) => {
            tracing::warn!(error = %error, "Stripe did not answer in time");
            status(
                Code::DeadlineExceeded,
                "upstream_timeout",
                "Stripe did not answer in time; try again",
                None,
            )
        }
        _ if error.is_unavailable() => {
            tracing::warn!(error = %error, "Stripe is unavailable");
            status(
                Code::Unavailable,
                "unavailable",
                "Stripe is unavailable; try again shortly",
                None,
            )
        }
        StripeError::Api(_) => {
            tracing::error!(error = %error, "Stripe refused a request");
            status(
                Code::Internal,
                "stripe_error",
                "Stripe refused the request; try again later or contact support",
                None,
            )
        }
        StripeError::Decode(_) | StripeError::InvalidArgument(_) | StripeError::Network(_) => {
            aichat_proto::internal(&anyhow::anyhow!("a Stripe call failed: {error:#}"))
        }
    }
}

fn subscription(s: SubscriptionView) -> pb::Subscription {
    pb::Subscription {
        plan: s.plan,
        status: s.status,
        current_period_start: s.current_period_start.map(timestamp),
        current_period_end: s.current_period_end.map(timestamp),
        cancel_at_period_end: s.cancel_at_period_end,
        trial_ends_at: s.trial_ends_at.map(timestamp),
    }
}

fn invoice(i: InvoiceEntry) -> pb::Invoice {
    pb::Invoice {
        id: i.id.to_string(),
        invoice_number: i.invoice_number,
        subtotal: to_wire(&i.subtotal, PRICE_SCALE),
        tax: to_wire(&i.tax, PRICE_SCALE),
        total: to_wire(&i.total, PRICE_SCALE),
        status: i.status,
        due_date: i.due_date.map(|d| d.to_string()),
        paid_at: i.paid_at.map(|t| timestamp(t.and_utc())),
        pdf_url: i.pdf_url,
    }
}

fn payment(p: PaymentEntry) -> pb::Payment {
    pb::Payment {
        id: p.id.to_string(),
        amount: to_wire(&p.amount, PRICE_SCALE),
        currency: p.currency,
        status: p.status,
        description: p.description,
        created_at: p.created_at.map(|t| timestamp(t.and_utc())),
    }
}

fn wire_time(t: Timestamp) -> aichat_proto::Timestamp {
    timestamp(t.and_utc())
}

fn subscription_export(s: SubscriptionRow) -> pb::SubscriptionExport {
    pb::SubscriptionExport {
        subscription_id: s.id.to_string(),
        user_id: s.user_id.to_string(),
        plan_id: s.plan_id.to_string(),
        status: s.status,
        interval: s.billing_interval,
        current_period_start: Some(wire_time(s.current_period_start)),
        current_period_end: Some(wire_time(s.current_period_end)),
        cancel_at_period_end: s.cancel_at_period_end.unwrap_or(false),
        created_at: s.created_at.map(wire_time),
        version: version(s.stripe_event_created_at, s.updated_at, s.created_at).map(wire_time),
    }
}

fn payment_export(p: PaymentRow) -> pb::PaymentExport {
    pb::PaymentExport {
        payment_id: p.id.to_string(),
        user_id: p.user_id.to_string(),
        amount: to_wire(&p.amount, PRICE_SCALE),
        amount_refunded: to_wire(&p.amount_refunded, PRICE_SCALE),
        currency: p.currency,
        status: p.status,
        created_at: p.created_at.map(wire_time),
        version: version(p.stripe_event_created_at, p.updated_at, p.created_at).map(wire_time),
    }
}

fn invoice_export(i: InvoiceRow) -> pb::InvoiceExport {
    pb::InvoiceExport {
        invoice_id: i.id.to_string(),
        user_id: i.user_id.to_string(),
        subscription_id: i
            .subscription_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        invoice_number: i.invoice_number,
        status: i.status,
        subtotal: to_wire(&i.subtotal, PRICE_SCALE),
        tax: to_wire(&i.tax, PRICE_SCALE),
        total: to_wire(&i.total, PRICE_SCALE),
        due_date: i.due_date.map(|d| d.to_string()).unwrap_or_default(),
        paid_at: i.paid_at.map(wire_time),
        created_at: i.created_at.map(wire_time),
        version: version(i.stripe_event_created_at, i.updated_at, i.created_at).map(wire_time),
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
    async fn export_subscriptions(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Answer<pb::SubscriptionExportPage> {
        let r = request.into_inner();
        let page = self.exports.subscriptions(r.limit, &r.after).await?;
        Ok(Response::new(pb::SubscriptionExportPage {
            items: page.items.into_iter().map(subscription_export).collect(),
            next: page.next,
        }))
    }

    async fn export_payments(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Answer<pb::PaymentExportPage> {
        let r = request.into_inner();
        let page = self.exports.payments(r.limit, &r.after).await?;
        Ok(Response::new(pb::PaymentExportPage {
            items: page.items.into_iter().map(payment_export).collect(),
            next: page.next,
        }))
    }

    async fn export_invoices(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Answer<pb::InvoiceExportPage> {
        let r = request.into_inner();
        let page = self.exports.invoices(r.limit, &r.after).await?;
        Ok(Response::new(pb::InvoiceExportPage {
            items: page.items.into_iter().map(invoice_export).collect(),
            next: page.next,
        }))
    }

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
            plan_name: granted.plan_name,
            max_messages_per_conversation: granted.max_messages_per_conversation,
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

    async fn get_subscription(&self, request: Request<pb::UserRef>) -> Answer<pb::Subscription> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        let view = self.account.subscription(user_id).await?;
        Ok(Response::new(subscription(view)))
    }

    async fn create_checkout_session(
        &self,
        request: Request<pb::CheckoutRequest>,
    ) -> Answer<pb::CheckoutSession> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let plan_id = parse_uuid(&r.plan_id, "planId")?;
        let started = self
            .account
            .checkout(&CheckoutOrder {
                user_id,
                plan_id,
                interval: &r.interval,
                email: &r.email,
                name: r.name.as_deref(),
            })
            .await?;
        Ok(Response::new(pb::CheckoutSession {
            url: started.url,
            session_id: started.session_id,
        }))
    }

    async fn create_portal_session(
        &self,
        request: Request<pb::UserRef>,
    ) -> Answer<pb::PortalSession> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        let url = self.account.portal(user_id).await?;
        Ok(Response::new(pb::PortalSession { url }))
    }

    async fn cancel_subscription(
        &self,
        request: Request<pb::CancelRequest>,
    ) -> Answer<pb::Subscription> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let view = self
            .account
            .cancel(user_id, r.at_period_end, r.reason.as_deref())
            .await?;
        Ok(Response::new(subscription(view)))
    }

    async fn resume_subscription(&self, request: Request<pb::UserRef>) -> Answer<pb::Subscription> {
        let user_id = parse_uuid(&request.into_inner().user_id, "userId")?;
        let view = self.account.resume(user_id).await?;
        Ok(Response::new(subscription(view)))
    }

    async fn list_invoices(&self, request: Request<pb::PageRequest>) -> Answer<pb::InvoicePage> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let Page { items, next_cursor } =
            self.account.invoices(user_id, r.limit, &r.cursor).await?;
        Ok(Response::new(pb::InvoicePage {
            items: items.into_iter().map(invoice).collect(),
            next_cursor,
        }))
    }

    async fn list_payments(&self, request: Request<pb::PageRequest>) -> Answer<pb::PaymentPage> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let Page { items, next_cursor } =
            self.account.payments(user_id, r.limit, &r.cursor).await?;
        Ok(Response::new(pb::PaymentPage {
            items: items.into_iter().map(payment).collect(),
            next_cursor,
        }))
    }
}
