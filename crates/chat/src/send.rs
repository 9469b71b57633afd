//! Sending a message: the heart of the product.
//!
//! Before the provider is called (refusals are plain errors): the
//! conversation is the user's, the content and model are valid, the plan's
//! message limit allows two more messages, the provider is available (its
//! breaker is closed) and under its request limits, and billing reserves the
//! prompt tokens plus the reply budget (refused: `quota_exceeded`).
//!
//! Then the reply streams. The provider stream is driven to its end by a
//! task of its own, whatever the client does: a client that goes away is
//! still charged for what the provider produced, once. At the end, ONE
//! transaction saves the user message, the reply, the tokenUsage row (the
//! provider's own usage, priced), the conversation counters and the outbox
//! events `chat.message.created` (×2) and `chat.tokens.used`, which settles
//! the reservation at billing.

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use aichat_events::chat as ev;
use aichat_llm::{
    ChatMessage, ChatRequest, LlmClient, LlmError, ProviderConfig, ProviderKind, Role, StreamEvent,
};
use aichat_messaging::outbox;
use aichat_proto::chat::v1 as pb;
use aichat_ratelimit::RateLimiter;
use chrono::{Datelike, NaiveDate, Utc};
use diesel::result::Error as DbError;
use diesel_async::AsyncConnection;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::{
    billing::{Billing, Reservation, Reserved},
    breaker::{Breakers, Transition},
    domain::{context, input, language, pricing},
    grpc::message,
    service::{Chat, Error, NewConversation, field},
    store::{
        self, conversations,
        conversations::Conversation,
        messages::{self, Message},
        providers::{self, Provider},
        usage,
    },
};

/// The most tokens a reply may have (reserved up front, charged as used).
pub const REPLY_BUDGET: u32 = 1024;

/// Why a send was refused before the stream began.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Chat(#[from] Error),
    #[error("quota exceeded")]
    QuotaExceeded,
    #[error("conversation limit")]
    ConversationLimit,
    #[error("message limit")]
    MessageLimit,
    #[error("provider rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("provider unavailable")]
    ProviderUnavailable,
    /// The provider refused the request itself (bad key, unknown model):
    /// an operator's problem, not a passing one.
    #[error("provider refused the request")]
    ProviderRejected,
}

/// The stream the gRPC call answers.
pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<pb::SendMessageEvent, tonic::Status>> + Send + 'static>>;

/// Per-provider request limits from aiProviders (per minute and per day).
struct ProviderLimits {
    minute: RateLimiter,
    day: RateLimiter,
}

/// Sends messages; one per process.
#[derive(Clone)]
pub struct Sender {
    llm: LlmClient,
    providers: Arc<HashMap<String, ProviderConfig>>,
    billing: Billing,
    breakers: Arc<Breakers>,
    limits: Arc<std::sync::Mutex<HashMap<String, Arc<ProviderLimits>>>>,
    tasks: TaskTracker,
}

