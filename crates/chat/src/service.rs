//! The chat use cases. Each owns its transaction: open it, call the store,
//! write the outbox rows, commit, then wake the relay.

use aichat_db::page::{Cursor, ExportPage, PageRequest, next_cursor};
use aichat_events::chat as ev;
use aichat_messaging::{outbox, relay::Waker};
use chrono::Utc;
use diesel::result::Error as DbError;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    domain::{FieldErrors, input, usage::DayWindow},
    store::{
        conversations::{self, Changes, Conversation},
        messages::{self, Message},
        providers::{self, Provider},
        usage,
    },
};

/// What a use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed")]
    Validation(FieldErrors),
    /// Not the user's, or not there: the same answer.
    #[error("not found")]
    NotFound,
    #[error("unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        if aichat_db::is_outage(&e) {
            Self::Unavailable(anyhow::Error::new(e))
        } else {
            Self::Unexpected(anyhow::Error::new(e))
        }
    }
}

impl From<aichat_db::PoolError> for Error {
    fn from(e: aichat_db::PoolError) -> Self {
        Self::Unavailable(anyhow::Error::new(e))
    }
}

/// Why a conversation was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The plan's conversation limit is reached.
    #[error("conversation limit")]
    Limit,
    #[error(transparent)]
    Chat(#[from] Error),
}

impl From<DbError> for CreateError {
    fn from(e: DbError) -> Self {
        Self::Chat(e.into())
    }
}

/// `validation_failed` for one field.
pub fn field(name: &str, reason: &str) -> Error {
    Error::Validation(FieldErrors::from([(name.to_owned(), reason.to_owned())]))
}

/// A page and where the next one starts.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What a new conversation is made of, as sent.
pub struct NewConversation<'a> {
    pub model: &'a str,
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    pub system_prompt: Option<&'a str>,
}

/// A new conversation whose fields passed the checks (see
/// [`Chat::check_new_conversation`]).
pub struct CheckedConversation {
    model: String,
    title: String,
    description: Option<String>,
    system_prompt: Option<String>,
}

/// A change to a conversation, as sent; absent fields stay.
#[derive(Default)]
pub struct ConversationPatch<'a> {
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    pub model: Option<&'a str>,
    pub system_prompt: Option<&'a str>,
}

/// The chat use cases over their dependencies.
#[derive(Clone)]
pub struct Chat {
    pub(crate) pool: aichat_db::Pool,
    pub(crate) waker: Waker,
}

impl Chat {
    pub fn new(pool: aichat_db::Pool, waker: Waker) -> Self {
        Self { pool, waker }
    }

    pub(crate) async fn conn(&self) -> Result<aichat_db::PooledConnection, Error> {
        Ok(self.pool.get().await?)
    }

    /// Active providers (models are listed from them).
    pub async fn providers(&self) -> Result<Vec<Provider>, Error> {
        let conn = self.conn().await?;
        Ok(providers::active(&conn).await?)
    }

    /// The provider serving `model`, or a field error naming `field_name`.
    pub async fn provider_for(&self, model: &str, field_name: &str) -> Result<Provider, Error> {
        self.providers()
            .await?
            .into_iter()
            .find(|p| p.serves(model))
            .ok_or_else(|| {
                field(
                    field_name,
                    "is not a model this platform offers (see GET /models)",
                )
            })
    }

