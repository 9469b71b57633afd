//! Stripe's invoice, payment and refund events (objects in the shape of
//! the pinned API version `2025-11-17.clover`, from docs.stripe.com's
//! examples), signed as Stripe signs them: each applied once, in any
//! order, with `billing.payment.*` and `billing.invoice.*` in the outbox;
//! and the overdue job.
#![expect(clippy::unwrap_used, reason = "tests: a failure fails the test")]

use std::time::Duration;

use aichat_billing::{invoicing::Overdue, stripe::webhook::sign};
use chrono::Utc;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

use crate::{
    helpers::{Harness, details, eventually},
    webhooks::{
        DAY, PLUS_MONTH, SECRET, count, deliver, deliver_signed, event, now, rfc3339, start,
        start_with, subscription, user,
    },
};

const CUSTOMER: &str = "cus_Na6dX7aXxi11N4";
const SUBSCRIPTION: &str = "sub_1MowQVLkdIwHu7ixeRlqHVzs";
const INVOICE: &str = "in_1MtHbELkdIwHu7ixl4OzzPMv";
const INTENT: &str = "pi_3MtwBwLkdIwHu7ix28a3tqPa";
const CHARGE: &str = "ch_3MmlLrLkdIwHu7ix0snN0B15";

/// A user whose Stripe customer billing knows (as checkout records it).
async fn customer(h: &Harness) -> Uuid {
    let user = user(h).await;
    Harness::execute(
        h,
        &format!(
            "INSERT INTO stripeCustomers (userId, stripeCustomerId) VALUES ('{user}', '{CUSTOMER}')"
        ),
    )
    .await;
    user
}

