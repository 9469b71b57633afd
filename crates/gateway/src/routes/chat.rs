//! The chat endpoints of API.md: models, conversations, messages,
//! sending a message with the reply streamed as SSE (or answered whole), and
//! the caller's usage per day.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use aichat_proto::chat::v1::{self as pb, send_message_event::Event};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Json, grpc};
use crate::{
    auth::Caller,
    problem::{Problem, ProblemBody},
    state::AppState,
};

type Data = web::Data<AppState>;
type Answer = Result<HttpResponse, Problem>;

fn time(t: Option<aichat_proto::Timestamp>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// A model on offer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub id: String,
    /// `openai`, `anthropic` or `google`.
    pub provider: String,
    /// USD per 1K input tokens, a decimal string.
    pub input_cost_per_1k: String,
    pub output_cost_per_1k: String,
    pub available: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub items: Vec<Model>,
}

/// `Conversation`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub model: String,
    pub system_prompt: Option<String>,
    pub message_count: i32,
    pub token_count: i32,
    pub is_archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<pb::Conversation> for Conversation {
    fn from(c: pb::Conversation) -> Self {
        Self {
            id: c.id,
            title: c.title,
            description: c.description,
            model: c.model,
            system_prompt: c.system_prompt,
            message_count: c.message_count,
            token_count: c.token_count,
            is_archived: c.is_archived,
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    pub next_cursor: Option<String>,
}

/// `Message`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub token_count: i32,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub model: Option<String>,
    pub language: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<pb::Message> for Message {
    fn from(m: pb::Message) -> Self {
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            role: m.role,
            content: m.content,
            token_count: m.token_count,
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
            model: m.model,
            language: m.language,
            created_at: time(m.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub items: Vec<Message>,
    pub next_cursor: Option<String>,
}

/// Tokens and their price for one reply.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ReplyUsage)]
pub struct Usage {
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub total_tokens: i32,
    /// USD, a decimal string.
    pub cost_usd: String,
}

impl From<pb::Usage> for Usage {
    fn from(u: pb::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cost_usd: u.cost_usd,
        }
    }
}

/// The answer to a message sent without `Accept: text/event-stream`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendResult {
    pub user_message: Message,
    pub assistant_message: Message,
    pub usage: Usage,
}

/// The SSE `done` event's data.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DoneEvent {
    pub message: Message,
    pub usage: Usage,
}

// The bounds below are chat's (crates/chat/src/domain/input.rs), stated
// for clients: lengths count characters as sent. A title is trimmed of
// Unicode white space, must keep a character, and has no control
// characters: the pattern says exactly that (white space spelled out, as
// `\s` differs between regex dialects). No text may hold U+0000.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"model": "gpt-4o-mini", "title": "Trip to Lisbon", "systemPrompt": "Answer briefly."}))]
pub struct CreateConversationBody {
    /// A model id from `GET /models`.
    #[serde(default)]
    #[schema(required, min_length = 1)]
    pub model: String,
    /// Default "New conversation".
    #[schema(
        max_length = 500,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub title: Option<String>,
    /// Blank means none. No U+0000.
    #[schema(max_length = 2000, pattern = r"^[^\x00]*$")]
    pub description: Option<String>,
    /// Blank means none. No U+0000.
    #[schema(max_length = 8000, pattern = r"^[^\x00]*$")]
    pub system_prompt: Option<String>,
}

/// Absent or `null` fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"title": "Trip to Porto", "description": "three days in May"}))]
pub struct UpdateConversationBody {
    #[schema(
        max_length = 500,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub title: Option<String>,
    /// Blank clears it. No U+0000.
    #[schema(max_length = 2000, pattern = r"^[^\x00]*$")]
    pub description: Option<String>,
    /// A model id from `GET /models`.
    #[schema(min_length = 1)]
    pub model: Option<String>,
    /// Blank clears it. No U+0000.
    #[schema(max_length = 8000, pattern = r"^[^\x00]*$")]
    pub system_prompt: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"content": "Where should I eat tonight?"}))]
pub struct SendMessageBody {
    /// Not blank (some character other than white space), no U+0000.
    #[serde(default)]
    #[schema(
        required,
        max_length = 32000,
        pattern = r"^[^\x00]*[^\x00\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub content: String,
    /// Another model for this message only (a model id from `GET /models`;
    /// blank means the conversation's).
    pub model: Option<String>,
}

/// `?limit=&cursor=` of a list (messages, invoices, payments).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1..100, default 20.
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    #[param(nullable = false, pattern = r"^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// `?limit=&cursor=&archived=` of a list of conversations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// 1..100, default 20.
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    #[param(nullable = false, pattern = r"^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// Only archived (`true`) or only active (`false`) ones; both if absent.
    #[param(nullable = false)]
    pub archived: Option<bool>,
}

