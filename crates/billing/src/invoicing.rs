//! Stripe's invoice, payment and refund events, and the daily overdue job:
//! the `invoices` and `payments` rows and the `billing.payment.*` and
//! `billing.invoice.*` events. Not the subscription's state: that moves
//! with `customer.subscription.*` ([`crate::webhooks`]), so a failed
//! renewal's `past_due`/`unpaid` is not decided here.
//!
//! Each event is applied once (its id claimed in `stripeEvents` in the
//! transaction of its effect) and in any order: a row keeps the `created`
//! of the event it was written from and an older event is recorded and
//! skipped. Events of the same second (Stripe often sends `invoice.created`,
//! `invoice.finalized` and `invoice.paid` within one) are ordered by how
//! far along they are: an invoice `draft` < `open` < `paid`, `void`,
//! `uncollectible`; a payment `pending` < `failed` < `succeeded` <
//! `refunded`, then by the amount refunded. Events are enqueued only when a
//! row's state actually changes.
//!
//! - `invoice.created|finalized|paid|payment_failed|voided|marked_uncollectible`:
//!   the invoice row, from its finalisation on (the seed's invoiceNumber is
//!   NOT NULL; a draft has no number: acknowledged, nothing stored).
//!   `billing.invoice.changed` when the row is created or its state
//!   (status, amounts, due date, payment, number, subscription link)
//!   changes; `billing.invoice.paid` when it turns `paid`. The payments the invoice
//!   lists (its `payments`, when Stripe expanded them) are linked to it; on
//!   `invoice.payment_failed` they turn `failed` (`billing.payment.failed`).
//!   Without the list the failure arrives as `payment_intent.payment_failed`
//!   for the same attempt: Stripe creates one payment intent per invoice.
//! - `payment_intent.succeeded|payment_failed`: the payment row, keyed by
//!   the payment intent; `billing.payment.succeeded|failed` when it turns so.
//! - `charge.refunded`: the refunded amount of the charge's payment; a full
//!   refund turns it `refunded`, a partial one keeps it `succeeded` with
//!   `amountRefunded` set; `billing.payment.refunded` each time the refunded
//!   amount grows.
//!
//! The user is the row's, else the Stripe customer's (`stripeCustomers`),
//! else the one of the invoice's subscription; an event of no known user
//! is recorded and ignored.

use aichat_events::billing::{
    InvoiceChanged, InvoiceOverdue, InvoicePaid, PaymentFailed, PaymentRefunded, PaymentSucceeded,
};
use aichat_messaging::outbox;
use bigdecimal::{BigDecimal, Zero};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    domain::money::{from_minor_units, parse_currency},
    service::Error,
    store::{
        invoices::{self, Invoice as InvoiceRow, InvoiceState},
        payments::{self, Payment, PaymentState},
        stripe_customers, stripe_events,
    },
    stripe::{
        payments::{Charge, Invoice, PaymentIntent},
        types::Event,
    },
    webhooks::{Outcome, WebhookError},
};

/// The invoice events handled.
pub const INVOICE_EVENTS: [&str; 6] = [
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
];
const PAYMENT_SUCCEEDED: &str = "payment_intent.succeeded";
const PAYMENT_FAILED: &str = "payment_intent.payment_failed";
const CHARGE_REFUNDED: &str = "charge.refunded";
const INVOICE_PAYMENT_FAILED: &str = "invoice.payment_failed";

/// Whether `kind` is an event this module handles.
pub fn handles(kind: &str) -> bool {
    INVOICE_EVENTS.contains(&kind)
        || [PAYMENT_SUCCEEDED, PAYMENT_FAILED, CHARGE_REFUNDED].contains(&kind)
}

