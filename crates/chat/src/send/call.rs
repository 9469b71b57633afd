//! One send's task, from the reservation to the charge. It runs on the
//! service's task tracker, not in the request's future: a caller that goes
//! away cannot cut it between two steps.

use std::time::Duration;

use aichat_events::chat as ev;
use aichat_llm::{ChatRequest, LlmError, ProviderConfig, ProviderKind, StreamEvent};
use aichat_messaging::outbox;
use diesel_async::AsyncPgConnection;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    Counted, EventStream, Failure, SendError, SendEvent, Sender,
    charge::{self, Finished},
    to_i32,
};
use crate::{
    billing::{Reservation, Reserved},
    breaker::Permit,
    domain::language,
    service::{Chat, Error},
    store::{
        self, conversations,
        messages::{self, Message},
        pending::{self, PendingSend},
        providers::Provider,
    },
};

/// Where a call comes from.
pub(super) enum Origin {
    /// A message sent in a conversation: saved, and so is its reply.
    Conversation {
        id: Uuid,
        /// Messages the conversation held when the send was checked.
        sent: i64,
        content: String,
    },
    /// A completion asked with an API key: nothing is saved but its usage.
    ApiKey { key_id: Uuid },
}

impl Origin {
    fn conversation_id(&self) -> Option<Uuid> {
        match self {
            Self::Conversation { id, .. } => Some(*id),
            Self::ApiKey { .. } => None,
        }
    }

    fn api_key_id(&self) -> Option<Uuid> {
        match self {
            Self::Conversation { .. } => None,
            Self::ApiKey { key_id } => Some(*key_id),
        }
    }
}

/// A checked send, ready to run.
pub(super) struct Call {
    pub sender: Sender,
    pub chat: Chat,
    pub user_id: Uuid,
    pub origin: Origin,
    pub provider: Provider,
    pub config: ProviderConfig,
    pub model: String,
    pub request: ChatRequest,
    pub prompt_tokens: u32,
    /// The breaker's leave to call the provider; reported after the call,
    /// handed back unused if the send is refused before it.
    pub permit: Permit,
}

/// Gives a reservation back unless disarmed: every way out of a send that
/// made no provider call releases its tokens at once.
struct ReservationGuard {
    sender: Sender,
    reservation: Option<Reservation>,
}

impl ReservationGuard {
    fn reservation(&self) -> Option<&Reservation> {
        self.reservation.as_ref()
    }

    /// The provider call begins: from now on the call's charge settles the
    /// reservation (or [`charge::abandon`] releases it).
    fn disarm(mut self) -> Option<Reservation> {
        self.reservation.take()
    }
}

impl Drop for ReservationGuard {
    fn drop(&mut self) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let billing = self.sender.billing.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                self.sender
                    .tasks
                    .spawn_on(async move { billing.release(&reservation).await }, &handle);
            }
            Err(_) => {
                tracing::warn!(reservation.id = %reservation.id, "no runtime to release a reservation; it will expire");
            }
        }
    }
}

/// What the send holds once the user's message (if any) is saved.
struct Prepared {
    guard: ReservationGuard,
    /// `None` for a call made with an API key.
    user_message: Option<Message>,
    /// The pending send's id, and the tokenUsage row's.
    usage_id: Uuid,
}