/// A subscription invoice as `invoice.created` carries it: a draft, no
/// number yet (docs.stripe.com/api/invoices/object, 2025-11-17.clover;
/// $20.00 plus $2.00 tax).
fn draft_invoice() -> Value {
    json!({
      "id": INVOICE,
      "object": "invoice",
      "account_country": "US",
      "account_name": "Stripe Docs",
      "account_tax_ids": null,
      "amount_due": 2200,
      "amount_overpaid": 0,
      "amount_paid": 0,
      "amount_remaining": 2200,
      "amount_shipping": 0,
      "application": null,
      "attempt_count": 0,
      "attempted": false,
      "auto_advance": true,
      "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
      "automatically_finalizes_at": null,
      "billing_reason": "subscription_create",
      "collection_method": "charge_automatically",
      "confirmation_secret": null,
      "created": 1_680_644_467,
      "currency": "usd",
      "custom_fields": null,
      "customer": CUSTOMER,
      "customer_address": null,
      "customer_email": "jennyrosen@example.com",
      "customer_name": "Jenny Rosen",
      "customer_phone": null,
      "customer_shipping": null,
      "customer_tax_exempt": "none",
      "customer_tax_ids": [],
      "default_payment_method": null,
      "default_source": null,
      "default_tax_rates": [],
      "description": null,
      "discounts": [],
      "due_date": null,
      "effective_at": null,
      "ending_balance": null,
      "footer": null,
      "from_invoice": null,
      "hosted_invoice_url": null,
      "invoice_pdf": null,
      "issuer": {"type": "self"},
      "last_finalization_error": null,
      "latest_revision": null,
      "lines": {
        "object": "list",
        "data": [],
        "has_more": false,
        "total_count": 0,
        "url": format!("/v1/invoices/{INVOICE}/lines")
      },
      "livemode": false,
      "metadata": {},
      "next_payment_attempt": null,
      "number": null,
      "on_behalf_of": null,
      "parent": {
        "quote_details": null,
        "subscription_details": {"metadata": {}, "subscription": SUBSCRIPTION},
        "type": "subscription_details"
      },
      "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
      "period_end": 1_680_644_467,
      "period_start": 1_680_644_467,
      "post_payment_credit_notes_amount": 0,
      "pre_payment_credit_notes_amount": 0,
      "receipt_number": null,
      "rendering": null,
      "shipping_cost": null,
      "shipping_details": null,
      "starting_balance": 0,
      "statement_descriptor": null,
      "status": "draft",
      "status_transitions": {"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
      "subtotal": 2000,
      "subtotal_excluding_tax": 2000,
      "test_clock": null,
      "total": 2200,
      "total_discount_amounts": [],
      "total_excluding_tax": 2000,
      "total_pretax_credit_amounts": [],
      "total_taxes": [{
        "amount": 200,
        "tax_behavior": "exclusive",
        "tax_rate_details": {"tax_rate": "txr_1MzS4RLkdIwHu7ixwvpZ9c2i"},
        "taxability_reason": "standard_rated",
        "taxable_amount": 2000,
        "type": "tax_rate_details"
      }],
      "webhooks_delivered_at": null
    })
}

/// The invoice once finalized (`invoice.finalized`): a number, open.
fn open_invoice() -> Value {
    let mut invoice = draft_invoice();
    invoice["number"] = "C3B7A0F4-0001".into();
    invoice["status"] = "open".into();
    invoice["status_transitions"]["finalized_at"] = 1_680_644_500.into();
    invoice["hosted_invoice_url"] =
        "https://invoice.stripe.com/i/acct_1M2JTkLkdIwHu7ix/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4"
            .into();
    invoice["invoice_pdf"] =
        "https://pay.stripe.com/invoice/acct_1M2JTkLkdIwHu7ix/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4/pdf"
            .into();
    invoice["webhooks_delivered_at"] = 1_680_644_470.into();
    invoice
}

/// The invoice once paid (`invoice.paid`).
fn paid_invoice(paid_at: i64) -> Value {
    let mut invoice = open_invoice();
    invoice["status"] = "paid".into();
    invoice["amount_paid"] = 2200.into();
    invoice["amount_remaining"] = 0.into();
    invoice["attempt_count"] = 1.into();
    invoice["attempted"] = true.into();
    invoice["status_transitions"]["paid_at"] = paid_at.into();
    invoice
}

/// A payment intent (docs.stripe.com/api/payment_intents/object,
/// 2025-11-17.clover) of the customer, in `status`.
fn payment_intent(status: &str, amount: i64, currency: &str) -> Value {
    json!({
      "id": INTENT,
      "object": "payment_intent",
      "amount": amount,
      "amount_capturable": 0,
      "amount_details": {"tip": {}},
      "amount_received": if status == "succeeded" { amount } else { 0 },
      "application": null,
      "application_fee_amount": null,
      "automatic_payment_methods": null,
      "canceled_at": null,
      "cancellation_reason": null,
      "capture_method": "automatic",
      "client_secret": format!("{INTENT}_secret_YrKJUKribcBjcG8HVhfZluoGH"),
      "confirmation_method": "automatic",
      "created": 1_680_800_504,
      "currency": currency,
      "customer": CUSTOMER,
      "description": "Subscription creation",
      "last_payment_error": null,
      "latest_charge": CHARGE,
      "livemode": false,
      "metadata": {"order": "6735"},
      "next_action": null,
      "on_behalf_of": null,
      "payment_method": "pm_1MtwBwLkdIwHu7ixKgz2AQxJ",
      "payment_method_configuration_details": null,
      "payment_method_options": {"card": {"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"}},
      "payment_method_types": ["card"],
      "processing": null,
      "receipt_email": null,
      "review": null,
      "setup_future_usage": null,
      "shipping": null,
      "source": null,
      "statement_descriptor": null,
      "statement_descriptor_suffix": null,
      "status": status,
      "transfer_data": null,
      "transfer_group": null
    })
}

/// The payment intent after a declined attempt.
fn failed_intent(amount: i64) -> Value {
    let mut intent = payment_intent("requires_payment_method", amount, "usd");
    intent["last_payment_error"] = json!({
      "charge": CHARGE,
      "code": "card_declined",
      "decline_code": "insufficient_funds",
      "doc_url": "https://stripe.com/docs/error-codes/card-declined",
      "message": "Your card has insufficient funds.",
      "type": "card_error"
    });
    intent
}

/// The charge of the payment intent after refunds of `refunded`
/// (docs.stripe.com/api/charges/object, 2025-11-17.clover).
fn charge(amount: i64, refunded: i64) -> Value {
    json!({
      "id": CHARGE,
      "object": "charge",
      "amount": amount,
      "amount_captured": amount,
      "amount_refunded": refunded,
      "application": null,
      "application_fee": null,
      "application_fee_amount": null,
      "balance_transaction": "txn_3MmlLrLkdIwHu7ix0uke3Ezy",
      "billing_details": {"address": null, "email": null, "name": "Jenny Rosen", "phone": null},
      "calculated_statement_descriptor": "STRIPE DOCS",
      "captured": true,
      "created": 1_680_800_505,
      "currency": "usd",
      "customer": CUSTOMER,
      "description": "Subscription creation",
      "disputed": false,
      "failure_balance_transaction": null,
      "failure_code": null,
      "failure_message": null,
      "fraud_details": {},
      "livemode": false,
      "metadata": {},
      "on_behalf_of": null,
      "outcome": {"network_status": "approved_by_network", "reason": null, "risk_level": "normal", "risk_score": 32, "seller_message": "Payment complete.", "type": "authorized"},
      "paid": true,
      "payment_intent": INTENT,
      "payment_method": "pm_1MtwBwLkdIwHu7ixKgz2AQxJ",
      "receipt_email": null,
      "receipt_number": null,
      "receipt_url": "https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xTTJKVGtMa2RJd0h1N2l4",
      "refunded": refunded == amount,
      "review": null,
      "shipping": null,
      "source": null,
      "source_transfer": null,
      "statement_descriptor": null,
      "statement_descriptor_suffix": null,
      "status": "succeeded",
      "transfer_data": null,
      "transfer_group": null
    })
}

#[derive(Debug, QueryableByName)]
struct InvoiceRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    number: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    subtotal: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    tax: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    total: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    paid_at: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pdf_url: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    linked: bool,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    user_id: Uuid,
}

async fn invoice_row(h: &Harness, stripe_id: &str) -> Option<InvoiceRow> {
    let mut conn = h.pool.get().await.unwrap();
    diesel::sql_query(
        "SELECT status, invoiceNumber AS number, subtotal::text, tax::text, total::text, \
         paidAt::text AS paid_at, pdfUrl AS pdf_url, subscriptionId IS NOT NULL AS linked, \
         userId AS user_id FROM invoices WHERE stripeInvoiceId = $1",
    )
    .bind::<diesel::sql_types::Text, _>(stripe_id)
    .get_result(&mut conn)
    .await
    .ok()
}

