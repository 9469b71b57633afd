//! Group commit: the replies that finish while the last group is being
//! saved are saved together, in one transaction
//! ([`charge::finish_group`]) whose statements each cover the whole group.
//! Under load a reply then costs a fraction of the round trips and of the
//! commit it costs alone; a reply's `done` still goes out only after its
//! group has committed. A reply that finishes alone (light load) is saved
//! at once, as before.

use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::charge::{self, Finished, Reply};
use crate::service::Chat;

/// Replies waiting for the writer at most; past this, a reply is saved by
/// its own task.
const QUEUE: usize = 1024;

/// Replies saved in one transaction at most.
const GROUP_MAX: usize = 32;

/// A reply handed to the writer, and where its outcome goes: how it
/// finished, or the reply back when its group could not be saved.
struct Job {
    reply: Reply,
    answer: oneshot::Sender<Result<Finished, Reply>>,
}

/// Hands replies to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Finisher {
    queue: mpsc::Sender<Job>,
}

impl Finisher {
    /// Starts the writer on `tasks`. Once `shutdown` is cancelled it saves
    /// what is queued and stops; replies that finish after that are saved
    /// by their own tasks.
    pub fn start(chat: Chat, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tasks.spawn(write(chat, jobs, shutdown));
        Self { queue }
    }

    /// Saves and charges `reply` with the others finishing now; on its own
    /// ([`charge::finish`], with its retries) when its group could not be
    /// saved, the queue is full or the writer has stopped.
    pub(super) async fn finish(&self, chat: &Chat, reply: Reply) -> anyhow::Result<Finished> {
        let (answer, answered) = oneshot::channel();
        let reply = match self.queue.try_send(Job { reply, answer }) {
            Ok(()) => match answered.await {
                Ok(Ok(finished)) => return Ok(finished),
                Ok(Err(reply)) => reply,
                Err(_) => anyhow::bail!("the writer stopped holding the reply"),
            },
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                job.reply
            }
        };
        charge::finish(chat, &reply).await
    }
}

async fn write(chat: Chat, mut jobs: mpsc::Receiver<Job>, shutdown: CancellationToken) {
    loop {
        let first = tokio::select! {
            job = jobs.recv() => job,
            () = shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            break;
        };
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        save(&chat, group).await;
    }
    // No reply comes in any more; the queued ones are saved.
    jobs.close();
    let mut rest = Vec::new();
    while let Some(job) = jobs.recv().await {
        rest.push(job);
    }
    if !rest.is_empty() {
        save(&chat, rest).await;
    }
}

async fn save(chat: &Chat, group: Vec<Job>) {
    let (replies, answers): (Vec<Reply>, Vec<_>) =
        group.into_iter().map(|j| (j.reply, j.answer)).unzip();
    match charge::finish_group(chat, &replies).await {
        Ok(finished) => {
            for (answer, finished) in answers.into_iter().zip(finished) {
                let _ = answer.send(Ok(finished));
            }
        }
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                replies = replies.len(),
                "saving a group of replies failed; each is saved on its own"
            );
            for (answer, reply) in answers.into_iter().zip(replies) {
                let _ = answer.send(Err(reply));
            }
        }
    }
}