/// Applies a verified event of a type [`handles`] accepts, once.
pub async fn handle(
    pool: &aichat_db::Pool,
    event: &Event,
    created: DateTime<Utc>,
) -> Result<Outcome, WebhookError> {
    let kind = event.kind.as_str();
    if INVOICE_EVENTS.contains(&kind) {
        let invoice: Invoice = event.object().map_err(malformed)?;
        invoice_changed(pool, event, created, &invoice).await
    } else if kind == CHARGE_REFUNDED {
        let charge: Charge = event.object().map_err(malformed)?;
        charge_refunded(pool, event, created, &charge).await
    } else {
        let intent: PaymentIntent = event.object().map_err(malformed)?;
        let status = if kind == PAYMENT_SUCCEEDED {
            PaymentStatus::Succeeded
        } else {
            PaymentStatus::Failed
        };
        payment_changed(pool, event, created, &intent, status).await
    }
}

fn malformed(e: impl std::fmt::Display) -> WebhookError {
    WebhookError::Malformed(e.to_string())
}

/// A Stripe amount as the stored decimal, or a malformed event.
fn money(amount: i64, currency: &str, what: &str) -> Result<BigDecimal, WebhookError> {
    from_minor_units(amount, currency).map_err(|e| WebhookError::Malformed(format!("{what}: {e}")))
}

/// The payment statuses of the `payments` CHECK, in the order a payment
/// moves through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PaymentStatus {
    Pending,
    Failed,
    Succeeded,
    Refunded,
}

impl PaymentStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Succeeded => "succeeded",
            Self::Refunded => "refunded",
        }
    }

    fn parse(stored: &str) -> Self {
        match stored {
            "failed" => Self::Failed,
            "succeeded" => Self::Succeeded,
            "refunded" => Self::Refunded,
            _ => Self::Pending,
        }
    }
}

/// How far along an invoice status is: a tie-break between events of the
/// same second.
fn invoice_rank(status: &str) -> u8 {
    match status {
        "draft" => 0,
        "open" => 1,
        _ => 2,
    }
}

/// Whether an event of `at` whose state ranks `rank` replaces a row
/// written from an event of `stored_at` ranking `stored_rank`: a newer
/// event does; one of the same second does unless it is behind.
fn supersedes<R: PartialOrd>(
    stored_at: Option<NaiveDateTime>,
    stored_rank: R,
    at: NaiveDateTime,
    rank: R,
) -> bool {
    match stored_at {
        None => true,
        Some(stored_at) => at > stored_at || (at == stored_at && rank >= stored_rank),
    }
}

/// An invoice as the `invoices` row stores it, parsed before any write so
/// a malformed event changes nothing.
struct ParsedInvoice {
    number: String,
    status: &'static str,
    subtotal: BigDecimal,
    tax: BigDecimal,
    total: BigDecimal,
}

/// What an invoice event carries for the `invoices` table.
enum Parsed {
    Invoice(ParsedInvoice),
    /// A draft: no number yet.
    Draft,
    /// A status newer than this code: acknowledged, not stored.
    UnknownStatus,
}

fn parse_invoice(invoice: &Invoice) -> Result<Parsed, WebhookError> {
    let Some(status) = invoice.status else {
        return Err(WebhookError::Malformed(format!(
            "invoice {} has no status",
            invoice.id
        )));
    };
    let Some(number) = invoice.number.clone() else {
        return Ok(Parsed::Draft);
    };
    let Some(status) = status.as_stored() else {
        return Ok(Parsed::UnknownStatus);
    };
    let currency = parse_currency(&invoice.currency).map_err(malformed)?;
    let tax = invoice
        .tax_amount()
        .ok_or_else(|| WebhookError::Malformed("the invoice's tax overflows".to_owned()))?;
    let tax = money(tax, &currency, "tax")?;
    if tax < BigDecimal::zero() {
        return Err(WebhookError::Malformed("a negative tax".to_owned()));
    }
    Ok(Parsed::Invoice(ParsedInvoice {
        number,
        status,
        subtotal: money(invoice.subtotal, &currency, "subtotal")?,
        total: money(invoice.total, &currency, "total")?,
        tax,
    }))
}

