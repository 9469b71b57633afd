//! The `chat.v1.Chat` gRPC service: translates proto ⇄ domain and maps
//! errors to `Status` (stable problem code as JSON in the details, like
//! identity); nothing else.

use std::pin::Pin;

use aichat_llm::ChatMessage;
use aichat_proto::chat::v1::{self as pb, chat_server};
use aichat_proto::{parse_uuid, problem_status as status, timestamp};
use futures::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::pricing,
    send::{Charged, Completion, Failure, SendError, SendEvent, Sender},
    service::{Chat, ConversationPatch, Error, NewConversation, field},
    store::{conversations::Conversation, messages::Message},
};

/// The gRPC face of [`Chat`].
pub struct ChatService {
    chat: Chat,
    sender: Sender,
}

impl ChatService {
    pub fn new(chat: Chat, sender: Sender) -> Self {
        Self { chat, sender }
    }
}

type Answer<T> = Result<Response<T>, Status>;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Validation(errors) => status(
                Code::InvalidArgument,
                "validation_failed",
                "some fields are invalid",
                serde_json::to_value(errors).ok(),
            ),
            Error::NotFound => status(Code::NotFound, "not_found", "not found", None),
            Error::Unavailable(error) => aichat_proto::unavailable(&error),
            Error::Unexpected(error) => aichat_proto::internal(&error),
        }
    }
}

/// An id in a path: malformed means "no such thing", like any other.
fn id(value: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(value).map_err(|_| Error::NotFound.into())
}

pub(crate) fn conversation(c: &Conversation) -> pb::Conversation {
    pb::Conversation {
        id: c.id.to_string(),
        title: c.title.clone(),
        description: c.description.clone(),
        model: c.model.clone(),
        system_prompt: c.system_prompt.clone(),
        message_count: c.message_count.unwrap_or(0),
        token_count: c.token_count.unwrap_or(0),
        is_archived: c.is_archived == Some(true),
        created_at: c.created_at.map(|t| timestamp(t.and_utc())),
        updated_at: c.updated_at.map(|t| timestamp(t.and_utc())),
    }
}

pub(crate) fn message(m: &Message) -> pb::Message {
    pb::Message {
        id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        role: m.role.clone(),
        content: m.content.clone(),
        token_count: m.token_count,
        prompt_tokens: m.prompt_tokens,
        completion_tokens: m.completion_tokens,
        model: m.model.clone(),
        language: m.language.clone(),
        created_at: m.created_at.map(|t| timestamp(t.and_utc())),
    }
}

