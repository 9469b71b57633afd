//! Events published by the billing service.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// The user's subscription changed (bought, renewed, upgraded, downgraded,
/// cancelled, ended): identity keeps `users.planTier` in step. Consumers
/// keep the newest by `occurredAt` (Stripe's time of the change), not by
/// arrival.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChanged {
    pub user_id: Uuid,
    /// The plan the user is on now: `FREE`, `PLUS` or `PRO`.
    pub plan_tier: String,
    /// The subscription's status as billing stores it: `active`,
    /// `past_due`, `unpaid`, `paused` or `canceled`.
    pub status: String,
    /// The end of the paid period (absent without one).
    pub current_period_end: Option<DateTime<Utc>>,
    /// When Stripe made the change (its event's `created`).
    pub occurred_at: DateTime<Utc>,
    /// Billing's subscriptions row (absent in events written before the
    /// field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<Uuid>,
    /// The subscribed plan (billing's plans row), whatever `plan_tier` the
    /// status grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<Uuid>,
    /// `month` or `year`: the interval of the subscribed price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// The start of the paid period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_start: Option<DateTime<Utc>>,
}
impl Event for SubscriptionChanged {
    const TYPE: &'static str = "billing.subscription.changed";
    const VERSION: u32 = 1;
}

/// A payment of the user went through (Stripe's
/// `payment_intent.succeeded`): once per payment, when its row first says
/// so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSucceeded {
    pub user_id: Uuid,
    /// The payments row.
    pub payment_id: Uuid,
    /// In `currency`, as a decimal string (`"20.00"`, `"500.00"` JPY).
    pub amount: BigDecimal,
    /// ISO 4217, upper case.
    pub currency: String,
    pub stripe_payment_intent_id: String,
    /// The invoice it paid, when known.
    pub stripe_invoice_id: Option<String>,
    /// When Stripe recorded it (its event's `created`).
    pub occurred_at: DateTime<Utc>,
}
impl Event for PaymentSucceeded {
    const TYPE: &'static str = "billing.payment.succeeded";
    const VERSION: u32 = 1;
}

/// A payment of the user failed (`payment_intent.payment_failed`, or
/// `invoice.payment_failed` naming its payment intent): when the payment's
/// row turns `failed`. Stripe retries an invoice's payment on the same
/// payment intent; the subscription's own status (`past_due`, `unpaid`)
/// travels in `billing.subscription.changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    pub user_id: Uuid,
    pub payment_id: Uuid,
    pub amount: BigDecimal,
    pub currency: String,
    pub stripe_payment_intent_id: String,
    pub stripe_invoice_id: Option<String>,
    /// Stripe's decline or error code, when it gave one.
    pub failure_code: Option<String>,
    pub occurred_at: DateTime<Utc>,
}
impl Event for PaymentFailed {
    const TYPE: &'static str = "billing.payment.failed";
    const VERSION: u32 = 1;
}

/// Money of a payment was refunded (`charge.refunded`): each time the
/// refunded amount grows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    pub user_id: Uuid,
    pub payment_id: Uuid,
    /// The payment's amount.
    pub amount: BigDecimal,
    /// What was refunded of it so far (all refunds together).
    pub amount_refunded: BigDecimal,
    pub currency: String,
    pub stripe_payment_intent_id: String,
    /// `amountRefunded == amount`: the payment's status is `refunded`;
    /// otherwise it stays `succeeded`.
    pub fully_refunded: bool,
    pub occurred_at: DateTime<Utc>,
}
impl Event for PaymentRefunded {
    const TYPE: &'static str = "billing.payment.refunded";
    const VERSION: u32 = 1;
}

/// An invoice of the user was paid (`invoice.paid`): once per invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoicePaid {
    pub user_id: Uuid,
    /// The invoices row.
    pub invoice_id: Uuid,
    pub invoice_number: String,
    pub total: BigDecimal,
    pub currency: String,
    /// Stripe's `status_transitions.paid_at` (else the event's time).
    pub paid_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
}
impl Event for InvoicePaid {
    const TYPE: &'static str = "billing.invoice.paid";
    const VERSION: u32 = 1;
}