    /// The fields of a new conversation, checked: `validation_failed`
    /// naming each bad one. Done before anything that depends on the user's
    /// state (the plan's limit), so a bad request says so whatever the plan.
    pub async fn check_new_conversation(
        &self,
        new: NewConversation<'_>,
    ) -> Result<CheckedConversation, Error> {
        let mut errors = FieldErrors::new();
        let title = match new.title {
            Some(t) => input::title(t)
                .map_err(|e| errors.insert("title".into(), e))
                .ok(),
            None => Some(input::default_title()),
        };
        let description = new
            .description
            .map(|d| input::optional_text(d, input::MAX_DESCRIPTION_CHARS))
            .transpose()
            .map_err(|e| errors.insert("description".into(), e))
            .ok()
            .flatten()
            .flatten();
        let system_prompt = new
            .system_prompt
            .map(|d| input::optional_text(d, input::MAX_SYSTEM_PROMPT_CHARS))
            .transpose()
            .map_err(|e| errors.insert("systemPrompt".into(), e))
            .ok()
            .flatten()
            .flatten();
        if new.model.trim().is_empty() {
            errors.insert("model".into(), "is required".into());
        } else if let Err(Error::Validation(e)) = self.provider_for(new.model.trim(), "model").await
        {
            errors.extend(e);
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        Ok(CheckedConversation {
            model: new.model.trim().to_owned(),
            title: title.unwrap_or_else(input::default_title),
            description,
            system_prompt,
        })
    }

    /// Creates a checked conversation; with `max_conversations`, only while
    /// the user has fewer. The count and the insert run under the user's
    /// lock, so parallel creates cannot pass the limit together.
    pub async fn create_conversation(
        &self,
        user_id: Uuid,
        new: CheckedConversation,
        max_conversations: Option<i64>,
    ) -> Result<Conversation, CreateError> {
        let mut conn = self.conn().await.map_err(CreateError::Chat)?;
        let conversation = conn
            .transaction::<Conversation, CreateError, _>(async |conn| {
                if let Some(max) = max_conversations {
                    conversations::lock_user(conn, user_id).await?;
                    if conversations::count(conn, user_id).await? >= max {
                        return Err(CreateError::Limit);
                    }
                }
                let c = conversations::insert(
                    conn,
                    &conversations::New {
                        user_id,
                        title: &new.title,
                        description: new.description.as_deref(),
                        model: &new.model,
                        system_prompt: new.system_prompt.as_deref(),
                    },
                )
                .await?;
                outbox::enqueue(
                    conn,
                    &ev::ConversationCreated {
                        conversation_id: c.id,
                        user_id,
                        model: c.model.clone(),
                        // The row's, so events and backfill agree on the day.
                        created_at: c.created_at.map_or_else(Utc::now, |t| t.and_utc()),
                    },
                )
                .await?;
                Ok(c)
            })
            .await?;
        self.waker.wake();
        Ok(conversation)
    }

    pub async fn get_conversation(&self, user_id: Uuid, id: Uuid) -> Result<Conversation, Error> {
        let conn = self.conn().await?;
        conversations::find(&conn, user_id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn list_conversations(
        &self,
        user_id: Uuid,
        archived: Option<bool>,
        limit: u32,
        cursor: &str,
    ) -> Result<Page<Conversation>, Error> {
        let page = paging(limit, cursor)?;
        let mut conn = self.conn().await?;
        let mut items =
            conversations::page(&mut conn, user_id, archived, page.after, page.size + 1).await?;
        let next = next_cursor(&mut items, page.size, |c| Cursor {
            created_at: c.created_at,
            id: c.id,
        });
        Ok(Page { items, next })
    }

    pub async fn update_conversation(
        &self,
        user_id: Uuid,
        id: Uuid,
        patch: ConversationPatch<'_>,
    ) -> Result<Conversation, Error> {
        let mut errors = FieldErrors::new();
        let mut changes = Changes::default();
        if let Some(t) = patch.title {
            match input::title(t) {
                Ok(t) => changes.title = Some(t),
                Err(e) => {
                    errors.insert("title".into(), e);
                }
            }
        }
        if let Some(d) = patch.description {
            match input::optional_text(d, input::MAX_DESCRIPTION_CHARS) {
                Ok(d) => changes.description = Some(d),
                Err(e) => {
                    errors.insert("description".into(), e);
                }
            }
        }
        if let Some(p) = patch.system_prompt {
            match input::optional_text(p, input::MAX_SYSTEM_PROMPT_CHARS) {
                Ok(p) => changes.system_prompt = Some(p),
                Err(e) => {
                    errors.insert("systemPrompt".into(), e);
                }
            }
        }
        if let Some(m) = patch.model {
            match self.provider_for(m.trim(), "model").await {
                Ok(_) => changes.model = Some(m.trim().to_owned()),
                Err(Error::Validation(e)) => errors.extend(e),
                Err(e) => return Err(e),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let mut conn = self.conn().await?;
        conversations::update(&mut conn, user_id, id, changes)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn set_archived(
        &self,
        user_id: Uuid,
        id: Uuid,
        archived: bool,
    ) -> Result<Conversation, Error> {
        let mut conn = self.conn().await?;
        conversations::set_archived(&mut conn, user_id, id, archived)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn delete_conversation(&self, user_id: Uuid, id: Uuid) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        let deleted = conn
            .transaction::<bool, DbError, _>(async |conn| {
                if !conversations::delete(conn, user_id, id).await? {
                    return Ok(false);
                }
                outbox::enqueue(
                    conn,
                    &ev::ConversationDeleted {
                        conversation_id: id,
                        user_id,
                    },
                )
                .await?;
                Ok(true)
            })
            .await?;
        if !deleted {
            return Err(Error::NotFound);
        }
        self.waker.wake();
        Ok(())
    }

    pub async fn list_messages(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        limit: u32,
        cursor: &str,
    ) -> Result<Page<Message>, Error> {
        let page = paging(limit, cursor)?;
        let mut conn = self.conn().await?;
        if conversations::find(&conn, user_id, conversation_id)
            .await?
            .is_none()
        {
            return Err(Error::NotFound);
        }
        let mut items =
            messages::page(&mut conn, conversation_id, page.after, page.size + 1).await?;
        let next = next_cursor(&mut items, page.size, |m| Cursor {
            created_at: m.created_at,
            id: m.id,
        });
        Ok(Page { items, next })
    }

    pub async fn delete_message(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        message_id: Uuid,
    ) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        if conversations::find(&conn, user_id, conversation_id)
            .await?
            .is_none()
        {
            return Err(Error::NotFound);
        }
        if messages::soft_delete(&mut conn, conversation_id, message_id).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// The user's usage per UTC day over the last `days` days (0: the
    /// default), today included, oldest first.
    pub async fn daily_usage(&self, user_id: Uuid, days: u32) -> Result<Vec<usage::Day>, Error> {
        let window =
            DayWindow::parse(days, Utc::now().date_naive()).map_err(|e| field("days", &e))?;
        let mut conn = self.conn().await?;
        Ok(usage::daily(&mut conn, user_id, &window).await?)
    }

    /// A page of every user's conversations by id, with their counters
    /// (analytics' backfill).
    pub async fn export_conversations(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Page<Conversation>, Error> {
        let page = ExportPage::parse(after, limit).map_err(Error::Validation)?;
        let mut conn = self.conn().await?;
        let items = conversations::export(&mut conn, page.after, page.limit).await?;
        Ok(exported(page, items, |c| c.id))
    }

    /// A page of every message by id, soft-deleted ones included, each with
    /// its conversation's user (analytics' backfill).
    pub async fn export_messages(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Page<(Message, Uuid)>, Error> {
        let page = ExportPage::parse(after, limit).map_err(Error::Validation)?;
        let mut conn = self.conn().await?;
        let items = messages::export(&mut conn, page.after, page.limit).await?;
        Ok(exported(page, items, |(m, _)| m.id))
    }

    /// A page of every tokenUsage row by id (analytics' backfill).
    pub async fn export_token_usage(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Page<usage::Usage>, Error> {
        let page = ExportPage::parse(after, limit).map_err(Error::Validation)?;
        let mut conn = self.conn().await?;
        let items = usage::export(&mut conn, page.after, page.limit).await?;
        Ok(exported(page, items, |u| u.id))
    }

    /// Deletes everything a user owned (on `identity.user.deleted`).
    pub async fn forget_user(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        user_id: Uuid,
    ) -> Result<usize, DbError> {
        conversations::delete_all_of(conn, user_id).await
    }
}

/// The page size and the cursor; a cursor without a time is none of chat's
/// (every conversation and message has one).
fn paging(limit: u32, cursor: &str) -> Result<PageRequest, Error> {
    let page = PageRequest::parse(limit, cursor).map_err(Error::Validation)?;
    if page.after.is_some_and(|c| c.created_at.is_none()) {
        let mut errors = FieldErrors::new();
        errors.insert("cursor".into(), "is not a cursor from this API".into());
        return Err(Error::Validation(errors));
    }
    Ok(page)
}

/// An export page of `items` (ordered by `id`).
fn exported<T>(page: ExportPage, items: Vec<T>, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let next = page.next(items.iter().map(id)).map(|id| id.to_string());
    Page { items, next }
}