#[tonic::async_trait]
impl chat_server::Chat for ChatService {
    async fn export_conversations(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Answer<pb::ConversationExportPage> {
        let r = request.into_inner();
        let page = self.chat.export_conversations(&r.after, r.limit).await?;
        Ok(Response::new(pb::ConversationExportPage {
            items: page
                .items
                .iter()
                .map(|c| pb::ConversationExport {
                    conversation_id: c.id.to_string(),
                    user_id: c.user_id.to_string(),
                    model: c.model.clone(),
                    message_count: i64::from(c.message_count.unwrap_or(0)),
                    token_count: i64::from(c.token_count.unwrap_or(0)),
                    created_at: c.created_at.map(|t| timestamp(t.and_utc())),
                    updated_at: c.updated_at.map(|t| timestamp(t.and_utc())),
                })
                .collect(),
            next: page.next.unwrap_or_default(),
        }))
    }

    async fn export_messages(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Answer<pb::MessageExportPage> {
        let r = request.into_inner();
        let page = self.chat.export_messages(&r.after, r.limit).await?;
        Ok(Response::new(pb::MessageExportPage {
            items: page
                .items
                .iter()
                .map(|(m, user_id)| pb::MessageExport {
                    message_id: m.id.to_string(),
                    conversation_id: m.conversation_id.to_string(),
                    user_id: user_id.to_string(),
                    role: m.role.clone(),
                    token_count: i64::from(m.token_count),
                    model: m.model.clone().unwrap_or_default(),
                    created_at: m.created_at.map(|t| timestamp(t.and_utc())),
                })
                .collect(),
            next: page.next.unwrap_or_default(),
        }))
    }

    async fn export_token_usage(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Answer<pb::TokenUsageExportPage> {
        let r = request.into_inner();
        let page = self.chat.export_token_usage(&r.after, r.limit).await?;
        let id = |v: Option<Uuid>| v.map(|id| id.to_string()).unwrap_or_default();
        Ok(Response::new(pb::TokenUsageExportPage {
            items: page
                .items
                .iter()
                .map(|u| pb::TokenUsageExport {
                    usage_id: u.id.to_string(),
                    user_id: u.user_id.to_string(),
                    conversation_id: id(u.conversation_id),
                    message_id: id(u.message_id),
                    provider: u.provider.clone(),
                    model: u.model.clone(),
                    prompt_tokens: i64::from(u.prompt_tokens),
                    completion_tokens: i64::from(u.completion_tokens),
                    total_tokens: i64::from(u.total_tokens),
                    cost_usd: pricing::to_text(&u.cost_usd),
                    billing_month: u.billing_month.format("%Y-%m-%d").to_string(),
                    created_at: u.created_at.map(|t| timestamp(t.and_utc())),
                })
                .collect(),
            next: page.next.unwrap_or_default(),
        }))
    }

    async fn list_models(&self, _: Request<pb::Empty>) -> Answer<pb::ModelList> {
        let providers = self.chat.providers().await?;
        let items = providers
            .iter()
            .flat_map(|p| {
                let available = p.is_available != Some(false);
                p.models().into_iter().map(move |id| pb::Model {
                    id,
                    provider: p.name.clone(),
                    input_cost_per_1k: pricing::to_text(&p.input_token_cost_per_1k),
                    output_cost_per_1k: pricing::to_text(&p.output_token_cost_per_1k),
                    available,
                })
            })
            .collect();
        Ok(Response::new(pb::ModelList { items }))
    }

    async fn create_conversation(
        &self,
        request: Request<pb::CreateConversationRequest>,
    ) -> Answer<pb::Conversation> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let c = self
            .sender
            .create_conversation(
                &self.chat,
                user_id,
                NewConversation {
                    model: &r.model,
                    title: r.title.as_deref(),
                    description: r.description.as_deref(),
                    system_prompt: r.system_prompt.as_deref(),
                },
            )
            .await?;
        Ok(Response::new(conversation(&c)))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::ConversationRef>,
    ) -> Answer<pb::Conversation> {
        let r = request.into_inner();
        let c = self
            .chat
            .get_conversation(parse_uuid(&r.user_id, "userId")?, id(&r.conversation_id)?)
            .await?;
        Ok(Response::new(conversation(&c)))
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Answer<pb::ConversationPage> {
        let r = request.into_inner();
        let page = self
            .chat
            .list_conversations(
                parse_uuid(&r.user_id, "userId")?,
                r.archived,
                r.limit,
                &r.cursor,
            )
            .await?;
        Ok(Response::new(pb::ConversationPage {
            items: page.items.iter().map(conversation).collect(),
            next_cursor: page.next,
        }))
    }

    async fn update_conversation(
        &self,
        request: Request<pb::UpdateConversationRequest>,
    ) -> Answer<pb::Conversation> {
        let r = request.into_inner();
        let c = self
            .chat
            .update_conversation(
                parse_uuid(&r.user_id, "userId")?,
                id(&r.conversation_id)?,
                ConversationPatch {
                    title: r.title.as_deref(),
                    description: r.description.as_deref(),
                    model: r.model.as_deref(),
                    system_prompt: r.system_prompt.as_deref(),
                },
            )
            .await?;
        Ok(Response::new(conversation(&c)))
    }

    async fn set_archived(
        &self,
        request: Request<pb::SetArchivedRequest>,
    ) -> Answer<pb::Conversation> {
        let r = request.into_inner();
        let c = self
            .chat
            .set_archived(
                parse_uuid(&r.user_id, "userId")?,
                id(&r.conversation_id)?,
                r.archived,
            )
            .await?;
        Ok(Response::new(conversation(&c)))
    }

    async fn delete_conversation(
        &self,
        request: Request<pb::ConversationRef>,
    ) -> Answer<pb::Empty> {
        let r = request.into_inner();
        self.chat
            .delete_conversation(parse_uuid(&r.user_id, "userId")?, id(&r.conversation_id)?)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Answer<pb::MessagePage> {
        let r = request.into_inner();
        let page = self
            .chat
            .list_messages(
                parse_uuid(&r.user_id, "userId")?,
                id(&r.conversation_id)?,
                r.limit,
                &r.cursor,
            )
            .await?;
        Ok(Response::new(pb::MessagePage {
            items: page.items.iter().map(message).collect(),
            next_cursor: page.next,
        }))
    }

    async fn delete_message(&self, request: Request<pb::MessageRef>) -> Answer<pb::Empty> {
        let r = request.into_inner();
        self.chat
            .delete_message(
                parse_uuid(&r.user_id, "userId")?,
                id(&r.conversation_id)?,
                id(&r.message_id)?,
            )
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn get_daily_usage(
        &self,
        request: Request<pb::GetDailyUsageRequest>,
    ) -> Answer<pb::DailyUsageList> {
        let r = request.into_inner();
        let days = self
            .chat
            .daily_usage(parse_uuid(&r.user_id, "userId")?, r.days)
            .await?;
        let items = days
            .iter()
            .map(|d| pb::DailyUsage {
                date: d.date.format("%Y-%m-%d").to_string(),
                tokens: d.tokens,
                cost_usd: pricing::to_text(&d.cost_usd),
            })
            .collect();
        Ok(Response::new(pb::DailyUsageList { items }))
    }

    type SendMessageStream =
        Pin<Box<dyn Stream<Item = Result<pb::SendMessageEvent, Status>> + Send + 'static>>;

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Answer<Self::SendMessageStream> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let conversation_id = id(&r.conversation_id)?;
        let stream = self
            .sender
            .send(
                &self.chat,
                user_id,
                conversation_id,
                &r.content,
                r.model.as_deref(),
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(Box::pin(stream.map(|e| Ok(send_event(e))))))
    }

    type CompleteStream =
        Pin<Box<dyn Stream<Item = Result<pb::CompleteEvent, Status>> + Send + 'static>>;

    async fn complete(
        &self,
        request: Request<pb::CompleteRequest>,
    ) -> Answer<Self::CompleteStream> {
        let r = request.into_inner();
        let user_id = parse_uuid(&r.user_id, "userId")?;
        let key_id = parse_uuid(&r.api_key_id, "apiKeyId")?;
        let (system, messages) = turns(r.messages)?;
        let completion = Completion {
            model: r.model,
            system,
            messages,
            max_tokens: r.max_tokens,
            sampling: aichat_llm::Sampling {
                temperature: r.temperature,
                stop: r.stop,
            },
        };
        let stream = self
            .sender
            .complete(&self.chat, user_id, key_id, completion)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(Box::pin(stream.filter_map(|e| {
            std::future::ready(complete_event(e).map(Ok))
        }))))
    }
}

/// A completion's turns as the domain takes them: system turns make the
/// system prompt.
fn turns(turns: Vec<pb::Turn>) -> Result<(Option<String>, Vec<ChatMessage>), Status> {
    let mut system: Vec<String> = Vec::new();
    let mut messages = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        match turn.role.as_str() {
            "system" | "developer" => system.push(turn.content),
            "user" => messages.push(ChatMessage::user(turn.content)),
            "assistant" => messages.push(ChatMessage::assistant(turn.content)),
            _ => {
                return Err(field(
                    &format!("messages[{i}].role"),
                    "must be system, developer, user or assistant",
                )
                .into());
            }
        }
    }
    Ok(((!system.is_empty()).then(|| system.join("\n\n")), messages))
}

/// A usage on the wire.
fn usage(usage: &Charged) -> pb::Usage {
    pb::Usage {
        prompt_tokens: i32::try_from(usage.prompt_tokens).unwrap_or(i32::MAX),
        completion_tokens: i32::try_from(usage.completion_tokens).unwrap_or(i32::MAX),
        total_tokens: i32::try_from(usage.prompt_tokens.saturating_add(usage.completion_tokens))
            .unwrap_or(i32::MAX),
        cost_usd: pricing::to_text(&usage.cost),
    }
}

/// A failure's stable problem code.
fn failure_code(failure: Failure) -> &'static str {
    match failure {
        Failure::ProviderError => "provider_error",
        Failure::ProviderInterrupted => "provider_interrupted",
        Failure::ConversationDeleted => "conversation_deleted",
        Failure::Internal => "internal",
    }
}

/// A completion's event on the wire (it has no user message).
fn complete_event(event: SendEvent) -> Option<pb::CompleteEvent> {
    use pb::complete_event::Event;
    let event = match event {
        SendEvent::UserMessage(_) => return None,
        SendEvent::Delta(text) => Event::Delta(text),
        SendEvent::Done { usage: u, .. } | SendEvent::Completed(u) => Event::Done(usage(&u)),
        SendEvent::Failed { failure, message } => Event::Error(pb::StreamError {
            code: failure_code(failure).to_owned(),
            message,
        }),
    };
    Some(pb::CompleteEvent { event: Some(event) })
}

/// A send's event on the wire.
fn send_event(event: SendEvent) -> pb::SendMessageEvent {
    use pb::send_message_event::Event;
    let event = match event {
        SendEvent::UserMessage(m) => Event::UserMessage(message(&m)),
        SendEvent::Delta(text) => Event::Delta(text),
        SendEvent::Done {
            message: m,
            usage: u,
        } => Event::Done(pb::Done {
            message: Some(message(&m)),
            usage: Some(usage(&u)),
        }),
        // Only a completion ends so; a send always has its reply.
        SendEvent::Completed(u) => Event::Done(pb::Done {
            message: None,
            usage: Some(usage(&u)),
        }),
        SendEvent::Failed { failure, message } => Event::Error(pb::StreamError {
            code: failure_code(failure).to_owned(),
            message,
        }),
    };
    pb::SendMessageEvent { event: Some(event) }
}

impl From<SendError> for Status {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Chat(e) => e.into(),
            SendError::QuotaExceeded => status(
                Code::ResourceExhausted,
                "quota_exceeded",
                "the month's token quota is used up",
                None,
            ),
            SendError::ConversationLimit => status(
                Code::FailedPrecondition,
                "conversation_limit",
                "the plan allows no more conversations",
                None,
            ),
            SendError::MessageLimit => status(
                Code::FailedPrecondition,
                "message_limit",
                "the plan allows no more messages in this conversation",
                None,
            ),
            SendError::RateLimited { retry_after_secs } => status(
                Code::ResourceExhausted,
                "rate_limited",
                &format!("too many messages for now; retry in {retry_after_secs} s"),
                Some(serde_json::json!({ "retryAfter": retry_after_secs.to_string() })),
            ),
            SendError::ProviderRejected => status(
                Code::FailedPrecondition,
                "provider_error",
                "the model's provider refused the request",
                None,
            ),
            SendError::ProviderUnavailable => status(
                Code::Unavailable,
                "provider_unavailable",
                "the model's provider is unavailable; try again shortly",
                None,
            ),
            SendError::UnknownModel => status(
                Code::NotFound,
                "model_not_found",
                "no model of that name is offered (see GET /models)",
                None,
            ),
        }
    }
}