/// `invoice.*`: the invoice row, the payments it lists, the events.
async fn invoice_changed(
    pool: &aichat_db::Pool,
    event: &Event,
    created: DateTime<Utc>,
    invoice: &Invoice,
) -> Result<Outcome, WebhookError> {
    let parsed = parse_invoice(invoice)?;
    let currency = parse_currency(&invoice.currency).map_err(malformed)?;
    let mut linked = Vec::new();
    for (intent, payment) in invoice.payment_intents() {
        let currency = parse_currency(&payment.currency).map_err(malformed)?;
        let amount = money(payment.amount_requested, &currency, "amount_requested")?;
        if amount < BigDecimal::zero() {
            return Err(WebhookError::Malformed("a negative payment".to_owned()));
        }
        linked.push((intent.to_owned(), amount, currency));
    }
    let mut conn = pool.get().await.map_err(Error::from)?;
    conn.transaction::<_, WebhookError, _>(async |conn| {
        let at = created.naive_utc();
        if !stripe_events::claim(conn, &event.id, &event.kind, at).await? {
            return Ok(Outcome::Duplicate);
        }
        let parsed = match parsed {
            Parsed::Invoice(parsed) => parsed,
            Parsed::Draft => {
                tracing::info!(stripe.event.id = %event.id, stripe.invoice = %invoice.id, "a draft invoice (no number yet): stored once finalized");
                return Ok(Outcome::Ignored);
            }
            Parsed::UnknownStatus => {
                tracing::warn!(stripe.event.id = %event.id, stripe.invoice = %invoice.id, "an invoice status billing does not know; ignored");
                return Ok(Outcome::Ignored);
            }
        };
        let subscription = match invoice.subscription_id() {
            Some(id) => invoices::subscription_of(conn, id).await?,
            None => None,
        };
        let mut existing = invoices::lock_by_stripe_id(conn, &invoice.id).await?;
        let user_id = match (&existing, subscription) {
            (Some(row), _) => Some(row.user_id),
            (None, Some((_, user_id))) => Some(user_id),
            (None, None) => customer_user(conn, invoice.customer.as_deref()).await?.or_else(|| {
                invoice
                    .metadata_user()
                    .and_then(|id| Uuid::parse_str(id).ok())
            }),
        };
        let Some(user_id) = user_id else {
            tracing::warn!(stripe.event.id = %event.id, stripe.invoice = %invoice.id, "an invoice of no known user; ignored");
            return Ok(Outcome::Ignored);
        };
        let mut state = InvoiceState {
            user_id,
            subscription_id: subscription.map(|(id, _)| id),
            invoice_number: parsed.number,
            stripe_invoice_id: invoice.id.clone(),
            subtotal: parsed.subtotal,
            tax: parsed.tax,
            total: parsed.total,
            status: parsed.status.to_owned(),
            due_date: invoice.due_date(),
            paid_at: invoice.paid_at().map(|t| t.naive_utc()),
            pdf_url: invoice.invoice_pdf.clone(),
            stripe_event_created_at: Some(at),
        };
        let mut inserted = None;
        if existing.is_none() {
            inserted = invoices::insert(conn, &state).await?;
            if inserted.is_none() {
                // Another delivery inserted it meanwhile: update it.
                existing = invoices::lock_by_stripe_id(conn, &invoice.id).await?;
            }
        }
        let (row, previous) = match (inserted, existing) {
            (Some(row), _) => (row, None),
            (None, Some(row)) => {
                if !supersedes(
                    row.stripe_event_created_at,
                    invoice_rank(&row.status),
                    at,
                    invoice_rank(&state.status),
                ) {
                    tracing::info!(stripe.event.id = %event.id, stripe.invoice = %invoice.id, "an older invoice event than the stored state; ignored");
                    return Ok(Outcome::Ignored);
                }
                state.user_id = row.user_id;
                state.subscription_id = state.subscription_id.or(row.subscription_id);
                (invoices::update(conn, row.id, &state).await?, Some(row))
            }
            (None, None) => {
                // Not inserted, yet no row of its Stripe id: its number is
                // another invoice's. Refused (5xx) so Stripe retries.
                return Err(Error::Unexpected(anyhow::anyhow!(
                    "invoice {} has the number {} of another invoice",
                    invoice.id,
                    state.invoice_number
                ))
                .into());
            }
        };

        // The payments it lists: linked to it; failed with it.
        let failed = event.kind == INVOICE_PAYMENT_FAILED;
        for (intent, amount, currency) in linked {
            let change = PaymentChange {
                intent,
                user_id: row.user_id,
                stripe_invoice_id: Some(row.stripe_invoice_id.clone()),
                subscription_id: row.subscription_id,
                amount,
                currency,
                description: None,
                metadata: None,
                status: failed.then_some(PaymentStatus::Failed),
                amount_refunded: None,
                failure_code: None,
            };
            apply_payment(conn, &change, at, created).await?;
        }

        if previous.as_ref().is_none_or(|before| !before.same_state(&row)) {
            outbox::enqueue(conn, &invoice_change(&row, created)).await?;
        }
        let previous_status = previous.map(|before| before.status);
        if row.status == "paid" && previous_status.as_deref() != Some("paid") {
            outbox::enqueue(
                conn,
                &InvoicePaid {
                    user_id: row.user_id,
                    invoice_id: row.id,
                    invoice_number: row.invoice_number.clone(),
                    total: row.total.clone(),
                    currency: currency.clone(),
                    paid_at: row.paid_at.map_or(created, |t| t.and_utc()),
                    occurred_at: created,
                },
            )
            .await?;
        }
        Ok(Outcome::Applied)
    })
    .await
}

