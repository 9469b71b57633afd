//! The mail worker: sends the mails `mailOutbox` holds, one at a time, until
//! shut down.
//!
//! Protocol, per mail: claim the oldest due row, leasing it (its
//! `nextAttemptAt` moves past the send timeout, so no other worker takes it
//! meanwhile) and counting the attempt; send it with no transaction open;
//! then delete the row once sent, or set its next attempt (exponential
//! backoff), or, after the last attempt, delete it and log the give-up (the
//! user can ask for a new link). Delivery is at least once: a worker that
//! dies after the server accepted a mail but before deleting its row sends
//! it again when the lease ends. The row holds the raw link token only until
//! then.
//!
//! Not the outbox relay: mails never go through RabbitMQ.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Mail, Mailer};
use crate::store::{self, mail::QueuedMail};

/// How often an idle worker looks for mails that became due (a retry's
/// time, or a mail queued by another replica).
const POLL: Duration = Duration::from_secs(1);
/// How long past the send timeout a claimed mail stays leased.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Wakes the worker right after a commit that queued a mail, so it leaves
/// within milliseconds instead of at the next poll.
#[derive(Clone, Default)]
pub struct MailWaker(Arc<Notify>);

impl MailWaker {
    /// Call after committing a transaction that queued a mail.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// How hard the worker tries.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts per mail, the first included (`MAIL_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each (`MAIL_RETRY_BASE_MS`).
    pub base: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
}

impl Retry {
    /// The wait before the attempt after `attempts` failed ones.
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Sends `mailOutbox` until shut down.
pub struct Worker {
    pool: aichat_db::Pool,
    mailer: Mailer,
    waker: MailWaker,
    retry: Retry,
    /// How long a claimed mail is hidden from other workers: the send
    /// timeout and a margin.
    lease: Duration,
}

impl Worker {
    /// A worker over the `mailOutbox` behind `pool`.
    pub fn new(
        pool: aichat_db::Pool,
        mailer: Mailer,
        waker: MailWaker,
        retry: Retry,
        send_timeout: Duration,
    ) -> Self {
        Self {
            pool,
            mailer,
            waker,
            retry,
            lease: send_timeout + LEASE_MARGIN,
        }
    }

    /// Runs until `shutdown` is cancelled, finishing the mail in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            match self.send_one().await {
                // One sent (or retried later): more may be due.
                Ok(true) => failures = 0,
                // Nothing due. A commit made meanwhile has woken the waker
                // already (it keeps the permit), so waiting loses nothing.
                Ok(false) => {
                    failures = 0;
                    tokio::select! {
                        () = self.waker.0.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "the mail worker failed; it will try again"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(aichat_messaging::backoff(failures)) => {}
                        () = shutdown.cancelled() => {}
                    }
                    failures = failures.saturating_add(1);
                }
            }
        }
        tracing::info!("mail worker stopped");
    }

    /// Claims one due mail and tries to send it; `false` when none was due.
    pub async fn send_one(&self) -> anyhow::Result<bool> {
        let lease_until = store::now() + chrono::Duration::from_std(self.lease)?;
        let claimed = {
            let mut conn = self.pool.get().await?;
            store::mail::claim(&mut conn, lease_until).await?
        };
        let Some(queued) = claimed else {
            return Ok(false);
        };
        // No connection is held while the mail server takes its time.
        let sent = self.mailer.send(&mail(&queued)).await;
        let mut conn = self.pool.get().await?;
        let attempts = u32::try_from(queued.attempts).unwrap_or(u32::MAX);
        match sent {
            Ok(()) => {
                store::mail::delete(&mut conn, queued.id).await?;
                tracing::info!(mail.id = %queued.id, user.id = %queued.user_id, attempts, "mail sent");
            }
            Err(error) if attempts >= self.retry.max_attempts => {
                store::mail::delete(&mut conn, queued.id).await?;
                tracing::error!(
                    error = format!("{error:#}"),
                    mail.id = %queued.id,
                    user.id = %queued.user_id,
                    attempts,
                    "mail not sent; giving up"
                );
            }
            Err(error) => {
                let delay = self.retry.delay(attempts);
                let at = store::now() + chrono::Duration::from_std(delay)?;
                store::mail::retry_at(&mut conn, queued.id, at, &format!("{error:#}")).await?;
                tracing::warn!(
                    error = format!("{error:#}"),
                    mail.id = %queued.id,
                    user.id = %queued.user_id,
                    attempts,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "mail not sent; will retry"
                );
            }
        }
        Ok(true)
    }
}

fn mail(queued: &QueuedMail) -> Mail {
    Mail {
        to: queued.recipient.clone(),
        subject: queued.subject.clone(),
        body: queued.body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let retry = Retry {
            max_attempts: 8,
            base: Duration::from_secs(2),
            max: Duration::from_secs(600),
        };
        assert_eq!(retry.delay(1), Duration::from_secs(2));
        assert_eq!(retry.delay(2), Duration::from_secs(4));
        assert_eq!(retry.delay(5), Duration::from_secs(32));
        assert_eq!(retry.delay(12), Duration::from_secs(600));
        assert_eq!(retry.delay(u32::MAX), Duration::from_secs(600));
    }
}
