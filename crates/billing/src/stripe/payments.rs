//! Stripe's invoices, payment intents and charges, as the `invoice.*`,
//! `payment_intent.*` and `charge.refunded` events carry them
//! (docs.stripe.com/api/invoices/object, /payment_intents/object,
//! /charges/object), with only the fields billing reads.
//!
//! Read in the shape of the pinned API version (`2025-11-17.clover`) and,
//! where a field moved, in the older one too, since a webhook endpoint may
//! still be on an older version:
//! - an invoice's subscription is `parent.subscription_details.subscription`
//!   (from `2025-03-31.basil` on), `subscription` before;
//! - its tax is `total_taxes[].amount` (basil on), `tax` before;
//! - a payment intent names its invoice only before basil
//!   (`payment_intent.invoice`); from basil on the link is the invoice's
//!   `payments` list of InvoicePayment objects (present when expanded).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::types::{List, id, optional_id, timestamp};

/// An invoice's status (docs.stripe.com/api/invoices/object#invoice_object-status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Uncollectible,
    Void,
    /// A status newer than this code.
    #[serde(other)]
    Unknown,
}

impl InvoiceStatus {
    /// The value the `invoices.status` CHECK allows (`None`: unknown).
    pub fn as_stored(self) -> Option<&'static str> {
        match self {
            Self::Draft => Some("draft"),
            Self::Open => Some("open"),
            Self::Paid => Some("paid"),
            Self::Uncollectible => Some("uncollectible"),
            Self::Void => Some("void"),
            Self::Unknown => None,
        }
    }
}