/// `billing.invoice.changed` of the row as written from an event of
/// `created` (the row's `stripeEventCreatedAt`).
fn invoice_change(row: &InvoiceRow, created: DateTime<Utc>) -> InvoiceChanged {
    let occurred_at = row.stripe_event_created_at.map_or(created, |t| t.and_utc());
    InvoiceChanged {
        invoice_id: row.id,
        user_id: row.user_id,
        subscription_id: row.subscription_id,
        invoice_number: row.invoice_number.clone(),
        status: row.status.clone(),
        subtotal: row.subtotal.clone(),
        tax: row.tax.clone(),
        total: row.total.clone(),
        due_date: row.due_date,
        paid_at: row.paid_at.map(|t| t.and_utc()),
        created_at: row.created_at.map_or(occurred_at, |t| t.and_utc()),
        occurred_at,
    }
}

/// `payment_intent.succeeded|payment_failed`: the payment row and its
/// event.
async fn payment_changed(
    pool: &aichat_db::Pool,
    event: &Event,
    created: DateTime<Utc>,
    intent: &PaymentIntent,
    status: PaymentStatus,
) -> Result<Outcome, WebhookError> {
    let currency = parse_currency(&intent.currency).map_err(malformed)?;
    let amount = money(intent.amount, &currency, "amount")?;
    if amount < BigDecimal::zero() {
        return Err(WebhookError::Malformed("a negative payment".to_owned()));
    }
    let metadata = serde_json::to_value(&intent.metadata).map_err(malformed)?;
    let failure_code = intent
        .last_payment_error
        .as_ref()
        .and_then(|e| e.decline_code.clone().or_else(|| e.code.clone()));
    let mut conn = pool.get().await.map_err(Error::from)?;
    conn.transaction::<_, WebhookError, _>(async |conn| {
        let at = created.naive_utc();
        if !stripe_events::claim(conn, &event.id, &event.kind, at).await? {
            return Ok(Outcome::Duplicate);
        }
        let owner = owner(conn, &intent.id, intent.customer.as_deref(), intent.invoice.as_deref())
            .await?;
        let Some((user_id, subscription_id)) = owner else {
            tracing::warn!(stripe.event.id = %event.id, stripe.payment_intent = %intent.id, "a payment of no known user; ignored");
            return Ok(Outcome::Ignored);
        };
        let change = PaymentChange {
            intent: intent.id.clone(),
            user_id,
            stripe_invoice_id: intent.invoice.clone(),
            subscription_id,
            amount,
            currency,
            description: intent.description.clone(),
            metadata: Some(metadata),
            status: Some(status),
            amount_refunded: None,
            failure_code,
        };
        apply_payment(conn, &change, at, created).await
    })
    .await
}