#[derive(Debug, QueryableByName)]
struct PaymentRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    amount: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    amount_refunded: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    currency: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    description: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    metadata: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    invoice: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    linked: bool,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    user_id: Uuid,
}

async fn payment_row(h: &Harness) -> Option<PaymentRow> {
    let mut conn = h.pool.get().await.unwrap();
    diesel::sql_query(
        "SELECT status, amount::text, amountRefunded::text AS amount_refunded, currency, description, \
         metadata::text, stripeInvoiceId AS invoice, subscriptionId IS NOT NULL AS linked, \
         userId AS user_id FROM payments WHERE stripePaymentIntentId = $1",
    )
    .bind::<diesel::sql_types::Text, _>(INTENT)
    .get_result(&mut conn)
    .await
    .ok()
}

/// The data of each outbox event of `kind`, oldest first.
async fn outbox(h: &Harness, kind: &str) -> Vec<Value> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: Value,
    }
    let mut conn = h.pool.get().await.unwrap();
    diesel::sql_query("SELECT payload FROM outbox WHERE eventType = $1 ORDER BY createdAt, id")
        .bind::<diesel::sql_types::Text, _>(kind)
        .load::<P>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            assert_eq!(p.payload["type"], kind);
            assert_eq!(p.payload["version"], 1);
            p.payload["data"].clone()
        })
        .collect()
}

/// Every billing event in the outbox but the subscription's and the
/// invoice rows' state (`billing.invoice.changed`, counted by its tests).
async fn payment_events(h: &Harness) -> i64 {
    count(
        h,
        "SELECT count(*) AS n FROM outbox WHERE eventType LIKE 'billing.payment.%' \
         OR (eventType LIKE 'billing.invoice.%' AND eventType <> 'billing.invoice.changed')",
    )
    .await
}

/// The status of each `billing.invoice.changed` in the outbox, oldest
/// first.
async fn invoice_changes(h: &Harness) -> Vec<String> {
    outbox(h, "billing.invoice.changed")
        .await
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_invoice_is_stored_from_its_finalisation_and_announced_paid_once() {
    let h = start().await;
    let user = customer(&h).await;
    // The subscription row, so the invoice links to it.
    deliver_signed(
        &h,
        &event(
            "evt_sub",
            "customer.subscription.created",
            now() - 100,
            subscription(Some(user), PLUS_MONTH, "active", now() - DAY),
        ),
    )
    .await;

    // A draft has no number: acknowledged, nothing stored.
    deliver_signed(
        &h,
        &event(
            "evt_created",
            "invoice.created",
            now() - 60,
            draft_invoice(),
        ),
    )
    .await;
    assert!(invoice_row(&h, INVOICE).await.is_none());

    deliver_signed(
        &h,
        &event(
            "evt_finalized",
            "invoice.finalized",
            now() - 50,
            open_invoice(),
        ),
    )
    .await;
    let row = invoice_row(&h, INVOICE).await.unwrap();
    assert_eq!(row.status, "open");
    assert_eq!(row.number, "C3B7A0F4-0001");
    assert_eq!(
        (row.subtotal.as_str(), row.tax.as_str(), row.total.as_str()),
        ("20.00", "2.00", "22.00")
    );
    assert_eq!(row.user_id, user);
    assert!(row.linked, "linked to the subscription row");
    assert!(row.paid_at.is_none());
    assert!(row.pdf_url.unwrap().ends_with("/pdf"));
    assert!(outbox(&h, "billing.invoice.paid").await.is_empty());

    let paid_at = now() - 40;
    let paid = event("evt_paid", "invoice.paid", paid_at, paid_invoice(paid_at));
    deliver_signed(&h, &paid).await;
    // Delivered again (Stripe retries until it gets a 2xx).
    deliver_signed(&h, &paid).await;

    let row = invoice_row(&h, INVOICE).await.unwrap();
    assert_eq!(row.status, "paid");
    assert!(row.paid_at.is_some());
    let events = outbox(&h, "billing.invoice.paid").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let invoice_id: String = {
        #[derive(QueryableByName)]
        struct I {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        let mut conn = h.pool.get().await.unwrap();
        diesel::sql_query("SELECT id::text FROM invoices")
            .get_result::<I>(&mut conn)
            .await
            .unwrap()
            .id
    };
    assert_eq!(
        events[0],
        json!({
            "userId": user.to_string(),
            "invoiceId": invoice_id,
            "invoiceNumber": "C3B7A0F4-0001",
            "total": "22.00",
            "currency": "USD",
            "paidAt": rfc3339(paid_at),
            "occurredAt": rfc3339(paid_at),
        })
    );
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM stripeEvents WHERE eventType LIKE 'invoice.%'"
        )
        .await,
        3
    );
    // The unnumbered draft was not stored: no change for it.
    assert_eq!(invoice_changes(&h).await, ["open", "paid"]);
    h.stop().await;
}