/// One UTC day of the caller's usage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"date": "2026-12-01", "tokens": 1520, "costUsd": "0.004180"}))]
pub struct DailyUsage {
    /// The UTC day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub date: String,
    /// Tokens charged that day (prompt and completion).
    pub tokens: i64,
    /// What they cost, USD, a decimal string.
    pub cost_usd: String,
}

/// The caller's usage per UTC day, oldest first, today last; a day without
/// usage is there with zeros.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DailyUsageList {
    pub items: Vec<DailyUsage>,
}

/// `?days=` of the daily usage.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyUsageQuery {
    /// How many days up to today, today included: 1..366, default 30.
    #[param(minimum = 1, maximum = 366, nullable = false)]
    pub days: Option<u32>,
}

fn conv_ref(caller: &Caller, id: String) -> pb::ConversationRef {
    pb::ConversationRef {
        user_id: caller.user_id.to_string(),
        conversation_id: id,
    }
}

pub(crate) fn limit_of(limit: Option<u32>) -> Result<u32, Problem> {
    match limit {
        Some(0) => Err(Problem::field("limit", "must be between 1 and 100")),
        Some(n) => Ok(n),
        None => Ok(0),
    }
}

/// `?days=` as chat reads it: 0 is its default. Chat refuses the rest
/// of what is out of range.
fn days_of(days: Option<u32>) -> Result<u32, Problem> {
    match days {
        Some(0) => Err(Problem::field("days", "must be between 1 and 366")),
        Some(n) => Ok(n),
        None => Ok(0),
    }
}

#[utoipa::path(get, path = "/api/v1/models", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = ModelList)))]
pub async fn models(state: Data, req: HttpRequest, _caller: Caller) -> Answer {
    let list = state
        .chat
        .clone()
        .list_models(grpc(&req, pb::Empty {}))
        .await?
        .into_inner();
    let items = list
        .items
        .into_iter()
        .map(|m| Model {
            id: m.id,
            provider: m.provider,
            input_cost_per_1k: m.input_cost_per_1k,
            output_cost_per_1k: m.output_cost_per_1k,
            available: m.available,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ModelList { items }))
}

