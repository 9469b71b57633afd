//! The billing database: the only place its SQL lives. Functions take a
//! connection, never the pool, so the service decides the transaction.

pub mod deleted_users;
pub mod export;
pub mod history;
pub mod invoices;
pub mod locks;
pub mod payments;
pub mod plans;
pub mod reservations;
pub mod schema;
pub mod stripe_customers;
pub mod stripe_events;
pub mod subscriptions;
pub mod usage;

/// A `TIMESTAMP` column's value; the database holds UTC.
pub type Timestamp = chrono::NaiveDateTime;

/// Now, as stored.
pub fn now() -> Timestamp {
    chrono::Utc::now().naive_utc()
}