#[tokio::test]
async fn each_state_an_invoice_row_takes_is_announced_once_in_the_transaction_that_writes_it() {
    let h = start().await;
    let user = customer(&h).await;
    // A draft that carries a number is stored (as any numbered invoice).
    let mut draft = draft_invoice();
    draft["number"] = "C3B7A0F4-0001".into();
    let created = now() - 60;
    deliver_signed(&h, &event("evt_created", "invoice.created", created, draft)).await;
    let finalized_at = now() - 50;
    let finalized = event(
        "evt_finalized",
        "invoice.finalized",
        finalized_at,
        open_invoice(),
    );
    deliver_signed(&h, &finalized).await;
    // A failed attempt leaves the invoice as it was: no change.
    deliver_signed(
        &h,
        &event(
            "evt_attempt_failed",
            "invoice.payment_failed",
            now() - 45,
            open_invoice(),
        ),
    )
    .await;
    let paid_at = now() - 40;
    let paid = event("evt_paid", "invoice.paid", paid_at, paid_invoice(paid_at));
    deliver_signed(&h, &paid).await;

    let changes = outbox(&h, "billing.invoice.changed").await;
    assert_eq!(invoice_changes(&h).await, ["draft", "open", "paid"]);
    let invoice_id = changes[0]["invoiceId"].clone();
    for (change, at) in changes.iter().zip([created, finalized_at, paid_at]) {
        assert_eq!(change["invoiceId"], invoice_id);
        assert_eq!(change["userId"], user.to_string());
        assert_eq!(change["invoiceNumber"], "C3B7A0F4-0001");
        assert_eq!(
            (&change["subtotal"], &change["tax"], &change["total"]),
            (&json!("20.00"), &json!("2.00"), &json!("22.00"))
        );
        assert_eq!(change["dueDate"], Value::Null);
        assert_eq!(change["occurredAt"], rfc3339(at), "{change}");
        assert_eq!(change["createdAt"], changes[0]["createdAt"]);
    }
    assert_eq!(changes[1]["paidAt"], Value::Null);
    assert_eq!(changes[2]["paidAt"], rfc3339(paid_at));
    // Without a subscriptions row for its subscription: no link.
    assert_eq!(changes[2]["subscriptionId"], Value::Null);

    // A duplicate and an older event change nothing and publish nothing.
    deliver_signed(&h, &paid).await;
    deliver_signed(&h, &finalized).await;
    deliver_signed(
        &h,
        &event(
            "evt_finalized_late",
            "invoice.finalized",
            finalized_at - 1,
            open_invoice(),
        ),
    )
    .await;
    assert_eq!(invoice_row(&h, INVOICE).await.unwrap().status, "paid");
    assert_eq!(invoice_changes(&h).await.len(), 3);
    // billing.invoice.paid as before: once.
    assert_eq!(outbox(&h, "billing.invoice.paid").await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn voiding_an_invoice_publishes_one_change() {
    let h = start().await;
    customer(&h).await;
    deliver_signed(
        &h,
        &event("evt_fin", "invoice.finalized", now() - 20, open_invoice()),
    )
    .await;
    let mut voided = open_invoice();
    voided["status"] = "void".into();
    voided["status_transitions"]["voided_at"] = (now() - 10).into();
    let void = event("evt_void", "invoice.voided", now() - 10, voided);
    deliver_signed(&h, &void).await;
    deliver_signed(&h, &void).await;
    assert_eq!(invoice_changes(&h).await, ["open", "void"]);
    assert_eq!(payment_events(&h).await, 0);
    h.stop().await;
}

#[tokio::test]
async fn paid_before_finalized_and_events_of_one_second_keep_the_invoice_paid() {
    let h = start().await;
    customer(&h).await;
    let at = now() - 30;
    // Later delivered first.
    deliver_signed(&h, &event("evt_paid", "invoice.paid", at, paid_invoice(at))).await;
    deliver_signed(
        &h,
        &event("evt_finalized", "invoice.finalized", at - 5, open_invoice()),
    )
    .await;
    assert_eq!(invoice_row(&h, INVOICE).await.unwrap().status, "paid");
    // Stripe sends finalized and paid within one second: the same `created`.
    deliver_signed(
        &h,
        &event(
            "evt_finalized_same_second",
            "invoice.finalized",
            at,
            open_invoice(),
        ),
    )
    .await;
    assert_eq!(invoice_row(&h, INVOICE).await.unwrap().status, "paid");
    assert_eq!(outbox(&h, "billing.invoice.paid").await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn finalized_and_paid_racing_to_create_the_row_leave_one_paid_invoice() {
    let h = start().await;
    let user = customer(&h).await;
    let at = now() - 30;
    for n in 0..20 {
        let id = format!("in_race_{n}");
        let mut open = open_invoice();
        open["id"] = id.clone().into();
        open["number"] = format!("RACE-{n}").into();
        let mut paid = paid_invoice(at);
        paid["id"] = id.clone().into();
        paid["number"] = format!("RACE-{n}").into();
        let open = event(&format!("evt_open_{n}"), "invoice.finalized", at - 1, open);
        let paid = event(&format!("evt_paid_{n}"), "invoice.paid", at, paid);
        futures::join!(deliver_signed(&h, &open), deliver_signed(&h, &paid));
        let row = invoice_row(&h, &id).await.unwrap();
        assert_eq!((row.status.as_str(), row.user_id), ("paid", user));
    }
    assert_eq!(count(&h, "SELECT count(*) AS n FROM invoices").await, 20);
    assert_eq!(outbox(&h, "billing.invoice.paid").await.len(), 20);
    h.stop().await;
}

#[tokio::test]
async fn voided_and_uncollectible_invoices_are_stored_as_stripe_says() {
    let h = start().await;
    customer(&h).await;
    let mut voided = open_invoice();
    voided["status"] = "void".into();
    voided["status_transitions"]["voided_at"] = (now() - 10).into();
    deliver_signed(&h, &event("evt_void", "invoice.voided", now() - 10, voided)).await;
    assert_eq!(invoice_row(&h, INVOICE).await.unwrap().status, "void");

    let mut uncollectible = open_invoice();
    uncollectible["id"] = "in_uncollectible".into();
    uncollectible["number"] = "C3B7A0F4-0002".into();
    uncollectible["status"] = "uncollectible".into();
    deliver_signed(
        &h,
        &event(
            "evt_uncollectible",
            "invoice.marked_uncollectible",
            now() - 5,
            uncollectible,
        ),
    )
    .await;
    assert_eq!(
        invoice_row(&h, "in_uncollectible").await.unwrap().status,
        "uncollectible"
    );
    // A status newer than billing: acknowledged, not stored.
    let mut future = open_invoice();
    future["id"] = "in_future".into();
    future["number"] = "C3B7A0F4-0003".into();
    future["status"] = "in_review".into();
    deliver_signed(
        &h,
        &event("evt_future", "invoice.finalized", now() - 5, future),
    )
    .await;
    assert!(invoice_row(&h, "in_future").await.is_none());
    assert_eq!(payment_events(&h).await, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_payment_succeeds_once_and_a_late_failure_does_not_undo_it() {
    let h = start().await;
    let user = customer(&h).await;
    let succeeded = event(
        "evt_pi_ok",
        "payment_intent.succeeded",
        now() - 10,
        payment_intent("succeeded", 2200, "usd"),
    );
    deliver_signed(&h, &succeeded).await;
    deliver_signed(&h, &succeeded).await;
    // The failure of the attempt before, delivered late.
    deliver_signed(
        &h,
        &event(
            "evt_pi_failed",
            "payment_intent.payment_failed",
            now() - 20,
            failed_intent(2200),
        ),
    )
    .await;

    let row = payment_row(&h).await.unwrap();
    assert_eq!(row.status, "succeeded");
    assert_eq!(
        (row.amount.as_str(), row.currency.as_str()),
        ("22.00", "USD")
    );
    assert_eq!(row.description.as_deref(), Some("Subscription creation"));
    assert_eq!(
        serde_json::from_str::<Value>(&row.metadata.unwrap()).unwrap(),
        json!({"order": "6735"})
    );
    assert_eq!(row.user_id, user);
    let events = outbox(&h, "billing.payment.succeeded").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["userId"], user.to_string());
    assert_eq!(events[0]["amount"], "22.00");
    assert_eq!(events[0]["currency"], "USD");
    assert_eq!(events[0]["stripePaymentIntentId"], INTENT);
    assert!(events[0]["paymentId"].is_string());
    assert!(outbox(&h, "billing.payment.failed").await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_failure_and_a_success_racing_to_create_the_payment_leave_it_succeeded() {
    let h = start().await;
    customer(&h).await;
    for n in 0..20 {
        let mut ok = payment_intent("succeeded", 2200, "usd");
        ok["id"] = format!("pi_race_{n}").into();
        let mut failed = failed_intent(2200);
        failed["id"] = format!("pi_race_{n}").into();
        let ok = event(
            &format!("evt_ok_{n}"),
            "payment_intent.succeeded",
            now() - 10,
            ok,
        );
        let failed = event(
            &format!("evt_failed_{n}"),
            "payment_intent.payment_failed",
            now() - 20,
            failed,
        );
        futures::join!(deliver_signed(&h, &failed), deliver_signed(&h, &ok));
    }
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM payments WHERE status = 'succeeded'"
        )
        .await,
        20
    );
    assert_eq!(outbox(&h, "billing.payment.succeeded").await.len(), 20);
    h.stop().await;
}

#[tokio::test]
async fn a_failed_payment_is_announced_once_and_its_successful_retry_after_it() {
    let h = start().await;
    customer(&h).await;
    let failed = event(
        "evt_pi_failed",
        "payment_intent.payment_failed",
        now() - 20,
        failed_intent(2200),
    );
    deliver_signed(&h, &failed).await;
    deliver_signed(&h, &failed).await;
    assert_eq!(payment_row(&h).await.unwrap().status, "failed");
    let failures = outbox(&h, "billing.payment.failed").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["failureCode"], "insufficient_funds");

    deliver_signed(
        &h,
        &event(
            "evt_pi_ok",
            "payment_intent.succeeded",
            now() - 10,
            payment_intent("succeeded", 2200, "usd"),
        ),
    )
    .await;
    assert_eq!(payment_row(&h).await.unwrap().status, "succeeded");
    assert_eq!(outbox(&h, "billing.payment.succeeded").await.len(), 1);
    assert_eq!(outbox(&h, "billing.payment.failed").await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_invoice_payment_failure_fails_the_payments_it_lists_once() {
    let h = start().await;
    let user = customer(&h).await;
    deliver_signed(
        &h,
        &event(
            "evt_sub",
            "customer.subscription.created",
            now() - 100,
            subscription(Some(user), PLUS_MONTH, "past_due", now() - DAY),
        ),
    )
    .await;
    let mut invoice = open_invoice();
    invoice["attempt_count"] = 1.into();
    invoice["attempted"] = true.into();
    // Expanded `payments` (InvoicePayment objects) name the payment intent.
    invoice["payments"] = json!({
      "object": "list",
      "data": [{
        "id": "inpay_1RcS7qLkdIwHu7ixlrYbhMkz",
        "object": "invoice_payment",
        "amount_paid": null,
        "amount_requested": 2200,
        "created": 1_680_644_500,
        "currency": "usd",
        "invoice": INVOICE,
        "is_default": true,
        "livemode": false,
        "payment": {"payment_intent": INTENT, "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": null, "paid_at": null}
      }],
      "has_more": false,
      "url": "/v1/invoice_payments"
    });
    deliver_signed(
        &h,
        &event(
            "evt_inv_failed",
            "invoice.payment_failed",
            now() - 20,
            invoice,
        ),
    )
    .await;
    let row = payment_row(&h).await.unwrap();
    assert_eq!(row.status, "failed");
    assert_eq!(row.invoice.as_deref(), Some(INVOICE));
    assert!(row.linked, "linked to the invoice's subscription");
    assert_eq!(invoice_row(&h, INVOICE).await.unwrap().status, "open");
    // The payment intent's own failure event of the same attempt.
    deliver_signed(
        &h,
        &event(
            "evt_pi_failed",
            "payment_intent.payment_failed",
            now() - 20,
            failed_intent(2200),
        ),
    )
    .await;
    let failures = outbox(&h, "billing.payment.failed").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["stripeInvoiceId"], INVOICE);
    // The subscription's status is customer.subscription.*'s alone.
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'past_due'"
        )
        .await,
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn a_partial_refund_keeps_the_payment_succeeded_and_a_full_one_refunds_it() {
    let h = start().await;
    let user = customer(&h).await;
    deliver_signed(
        &h,
        &event(
            "evt_pi_ok",
            "payment_intent.succeeded",
            now() - 30,
            payment_intent("succeeded", 2200, "usd"),
        ),
    )
    .await;
    let partial = event(
        "evt_refund_1",
        "charge.refunded",
        now() - 20,
        charge(2200, 500),
    );
    deliver_signed(&h, &partial).await;
    deliver_signed(&h, &partial).await;
    let row = payment_row(&h).await.unwrap();
    assert_eq!(
        (
            row.status.as_str(),
            row.amount.as_str(),
            row.amount_refunded.as_str()
        ),
        ("succeeded", "22.00", "5.00")
    );
    deliver_signed(
        &h,
        &event(
            "evt_refund_2",
            "charge.refunded",
            now() - 10,
            charge(2200, 2200),
        ),
    )
    .await;
    // The first refund's event again, late: nothing goes back.
    deliver_signed(
        &h,
        &event(
            "evt_refund_1_copy",
            "charge.refunded",
            now() - 20,
            charge(2200, 500),
        ),
    )
    .await;
    let row = payment_row(&h).await.unwrap();
    assert_eq!(
        (row.status.as_str(), row.amount_refunded.as_str()),
        ("refunded", "22.00")
    );
    let refunds = outbox(&h, "billing.payment.refunded").await;
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    assert_eq!(refunds[0]["amountRefunded"], "5.00");
    assert_eq!(refunds[0]["fullyRefunded"], false);
    assert_eq!(refunds[1]["amountRefunded"], "22.00");
    assert_eq!(refunds[1]["fullyRefunded"], true);
    assert_eq!(refunds[1]["amount"], "22.00");
    assert_eq!(refunds[1]["userId"], user.to_string());
    assert_eq!(outbox(&h, "billing.payment.succeeded").await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn zero_decimal_amounts_are_whole_yen() {
    let h = start().await;
    customer(&h).await;
    let mut invoice = open_invoice();
    invoice["currency"] = "jpy".into();
    invoice["subtotal"] = 1500.into();
    invoice["total"] = 1650.into();
    invoice["total_taxes"][0]["amount"] = 150.into();
    deliver_signed(
        &h,
        &event("evt_jpy_inv", "invoice.finalized", now() - 10, invoice),
    )
    .await;
    let row = invoice_row(&h, INVOICE).await.unwrap();
    assert_eq!(
        (row.subtotal.as_str(), row.tax.as_str(), row.total.as_str()),
        ("1500.00", "150.00", "1650.00")
    );
    deliver_signed(
        &h,
        &event(
            "evt_jpy_pi",
            "payment_intent.succeeded",
            now() - 5,
            payment_intent("succeeded", 1650, "jpy"),
        ),
    )
    .await;
    let row = payment_row(&h).await.unwrap();
    assert_eq!(
        (row.amount.as_str(), row.currency.as_str()),
        ("1650.00", "JPY")
    );
    assert_eq!(
        outbox(&h, "billing.payment.succeeded").await[0]["amount"],
        "1650.00"
    );
    h.stop().await;
}

#[tokio::test]
async fn events_of_an_unknown_customer_are_recorded_and_ignored() {
    let h = start().await;
    // No stripeCustomers row, no subscription row, no userId in metadata.
    deliver_signed(
        &h,
        &event(
            "evt_pi_ok",
            "payment_intent.succeeded",
            now() - 10,
            payment_intent("succeeded", 2200, "usd"),
        ),
    )
    .await;
    deliver_signed(
        &h,
        &event("evt_fin", "invoice.finalized", now() - 10, open_invoice()),
    )
    .await;
    deliver_signed(
        &h,
        &event("evt_ref", "charge.refunded", now() - 5, charge(2200, 2200)),
    )
    .await;
    assert!(payment_row(&h).await.is_none());
    assert!(invoice_row(&h, INVOICE).await.is_none());
    assert_eq!(count(&h, "SELECT count(*) AS n FROM stripeEvents").await, 3);
    assert_eq!(payment_events(&h).await, 0);
    h.stop().await;
}

#[tokio::test]
async fn an_invoice_finds_its_user_through_the_subscription_metadata_snapshot() {
    let h = start().await;
    let user = user(&h).await;
    let mut invoice = open_invoice();
    invoice["customer"] = "cus_unknown_here".into();
    invoice["parent"]["subscription_details"]["metadata"] = json!({"userId": user.to_string()});
    deliver_signed(
        &h,
        &event("evt_fin", "invoice.finalized", now() - 10, invoice),
    )
    .await;
    assert_eq!(invoice_row(&h, INVOICE).await.unwrap().user_id, user);
    h.stop().await;
}

#[tokio::test]
async fn malformed_objects_are_refused_and_write_nothing() {
    let h = start().await;
    customer(&h).await;
    let mut no_total = open_invoice();
    no_total.as_object_mut().unwrap().remove("total");
    let mut no_amount = payment_intent("succeeded", 2200, "usd");
    no_amount.as_object_mut().unwrap().remove("amount");
    let mut bad_currency = payment_intent("succeeded", 2200, "usd");
    bad_currency["currency"] = "dollars".into();
    let mut kwd_fils = payment_intent("succeeded", 12_345, "kwd");
    kwd_fils["id"] = "pi_kwd".into();
    let mut status_unknown = open_invoice();
    status_unknown["status"] = Value::Null;
    let cases = [
        event("evt_1", "invoice.finalized", now(), no_total),
        event("evt_2", "payment_intent.succeeded", now(), no_amount),
        event("evt_3", "payment_intent.succeeded", now(), bad_currency),
        // 12.345 KWD does not fit two decimals (Stripe requires a final 0).
        event("evt_4", "payment_intent.succeeded", now(), kwd_fils),
        event("evt_5", "charge.refunded", now(), charge(2200, 2500)),
        event("evt_6", "invoice.paid", now(), status_unknown),
        event("evt_7", "charge.refunded", now(), json!({"id": CHARGE})),
    ];
    for payload in cases {
        let status = deliver(&h, &payload, Some(sign(&payload, SECRET, now())))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(details(&status)["code"], "invalid_event");
    }
    assert_eq!(count(&h, "SELECT count(*) AS n FROM stripeEvents").await, 0);
    assert_eq!(count(&h, "SELECT count(*) AS n FROM payments").await, 0);
    assert_eq!(count(&h, "SELECT count(*) AS n FROM invoices").await, 0);
    assert_eq!(payment_events(&h).await, 0);
    h.stop().await;
}

#[tokio::test]
async fn a_crash_before_the_commit_writes_nothing_and_the_redelivery_applies_once() {
    let h = start().await;
    customer(&h).await;
    // The first write to the outbox fails, as a crash mid-transaction would.
    Harness::execute(&h, "CREATE SEQUENCE crash_once").await;
    Harness::execute(&h,
        "CREATE FUNCTION crash_once() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF nextval('crash_once') = 1 THEN RAISE EXCEPTION 'crash'; END IF; RETURN NEW; END $$",
    )
    .await;
    Harness::execute(&h, "CREATE TRIGGER crash_once BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION crash_once()")
        .await;
    let paid = event(
        "evt_pi_ok",
        "payment_intent.succeeded",
        now() - 10,
        payment_intent("succeeded", 2200, "usd"),
    );
    let status = deliver(&h, &paid, Some(sign(&paid, SECRET, now())))
        .await
        .unwrap_err();
    assert_ne!(
        status.code(),
        Code::InvalidArgument,
        "a 5xx: Stripe retries"
    );
    assert!(payment_row(&h).await.is_none());
    assert_eq!(count(&h, "SELECT count(*) AS n FROM stripeEvents").await, 0);

    // Stripe retries, signed anew.
    deliver_signed(&h, &paid).await;
    assert_eq!(payment_row(&h).await.unwrap().status, "succeeded");
    assert_eq!(outbox(&h, "billing.payment.succeeded").await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_crash_after_the_commit_before_the_ack_makes_the_redelivery_harmless() {
    let h = start().await;
    customer(&h).await;
    let refund = event(
        "evt_refund",
        "charge.refunded",
        now() - 10,
        charge(2200, 2200),
    );
    // Applied and committed; the 200 never reached Stripe (the process died).
    deliver_signed(&h, &refund).await;
    // Stripe delivers it again, later, with a new signature.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    deliver(&h, &refund, Some(sign(&refund, SECRET, now())))
        .await
        .unwrap();
    let row = payment_row(&h).await.unwrap();
    assert_eq!(
        (row.status.as_str(), row.amount_refunded.as_str()),
        ("refunded", "22.00")
    );
    assert_eq!(outbox(&h, "billing.payment.refunded").await.len(), 1);
    assert_eq!(count(&h, "SELECT count(*) AS n FROM stripeEvents").await, 1);
    h.stop().await;
}

/// Open invoices of `user` due `days_ago` days ago, straight into the table.
async fn open_invoices(h: &Harness, user: Uuid, n: i64, days_ago: i64, status: &str) {
    Harness::execute(
        h,
        &format!(
            "INSERT INTO invoices (userId, invoiceNumber, stripeInvoiceId, subtotal, tax, total, \
         status, dueDate) \
         SELECT '{user}', '{status}-' || i, 'in_{status}_' || i, 20, 0, 20, '{status}', \
                (now() AT TIME ZONE 'UTC')::date - {days_ago} \
         FROM generate_series(1, {n}) AS i"
        ),
    )
    .await;
}

#[tokio::test]
async fn the_overdue_job_marks_an_open_invoice_past_due_once() {
    let h = start().await;
    let user = customer(&h).await;
    // A send_invoice invoice due 3 days ago, through Stripe's events.
    let mut invoice = open_invoice();
    invoice["collection_method"] = "send_invoice".into();
    invoice["due_date"] = (now() - 3 * DAY).into();
    deliver_signed(
        &h,
        &event("evt_fin", "invoice.finalized", now() - 4 * DAY, invoice),
    )
    .await;
    open_invoices(&h, user, 1, 0, "open").await; // due today: not overdue yet
    open_invoices(&h, user, 2, 5, "paid").await; // paid: never overdue

    let overdue = Overdue::new(h.pool.clone());
    assert_eq!(overdue.mark(Utc::now()).await.unwrap(), 1);
    assert_eq!(overdue.mark(Utc::now()).await.unwrap(), 0);
    let events = outbox(&h, "billing.invoice.overdue").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["userId"], user.to_string());
    assert_eq!(events[0]["invoiceNumber"], "C3B7A0F4-0001");
    assert_eq!(events[0]["total"], "22.00");
    let due = chrono::DateTime::from_timestamp(now() - 3 * DAY, 0)
        .unwrap()
        .date_naive();
    assert_eq!(events[0]["dueDate"], due.to_string());

    // Paid later: it stays marked, nothing more is published, and a late
    // finalized event leaves the marker alone.
    deliver_signed(
        &h,
        &event(
            "evt_paid",
            "invoice.paid",
            now() - 10,
            paid_invoice(now() - 10),
        ),
    )
    .await;
    assert_eq!(overdue.mark(Utc::now()).await.unwrap(), 0);
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM invoices WHERE overdueNotifiedAt IS NOT NULL"
        )
        .await,
        1
    );
    // Tomorrow the invoice due today is overdue.
    assert_eq!(
        overdue
            .mark(Utc::now() + chrono::Duration::days(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(outbox(&h, "billing.invoice.overdue").await.len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_running_the_overdue_job_at_once_publish_each_invoice_once() {
    let h = start().await;
    let user = customer(&h).await;
    // More than one batch.
    open_invoices(&h, user, 250, 2, "open").await;
    let (a, b) = (Overdue::new(h.pool.clone()), Overdue::new(h.pool.clone()));
    let (ra, rb) = futures::join!(a.mark(Utc::now()), b.mark(Utc::now()));
    assert_eq!(ra.unwrap() + rb.unwrap(), 250);
    assert_eq!(
        count(
            &h,
            "SELECT count(DISTINCT payload->'data'->>'invoiceId') AS n FROM outbox \
             WHERE eventType = 'billing.invoice.overdue'"
        )
        .await,
        250
    );
    assert_eq!(
        count(
            &h,
            "SELECT count(*) AS n FROM outbox WHERE eventType = 'billing.invoice.overdue'"
        )
        .await,
        250
    );
    h.stop().await;
}

#[tokio::test]
async fn the_running_service_marks_overdue_invoices_and_publishes_them() {
    let h = start_with(|config| config.maintenance_interval = Duration::from_millis(100)).await;
    let user = customer(&h).await;
    open_invoices(&h, user, 3, 1, "open").await;
    eventually(
        "the overdue events to be published",
        Duration::from_secs(10),
        || async {
            count(
                &h,
                "SELECT count(*) AS n FROM outbox WHERE eventType = 'billing.invoice.overdue' \
             AND publishedAt IS NOT NULL",
            )
            .await
                == 3
        },
    )
    .await;
    h.stop().await;
}
