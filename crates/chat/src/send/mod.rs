//! Sending a message: the heart of the product.
//!
//! Three rooms, one job each:
//! - here, the request checks made before anything is held: the
//!   conversation is the user's, the content and model are valid, the
//!   provider's breaker lets a call through and its request limits allow one;
//! - [`call`]: the send's own task. It reserves the tokens at billing (which
//!   checks the quota and the plan's message limit), applies the plan's send
//!   rate, saves the user's message with a pending-send record (checking the
//!   message limit again under the conversation's row lock), calls the
//!   provider and streams the reply, checkpointing the tokens produced;
//! - [`charge`]: the end of every provider call, exactly once: the reply, the
//!   tokenUsage row and the `chat.tokens.used` event that settles the
//!   reservation, in one transaction that also deletes the pending send (the
//!   claim), whether the call ends here, its conversation or account was
//!   deleted meanwhile, or its replica died (recovery, by another replica).
//!
//! The task is never tied to the caller: a client or gateway that goes away
//! leaves the send to finish and be charged. What the caller sees are
//! [`SendEvent`]s; `grpc.rs` maps them to the wire.

mod call;
pub mod charge;
pub mod group;

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use aichat_events::chat as ev;
use aichat_llm::{ChatMessage, ChatRequest, LlmClient, ProviderConfig, ProviderKind, Role};
use aichat_ratelimit::RateLimiter;
use chrono::{Datelike, NaiveDate};
use futures::Stream;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::{
    billing::Billing,
    breaker::{Breakers, Permit, Transition},
    domain::{context, input},
    service::{Chat, Error, NewConversation, field},
    store::{
        conversations::{self, Conversation},
        messages::{self, Message},
        providers::{self, Provider},
    },
};

/// The most tokens a reply may have (reserved up front, charged as used).
pub const REPLY_BUDGET: u32 = 1024;

/// The most earlier messages loaded for a send (newest first); the model's
/// context window then keeps the newest of those that fit.
pub const HISTORY_LIMIT: i64 = 200;

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
    /// The provider's request limit, or the user's send rate.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("provider unavailable")]
    ProviderUnavailable,
    /// The provider refused the request itself (bad key, unknown model):
    /// an operator's problem, not a passing one.
    #[error("provider refused the request")]
    ProviderRejected,
    /// A completion named a model no active provider serves.
    #[error("unknown model")]
    UnknownModel,
}

impl From<diesel::result::Error> for SendError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Chat(e.into())
    }
}

/// A reply's tokens and price.
#[derive(Debug, Clone)]
pub struct Charged {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// USD.
    pub cost: bigdecimal::BigDecimal,
}

/// How a streamed send ends when it does not end with [`SendEvent::Done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The provider sent nothing usable; nothing was charged.
    ProviderError,
    /// The provider stopped mid-reply; what arrived was saved and charged.
    ProviderInterrupted,
    /// The conversation (or the account) went while the reply streamed; the
    /// reply was charged, not saved.
    ConversationDeleted,
    /// The reply could not be saved (the database is down); the call is
    /// charged by recovery once it is back.
    Internal,
}

/// What a send tells its caller, in this order: the saved user message,
/// the reply's text as it arrives, then how it ended. A completion asked
/// with an API key has no user message and ends `Completed`.
#[derive(Debug, Clone)]
pub enum SendEvent {
    UserMessage(Message),
    Delta(String),
    Done {
        message: Message,
        usage: Charged,
    },
    /// The reply of a call without a conversation is whole and charged.
    Completed(Charged),
    Failed {
        failure: Failure,
        message: String,
    },
}

/// The most tokens a completion asked with an API key may ask for.
pub const MAX_COMPLETION_TOKENS: u32 = 16_384;

/// The most stop sequences a completion may have (OpenAI's limit).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// A completion asked with an API key (the OpenAI-compatible API): the
/// whole conversation comes with it, and nothing of it is saved.
#[derive(Debug, Clone)]
pub struct Completion {
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// Oldest first; at least one.
    pub messages: Vec<ChatMessage>,
    /// The most tokens the reply may have; [`REPLY_BUDGET`] when not given.
    pub max_tokens: Option<u32>,
    pub sampling: aichat_llm::Sampling,
}

/// The events of one send.
pub type EventStream = Pin<Box<dyn Stream<Item = SendEvent> + Send + 'static>>;