impl Call {
    /// Runs the send; `started` learns of its refusal, or gets the events
    /// once the provider's reply has begun.
    pub(super) async fn run(self, started: oneshot::Sender<Result<EventStream, SendError>>) {
        let prepared = match self.prepare().await {
            Ok(prepared) => prepared,
            Err(refusal) => {
                let _ = started.send(Err(refusal));
                return;
            }
        };
        let Call {
            sender,
            chat,
            user_id,
            origin,
            provider,
            config,
            model,
            request,
            prompt_tokens,
            permit,
            ..
        } = self;
        let Prepared {
            guard,
            user_message,
            usage_id,
        } = prepared;
        let Some(reservation) = guard.disarm() else {
            return;
        };
        let conversation_id = origin.conversation_id();

        let mut stream = match sender.llm.stream(&config, &request).await {
            Ok(stream) => stream,
            Err(error) => {
                if error.counts_against_breaker() {
                    sender.record(&chat, permit, false).await;
                }
                tracing::warn!(error = %error, provider = %provider.name, "provider call failed before the first token");
                charge::abandon(
                    &chat,
                    &sender.billing,
                    usage_id,
                    (user_id, conversation_id),
                    &reservation,
                )
                .await;
                let _ = started.send(Err(match error {
                    LlmError::RateLimited { retry_after } => SendError::RateLimited {
                        retry_after_secs: retry_after.map_or(1, |d| d.as_secs().max(1)),
                    },
                    LlmError::Rejected { .. } | LlmError::Misconfigured(_) => {
                        SendError::ProviderRejected
                    }
                    _ => SendError::ProviderUnavailable,
                }));
                return;
            }
        };

        let (tx, rx) = mpsc::channel::<SendEvent>(64);
        if let Some(user_message) = user_message {
            let _ = tx.send(SendEvent::UserMessage(user_message)).await;
        }
        let _ = started.send(Ok(Box::pin(events_of(rx))));

        // Driven to the end even when the client is gone (sends then fail).
        let kind = provider.name.parse().unwrap_or(ProviderKind::OpenAi);
        let mut text = String::new();
        let mut usage = None;
        let mut failure = None;
        let mut checkpoints = tokio::time::interval(sender.settings.checkpoint_every);
        checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checkpoints.tick().await;
        let mut checkpointed = 0;
        // Deltas are relayed at most once per `delta_flush`: one arriving
        // when the last went out longer ago than that goes at once (the
        // first token is never held); those arriving sooner are joined and
        // go together when the interval is up. Fewer messages and wake-ups
        // per reply for fast models, the same text, no visible difference.
        let flush_every = sender.settings.delta_flush;
        let mut held = String::new();
        let mut next_flush = tokio::time::Instant::now();
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    None => break,
                    Some(Ok(StreamEvent::Text(delta))) => {
                        text.push_str(&delta);
                        let now = tokio::time::Instant::now();
                        if held.is_empty() && now >= next_flush {
                            next_flush = now + flush_every;
                            let _ = tx.send(SendEvent::Delta(delta)).await;
                        } else {
                            held.push_str(&delta);
                        }
                    }
                    Some(Ok(StreamEvent::Done(u))) => usage = Some(u),
                    Some(Err(error)) => {
                        failure = Some(error);
                        break;
                    }
                },
                () = tokio::time::sleep_until(next_flush), if !held.is_empty() => {
                    next_flush = tokio::time::Instant::now() + flush_every;
                    let _ = tx.send(SendEvent::Delta(std::mem::take(&mut held))).await;
                }
                _ = checkpoints.tick() => {
                    // A long reply's tokens so far, for recovery should this
                    // replica die before the end.
                    if text.len() > checkpointed {
                        checkpointed = text.len();
                        let tokens = aichat_llm::count_text_tokens(kind, &model, &text);
                        charge::checkpoint(&chat, usage_id, to_i32(tokens)).await;
                    }
                }
            }
        }
        if !held.is_empty() {
            let _ = tx.send(SendEvent::Delta(held)).await;
        }
        sender.record(&chat, permit, failure.is_none()).await;
        if text.is_empty() && usage.is_none() {
            // Nothing was produced: nothing is charged.
            charge::abandon(
                &chat,
                &sender.billing,
                usage_id,
                (user_id, conversation_id),
                &reservation,
            )
            .await;
            let message = failure.map_or_else(
                || "the provider sent no reply".to_owned(),
                |e| e.to_string(),
            );
            let _ = tx
                .send(SendEvent::Failed {
                    failure: Failure::ProviderError,
                    message,
                })
                .await;
            return;
        }
        // The provider's own count when it sent one; else ours (a cut stream).
        let (prompt, completion) = match usage {
            Some(u) => (u.prompt_tokens, u.completion_tokens),
            None => (
                prompt_tokens,
                aichat_llm::count_text_tokens(kind, &model, &text),
            ),
        };
        let reply = charge::Reply::new(
            usage_id,
            (user_id, conversation_id, origin.api_key_id()),
            &provider,
            &model,
            reservation.id,
            prompt,
            completion,
            text,
        );
        let event = match sender.finisher.finish(&chat, reply).await {
            Ok(Finished::Charged { cost }) => match failure {
                Some(error) => SendEvent::Failed {
                    failure: Failure::ProviderInterrupted,
                    message: error.to_string(),
                },
                None => SendEvent::Completed(super::Charged {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    cost,
                }),
            },
            Ok(Finished::Saved { assistant, cost }) => match failure {
                // Charged for what arrived; the client learns it was cut.
                Some(error) => SendEvent::Failed {
                    failure: Failure::ProviderInterrupted,
                    message: error.to_string(),
                },
                None => SendEvent::Done {
                    message: assistant,
                    usage: super::Charged {
                        prompt_tokens: prompt,
                        completion_tokens: completion,
                        cost,
                    },
                },
            },
            Ok(Finished::ConversationGone) => SendEvent::Failed {
                failure: Failure::ConversationDeleted,
                message: "the conversation was deleted while the reply streamed; what the \
                          provider produced was charged"
                    .to_owned(),
            },
            Ok(Finished::AlreadyCharged) => SendEvent::Failed {
                failure: Failure::Internal,
                message: "the reply was charged by recovery and not saved".to_owned(),
            },
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "saving a reply failed; recovery will charge it"
                );
                SendEvent::Failed {
                    failure: Failure::Internal,
                    message: "the reply could not be saved".to_owned(),
                }
            }
        };
        let _ = tx.send(event).await;
    }

    /// Reserves, applies the plan's send rate, and saves the user's message
    /// with the pending send, checking the message limit under the
    /// conversation's row lock (a call with an API key saves only the
    /// pending send).
    async fn prepare(&self) -> Result<Prepared, SendError> {
        let sent = match &self.origin {
            Origin::Conversation { sent, .. } => *sent,
            Origin::ApiKey { .. } => 0,
        };
        let reservation = match self
            .sender
            .billing
            .reserve(
                self.user_id,
                self.prompt_tokens.saturating_add(self.request.max_tokens),
                sent,
            )
            .await?
        {
            Reserved::Held(reservation) => reservation,
            Reserved::QuotaExceeded => return Err(SendError::QuotaExceeded),
            Reserved::MessageLimit => return Err(SendError::MessageLimit),
        };
        let guard = ReservationGuard {
            sender: self.sender.clone(),
            reservation: Some(reservation),
        };
        let Some(reservation) = guard.reservation() else {
            return Err(SendError::Chat(Error::Unexpected(anyhow::anyhow!(
                "a reservation guard without a reservation"
            ))));
        };
        self.sender.user_rate(&reservation.plan, self.user_id)?;

        let now = store::now();
        let usage_id = Uuid::now_v7();
        let message_id = Uuid::now_v7();
        let token_count = to_i32(self.prompt_tokens);
        let pending = PendingSend {
            id: usage_id,
            replica_id: self.sender.replica,
            user_id: self.user_id,
            conversation_id: self.origin.conversation_id(),
            user_message_id: self.origin.conversation_id().map(|_| message_id),
            reservation_id: reservation.id,
            provider: self.provider.name.clone(),
            model: self.model.clone(),
            prompt_tokens: token_count,
            completion_tokens: 0,
            created_at: now,
            checkpoint_at: now,
            api_key_id: self.origin.api_key_id(),
        };
        let Origin::Conversation {
            id: conversation_id,
            content,
            ..
        } = &self.origin
        else {
            // Nothing to save but the call in flight.
            let conn = self.chat.conn().await?;
            pending::insert(&conn, &pending).await?;
            return Ok(Prepared {
                guard,
                user_message: None,
                usage_id,
            });
        };
        let conversation_id = *conversation_id;
        let language = language::detect(content);
        let max = reservation.max_messages_per_conversation;
        let conn = self.chat.conn().await?;
        let user_message = aichat_db::transaction(
            conn,
            async |shared: &AsyncPgConnection| -> Result<Message, SendError> {
                // Concurrent sends to one conversation wait at the lock, and
                // each sees the messages the others counted. The message is
                // inserted in the same round trip (pipelined, BEGIN ahead of
                // both): a refusal below rolls it back with the rest.
                let user_message = [messages::New {
                    id: message_id,
                    conversation_id,
                    role: "user",
                    content,
                    token_count,
                    prompt_tokens: None,
                    completion_tokens: None,
                    model: Some(&self.model),
                    language: language.as_deref(),
                    created_at: now,
                }];
                let (conversation, saved) = futures::join!(
                    conversations::lock(shared, self.user_id, conversation_id),
                    messages::insert(shared, &user_message),
                );
                // Not the user's, or gone (then the insert failed on its
                // foreign key, and may have done so first): not found.
                let conversation = match (conversation, &saved) {
                    (Ok(Some(conversation)), _) => conversation,
                    (Ok(None), _)
                    | (
                        Err(_),
                        Err(diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                            _,
                        )),
                    ) => return Err(Error::NotFound.into()),
                    (Err(error), _) => return Err(error.into()),
                };
                if let Some(max) = max
                    && i64::from(conversation.message_count.unwrap_or(0)) + 2 > max
                {
                    return Err(SendError::MessageLimit);
                }
                let saved = saved?;
                // The reply's place is counted now, so the limit holds while
                // it streams; a send that produces nothing gives it back.
                let counted = Counted::new(&conversation, 2, 0);
                let created = outbox::Outgoing::new(&ev::MessageCreated {
                    message_id,
                    conversation_id,
                    user_id: self.user_id,
                    role: "user".to_owned(),
                    token_count,
                    model: Some(self.model.clone()),
                    language: language.clone(),
                    created_at: now.and_utc(),
                    counters: Some(counted.after.clone()),
                })?;
                // After the message: the pending send refers to it.
                futures::try_join!(
                    counted.write(shared),
                    pending::insert(shared, &pending),
                    outbox::insert(shared, std::slice::from_ref(&created)),
                )?;
                saved
                    .into_iter()
                    .next()
                    .ok_or(SendError::Chat(Error::Unexpected(anyhow::anyhow!(
                        "the user's message was not returned"
                    ))))
            },
        )
        .await?;
        self.chat.waker.wake();
        Ok(Prepared {
            guard,
            user_message: Some(user_message),
            usage_id,
        })
    }
}

fn events_of<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Waits before the `attempt`th retry of a write (0.2 s doubling, at most 5 s).
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(5))
}
