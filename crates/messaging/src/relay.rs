//! The outbox relay: publishes committed events with publisher confirms.
//!
//! Protocol, per batch: lock up to [`BATCH`] unpublished rows
//! (`FOR UPDATE SKIP LOCKED`, so relays of several replicas share the work),
//! publish each as a persistent message, wait for the broker's confirms, then
//! set `publishedAt` on the acked rows and commit. A nack, a returned message
//! or a broken channel leaves the row unpublished for the next round; the
//! broker may already hold a copy, which is why consumers deduplicate.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{AmqpConfig, schema::outbox};

/// Rows published per transaction.
pub const BATCH: i64 = 200;
/// How often an idle relay looks for rows written by other processes.
const POLL: Duration = Duration::from_millis(200);
/// Published rows are kept this long (for debugging), then pruned.
const KEEP_PUBLISHED: chrono::Duration = chrono::Duration::days(7);

/// Wakes the relay right after a commit, so events leave within
/// milliseconds instead of at the next poll.
#[derive(Clone, Default)]
pub struct Waker(Arc<Notify>);

impl Waker {
    /// Call after committing a transaction that wrote to the outbox.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Publishes a service's outbox to RabbitMQ until shut down.
pub struct Relay {
    pool: aichat_db::Pool,
    amqp: AmqpConfig,
    waker: Waker,
}

struct Link {
    _connection: Connection,
    channel: Channel,
}

#[derive(Queryable)]
struct Row {
    id: Uuid,
    event_type: String,
    payload: serde_json::Value,
}

impl Relay {
    /// A relay for the outbox behind `pool`.
    pub fn new(pool: aichat_db::Pool, amqp: AmqpConfig, waker: Waker) -> Self {
        Self { pool, amqp, waker }
    }

    /// Runs until `shutdown` is cancelled, finishing the batch in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut link: Option<Link> = None;
        let mut failures: u32 = 0;
        let mut last_prune = std::time::Instant::now();
        while !shutdown.is_cancelled() {
            if link.is_none() {
                match open(&self.amqp).await {
                    Ok(l) => {
                        tracing::info!(exchange = %self.amqp.exchange, "outbox relay connected");
                        link = Some(l);
                        failures = 0;
                    }
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "outbox relay cannot reach RabbitMQ"
                        );
                        self.pause(&shutdown, crate::backoff(failures)).await;
                        failures = failures.saturating_add(1);
                        continue;
                    }
                }
            }
            let Some(l) = link.as_ref() else { continue };
            match self.publish_batch(&l.channel).await {
                // A full batch: more may be waiting.
                Ok(n) if i64::try_from(n).unwrap_or(i64::MAX) >= BATCH => failures = 0,
                // Caught up. A commit made meanwhile has woken the waker
                // already (it keeps the permit), so waiting loses nothing.
                Ok(n) => {
                    failures = 0;
                    if n == 0 && last_prune.elapsed() > Duration::from_secs(600) {
                        last_prune = std::time::Instant::now();
                        if let Err(error) = self.prune().await {
                            tracing::warn!(
                                error = format!("{error:#}"),
                                "pruning the outbox failed"
                            );
                        }
                    }
                    tokio::select! {
                        () = self.waker.0.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "publishing the outbox failed; reconnecting"
                    );
                    link = None;
                    self.pause(&shutdown, crate::backoff(failures)).await;
                    failures = failures.saturating_add(1);
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn pause(&self, shutdown: &CancellationToken, how_long: Duration) {
        tokio::select! {
            () = tokio::time::sleep(how_long) => {}
            () = shutdown.cancelled() => {}
        }
    }

    /// Publishes one batch; returns how many rows it published.
    async fn publish_batch(&self, channel: &Channel) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await.context("getting a connection")?;
        let exchange = self.amqp.exchange.clone();
        conn.transaction::<usize, anyhow::Error, _>(async |conn| {
            let rows: Vec<Row> = outbox::table
                .filter(outbox::published_at.is_null())
                .order(outbox::id)
                .limit(BATCH)
                .select((outbox::id, outbox::event_type, outbox::payload))
                .for_update()
                .skip_locked()
                .load(conn)
                .await
                .context("reading the outbox")?;
            if rows.is_empty() {
                return Ok(0);
            }
            let mut pending = Vec::with_capacity(rows.len());
            for row in &rows {
                let body = serde_json::to_vec(&row.payload).context("encoding an event")?;
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        row.event_type.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties(row),
                    )
                    .await
                    .context("publishing an event")?;
                pending.push((row.id, confirm));
            }
            let mut acked = Vec::with_capacity(pending.len());
            let mut refused = Vec::new();
            for (id, confirm) in pending {
                match confirm.await.context("waiting for a publisher confirm")? {
                    Confirmation::Ack(None) => acked.push(id),
                    Confirmation::Ack(Some(_))
                    | Confirmation::Nack(_)
                    | Confirmation::NotRequested => {
                        refused.push(id);
                    }
                }
            }
            // Losing this commit to a crash only sends the rows again, which
            // consumers deduplicate: it need not wait for the WAL flush.
            aichat_db::commit_without_flush(conn)
                .await
                .context("relaxing the commit")?;
            let now = Utc::now().naive_utc();
            aichat_db::Cached(
                diesel::update(outbox::table.filter(outbox::id.eq_any(&acked))).set((
                    outbox::published_at.eq(now),
                    outbox::attempts.eq(outbox::attempts + 1),
                )),
            )
            .execute(conn)
            .await
            .context("marking events published")?;
            if !refused.is_empty() {
                tracing::warn!(
                    count = refused.len(),
                    "the broker refused events; they will be retried"
                );
                diesel::update(outbox::table.filter(outbox::id.eq_any(&refused)))
                    .set((
                        outbox::attempts.eq(outbox::attempts + 1),
                        outbox::last_error.eq("refused by the broker"),
                    ))
                    .execute(conn)
                    .await
                    .context("recording refused events")?;
            }
            Ok(acked.len())
        })
        .await
    }

    async fn prune(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        let before = (Utc::now() - KEEP_PUBLISHED).naive_utc();
        diesel::delete(outbox::table.filter(outbox::published_at.lt(before)))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

async fn open(config: &AmqpConfig) -> anyhow::Result<Link> {
    let (connection, channel) = crate::connect(config).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("enabling publisher confirms")?;
    Ok(Link {
        _connection: connection,
        channel,
    })
}

fn properties(row: &Row) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(tp) = row
        .payload
        .pointer("/traceContext/traceparent")
        .and_then(|v| v.as_str())
    {
        headers.insert(
            ShortString::from("traceparent"),
            AMQPValue::LongString(tp.into()),
        );
    }
    BasicProperties::default()
        .with_delivery_mode(2) // persistent: survives a broker restart
        .with_content_type("application/json".into())
        .with_message_id(row.id.to_string().as_str().into())
        .with_type(row.event_type.as_str().into())
        .with_headers(headers)
}