/// How sends behave, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sends per minute a user may make, by plan name (`Free`, `Plus`,
    /// `Pro`); a plan not listed, or 0, is not limited.
    pub sends_per_minute: HashMap<String, u32>,
    /// How often a long reply's completion tokens are saved, for recovery.
    pub checkpoint_every: Duration,
    /// A reply's deltas are relayed at most once per this interval (the
    /// ones arriving meanwhile joined); zero relays each as it arrives.
    pub delta_flush: Duration,
}

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
    /// One limiter per plan, keyed by user.
    user_rates: Arc<HashMap<String, RateLimiter>>,
    settings: Arc<Settings>,
    /// The replica its pending sends belong to.
    replica: Uuid,
    tasks: TaskTracker,
    /// Saves the replies (grouped when they finish together).
    finisher: group::Finisher,
}

impl Sender {
    #[expect(
        clippy::too_many_arguments,
        reason = "the sender's parts, each built once by `run`"
    )]
    pub fn new(
        llm: LlmClient,
        providers: Vec<ProviderConfig>,
        billing: Billing,
        breakers: Breakers,
        settings: Settings,
        replica: Uuid,
        tasks: TaskTracker,
        finisher: group::Finisher,
    ) -> Self {
        let user_rates = settings
            .sends_per_minute
            .iter()
            .map(|(plan, n)| (plan.clone(), RateLimiter::new(*n, Duration::from_secs(60))))
            .collect();
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
            user_rates: Arc::new(user_rates),
            settings: Arc::new(settings),
            replica,
            tasks,
            finisher,
        }
    }

    /// Creates a conversation within the plan's conversation limit. The
    /// count and the insert happen under a per-user lock, so parallel
    /// creates cannot pass the limit together.
    pub async fn create_conversation(
        &self,
        chat: &Chat,
        user_id: Uuid,
        new: NewConversation<'_>,
    ) -> Result<Conversation, SendError> {
        // Fields first: a bad request says so whatever the plan.
        let new = chat.check_new_conversation(new).await?;
        let limits = self.billing.limits(user_id).await?;
        chat.create_conversation(user_id, new, limits.max_conversations)
            .await
            .map_err(|e| match e {
                crate::service::CreateError::Limit => SendError::ConversationLimit,
                crate::service::CreateError::Chat(e) => SendError::Chat(e),
            })
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

    /// Counts a send against the user's plan's rate.
    fn user_rate(&self, plan: &str, user_id: Uuid) -> Result<(), SendError> {
        match self.user_rates.get(plan) {
            Some(limiter) => {
                limiter
                    .check(&user_id.to_string())
                    .map_err(|wait| SendError::RateLimited {
                        retry_after_secs: wait.as_secs().max(1),
                    })
            }
            None => Ok(()),
        }
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

    /// Reports a provider call's outcome to its breaker.
    async fn record(&self, chat: &Chat, permit: Permit, ok: bool) {
        let provider = permit.provider().to_owned();
        match permit.record(ok) {
            Transition::Opened => self.mark_available(chat, &provider, false).await,
            Transition::Closed => self.mark_available(chat, &provider, true).await,
            Transition::None => {}
        }
    }

    /// Checks the request, then hands the send to its own task; answers
    /// once the provider's reply has begun (its events follow), or with the
    /// refusal.
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
                messages::history(&conn, user_id, conversation_id, HISTORY_LIMIT),
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
        let Some(config) = self.providers.get(&provider.name).cloned() else {
            return Err(SendError::ProviderUnavailable);
        };
        let permit = self.permit_and_rate(&provider)?;

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
        let call = call::Call {
            sender: self.clone(),
            chat: chat.clone(),
            user_id,
            origin: call::Origin::Conversation {
                id: conversation_id,
                // Every message ever sent counts toward the plan's limit,
                // deleted ones too: the counter only grows.
                sent: i64::from(conversation.message_count.unwrap_or(0)),
                content,
            },
            provider,
            config,
            model,
            request,
            prompt_tokens,
            permit,
        };
        self.start(call).await
    }

    /// Checks a completion asked with API key `key_id`, then hands it to
    /// its own task, metered as a send is (reserved first, charged once,
    /// the plan's send rate); answers once the provider's reply has begun.
    pub async fn complete(
        &self,
        chat: &Chat,
        user_id: Uuid,
        key_id: Uuid,
        completion: Completion,
    ) -> Result<EventStream, SendError> {
        let Completion {
            model,
            system,
            messages,
            max_tokens,
            sampling,
        } = completion;
        if messages.is_empty() {
            return Err(field("messages", "must hold at least one message").into());
        }
        for (i, message) in messages.iter().enumerate() {
            input::content(&message.content)
                .map_err(|e| field(&format!("messages[{i}].content"), &e))?;
        }
        if let Some(system) = &system {
            input::content(system).map_err(|e| field("messages", &format!("system: {e}")))?;
        }
        let max_tokens = max_tokens.unwrap_or(REPLY_BUDGET);
        if !(1..=MAX_COMPLETION_TOKENS).contains(&max_tokens) {
            return Err(field(
                "max_tokens",
                &format!("must be from 1 to {MAX_COMPLETION_TOKENS}"),
            )
            .into());
        }
        if let Some(t) = sampling.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(field("temperature", "must be from 0 to 2").into());
        }
        if sampling.stop.len() > MAX_STOP_SEQUENCES
            || sampling
                .stop
                .iter()
                .any(|s| s.is_empty() || s.contains('\0'))
        {
            return Err(field(
                "stop",
                &format!("must be at most {MAX_STOP_SEQUENCES} non-empty sequences"),
            )
            .into());
        }
        let model = model.trim().to_owned();
        let active = {
            let conn = chat.conn().await?;
            providers::active(&conn).await.map_err(Error::from)?
        };
        let provider = active
            .into_iter()
            .find(|p| !model.is_empty() && p.serves(&model))
            .ok_or(SendError::UnknownModel)?;
        let Some(config) = self.providers.get(&provider.name).cloned() else {
            return Err(SendError::ProviderUnavailable);
        };
        let request = ChatRequest {
            model: model.clone(),
            system,
            messages,
            max_tokens,
            sampling,
        };
        let prompt_tokens = aichat_llm::count_prompt_tokens(config.kind, &model, &request);
        if prompt_tokens.saturating_add(max_tokens) > context::window(&model) {
            return Err(field(
                "messages",
                "with max_tokens, longer than the model's context window",
            )
            .into());
        }
        let permit = self.permit_and_rate(&provider)?;
        let call = call::Call {
            sender: self.clone(),
            chat: chat.clone(),
            user_id,
            origin: call::Origin::ApiKey { key_id },
            provider,
            config,
            model,
            request,
            prompt_tokens,
            permit,
        };
        self.start(call).await
    }

    /// The provider's breaker and request limits let one more call through.
    fn permit_and_rate(&self, provider: &Provider) -> Result<Permit, SendError> {
        let permit = self
            .breakers
            .permit(&provider.name)
            .ok_or(SendError::ProviderUnavailable)?;
        let rate = self.provider_limits(provider);
        if let Err(wait) = rate
            .minute
            .check(&provider.name)
            .and_then(|()| rate.day.check(&provider.name))
        {
            return Err(SendError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        Ok(permit)
    }

    /// Runs `call` on its own task; its refusal, or its events once the
    /// provider's reply has begun.
    async fn start(&self, call: call::Call) -> Result<EventStream, SendError> {
        let (started, answer) = oneshot::channel();
        self.tasks.spawn(call.run(started));
        answer.await.map_err(|_| {
            SendError::Chat(Error::Unexpected(anyhow::anyhow!(
                "the send's task ended without an answer"
            )))
        })?
    }
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
                sampling: Default::default(),
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
        sampling: Default::default(),
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
        sampling: Default::default(),
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The first day of `day`'s month.
pub fn billing_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// A change to a conversation's counters, made under its row lock: what
/// [`conversations::add_counts`] writes and what the transaction's event
/// says, built from the locked row so no statement is added to read them.
struct Counted {
    id: Uuid,
    messages: i32,
    tokens: i32,
    /// The row's new `updatedAt`.
    at: crate::store::Timestamp,
    /// The counters after the change, as the events carry them.
    after: ev::ConversationCounters,
}

impl Counted {
    /// Adds `messages` and `tokens` to `locked`, a conversation this
    /// transaction holds `FOR UPDATE`.
    fn new(locked: &Conversation, messages: i32, tokens: i32) -> Self {
        let at = conversations::next_updated_at(locked);
        let (message_count, token_count) = conversations::counts_after(locked, messages, tokens);
        Self {
            id: locked.id,
            messages,
            tokens,
            at,
            after: ev::ConversationCounters {
                message_count,
                token_count,
                updated_at: at.and_utc(),
            },
        }
    }

    /// Writes the change (pipelines with the transaction's other writes).
    async fn write(&self, conn: &diesel_async::AsyncPgConnection) -> diesel::QueryResult<()> {
        conversations::add_counts(conn, &[(self.id, self.messages, self.tokens, self.at)])
            .await
            .map(drop)
    }
}