/// `charge.refunded`: the refunded amount of the charge's payment.
async fn charge_refunded(
    pool: &aichat_db::Pool,
    event: &Event,
    created: DateTime<Utc>,
    charge: &Charge,
) -> Result<Outcome, WebhookError> {
    let currency = parse_currency(&charge.currency).map_err(malformed)?;
    let amount = money(charge.amount, &currency, "amount")?;
    let refunded = money(charge.amount_refunded, &currency, "amount_refunded")?;
    if amount < BigDecimal::zero() || refunded < BigDecimal::zero() || refunded > amount {
        return Err(WebhookError::Malformed(
            "a refund outside the charge's amount".to_owned(),
        ));
    }
    let metadata = serde_json::to_value(&charge.metadata).map_err(malformed)?;
    let mut conn = pool.get().await.map_err(Error::from)?;
    conn.transaction::<_, WebhookError, _>(async |conn| {
        let at = created.naive_utc();
        if !stripe_events::claim(conn, &event.id, &event.kind, at).await? {
            return Ok(Outcome::Duplicate);
        }
        let Some(intent) = &charge.payment_intent else {
            tracing::warn!(stripe.event.id = %event.id, stripe.charge = %charge.id, "a refunded charge without a payment intent; ignored");
            return Ok(Outcome::Ignored);
        };
        let Some((user_id, subscription_id)) =
            owner(conn, intent, charge.customer.as_deref(), None).await?
        else {
            tracing::warn!(stripe.event.id = %event.id, stripe.charge = %charge.id, "a refund of no known user; ignored");
            return Ok(Outcome::Ignored);
        };
        let change = PaymentChange {
            intent: intent.clone(),
            user_id,
            stripe_invoice_id: None,
            subscription_id,
            amount,
            currency,
            description: charge.description.clone(),
            metadata: Some(metadata),
            status: Some(if charge.refunded {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::Succeeded
            }),
            amount_refunded: Some(refunded),
            failure_code: None,
        };
        apply_payment(conn, &change, at, created).await
    })
    .await
}

/// The user of a Stripe customer.
async fn customer_user(
    conn: &mut AsyncPgConnection,
    customer: Option<&str>,
) -> Result<Option<Uuid>, WebhookError> {
    Ok(match customer {
        Some(customer) => stripe_customers::user_of(conn, customer).await?,
        None => None,
    })
}

/// The user (and subscription) a payment belongs to: its row's, else the
/// customer's, else its invoice's.
async fn owner(
    conn: &mut AsyncPgConnection,
    intent: &str,
    customer: Option<&str>,
    invoice: Option<&str>,
) -> Result<Option<(Uuid, Option<Uuid>)>, WebhookError> {
    if let Some(row) = payments::lock_by_intent(conn, intent).await? {
        return Ok(Some((row.user_id, row.subscription_id)));
    }
    let of_invoice = match invoice {
        Some(invoice) => invoices::owner(conn, invoice).await?,
        None => None,
    };
    Ok(match customer_user(conn, customer).await? {
        Some(user_id) => Some((user_id, of_invoice.and_then(|(_, sub)| sub))),
        None => of_invoice,
    })
}

/// What an event says of a payment; `None` fields keep the stored value
/// (a new row: pending, nothing refunded).
struct PaymentChange {
    intent: String,
    user_id: Uuid,
    stripe_invoice_id: Option<String>,
    subscription_id: Option<Uuid>,
    amount: BigDecimal,
    currency: String,
    description: Option<String>,
    metadata: Option<serde_json::Value>,
    /// `None`: only a link to an invoice, not an event of the payment.
    status: Option<PaymentStatus>,
    amount_refunded: Option<BigDecimal>,
    failure_code: Option<String>,
}

