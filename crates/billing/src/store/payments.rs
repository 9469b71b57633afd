//! `payments`: each Stripe payment intent of a user, as the newest Stripe
//! event applied says it is.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, now, schema::payments};

/// A stored payment (the columns the use cases read).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    pub id: Uuid,
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub stripe_payment_intent_id: String,
    pub stripe_invoice_id: Option<String>,
    pub amount: BigDecimal,
    pub amount_refunded: BigDecimal,
    pub currency: String,
    pub status: String,
    pub description: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// The `created` of the Stripe event the row was last written from;
    /// `None` for a row only an invoice's payment list created.
    pub stripe_event_created_at: Option<Timestamp>,
}

/// What a Stripe event says a payment is.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = payments, treat_none_as_null = true)]
pub struct PaymentState {
    pub user_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub stripe_payment_intent_id: String,
    pub stripe_invoice_id: Option<String>,
    pub amount: BigDecimal,
    pub amount_refunded: BigDecimal,
    pub currency: String,
    pub status: String,
    pub description: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub stripe_event_created_at: Option<Timestamp>,
}

/// The row of a payment intent, locked for the transaction.
pub async fn lock_by_intent(
    conn: &mut AsyncPgConnection,
    stripe_payment_intent_id: &str,
) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::stripe_payment_intent_id.eq(stripe_payment_intent_id))
        .select(Payment::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Inserts the payment unless a row of its payment intent exists (another
/// delivery inserted it meanwhile: `None`; lock it and update it instead).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    state: &PaymentState,
) -> QueryResult<Option<Payment>> {
    let at = now();
    diesel::insert_into(payments::table)
        .values((
            payments::id.eq(Uuid::now_v7()),
            state,
            payments::created_at.eq(at),
            payments::updated_at.eq(at),
        ))
        .on_conflict(payments::stripe_payment_intent_id)
        .do_nothing()
        .returning(Payment::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Replaces the row's state (the caller holds its lock and checked the
/// event is newer).
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    state: &PaymentState,
) -> QueryResult<Payment> {
    diesel::update(payments::table.find(id))
        .set((state, payments::updated_at.eq(now())))
        .returning(Payment::as_returning())
        .get_result(conn)
        .await
}
