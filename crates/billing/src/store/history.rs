//! Reads of a user's billing history for the user: their invoices and
//! payments, newest first, a page at a time (keyset pagination on
//! `(createdAt, id)`: no offset, no overlap between pages, stable under
//! inserts). Writers of these tables live elsewhere (the webhook's stores);
//! this module never writes.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp,
    schema::{invoices, payments},
};
use aichat_db::page::Cursor;

/// An invoice as the user sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices, check_for_backend(Pg))]
pub struct InvoiceEntry {
    pub id: Uuid,
    pub invoice_number: String,
    pub subtotal: BigDecimal,
    pub tax: BigDecimal,
    pub total: BigDecimal,
    pub status: String,
    pub due_date: Option<NaiveDate>,
    pub paid_at: Option<Timestamp>,
    pub pdf_url: Option<String>,
    /// The sort key (with `id`).
    pub created_at: Option<Timestamp>,
}

impl InvoiceEntry {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// A payment as the user sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(Pg))]
pub struct PaymentEntry {
    pub id: Uuid,
    pub amount: BigDecimal,
    pub currency: String,
    pub status: String,
    pub description: Option<String>,
    /// The sort key (with `id`).
    pub created_at: Option<Timestamp>,
}

impl PaymentEntry {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

// The keyset condition "sorts after `after`" in the order
// `createdAt DESC NULLS FIRST, id DESC` (PostgreSQL's default for DESC, the
// order of payments' `(userId, createdAt DESC)` index). Rows without a
// `createdAt` come first; after one of them, the rest of them (smaller id)
// and then every dated row follow.
macro_rules! after_cursor {
    ($table:ident, $after:expr) => {{
        let after: Cursor = $after;
        let older: Box<
            dyn BoxableExpression<
                    $table::table,
                    Pg,
                    SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>,
                >,
        > = match after.created_at {
            Some(at) => Box::new(
                $table::created_at
                    .lt(at)
                    .or($table::created_at.eq(at).and($table::id.lt(after.id))),
            ),
            None => Box::new(
                $table::created_at
                    .is_null()
                    .and($table::id.lt(after.id))
                    .or($table::created_at.is_not_null())
                    .nullable(),
            ),
        };
        older
    }};
}

/// Up to `limit` of the user's invoices after `after`, newest first.
pub async fn invoices_page(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> QueryResult<Vec<InvoiceEntry>> {
    let mut query = invoices::table
        .filter(invoices::user_id.eq(user_id))
        .select(InvoiceEntry::as_select())
        .order((
            invoices::created_at.desc().nulls_first(),
            invoices::id.desc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(after_cursor!(invoices, after));
    }
    query.load(conn).await
}

/// Up to `limit` of the user's payments after `after`, newest first (on the
/// `(userId, createdAt DESC)` index).
pub async fn payments_page(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> QueryResult<Vec<PaymentEntry>> {
    let mut query = payments::table
        .filter(payments::user_id.eq(user_id))
        .select(PaymentEntry::as_select())
        .order((
            payments::created_at.desc().nulls_first(),
            payments::id.desc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(after_cursor!(payments, after));
    }
    query.load(conn).await
}