/// Writes `change` to the payment's row unless the row is newer, and
/// enqueues the event of the state change. The caller's transaction
/// claimed the event.
async fn apply_payment(
    conn: &mut AsyncPgConnection,
    change: &PaymentChange,
    at: NaiveDateTime,
    created: DateTime<Utc>,
) -> Result<Outcome, WebhookError> {
    let mut existing = payments::lock_by_intent(conn, &change.intent).await?;
    let fresh = PaymentState {
        user_id: change.user_id,
        subscription_id: change.subscription_id,
        stripe_payment_intent_id: change.intent.clone(),
        stripe_invoice_id: change.stripe_invoice_id.clone(),
        amount: change.amount.clone(),
        amount_refunded: change
            .amount_refunded
            .clone()
            .unwrap_or_else(BigDecimal::zero),
        currency: change.currency.clone(),
        status: change
            .status
            .unwrap_or(PaymentStatus::Pending)
            .as_str()
            .to_owned(),
        description: change.description.clone(),
        metadata: change.metadata.clone(),
        stripe_event_created_at: change.status.map(|_| at),
    };
    if existing.is_none() {
        match payments::insert(conn, &fresh).await? {
            Some(row) => {
                publish_payment(conn, None, &row, change, created).await?;
                return Ok(Outcome::Applied);
            }
            // Another delivery inserted it meanwhile: update it.
            None => existing = payments::lock_by_intent(conn, &change.intent).await?,
        }
    }
    let Some(row) = existing else {
        return Err(Error::Unexpected(anyhow::anyhow!("the payment row vanished")).into());
    };
    let mut state = PaymentState {
        user_id: row.user_id,
        subscription_id: row.subscription_id.or(change.subscription_id),
        stripe_invoice_id: row
            .stripe_invoice_id
            .clone()
            .or_else(|| change.stripe_invoice_id.clone()),
        ..fresh
    };
    let Some(status) = change.status else {
        // A link only: the payment's own state stays.
        state.amount = row.amount.clone();
        state.amount_refunded = row.amount_refunded.clone();
        state.currency = row.currency.clone();
        state.status = row.status.clone();
        state.description = row.description.clone();
        state.metadata = row.metadata.clone();
        state.stripe_event_created_at = row.stripe_event_created_at;
        payments::update(conn, row.id, &state).await?;
        return Ok(Outcome::Applied);
    };
    let stored = PaymentStatus::parse(&row.status);
    let refunded = change
        .amount_refunded
        .clone()
        .unwrap_or_else(|| row.amount_refunded.clone());
    if !supersedes(
        row.stripe_event_created_at,
        (stored, row.amount_refunded.clone()),
        at,
        (status, refunded.clone()),
    ) {
        tracing::info!(stripe.payment_intent = %row.stripe_payment_intent_id, "an older payment event than the stored state; ignored");
        return Ok(Outcome::Ignored);
    }
    state.amount_refunded = refunded;
    // A refund's charge keeps what the payment intent said of itself.
    if change.amount_refunded.is_some() && row.stripe_event_created_at.is_some() {
        state.amount = row.amount.clone();
        state.description = row.description.clone();
        state.metadata = row.metadata.clone();
    }
    if state.amount_refunded > state.amount {
        return Err(WebhookError::Malformed(
            "a refund larger than the payment".to_owned(),
        ));
    }
    let updated = payments::update(conn, row.id, &state).await?;
    publish_payment(conn, Some(&row), &updated, change, created).await?;
    Ok(Outcome::Applied)
}

/// The event of a payment's change from `before` to `after`, if any.
async fn publish_payment(
    conn: &mut AsyncPgConnection,
    before: Option<&Payment>,
    after: &Payment,
    change: &PaymentChange,
    created: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let was = before.map(|row| row.status.as_str());
    if after.status == "succeeded" && was != Some("succeeded") && was != Some("refunded") {
        outbox::enqueue(
            conn,
            &PaymentSucceeded {
                user_id: after.user_id,
                payment_id: after.id,
                amount: after.amount.clone(),
                currency: after.currency.clone(),
                stripe_payment_intent_id: after.stripe_payment_intent_id.clone(),
                stripe_invoice_id: after.stripe_invoice_id.clone(),
                occurred_at: created,
            },
        )
        .await?;
    }
    if after.status == "failed" && was != Some("failed") {
        outbox::enqueue(
            conn,
            &PaymentFailed {
                user_id: after.user_id,
                payment_id: after.id,
                amount: after.amount.clone(),
                currency: after.currency.clone(),
                stripe_payment_intent_id: after.stripe_payment_intent_id.clone(),
                stripe_invoice_id: after.stripe_invoice_id.clone(),
                failure_code: change.failure_code.clone(),
                occurred_at: created,
            },
        )
        .await?;
    }
    let refunded_before = before.map_or_else(BigDecimal::zero, |row| row.amount_refunded.clone());
    if after.amount_refunded > refunded_before {
        outbox::enqueue(
            conn,
            &PaymentRefunded {
                user_id: after.user_id,
                payment_id: after.id,
                amount: after.amount.clone(),
                amount_refunded: after.amount_refunded.clone(),
                currency: after.currency.clone(),
                stripe_payment_intent_id: after.stripe_payment_intent_id.clone(),
                fully_refunded: after.status == "refunded",
                occurred_at: created,
            },
        )
        .await?;
    }
    Ok(())
}

