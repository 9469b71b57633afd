//! `stripeEvents`: the Stripe events applied, so each is applied once.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{Timestamp, now, schema::stripe_events};

/// Records the event; `false` if it was applied before (its effect must
/// then be skipped). Call it in the effect's transaction.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    event_id: &str,
    event_type: &str,
    created_at: Timestamp,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(stripe_events::table)
        .values((
            stripe_events::stripe_event_id.eq(event_id),
            stripe_events::event_type.eq(event_type),
            stripe_events::event_created_at.eq(created_at),
            stripe_events::processed_at.eq(now()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}
