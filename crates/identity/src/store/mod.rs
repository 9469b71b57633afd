//! The identity database: the only place its SQL lives. Functions take a
//! connection, never the pool, so the service decides the transaction.

pub mod api_keys;
pub mod mail;
pub mod schema;
pub mod sessions;
pub mod tokens;
pub mod users;

/// A `TIMESTAMP` column's value; the database holds UTC.
pub type Timestamp = chrono::NaiveDateTime;

/// Now, as stored.
pub fn now() -> Timestamp {
    chrono::Utc::now().naive_utc()
}
