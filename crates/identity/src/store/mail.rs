//! `mailOutbox`: mails waiting to leave, and the claims of the mail worker.
//!
//! A row is written in the transaction that issues the mailed token, so a
//! committed token always has its mail on the way. A worker claims a due row
//! by moving its `nextAttemptAt` past a lease (`FOR UPDATE SKIP LOCKED`, so
//! workers of several replicas never take the same row at once), sends it
//! with no transaction open, then deletes it (sent, or given up) or sets its
//! next attempt. A worker that dies mid-send leaves the row to reappear when
//! the lease ends: delivery is at least once.

use diesel::{prelude::*, sql_types::Timestamp as Timestamp_};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Timestamp, now, schema::mail_outbox};

/// A mail as the worker sends it.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = mail_outbox, check_for_backend(diesel::pg::Pg))]
pub struct QueuedMail {
    pub id: Uuid,
    pub user_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Attempts started, this one included.
    pub attempts: i32,
}

/// Queues a mail to `recipient`, due now.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    recipient: &str,
    subject: &str,
    body: &str,
) -> QueryResult<Uuid> {
    let at = now();
    diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::id.eq(Uuid::now_v7()),
            mail_outbox::user_id.eq(user_id),
            mail_outbox::recipient.eq(recipient),
            mail_outbox::subject.eq(subject),
            mail_outbox::body.eq(body),
            mail_outbox::next_attempt_at.eq(at),
            mail_outbox::created_at.eq(at),
        ))
        .returning(mail_outbox::id)
        .get_result(conn)
        .await
}

/// Claims the oldest due mail until `lease_until`, counting the attempt.
/// `None` when nothing is due. One statement: the row is locked, skipped by
/// other workers, and leased in the same step.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    lease_until: Timestamp,
) -> QueryResult<Option<QueuedMail>> {
    // diesel cannot express a locking subquery on the table it updates.
    diesel::sql_query(
        "UPDATE mailOutbox SET attempts = attempts + 1, nextAttemptAt = $1 \
         WHERE id = (SELECT id FROM mailOutbox WHERE nextAttemptAt <= $2 \
                     ORDER BY nextAttemptAt LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, userId AS user_id, recipient, subject, body, attempts",
    )
    .bind::<Timestamp_, _>(lease_until)
    .bind::<Timestamp_, _>(now())
    .get_result::<QueuedMail>(conn)
    .await
    .optional()
}

/// Removes a mail: sent, or given up.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(mail_outbox::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// Records a failed attempt and when to try again.
pub async fn retry_at(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    at: Timestamp,
    error: &str,
) -> QueryResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::next_attempt_at.eq(at),
            mail_outbox::last_error.eq(error),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// How many mails wait to leave (sent ones are deleted).
pub async fn pending(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    mail_outbox::table.count().get_result(conn).await
}