/// An invoice (`in_...`).
#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    /// Set when the invoice is finalized; drafts have none.
    pub number: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub customer: Option<String>,
    /// Lower-case ISO 4217.
    pub currency: String,
    /// `null` only for preview invoices.
    pub status: Option<InvoiceStatus>,
    /// In the currency's smallest unit, before invoice-level discounts and
    /// exclusive tax.
    pub subtotal: i64,
    /// After discounts and taxes.
    pub total: i64,
    /// The taxes of all lines (basil on).
    pub total_taxes: Option<Vec<TotalTax>>,
    /// The tax before basil.
    pub tax: Option<i64>,
    /// `null` for `charge_automatically` invoices.
    pub due_date: Option<i64>,
    pub status_transitions: StatusTransitions,
    /// `null` until finalized.
    pub invoice_pdf: Option<String>,
    /// What generated the invoice (basil on).
    pub parent: Option<InvoiceParent>,
    /// The subscription before basil.
    #[serde(default, deserialize_with = "optional_id")]
    pub subscription: Option<String>,
    /// The payments of the invoice (basil on): only when expanded.
    pub payments: Option<List<InvoicePayment>>,
    pub created: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TotalTax {
    /// In the currency's smallest unit.
    pub amount: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusTransitions {
    pub finalized_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub marked_uncollectible_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceParent {
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionDetails {
    #[serde(deserialize_with = "id")]
    pub subscription: String,
    /// The subscription's metadata when the invoice was finalized (ours
    /// carries `userId`).
    pub metadata: Option<HashMap<String, String>>,
}

/// A payment of an invoice (`inpay_...`): the link between an invoice and
/// the payment intent paying it.
#[derive(Debug, Clone, Deserialize)]
pub struct InvoicePayment {
    pub id: String,
    /// In the currency's smallest unit.
    pub amount_requested: i64,
    pub currency: String,
    pub payment: InvoicePaymentTarget,
    /// `open`, `paid` or `canceled`.
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoicePaymentTarget {
    /// `payment_intent`, `charge` or `payment_record`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "optional_id")]
    pub payment_intent: Option<String>,
}

impl Invoice {
    /// The subscription that generated it, in either shape.
    pub fn subscription_id(&self) -> Option<&str> {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .map(|d| d.subscription.as_str())
            .or(self.subscription.as_deref())
    }

    /// The `userId` of the subscription's metadata snapshot.
    pub fn metadata_user(&self) -> Option<&str> {
        self.parent
            .as_ref()?
            .subscription_details
            .as_ref()?
            .metadata
            .as_ref()?
            .get("userId")
            .map(String::as_str)
    }

    /// The tax, in the currency's smallest unit: the sum of `total_taxes`
    /// (basil on), else `tax`, else none. `None` when it overflows.
    pub fn tax_amount(&self) -> Option<i64> {
        match &self.total_taxes {
            Some(taxes) => taxes
                .iter()
                .try_fold(0_i64, |sum, tax| sum.checked_add(tax.amount)),
            None => Some(self.tax.unwrap_or(0)),
        }
    }

    /// The day payment is due (UTC).
    pub fn due_date(&self) -> Option<NaiveDate> {
        self.due_date.and_then(timestamp).map(|t| t.date_naive())
    }

    pub fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.status_transitions.paid_at.and_then(timestamp)
    }

    /// The payment intents its (expanded) payments name.
    pub fn payment_intents(&self) -> impl Iterator<Item = (&str, &InvoicePayment)> {
        self.payments
            .iter()
            .flat_map(|list| list.data.iter())
            .filter_map(|p| p.payment.payment_intent.as_deref().map(|pi| (pi, p)))
    }
}

/// A payment intent (`pi_...`).
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    /// In the currency's smallest unit.
    pub amount: i64,
    pub currency: String,
    #[serde(default, deserialize_with = "optional_id")]
    pub customer: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// `succeeded`, `requires_payment_method`, ...
    pub status: String,
    /// Why the last attempt failed.
    pub last_payment_error: Option<PaymentError>,
    /// Its invoice, before basil only.
    #[serde(default, deserialize_with = "optional_id")]
    pub invoice: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentError {
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
}

/// A charge (`ch_...`): what `charge.refunded` carries.
#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    /// In the currency's smallest unit.
    pub amount: i64,
    /// How much of it was refunded so far.
    pub amount_refunded: i64,
    pub currency: String,
    #[serde(default, deserialize_with = "optional_id")]
    pub customer: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// The payment intent it belongs to (`null` for a bare charge).
    #[serde(default, deserialize_with = "optional_id")]
    pub payment_intent: Option<String>,
    /// Whether it was refunded in full.
    pub refunded: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clover_invoice_names_its_subscription_under_parent_and_sums_its_taxes() {
        let invoice: Invoice = serde_json::from_value(serde_json::json!({
            "id": "in_1",
            "object": "invoice",
            "number": "ABC-0001",
            "customer": {"id": "cus_1", "object": "customer"},
            "currency": "usd",
            "status": "paid",
            "subtotal": 2000,
            "total": 2200,
            "total_taxes": [
                {"amount": 150, "tax_behavior": "exclusive", "tax_rate_details": null,
                 "taxability_reason": "standard_rated", "taxable_amount": 2000, "type": "tax_rate_details"},
                {"amount": 50, "tax_behavior": "exclusive", "tax_rate_details": null,
                 "taxability_reason": "standard_rated", "taxable_amount": 2000, "type": "tax_rate_details"}
            ],
            "due_date": null,
            "status_transitions": {"finalized_at": 1, "marked_uncollectible_at": null, "paid_at": 1_700_000_000, "voided_at": null},
            "invoice_pdf": "https://pay.stripe.com/invoice/acct_1/test/pdf",
            "parent": {
                "quote_details": null,
                "subscription_details": {"metadata": {"userId": "u"}, "subscription": "sub_1"},
                "type": "subscription_details"
            },
            "payments": {"object": "list", "data": [{
                "id": "inpay_1", "object": "invoice_payment", "amount_paid": 2200, "amount_requested": 2200,
                "created": 1, "currency": "usd", "invoice": "in_1", "is_default": true, "livemode": false,
                "payment": {"payment_intent": "pi_1", "type": "payment_intent"},
                "status": "paid", "status_transitions": {"canceled_at": null, "paid_at": 1}
            }], "has_more": false},
            "created": 1
        }))
        .unwrap();
        assert_eq!(invoice.customer.as_deref(), Some("cus_1"));
        assert_eq!(invoice.subscription_id(), Some("sub_1"));
        assert_eq!(invoice.metadata_user(), Some("u"));
        assert_eq!(invoice.tax_amount(), Some(200));
        assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
        assert_eq!(invoice.paid_at(), timestamp(1_700_000_000));
        let linked: Vec<&str> = invoice.payment_intents().map(|(pi, _)| pi).collect();
        assert_eq!(linked, ["pi_1"]);
    }

    #[test]
    fn an_acacia_invoice_has_its_subscription_and_tax_at_the_top() {
        let invoice: Invoice = serde_json::from_value(serde_json::json!({
            "id": "in_1", "number": null, "customer": "cus_1", "currency": "jpy",
            "status": "draft", "subtotal": 500, "total": 550, "tax": 50,
            "due_date": 1_700_000_000,
            "status_transitions": {"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
            "subscription": "sub_old", "created": 1
        }))
        .unwrap();
        assert_eq!(invoice.subscription_id(), Some("sub_old"));
        assert_eq!(invoice.tax_amount(), Some(50));
        assert_eq!(invoice.due_date(), NaiveDate::from_ymd_opt(2023, 11, 14));
        assert_eq!(invoice.payment_intents().count(), 0);
    }

    #[test]
    fn an_invoice_without_its_totals_does_not_parse() {
        assert!(
            serde_json::from_value::<Invoice>(serde_json::json!({
                "id": "in_1", "number": "A-1", "customer": "cus_1", "currency": "usd",
                "status": "open", "created": 1,
                "status_transitions": {"finalized_at": 1, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null}
            }))
            .is_err()
        );
    }
}