impl Sender {
    pub fn new(
        llm: LlmClient,
        providers: Vec<ProviderConfig>,
        billing: Billing,
        breakers: Breakers,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            llm,
            providers: Arc::new(
                providers
                    .into_iter()
                    .map(|p| (p.kind.as_str().to_owned(), p))
                    .collect(),
            ),
            billing,
            breakers: Arc::new(breakers),
            limits: Arc::default(),
            tasks,
        }
    }

    /// Creates a conversation within the plan's conversation limit.
    pub async fn create_conversation(
        &self,
        chat: &Chat,
        user_id: Uuid,
        new: NewConversation<'_>,
    ) -> Result<Conversation, SendError> {
        let new = chat.check_new_conversation(new).await?;
        let limits = self.billing.limits(user_id).await?;
        if let Some(max) = limits.max_conversations {
            let mut conn = chat.conn().await?;
            let have = conversations::count(&mut conn, user_id)
                .await
                .map_err(Error::from)?;
            if have >= max {
                return Err(SendError::ConversationLimit);
            }
        }
        Ok(chat.create_conversation(user_id, new).await?)
    }

    fn provider_limits(&self, provider: &Provider) -> Arc<ProviderLimits> {
        let Ok(mut all) = self.limits.lock() else {
            return Arc::new(ProviderLimits {
                minute: RateLimiter::new(0, Duration::ZERO),
                day: RateLimiter::new(0, Duration::ZERO),
            });
        };
        all.entry(provider.name.clone())
            .or_insert_with(|| {
                let n = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
                Arc::new(ProviderLimits {
                    minute: RateLimiter::new(
                        n(provider.requests_per_minute),
                        Duration::from_secs(60),
                    ),
                    day: RateLimiter::new(
                        n(provider.requests_per_day),
                        Duration::from_secs(86_400),
                    ),
                })
            })
            .clone()
    }

    async fn mark_available(&self, chat: &Chat, provider: &str, available: bool) {
        match chat.conn().await {
            Ok(mut conn) => {
                if let Err(error) = providers::set_available(&mut conn, provider, available).await {
                    tracing::error!(%error, provider, "cannot record provider availability");
                }
            }
            Err(error) => {
                tracing::error!(error = %error, provider, "cannot record provider availability")
            }
        }
        if available {
            tracing::info!(provider, "provider available again");
        } else {
            tracing::warn!(provider, "provider marked unavailable (circuit open)");
        }
    }

    async fn record(&self, chat: &Chat, provider: &str, ok: bool) {
        match self.breakers.record(provider, ok) {
            Transition::Opened => self.mark_available(chat, provider, false).await,
            Transition::Closed => self.mark_available(chat, provider, true).await,
            Transition::None => {}
        }
    }

    /// Validates, reserves, calls the provider; the stream of events.
    pub async fn send(
        &self,
        chat: &Chat,
        user_id: Uuid,
        conversation_id: Uuid,
        content: &str,
        model: Option<&str>,
    ) -> Result<EventStream, SendError> {
        let content = input::content(content).map_err(|e| field("content", &e))?;
        // Every read in one short checkout and one round trip (pipelined); no
        // connection is held across a call to another service.
        let (conversation, active, history) = {
            let conn = chat.conn().await?;
            futures::try_join!(
                conversations::find(&conn, user_id, conversation_id),
                providers::active(&conn),
                messages::history(&conn, user_id, conversation_id),
            )
            .map_err(Error::from)?
        };
        let conversation = conversation.ok_or(Error::NotFound)?;
        let model = model
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or(&conversation.model)
            .to_owned();
        let provider = active
            .into_iter()
            .find(|p| p.serves(&model))
            .ok_or_else(|| {
                field(
                    "model",
                    "is not a model this platform offers (see GET /models)",
                )
            })?;
        // Every message ever sent counts toward the plan's limit, deleted
        // ones too: the counter only grows.
        let sent = i64::from(conversation.message_count.unwrap_or(0));
        let Some(config) = self.providers.get(&provider.name).cloned() else {
            return Err(SendError::ProviderUnavailable);
        };
        if !self.breakers.allow(&provider.name) {
            return Err(SendError::ProviderUnavailable);
        }
        let rate = self.provider_limits(&provider);
        if let Err(wait) = rate
            .minute
            .check(&provider.name)
            .and_then(|()| rate.day.check(&provider.name))
        {
            return Err(SendError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }

        // The history the provider sees: system prompt, the newest earlier
        // messages that fit the model's window, the new message.
        let request = build_request(
            config.kind,
            &model,
            conversation.system_prompt.as_deref(),
            &history,
            &content,
        );
        let prompt_tokens = aichat_llm::count_prompt_tokens(config.kind, &model, &request);
        let reservation = match self
            .billing
            .reserve(user_id, prompt_tokens.saturating_add(REPLY_BUDGET), sent)
            .await?
        {
            Reserved::Held(reservation) => reservation,
            Reserved::QuotaExceeded => return Err(SendError::QuotaExceeded),
            Reserved::MessageLimit => return Err(SendError::MessageLimit),
        };

        let stream = match self.llm.stream(&config, &request).await {
            Ok(stream) => stream,
            Err(error) => {
                self.billing.release(&reservation).await;
                if error.counts_against_breaker() {
                    self.record(chat, &provider.name, false).await;
                }
                tracing::warn!(error = %error, provider = %provider.name, "provider call failed before the first token");
                return Err(match error {
                    LlmError::RateLimited { retry_after } => SendError::RateLimited {
                        retry_after_secs: retry_after.map_or(1, |d| d.as_secs().max(1)),
                    },
                    LlmError::Rejected { .. } | LlmError::Misconfigured(_) => {
                        SendError::ProviderRejected
                    }
                    _ => SendError::ProviderUnavailable,
                });
            }
        };

        let now = store::now();
        let user_message = Message {
            id: Uuid::now_v7(),
            conversation_id,
            role: "user".to_owned(),
            language: language::detect(&content),
            content,
            token_count: i32::try_from(prompt_tokens).unwrap_or(i32::MAX),
            prompt_tokens: None,
            completion_tokens: None,
            model: Some(model.clone()),
            created_at: Some(now),
        };
        let (tx, rx) = mpsc::channel::<Result<pb::SendMessageEvent, tonic::Status>>(64);
        let first = pb::SendMessageEvent {
            event: Some(pb::send_message_event::Event::UserMessage(message(
                &user_message,
            ))),
        };
        let _ = tx.send(Ok(first)).await;
        let job = Completion {
            sender: self.clone(),
            chat: chat.clone(),
            user_id,
            provider,
            model,
            user_message,
            prompt_tokens,
            reservation,
        };
        self.tasks.spawn(job.run(stream, tx));
        Ok(Box::pin(tokio_stream_from(rx)))
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn build_request(
    kind: ProviderKind,
    model: &str,
    system: Option<&str>,
    history: &[Message],
    content: &str,
) -> ChatRequest {
    let all: Vec<ChatMessage> = history
        .iter()
        .map(|m| ChatMessage {
            role: if m.role == "assistant" {
                Role::Assistant
            } else {
                Role::User
            },
            content: m.content.clone(),
        })
        .collect();
    let sizes: Vec<u32> = all
        .iter()
        .map(|m| {
            let one = ChatRequest {
                model: model.to_owned(),
                system: None,
                messages: vec![m.clone()],
                max_tokens: 0,
            };
            aichat_llm::count_prompt_tokens(kind, model, &one)
        })
        .collect();
    let fixed_request = ChatRequest {
        model: model.to_owned(),
        system: system.map(str::to_owned),
        messages: vec![ChatMessage {
            role: Role::User,
            content: content.to_owned(),
        }],
        max_tokens: REPLY_BUDGET,
    };
    let fixed =
        aichat_llm::count_prompt_tokens(kind, model, &fixed_request).saturating_add(REPLY_BUDGET);
    let first = context::keep_from(&sizes, fixed, context::window(model));
    let mut messages: Vec<ChatMessage> = all.into_iter().skip(first).collect();
    messages.push(ChatMessage {
        role: Role::User,
        content: content.to_owned(),
    });
    ChatRequest {
        model: model.to_owned(),
        system: system.map(str::to_owned),
        messages,
        max_tokens: REPLY_BUDGET,
    }
}

/// The rest of a send, after the provider answered.
struct Completion {
    sender: Sender,
    chat: Chat,
    user_id: Uuid,
    provider: Provider,
    model: String,
    user_message: Message,
    prompt_tokens: u32,
    reservation: Reservation,
}

impl Completion {
    async fn run(
        self,
        mut stream: aichat_llm::EventStream,
        tx: mpsc::Sender<Result<pb::SendMessageEvent, tonic::Status>>,
    ) {
        let mut text = String::new();
        let mut usage = None;
        let mut failure = None;
        // Driven to the end even when the client is gone (sends then fail).
        while let Some(event) = stream.next().await {
            match event {
                Ok(StreamEvent::Text(delta)) => {
                    text.push_str(&delta);
                    let _ = tx
                        .send(Ok(pb::SendMessageEvent {
                            event: Some(pb::send_message_event::Event::Delta(delta)),
                        }))
                        .await;
                }
                Ok(StreamEvent::Done(u)) => usage = Some(u),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        self.sender
            .record(&self.chat, &self.provider.name, failure.is_none())
            .await;
        if text.is_empty() && usage.is_none() {
            // Nothing was produced: nothing is charged.
            self.sender.billing.release(&self.reservation).await;
            let message = failure.map_or_else(
                || "the provider sent no reply".to_owned(),
                |e| e.to_string(),
            );
            let _ = tx.send(Ok(error_event("provider_error", &message))).await;
            return;
        }
        // The provider's own count when it sent one; else ours (a cut stream).
        let (prompt, completion) = match usage {
            Some(u) => (u.prompt_tokens, u.completion_tokens),
            None => {
                let kind = self.provider.name.parse().unwrap_or(ProviderKind::OpenAi);
                (
                    self.prompt_tokens,
                    aichat_llm::count_text_tokens(kind, &self.model, &text),
                )
            }
        };
        match self.save(&text, prompt, completion).await {
            Ok((assistant, cost)) => {
                let done = pb::Done {
                    message: Some(message(&assistant)),
                    usage: Some(pb::Usage {
                        prompt_tokens: to_i32(prompt),
                        completion_tokens: to_i32(completion),
                        total_tokens: to_i32(prompt.saturating_add(completion)),
                        cost_usd: pricing::to_text(&cost),
                    }),
                };
                let event = match failure {
                    // Charged for what arrived; the client learns it was cut.
                    Some(error) => error_event("provider_interrupted", &error.to_string()),
                    None => pb::SendMessageEvent {
                        event: Some(pb::send_message_event::Event::Done(done)),
                    },
                };
                let _ = tx.send(Ok(event)).await;
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "saving a reply failed");
                self.sender.billing.release(&self.reservation).await;
                let _ = tx
                    .send(Ok(error_event("internal", "the reply could not be saved")))
                    .await;
            }
        }
    }

    async fn save(
        &self,
        text: &str,
        prompt: u32,
        completion: u32,
    ) -> anyhow::Result<(Message, bigdecimal::BigDecimal)> {
        let cost = pricing::cost(
            prompt,
            completion,
            &self.provider.input_token_cost_per_1k,
            &self.provider.output_token_cost_per_1k,
        );
        let at = store::now();
        let month = billing_month(Utc::now().date_naive());
        let assistant_id = Uuid::now_v7();
        let usage_id = Uuid::now_v7();
        let user = &self.user_message;
        let language = language::detect(text);
        let events = [
            ev::MessageCreated {
                message_id: user.id,
                conversation_id: user.conversation_id,
                user_id: self.user_id,
                role: user.role.clone(),
                token_count: to_i32(prompt),
                model: user.model.clone(),
                language: user.language.clone(),
                created_at: Utc::now(),
            },
            ev::MessageCreated {
                message_id: assistant_id,
                conversation_id: user.conversation_id,
                user_id: self.user_id,
                role: "assistant".to_owned(),
                token_count: to_i32(completion),
                model: Some(self.model.clone()),
                language: language.clone(),
                created_at: Utc::now(),
            },
        ];
        let mut outgoing = events
            .iter()
            .map(outbox::Outgoing::new)
            .collect::<Result<Vec<_>, _>>()?;
        outgoing.push(outbox::Outgoing::new(&ev::TokensUsed {
            usage_id,
            user_id: self.user_id,
            conversation_id: Some(user.conversation_id),
            message_id: Some(assistant_id),
            reservation_id: Some(self.reservation.id),
            provider: self.provider.name.clone(),
            model: self.model.clone(),
            prompt_tokens: to_i32(prompt),
            completion_tokens: to_i32(completion),
            total_tokens: to_i32(prompt.saturating_add(completion)),
            cost_usd: cost.clone(),
            billing_month: month,
            occurred_at: Utc::now(),
        })?);
        let mut conn = self.chat.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // Four round trips: BEGIN, both messages, then (pipelined, as they
        // need the messages but not each other) the usage row, the counters
        // and the events, and COMMIT.
        let assistant = conn
            .transaction::<Message, DbError, _>(async |conn| {
                let saved = messages::insert(
                    conn,
                    &[
                        messages::New {
                            id: user.id,
                            conversation_id: user.conversation_id,
                            role: "user",
                            content: &user.content,
                            token_count: to_i32(prompt),
                            prompt_tokens: None,
                            completion_tokens: None,
                            model: Some(&self.model),
                            language: user.language.as_deref(),
                            created_at: user.created_at.unwrap_or(at),
                        },
                        messages::New {
                            id: assistant_id,
                            conversation_id: user.conversation_id,
                            role: "assistant",
                            content: text,
                            token_count: to_i32(completion),
                            prompt_tokens: Some(to_i32(prompt)),
                            completion_tokens: Some(to_i32(completion)),
                            model: Some(&self.model),
                            language: language.as_deref(),
                            created_at: at,
                        },
                    ],
                )
                .await?;
                let shared: &diesel_async::AsyncPgConnection = conn;
                let row = usage::New {
                    id: usage_id,
                    user_id: self.user_id,
                    conversation_id: Some(user.conversation_id),
                    message_id: Some(assistant_id),
                    provider: &self.provider.name,
                    model: &self.model,
                    prompt_tokens: to_i32(prompt),
                    completion_tokens: to_i32(completion),
                    cost_usd: &cost,
                    billing_month: month,
                    created_at: at,
                };
                futures::try_join!(
                    usage::insert(shared, &row),
                    conversations::add_counts(
                        shared,
                        user.conversation_id,
                        2,
                        to_i32(prompt.saturating_add(completion)),
                    ),
                    outbox::insert(shared, &outgoing),
                )?;
                saved
                    .into_iter()
                    .find(|m| m.id == assistant_id)
                    .ok_or(DbError::NotFound)
            })
            .await?;
        self.chat.waker.wake();
        Ok((assistant, cost))
    }
}

fn error_event(code: &str, message: &str) -> pb::SendMessageEvent {
    pb::SendMessageEvent {
        event: Some(pb::send_message_event::Event::Error(pb::StreamError {
            code: code.to_owned(),
            message: message.to_owned(),
        })),
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The first day of `day`'s month.
pub fn billing_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}
