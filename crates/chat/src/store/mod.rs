//! The chat database: the only place its SQL lives. Functions take a
//! connection, never the pool, so the service decides the transaction.

pub mod conversations;
pub mod messages;
pub mod pending;
pub mod providers;
pub mod schema;
pub mod usage;

/// A `TIMESTAMP` column's value; the database holds UTC.
pub type Timestamp = chrono::NaiveDateTime;

/// Now, as stored (microseconds, like the column).
pub fn now() -> Timestamp {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros())
        .unwrap_or(now)
        .naive_utc()
}
