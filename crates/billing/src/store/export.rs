//! Reads for analytics' backfill (`Export*`): every subscription, payment
//! and invoice row, whoever's (deleted users' payments and invoices
//! included), in id order, a keyset page at a time (`WHERE id > after
//! ORDER BY id LIMIT n`, on the primary key). This module never writes.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp,
    schema::{invoices, payments, subscriptions},
};

/// A subscription row as exported.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subscriptions, check_for_backend(Pg))]
pub struct SubscriptionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub plan_id: Uuid,
    pub status: String,
    pub billing_interval: String,
    pub current_period_start: Timestamp,
    pub current_period_end: Timestamp,
    pub cancel_at_period_end: Option<bool>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub stripe_event_created_at: Option<Timestamp>,
}

/// A payment row as exported.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(Pg))]
pub struct PaymentRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub amount: BigDecimal,
    pub amount_refunded: BigDecimal,
    pub currency: String,
    pub status: String,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub stripe_event_created_at: Option<Timestamp>,
}

/// An invoice row as exported.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices, check_for_backend(Pg))]
pub struct InvoiceRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub invoice_number: String,
    pub status: String,
    pub subtotal: BigDecimal,
    pub tax: BigDecimal,
    pub total: BigDecimal,
    pub due_date: Option<NaiveDate>,
    pub paid_at: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub stripe_event_created_at: Option<Timestamp>,
}

// One keyset page of `$table` (rows of `$row`) after `$after`, at most
// `$limit`, by id.
macro_rules! page {
    ($table:ident, $row:ty, $conn:expr, $after:expr, $limit:expr) => {{
        let mut query = $table::table
            .select(<$row>::as_select())
            .order($table::id.asc())
            .limit($limit)
            .into_boxed();
        if let Some(after) = $after {
            query = query.filter($table::id.gt(after));
        }
        query.load($conn).await
    }};
}

/// Up to `limit` subscriptions with an id above `after`, by id.
pub async fn subscriptions_page(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<SubscriptionRow>> {
    page!(subscriptions, SubscriptionRow, conn, after, limit)
}

/// Up to `limit` payments with an id above `after`, by id.
pub async fn payments_page(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<PaymentRow>> {
    page!(payments, PaymentRow, conn, after, limit)
}

/// Up to `limit` invoices with an id above `after`, by id.
pub async fn invoices_page(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<InvoiceRow>> {
    page!(invoices, InvoiceRow, conn, after, limit)
}