/// An open invoice of the user is past its due date (billing's daily
/// overdue job): once per invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceOverdue {
    pub user_id: Uuid,
    pub invoice_id: Uuid,
    pub invoice_number: String,
    /// In the invoice's currency (Stripe's; billing's invoices row does not
    /// keep it: see `billing.invoice.paid` for the currency).
    pub total: BigDecimal,
    pub due_date: NaiveDate,
    /// When the job found it overdue.
    pub occurred_at: DateTime<Utc>,
}
impl Event for InvoiceOverdue {
    const TYPE: &'static str = "billing.invoice.overdue";
    const VERSION: u32 = 1;
}

/// An invoice row was created or changed state (any Stripe `invoice.*`
/// event that changed it, the reconciler, the overdue job). Consumers keep
/// the newest by `occurredAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceChanged {
    pub invoice_id: Uuid,
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub invoice_number: String,
    /// `draft`, `open`, `paid`, `void` or `uncollectible`.
    pub status: String,
    pub subtotal: BigDecimal,
    pub tax: BigDecimal,
    pub total: BigDecimal,
    pub due_date: Option<NaiveDate>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The Stripe event's `created` that produced this state (the row's
    /// `stripeEventCreatedAt`).
    pub occurred_at: DateTime<Utc>,
}
impl Event for InvoiceChanged {
    const TYPE: &'static str = "billing.invoice.changed";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Envelope, TraceContext};

    #[test]
    fn a_subscription_change_travels_in_camel_case() {
        let event = SubscriptionChanged {
            user_id: Uuid::nil(),
            plan_tier: "PLUS".to_owned(),
            status: "active".to_owned(),
            current_period_end: None,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            subscription_id: None,
            plan_id: None,
            interval: None,
            current_period_start: None,
        };
        let envelope = Envelope::new(&event, TraceContext::default()).unwrap();
        assert_eq!(envelope.event_type, "billing.subscription.changed");
        assert_eq!(
            envelope.data,
            serde_json::json!({
                "userId": "00000000-0000-0000-0000-000000000000",
                "planTier": "PLUS",
                "status": "active",
                "currentPeriodEnd": null,
                "occurredAt": "2023-11-14T22:13:20Z"
            })
        );
        assert_eq!(
            envelope.decode::<SubscriptionChanged>().unwrap().unwrap(),
            event
        );
    }
    #[test]
    fn payment_and_invoice_events_carry_money_as_decimal_strings() {
        use std::str::FromStr;
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let refunded = PaymentRefunded {
            user_id: Uuid::nil(),
            payment_id: Uuid::nil(),
            amount: BigDecimal::from_str("20.00").unwrap(),
            amount_refunded: BigDecimal::from_str("5.50").unwrap(),
            currency: "USD".to_owned(),
            stripe_payment_intent_id: "pi_1".to_owned(),
            fully_refunded: false,
            occurred_at: at,
        };
        let envelope = Envelope::new(&refunded, TraceContext::default()).unwrap();
        assert_eq!(envelope.event_type, "billing.payment.refunded");
        assert_eq!(envelope.data["amount"], "20.00");
        assert_eq!(envelope.data["amountRefunded"], "5.50");
        assert_eq!(envelope.data["stripePaymentIntentId"], "pi_1");
        assert_eq!(
            envelope.decode::<PaymentRefunded>().unwrap().unwrap(),
            refunded
        );
        let overdue = InvoiceOverdue {
            user_id: Uuid::nil(),
            invoice_id: Uuid::nil(),
            invoice_number: "A-1".to_owned(),
            total: BigDecimal::from_str("500.00").unwrap(),
            due_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            occurred_at: at,
        };
        let envelope = Envelope::new(&overdue, TraceContext::default()).unwrap();
        assert_eq!(
            envelope.data,
            serde_json::json!({
                "userId": "00000000-0000-0000-0000-000000000000",
                "invoiceId": "00000000-0000-0000-0000-000000000000",
                "invoiceNumber": "A-1",
                "total": "500.00",
                "dueDate": "2026-11-30",
                "occurredAt": "2023-11-14T22:13:20Z"
            })
        );
    }
}