#[utoipa::path(post, path = "/api/v1/conversations", tag = "chat", security(("bearer" = [])), request_body = CreateConversationBody,
    responses((status = 201, body = Conversation), (status = 402, body = ProblemBody, description = "`conversation_limit`: the plan allows no more conversations"), (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`")))]
pub async fn create_conversation(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    body: Json<CreateConversationBody>,
) -> Answer {
    let b = body.into_inner();
    let c = state
        .chat
        .clone()
        .create_conversation(grpc(
            &req,
            pb::CreateConversationRequest {
                user_id: caller.user_id.to_string(),
                model: b.model,
                title: b.title,
                description: b.description,
                system_prompt: b.system_prompt,
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Created().json(Conversation::from(c)))
}

#[utoipa::path(get, path = "/api/v1/conversations", tag = "chat", security(("bearer" = [])), params(ConversationQuery),
    responses((status = 200, body = ConversationPage), (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`")))]
pub async fn list_conversations(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    q: web::Query<ConversationQuery>,
) -> Answer {
    let page = state
        .chat
        .clone()
        .list_conversations(grpc(
            &req,
            pb::ListConversationsRequest {
                user_id: caller.user_id.to_string(),
                archived: q.archived,
                limit: limit_of(q.limit)?,
                cursor: q.cursor.clone().unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(ConversationPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "chat", security(("bearer" = [])), params(("id" = Uuid, Path, description = "a conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = ProblemBody, description = "`not_found`: no such conversation of the caller")))]
pub async fn get_conversation(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Answer {
    let c = state
        .chat
        .clone()
        .get_conversation(grpc(&req, conv_ref(&caller, id.into_inner())))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(Conversation::from(c)))
}

#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "chat", security(("bearer" = [])), params(("id" = Uuid, Path, description = "a conversation id")), request_body = UpdateConversationBody,
    responses((status = 200, body = Conversation), (status = 404, body = ProblemBody, description = "`not_found`: no such conversation of the caller"), (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`")))]
pub async fn update_conversation(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: Json<UpdateConversationBody>,
) -> Answer {
    let b = body.into_inner();
    let c = state
        .chat
        .clone()
        .update_conversation(grpc(
            &req,
            pb::UpdateConversationRequest {
                user_id: caller.user_id.to_string(),
                conversation_id: id.into_inner(),
                title: b.title,
                description: b.description,
                model: b.model,
                system_prompt: b.system_prompt,
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(Conversation::from(c)))
}

async fn set_archived(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: String,
    archived: bool,
) -> Answer {
    let c = state
        .chat
        .clone()
        .set_archived(grpc(
            &req,
            pb::SetArchivedRequest {
                user_id: caller.user_id.to_string(),
                conversation_id: id,
                archived,
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(Conversation::from(c)))
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/archive", tag = "chat", security(("bearer" = [])), params(("id" = Uuid, Path, description = "a conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = ProblemBody, description = "`not_found`: no such conversation of the caller")))]
pub async fn archive(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Answer {
    set_archived(state, req, caller, id.into_inner(), true).await
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/unarchive", tag = "chat", security(("bearer" = [])), params(("id" = Uuid, Path, description = "a conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = ProblemBody, description = "`not_found`: no such conversation of the caller")))]
pub async fn unarchive(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Answer {
    set_archived(state, req, caller, id.into_inner(), false).await
}

#[utoipa::path(delete, path = "/api/v1/conversations/{id}", tag = "chat", security(("bearer" = [])), params(("id" = Uuid, Path, description = "a conversation id")),
    responses((status = 204, description = "deleted, with its messages"), (status = 404, body = ProblemBody, description = "`not_found`: no such conversation of the caller")))]
pub async fn delete_conversation(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Answer {
    state
        .chat
        .clone()
        .delete_conversation(grpc(&req, conv_ref(&caller, id.into_inner())))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "chat", security(("bearer" = [])), params(("id" = Uuid, Path, description = "a conversation id"), PageQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = ProblemBody, description = "`not_found`: no such conversation of the caller"), (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`")))]
pub async fn list_messages(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Answer {
    let page = state
        .chat
        .clone()
        .list_messages(grpc(
            &req,
            pb::ListMessagesRequest {
                user_id: caller.user_id.to_string(),
                conversation_id: id.into_inner(),
                limit: limit_of(q.limit)?,
                cursor: q.cursor.clone().unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(MessagePage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(delete, path = "/api/v1/conversations/{id}/messages/{messageId}", tag = "chat", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "a conversation id"), ("messageId" = Uuid, Path, description = "a message id of that conversation")),
    responses((status = 204, description = "deleted (soft)"), (status = 404, body = ProblemBody, description = "`not_found`: no such message in a conversation of the caller")))]
pub async fn delete_message(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Answer {
    let (conversation_id, message_id) = path.into_inner();
    state
        .chat
        .clone()
        .delete_message(grpc(
            &req,
            pb::MessageRef {
                user_id: caller.user_id.to_string(),
                conversation_id,
                message_id,
            },
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn sse(event: &str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("event: {event}\ndata: {json}\n\n"))
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "chat", security(("bearer" = [])), params(("id" = Uuid, Path, description = "a conversation id")), request_body = SendMessageBody,
    responses(
        (status = 200, content_type = "text/event-stream", description = "with `Accept: text/event-stream`: `message` (the saved user Message), `delta` ({text})…, then `done` ({message, usage}) or `error` (a problem: `provider_error`, `provider_interrupted` after a partial reply that was charged, `conversation_deleted` when the conversation or account went while the reply streamed (charged all the same), `upstream_timeout` past the stream's deadline)"),
        (status = 201, body = SendResult),
        (status = 402, body = ProblemBody, description = "`quota_exceeded` or `message_limit`"),
        (status = 404, body = ProblemBody, description = "`not_found`: no such conversation of the caller"), (status = 422, body = ProblemBody, description = "`validation_failed`, with the fields in `errors`"),
        (status = 410, body = ProblemBody, description = "`conversation_deleted`: the conversation went while the reply was produced; the reply was charged, not saved"),
        (status = 429, body = ProblemBody, description = "`rate_limited`: the model's provider is at its request limit, or the user at their plan's send rate"),
        (status = 502, body = ProblemBody, description = "`provider_error`: the provider failed"),
        (status = 503, body = ProblemBody, description = "`provider_unavailable`, or `unavailable`: a service is down"),
        (status = 504, body = ProblemBody, description = "`upstream_timeout`: no reply in time")))]
pub async fn send_message(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: Json<SendMessageBody>,
) -> Answer {
    let b = body.into_inner();
    // The whole send, first token to last, within the stream's deadline.
    let deadline = tokio::time::Instant::now() + state.config.chat_stream_timeout;
    let wants_stream = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let stream = state
        .chat_stream
        .clone()
        .send_message(grpc(
            &req,
            pb::SendMessageRequest {
                user_id: caller.user_id.to_string(),
                conversation_id: id.into_inner(),
                content: b.content,
                model: b.model,
            },
        ))
        .await?
        .into_inner();
    let stream = Box::pin(until_deadline(stream, deadline));

    if wants_stream {
        let body = stream.map(|item| -> Result<Bytes, actix_web::Error> {
            Ok(match item {
                Ok(pb::SendMessageEvent {
                    event: Some(Event::UserMessage(m)),
                }) => sse("message", &Message::from(m)),
                Ok(pb::SendMessageEvent {
                    event: Some(Event::Delta(text)),
                }) => sse("delta", &serde_json::json!({ "text": text })),
                Ok(pb::SendMessageEvent {
                    event: Some(Event::Done(d)),
                }) => sse(
                    "done",
                    &DoneEvent {
                        message: d.message.unwrap_or_default().into(),
                        usage: d.usage.unwrap_or_default().into(),
                    },
                ),
                Ok(pb::SendMessageEvent {
                    event: Some(Event::Error(e)),
                }) => sse("error", &Problem::from_code(&e.code, &e.message).body()),
                Ok(pb::SendMessageEvent { event: None }) => Bytes::new(),
                Err(status) => sse("error", &Problem::from(status).body()),
            })
        });
        return Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(body));
    }

    // Whole answer: wait for the end of the stream.
    let mut stream = stream;
    let mut user_message = None;
    while let Some(item) = stream.next().await {
        match item?.event {
            Some(Event::UserMessage(m)) => user_message = Some(m),
            Some(Event::Delta(_)) | None => {}
            Some(Event::Done(d)) => {
                return Ok(HttpResponse::Created().json(SendResult {
                    user_message: user_message.unwrap_or_default().into(),
                    assistant_message: d.message.unwrap_or_default().into(),
                    usage: d.usage.unwrap_or_default().into(),
                }));
            }
            Some(Event::Error(e)) => return Err(Problem::from_code(&e.code, &e.message)),
        }
    }
    Err(Problem::from_code(
        "provider_error",
        "the reply ended without a result",
    ))
}

/// The reply's events until `deadline`; past it, a `DeadlineExceeded` (504
/// `upstream_timeout`) ends the stream. Chat goes on with the call and
/// charges what the provider produced.
pub(crate) fn until_deadline<S, T>(
    stream: S,
    deadline: tokio::time::Instant,
) -> impl futures::Stream<Item = Result<T, tonic::Status>>
where
    S: futures::Stream<Item = Result<T, tonic::Status>> + Unpin,
{
    futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((
                Err(tonic::Status::deadline_exceeded(
                    "the reply did not end within the stream's deadline",
                )),
                None,
            )),
        }
    })
}

/// The caller's own tokens and cost per UTC day, chat's sums of its usage.
#[utoipa::path(get, path = "/api/v1/me/usage/daily", tag = "chat", security(("bearer" = [])), params(DailyUsageQuery),
    responses((status = 200, body = DailyUsageList), (status = 422, body = ProblemBody, description = "`validation_failed`: `days` is not a number in 1..366")))]
pub async fn daily_usage(
    state: Data,
    req: HttpRequest,
    caller: Caller,
    q: web::Query<DailyUsageQuery>,
) -> Answer {
    let list = state
        .chat
        .clone()
        .get_daily_usage(grpc(
            &req,
            pb::GetDailyUsageRequest {
                user_id: caller.user_id.to_string(),
                days: days_of(q.days)?,
            },
        ))
        .await?
        .into_inner();
    let items = list
        .items
        .into_iter()
        .map(|d| DailyUsage {
            date: d.date,
            tokens: d.tokens,
            cost_usd: d.cost_usd,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DailyUsageList { items }))
}

/// Mounts the chat routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/models", web::get().to(models))
        .service(
            web::resource("/conversations")
                .default_service(web::to(crate::not_found))
                .route(web::post().to(create_conversation))
                .route(web::get().to(list_conversations)),
        )
        .service(
            web::resource("/conversations/{id}")
                .default_service(web::to(crate::not_found))
                .route(web::get().to(get_conversation))
                .route(web::patch().to(update_conversation))
                .route(web::delete().to(delete_conversation)),
        )
        .route("/conversations/{id}/archive", web::post().to(archive))
        .route("/conversations/{id}/unarchive", web::post().to(unarchive))
        .service(
            web::resource("/conversations/{id}/messages")
                .default_service(web::to(crate::not_found))
                .route(web::get().to(list_messages))
                .route(web::post().to(send_message)),
        )
        .route(
            "/conversations/{id}/messages/{messageId}",
            web::delete().to(delete_message),
        )
        .route("/me/usage/daily", web::get().to(daily_usage));
}
