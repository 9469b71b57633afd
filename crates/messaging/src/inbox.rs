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

/// [`claim`] for a batch, in one statement: the ids of `envelopes` claimed
/// now (each once, even when it occurs twice in the batch); the others were
/// applied before. Call it in the transaction that applies the batch; it
/// takes a shared reference, so it pipelines with the batch's reads. The
/// ids and types go as two arrays, so the statement is the same whatever
/// the batch's size (prepared once per connection). The ids are claimed in
/// order, so two batches applied at once that share an id (a redelivery)
/// wait for each other instead of deadlocking.
pub async fn claim_many<T>(
    mut conn: &AsyncPgConnection,
    envelopes: &[&Envelope<T>],
) -> QueryResult<std::collections::HashSet<uuid::Uuid>> {
    use diesel::sql_types::{Array, Text, Uuid};
    #[derive(diesel::QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = Uuid)]
        eventid: uuid::Uuid,
    }
    let claimed: Vec<Claimed> = aichat_db::Cached(
        diesel::sql_query(
            "INSERT INTO inbox (eventId, eventType) \
         SELECT * FROM unnest($1::uuid[], $2::text[]) AS b (id, t) ORDER BY id \
         ON CONFLICT DO NOTHING RETURNING eventId",
        )
        .bind::<Array<Uuid>, _>(envelopes.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            envelopes
                .iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
        ),
    )
    .load(&mut conn)
    .await?;
    Ok(claimed.into_iter().map(|c| c.eventid).collect())
}

/// Forgets ids this transaction claimed but will not apply after all (they
/// are applied later, each in a transaction of its own); how many.
pub async fn forget(mut conn: &AsyncPgConnection, ids: &[uuid::Uuid]) -> QueryResult<usize> {
    diesel::delete(inbox::table.filter(inbox::event_id.eq_any(ids)))
        .execute(&mut conn)
        .await
}

/// How long an applied event's id is remembered. A redelivery older than
/// this would be applied again, so it must exceed the longest time a
/// message can wait on the broker or in a dead-letter queue before it is
/// replayed. The same in every service.
pub const DEDUP_WINDOW: chrono::Duration = chrono::Duration::days(7);

/// Rows deleted per statement, so a large backlog never holds long locks.
const PRUNE_BATCH: i64 = 1000;

/// Forgets the events applied more than `window` ago, in batches of 1,000
/// rows (one statement each: call it outside a transaction); returns how many rows it deleted. Every service's
/// periodic task calls it with [`DEDUP_WINDOW`].
pub async fn prune(conn: &mut AsyncPgConnection, window: chrono::Duration) -> QueryResult<usize> {
    let before = (chrono::Utc::now() - window).naive_utc();
    let mut deleted = 0;
    loop {
        // diesel cannot express a subquery on the table it deletes from.
        let n = diesel::sql_query(
            "DELETE FROM inbox WHERE eventId IN (SELECT eventId FROM inbox \
             WHERE processedAt < $1 LIMIT $2)",
        )
        .bind::<diesel::sql_types::Timestamp, _>(before)
        .bind::<diesel::sql_types::BigInt, _>(PRUNE_BATCH)
        .execute(conn)
        .await?;
        deleted += n;
        if i64::try_from(n).unwrap_or(i64::MAX) < PRUNE_BATCH {
            return Ok(deleted);
        }
    }
}

/// [`prune`] with [`DEDUP_WINDOW`] on a connection of `pool`, for a
/// service's periodic task: logs what it did, or why it could not (the
/// next round tries again).
pub async fn prune_expired(pool: &aichat_db::Pool) {
    let pruned = async {
        let mut conn = pool.get().await?;
        anyhow::Ok(prune(&mut conn, DEDUP_WINDOW).await?)
    }
    .await;
    match pruned {
        Ok(0) => {}
        Ok(n) => tracing::info!(inbox.pruned = n, "inbox pruned"),
        Err(error) => tracing::warn!(error = format!("{error:#}"), "pruning the inbox failed"),
    }
}
