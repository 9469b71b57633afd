//! Writing events into the outbox, inside the caller's transaction.

use aichat_events::{Envelope, Event, TraceContext};
use diesel::{dsl::count_star, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::outbox;

/// An event ready for the outbox: its envelope, with the current trace.
pub struct Outgoing {
    id: Uuid,
    event_type: &'static str,
    payload: serde_json::Value,
    created_at: chrono::NaiveDateTime,
}

impl Outgoing {
    /// Wraps `event` in its envelope, carrying the current trace context.
    pub fn new<E: Event>(event: &E) -> QueryResult<Self> {
        let headers = aichat_telemetry::current_context_headers();
        let trace = TraceContext {
            traceparent: headers.get("traceparent").cloned(),
            tracestate: headers.get("tracestate").cloned(),
        };
        let envelope = Envelope::new(event, trace)
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        let payload = serde_json::to_value(&envelope)
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        Ok(Self {
            id: envelope.id,
            event_type: E::TYPE,
            payload,
            created_at: envelope.occurred_at.naive_utc(),
        })
    }
}

/// Adds `event` to the outbox. Call it in the transaction that makes the
/// change: both commit or neither does. Returns the event id.
pub async fn enqueue<E: Event>(conn: &AsyncPgConnection, event: &E) -> QueryResult<Uuid> {
    let outgoing = Outgoing::new(event)?;
    insert(conn, std::slice::from_ref(&outgoing)).await?;
    Ok(outgoing.id)
}

/// Adds several events in one statement, in the caller's transaction. Takes
/// a shared reference so it can be pipelined with the transaction's other
/// writes.
pub async fn insert(mut conn: &AsyncPgConnection, events: &[Outgoing]) -> QueryResult<usize> {
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            (
                outbox::id.eq(e.id),
                outbox::event_type.eq(e.event_type),
                outbox::payload.eq(&e.payload),
                outbox::created_at.eq(e.created_at),
            )
        })
        .collect();
    // One shape per number of rows (one or two per transaction as a rule):
    // prepared once.
    aichat_db::Cached(diesel::insert_into(outbox::table).values(rows))
        .execute(&mut conn)
        .await
}

/// How many events wait to be published (0 when the relay has caught up).
pub async fn pending(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::published_at.is_null())
        .select(count_star())
        .get_result(conn)
        .await
}
