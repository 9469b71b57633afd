//! Recording consumed events, inside the transaction that applies them.

use aichat_events::Envelope;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::inbox;

/// Claims `envelope` for this service: `true` the first time, `false` when it
/// was applied before (a redelivery), in which case the caller skips the
/// effect. Call it in the transaction that applies the event.
pub async fn claim(mut conn: &AsyncPgConnection, envelope: &Envelope) -> QueryResult<bool> {
    let inserted = diesel::insert_into(inbox::table)
        .values((
            inbox::event_id.eq(envelope.id),
            inbox::event_type.eq(&envelope.event_type),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    Ok(inserted == 1)
}