/// The daily overdue job: open invoices past their due date, each marked
/// and announced (`billing.invoice.overdue`) once.
#[derive(Clone)]
pub struct Overdue {
    pool: aichat_db::Pool,
}

/// Invoices marked per transaction.
const OVERDUE_BATCH: i64 = 100;

impl Overdue {
    pub fn new(pool: aichat_db::Pool) -> Self {
        Self { pool }
    }

    /// Marks the `open` invoices whose due date is before `now`'s day (UTC)
    /// and not marked yet, enqueueing `billing.invoice.overdue` for each in
    /// the transaction that marks it; returns how many. Safe to run on
    /// several replicas at once: each invoice is marked by one of them
    /// ([`invoices::mark_overdue_batch`]). Run it as often as you like: the
    /// marker makes it once per invoice.
    pub async fn mark(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let today = now.date_naive();
        let mut marked = 0;
        loop {
            let mut conn = self.pool.get().await?;
            let n = conn
                .transaction::<_, Error, _>(async |conn| {
                    let rows =
                        invoices::mark_overdue_batch(conn, today, now.naive_utc(), OVERDUE_BATCH)
                            .await?;
                    for row in &rows {
                        let Some(due_date) = row.due_date else {
                            continue;
                        };
                        outbox::enqueue(
                            conn,
                            &InvoiceOverdue {
                                user_id: row.user_id,
                                invoice_id: row.id,
                                invoice_number: row.invoice_number.clone(),
                                total: row.total.clone(),
                                due_date,
                                occurred_at: now,
                            },
                        )
                        .await?;
                    }
                    Ok(rows.len())
                })
                .await?;
            marked += n;
            if i64::try_from(n).unwrap_or(i64::MAX) < OVERDUE_BATCH {
                return Ok(marked);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> NaiveDateTime {
        DateTime::from_timestamp(seconds, 0).unwrap().naive_utc()
    }

    #[test]
    fn a_newer_event_wins_and_an_older_one_never_does() {
        assert!(supersedes(None, 2, t(10), 0));
        assert!(supersedes(Some(t(10)), 2, t(11), 0));
        assert!(!supersedes(Some(t(10)), 0, t(9), 2));
    }

    #[test]
    fn within_one_second_the_state_further_along_wins() {
        // invoice.paid then invoice.finalized of the same second.
        assert!(!supersedes(
            Some(t(10)),
            invoice_rank("paid"),
            t(10),
            invoice_rank("open")
        ));
        assert!(supersedes(
            Some(t(10)),
            invoice_rank("open"),
            t(10),
            invoice_rank("paid")
        ));
        assert!(supersedes(
            Some(t(10)),
            invoice_rank("open"),
            t(10),
            invoice_rank("open")
        ));
        // A failure and a success of the same second: the success stays.
        assert!(!supersedes(
            Some(t(10)),
            (PaymentStatus::Succeeded, BigDecimal::zero()),
            t(10),
            (PaymentStatus::Failed, BigDecimal::zero())
        ));
        // Two partial refunds of the same second: the larger stays.
        assert!(!supersedes(
            Some(t(10)),
            (PaymentStatus::Succeeded, BigDecimal::from(10)),
            t(10),
            (PaymentStatus::Succeeded, BigDecimal::from(5))
        ));
    }
}
