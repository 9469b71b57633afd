//! `invoices`: each finalized Stripe invoice of a user, as the newest
//! Stripe event applied says it is, and the overdue job's marker.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use diesel::{
    prelude::*,
    sql_types::{BigInt, Date},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp, now,
    schema::{invoices, subscriptions},
};

/// A stored invoice (the columns the use cases read).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices, check_for_backend(diesel::pg::Pg))]
pub struct Invoice {
    pub id: Uuid,
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub invoice_number: String,
    pub stripe_invoice_id: String,
    pub subtotal: BigDecimal,
    pub tax: BigDecimal,
    pub total: BigDecimal,
    pub status: String,
    pub due_date: Option<NaiveDate>,
    pub paid_at: Option<Timestamp>,
    pub pdf_url: Option<String>,
    /// When billing stored it first (always set by billing; the seed's
    /// column is nullable).
    pub created_at: Option<Timestamp>,
    /// The `created` of the Stripe event the row was last written from.
    pub stripe_event_created_at: Option<Timestamp>,
    /// When `billing.invoice.overdue` was enqueued for it.
    pub overdue_notified_at: Option<Timestamp>,
}

impl Invoice {
    /// Whether `other` is the same invoice state as this one, in what
    /// `billing.invoice.changed` reports: status, amounts, due date,
    /// payment, number and subscription link (not the PDF link or the
    /// event time).
    pub fn same_state(&self, other: &Self) -> bool {
        self.status == other.status
            && self.subtotal == other.subtotal
            && self.tax == other.tax
            && self.total == other.total
            && self.due_date == other.due_date
            && self.paid_at == other.paid_at
            && self.invoice_number == other.invoice_number
            && self.subscription_id == other.subscription_id
    }
}

/// What a Stripe event says an invoice is.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = invoices, treat_none_as_null = true)]
pub struct InvoiceState {
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub invoice_number: String,
    pub stripe_invoice_id: String,
    pub subtotal: BigDecimal,
    pub tax: BigDecimal,
    pub total: BigDecimal,
    pub status: String,
    pub due_date: Option<NaiveDate>,
    pub paid_at: Option<Timestamp>,
    pub pdf_url: Option<String>,
    pub stripe_event_created_at: Option<Timestamp>,
}

/// The row of a Stripe invoice, locked for the transaction.
pub async fn lock_by_stripe_id(
    conn: &mut AsyncPgConnection,
    stripe_invoice_id: &str,
) -> QueryResult<Option<Invoice>> {
    invoices::table
        .filter(invoices::stripe_invoice_id.eq(stripe_invoice_id))
        .select(Invoice::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Inserts the invoice unless a row of its Stripe id exists (another
/// delivery inserted it meanwhile: `None`; lock it and update it instead).
/// Every unique column is an arbiter: a delivery racing another one to
/// insert the same invoice conflicts on `invoiceNumber` as often as on
/// `stripeInvoiceId`, and either must end here, not in an error.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    state: &InvoiceState,
) -> QueryResult<Option<Invoice>> {
    let at = now();
    diesel::insert_into(invoices::table)
        .values((
            invoices::id.eq(Uuid::now_v7()),
            state,
            invoices::created_at.eq(at),
            invoices::updated_at.eq(at),
        ))
        .on_conflict_do_nothing()
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Replaces the row's state (the caller holds its lock and checked the
/// event is newer). The overdue marker is left as it is.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    state: &InvoiceState,
) -> QueryResult<Invoice> {
    diesel::update(invoices::table.find(id))
        .set((state, invoices::updated_at.eq(now())))
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await
}

/// The subscriptions row of a Stripe subscription: its id and user.
pub async fn subscription_of(
    conn: &mut AsyncPgConnection,
    stripe_subscription_id: &str,
) -> QueryResult<Option<(Uuid, Uuid)>> {
    subscriptions::table
        .filter(subscriptions::stripe_subscription_id.eq(stripe_subscription_id))
        .select((subscriptions::id, subscriptions::user_id))
        .first(conn)
        .await
        .optional()
}

/// The user and subscription of a stored invoice.
pub async fn owner(
    conn: &mut AsyncPgConnection,
    stripe_invoice_id: &str,
) -> QueryResult<Option<(Uuid, Option<Uuid>)>> {
    invoices::table
        .filter(invoices::stripe_invoice_id.eq(stripe_invoice_id))
        .select((invoices::user_id, invoices::subscription_id))
        .first(conn)
        .await
        .optional()
}

/// An invoice the overdue job marked.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = invoices, check_for_backend(diesel::pg::Pg))]
pub struct Overdue {
    pub id: Uuid,
    pub user_id: Uuid,
    pub invoice_number: String,
    pub total: BigDecimal,
    /// Never null here: only invoices with a due date are overdue.
    pub due_date: Option<NaiveDate>,
}

/// Marks up to `limit` open invoices due before `today` and not marked yet
/// as notified at `at`; returns them. Rows another transaction holds are
/// skipped (it is marking them), and a row marked meanwhile no longer
/// matches: with several replicas running this at once, each invoice is
/// returned once. Call until it returns less than `limit`.
pub async fn mark_overdue_batch(
    conn: &mut AsyncPgConnection,
    today: NaiveDate,
    at: Timestamp,
    limit: i64,
) -> QueryResult<Vec<Overdue>> {
    // diesel cannot put a locking subquery in an UPDATE's filter: plain SQL.
    diesel::sql_query(
        "UPDATE invoices SET overdueNotifiedAt = $2, updatedAt = $2 \
         WHERE id IN (SELECT id FROM invoices \
                      WHERE status = 'open' AND dueDate < $1 AND overdueNotifiedAt IS NULL \
                      ORDER BY dueDate LIMIT $3 FOR UPDATE SKIP LOCKED) \
           AND status = 'open' AND overdueNotifiedAt IS NULL \
         RETURNING id, userId AS user_id, invoiceNumber AS invoice_number, total, dueDate AS due_date",
    )
    .bind::<Date, _>(today)
    .bind::<diesel::sql_types::Timestamp, _>(at)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}
