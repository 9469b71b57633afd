//! Writing events into the outbox, inside the caller's transaction.

use aichat_events::{Envelope, Event, TraceContext};
use diesel::{dsl::count_star, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::outbox;

/// Adds `event` to the outbox. Call it in the transaction that makes the
/// change: both commit or neither does. Returns the event id.
pub async fn enqueue<E: Event>(conn: &mut AsyncPgConnection, event: &E) -> QueryResult<Uuid> {
    let headers = aichat_telemetry::current_context_headers();
    let trace = TraceContext {
        traceparent: headers.get("traceparent").cloned(),
        tracestate: headers.get("tracestate").cloned(),
    };
    let envelope = Envelope::new(event, trace)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let payload = serde_json::to_value(&envelope)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    diesel::insert_into(outbox::table)
        .values((
            outbox::id.eq(envelope.id),
            outbox::event_type.eq(E::TYPE),
            outbox::payload.eq(payload),
            outbox::created_at.eq(envelope.occurred_at.naive_utc()),
        ))
        .execute(conn)
        .await?;
    Ok(envelope.id)
}

/// How many events wait to be published (0 when the relay has caught up).
pub async fn pending(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::published_at.is_null())
        .select(count_star())
        .get_result(conn)
        .await
}
