//! The end of every provider call, exactly once.
//!
//! Each call has a pending-send row from before the provider was called
//! (`store::pending`). Ending the call deletes that row in the same
//! transaction as its effect, and only the one who deleted it goes on:
//! - [`finish`]: the reply arrived (whole or cut). The reply message, the
//!   tokenUsage row, the conversation's counters and the events
//!   `chat.message.created` + `chat.tokens.used` (which settles the
//!   reservation at billing). If the conversation or the account went while
//!   the reply streamed, the reply is not saved but the call is charged all
//!   the same, with the usage row's links null (the seed's SET NULL). A call
//!   made with an API key has no conversation: only its usage row and
//!   `chat.tokens.used`, with the key's id.
//! - [`abandon`]: the provider produced nothing. The reply's place in the
//!   conversation is given back (`chat.conversation.updated`) and the
//!   reservation released.
//! - [`recover`]: a replica died mid-call (or could not save its reply).
//!   Another replica charges the call with what is known: the prompt tokens
//!   and the completion tokens of the last checkpoint.

use std::time::{Duration, Instant};

use aichat_events::chat as ev;
use aichat_messaging::outbox;
use bigdecimal::BigDecimal;
use chrono::Utc;
use diesel::result::Error as DbError;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Counted, billing_month, call::backoff, to_i32};
use crate::{
    billing::{Billing, Reservation},
    domain::{language, pricing},
    service::Chat,
    store::{
        self,
        conversations::{self, Conversation},
        messages::{self, Message},
        pending::{self, PendingSend},
        providers::{self, Provider},
        usage,
    },
};

/// A reply to save and charge.
pub(super) struct Reply<'a> {
    pub usage_id: Uuid,
    pub user_id: Uuid,
    /// `None` for a call made with an API key.
    pub conversation_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub provider: &'a Provider,
    pub model: &'a str,
    pub reservation_id: Uuid,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub text: &'a str,
}

/// How [`finish`] ended.
pub(super) enum Finished {
    /// Saved and charged.
    Saved {
        assistant: Message,
        cost: BigDecimal,
    },
    /// Charged; the conversation is gone, so the reply was not saved.
    ConversationGone,
    /// Charged: a call without a conversation (an API key's).
    Charged { cost: BigDecimal },
    /// Recovery charged the call already (this replica was taken for dead).
    AlreadyCharged,
}

/// Attempts at saving a reply before leaving it to recovery.
const FINISH_ATTEMPTS: u32 = 5;

/// Saves and charges a reply, retrying a failed write a few times (the
/// database may be restarting); past that, recovery charges the call from
/// its pending row once the database is back.
pub(super) async fn finish(chat: &Chat, reply: &Reply<'_>) -> anyhow::Result<Finished> {
    let mut attempt = 0;
    loop {
        match finish_once(chat, reply).await {
            Ok(finished) => return Ok(finished),
            Err(error) if attempt + 1 >= FINISH_ATTEMPTS => return Err(error),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    attempt,
                    "saving a reply failed; retrying"
                );
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

async fn finish_once(chat: &Chat, reply: &Reply<'_>) -> anyhow::Result<Finished> {
    let cost = pricing::cost(
        reply.prompt_tokens,
        reply.completion_tokens,
        &reply.provider.input_token_cost_per_1k,
        &reply.provider.output_token_cost_per_1k,
    );
    let at = store::now();
    let assistant_id = Uuid::now_v7();
    let language = language::detect(reply.text);
    let mut conn = chat.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let finished = conn
        .transaction::<Finished, DbError, _>(async |conn| {
            // Locked, so it cannot be deleted between here and the commit;
            // first, as a delete locks the conversation before the pending
            // send it unlinks (one lock order, no deadlock).
            // Both in one round trip (pipelined). Should the server get them
            // the other way round and meet a delete, PostgreSQL breaks the
            // deadlock and `finish` tries again.
            let shared: &AsyncPgConnection = conn;
            let (conversation, claimed) = match reply.conversation_id {
                Some(conversation_id) => futures::try_join!(
                    conversations::lock(shared, reply.user_id, conversation_id),
                    pending::claim(shared, reply.usage_id),
                )?,
                None => (None, pending::claim(shared, reply.usage_id).await?),
            };
            if claimed.is_none() {
                return Ok(Finished::AlreadyCharged);
            }
            let mut the_charge = Charge {
                usage_id: reply.usage_id,
                user_id: reply.user_id,
                message_id: None,
                provider: &reply.provider.name,
                model: reply.model,
                reservation_id: reply.reservation_id,
                prompt_tokens: reply.prompt_tokens,
                completion_tokens: reply.completion_tokens,
                cost: &cost,
                api_key_id: reply.api_key_id,
            };
            if reply.conversation_id.is_none() {
                charge(conn, &the_charge, None).await?;
                return Ok(Finished::Charged { cost: cost.clone() });
            }
            let Some(conversation) = conversation else {
                charge(conn, &the_charge, None).await?;
                return Ok(Finished::ConversationGone);
            };
            let conversation_id = conversation.id;
            let saved = messages::insert(
                conn,
                &[messages::New {
                    id: assistant_id,
                    conversation_id,
                    role: "assistant",
                    content: reply.text,
                    token_count: to_i32(reply.completion_tokens),
                    prompt_tokens: Some(to_i32(reply.prompt_tokens)),
                    completion_tokens: Some(to_i32(reply.completion_tokens)),
                    model: Some(reply.model),
                    language: language.as_deref(),
                    created_at: at,
                }],
            )
            .await?;
            let created = ev::MessageCreated {
                message_id: assistant_id,
                conversation_id,
                user_id: reply.user_id,
                role: "assistant".to_owned(),
                token_count: to_i32(reply.completion_tokens),
                model: Some(reply.model.to_owned()),
                language: language.clone(),
                created_at: at.and_utc(),
                // Set by `charge`, with the tokens it adds.
                counters: None,
            };
            the_charge.message_id = Some(assistant_id);
            // The reply's place was counted with the user's message.
            let counts = Count {
                locked: &conversation,
                messages: 0,
                created: Some(created),
            };
            charge(conn, &the_charge, Some(counts)).await?;
            let assistant = saved.into_iter().next().ok_or(DbError::NotFound)?;
            Ok(Finished::Saved {
                assistant,
                cost: cost.clone(),
            })
        })
        .await?;
    chat.waker.wake();
    Ok(finished)
}

/// One call's charge.
struct Charge<'a> {
    usage_id: Uuid,
    user_id: Uuid,
    /// The reply, when it was saved.
    message_id: Option<Uuid>,
    provider: &'a str,
    model: &'a str,
    reservation_id: Uuid,
    prompt_tokens: u32,
    completion_tokens: u32,
    cost: &'a BigDecimal,
    api_key_id: Option<Uuid>,
}

/// What a charge does to the conversation it is linked to.
struct Count<'a> {
    /// The conversation, locked (`FOR UPDATE`) by this transaction.
    locked: &'a Conversation,
    /// Messages to add: 0 when the reply's place was counted with the
    /// user's message, -1 when no reply was saved and it is given back.
    messages: i32,
    /// The reply's `chat.message.created`, if it was saved.
    created: Option<ev::MessageCreated>,
}

/// Writes the tokenUsage row and `chat.tokens.used` (pipelined); with
/// `count` (the conversation is still there), links the row to it, adds the
/// call's tokens and `count.messages` to its counters, and writes the
/// reply's `chat.message.created` if it was saved. Both events carry the
/// counters after the change; without `count` they carry none.
async fn charge(
    conn: &AsyncPgConnection,
    charge: &Charge<'_>,
    count: Option<Count<'_>>,
) -> Result<(), DbError> {
    let total = charge
        .prompt_tokens
        .saturating_add(charge.completion_tokens);
    // One instant for the row and its event, so its month is the one the
    // row's `createdAt` falls in.
    let created_at = store::now();
    let month = billing_month(created_at.date());
    let counted = count
        .as_ref()
        .map(|c| Counted::new(c.locked, c.messages, to_i32(total)));
    let counters = counted.as_ref().map(|c| c.after.clone());
    let mut outgoing = Vec::with_capacity(2);
    if let Some(Count {
        created: Some(created),
        ..
    }) = count
    {
        outgoing.push(outbox::Outgoing::new(&ev::MessageCreated {
            counters: counters.clone(),
            ..created
        })?);
    }
    let conversation_id = counted.as_ref().map(|c| c.id);
    outgoing.push(outbox::Outgoing::new(&ev::TokensUsed {
        usage_id: charge.usage_id,
        user_id: charge.user_id,
        conversation_id,
        message_id: charge.message_id,
        reservation_id: Some(charge.reservation_id),
        provider: charge.provider.to_owned(),
        model: charge.model.to_owned(),
        prompt_tokens: to_i32(charge.prompt_tokens),
        completion_tokens: to_i32(charge.completion_tokens),
        total_tokens: to_i32(total),
        cost_usd: charge.cost.clone(),
        billing_month: month,
        occurred_at: created_at.and_utc(),
        counters,
        api_key_id: charge.api_key_id,
    })?);
    let row = usage::New {
        id: charge.usage_id,
        user_id: charge.user_id,
        conversation_id,
        message_id: charge.message_id,
        provider: charge.provider,
        model: charge.model,
        prompt_tokens: to_i32(charge.prompt_tokens),
        completion_tokens: to_i32(charge.completion_tokens),
        cost_usd: charge.cost,
        billing_month: month,
        created_at,
        api_key_id: charge.api_key_id,
    };
    let counted = async {
        match &counted {
            Some(counted) => counted.write(conn).await,
            None => Ok(()),
        }
    };
    futures::try_join!(
        usage::insert(conn, &row),
        outbox::insert(conn, &outgoing),
        counted
    )?;
    Ok(())
}

/// The provider produced nothing: the reply's place in the conversation (if
/// the call has one) is given back (with `chat.conversation.updated`, the
/// counters after it) and the reservation released. Best effort: if the database is down the
/// pending row stays, and recovery charges the prompt (the one case where a
/// call that produced nothing is charged).
pub(super) async fn abandon(
    chat: &Chat,
    billing: &Billing,
    usage_id: Uuid,
    (user_id, conversation_id): (Uuid, Option<Uuid>),
    reservation: &Reservation,
) {
    let abandoned = async {
        let mut conn = chat.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        conn.transaction::<bool, DbError, _>(async |conn| {
            // The conversation first, as in `finish`.
            let conversation = match conversation_id {
                Some(id) => conversations::lock(conn, user_id, id).await?,
                None => None,
            };
            if pending::claim(conn, usage_id).await?.is_none() {
                return Ok(false);
            }
            if let Some(conversation) = conversation {
                let counted = Counted::new(&conversation, -1, 0);
                let updated = outbox::Outgoing::new(&ev::ConversationUpdated {
                    conversation_id: conversation.id,
                    user_id,
                    counters: counted.after.clone(),
                })?;
                let shared: &AsyncPgConnection = conn;
                futures::try_join!(
                    counted.write(shared),
                    outbox::insert(shared, std::slice::from_ref(&updated)),
                )?;
            }
            Ok(true)
        })
        .await
        .map_err(anyhow::Error::from)
    };
    match abandoned.await {
        Ok(true) => billing.release(reservation).await,
        Ok(false) => {}
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "giving back a send that produced nothing failed; recovery will settle it"
            );
        }
    }
}

/// Saves a long reply's completion tokens so far (best effort: recovery
/// charges at most one interval's tokens too few if this fails).
pub(super) async fn checkpoint(chat: &Chat, usage_id: Uuid, completion_tokens: i32) {
    let saved = async {
        let mut conn = chat.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        pending::checkpoint(&mut conn, usage_id, completion_tokens)
            .await
            .map_err(anyhow::Error::from)
    };
    if let Err(error) = saved.await {
        tracing::warn!(error = format!("{error:#}"), "checkpointing a reply failed");
    }
}

/// How recovery decides a call is orphaned.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    /// A replica whose heartbeat is older than this is dead; replicas beat
    /// three times within it.
    pub replica_timeout: Duration,
    /// A call whose last checkpoint is older than this is charged even if
    /// its replica lives (its reply could not be saved): longer than any
    /// reply may stream.
    pub stale_after: Duration,
}

/// Calls charged per recovery transaction.
const RECOVERY_BATCH: i64 = 100;

/// Keeps this replica's heartbeat fresh and charges the calls of dead
/// replicas, until `shutdown`. It recovers others only after its own
/// heartbeat has succeeded for a whole timeout: after a database outage
/// every replica's heartbeat is old, and the live ones get that long to
/// beat again before anyone takes them for dead.
pub async fn recover(chat: Chat, replica: Uuid, settings: Recovery, shutdown: CancellationToken) {
    let every = settings.replica_timeout / 3;
    let mut healthy_since: Option<Instant> = None;
    loop {
        match heartbeat(&chat, replica).await {
            Ok(()) => {
                let since = *healthy_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settings.replica_timeout {
                    match recover_once(&chat, settings).await {
                        Ok(0) => {}
                        Ok(n) => tracing::warn!(calls = n, "charged the calls of dead replicas"),
                        Err(error) => {
                            tracing::error!(error = format!("{error:#}"), "recovering calls failed")
                        }
                    }
                }
            }
            Err(error) => {
                if healthy_since.take().is_some() {
                    tracing::warn!(error = format!("{error:#}"), "replica heartbeat failed");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Registers the replica (before it serves) or refreshes its heartbeat.
pub async fn heartbeat(chat: &Chat, replica: Uuid) -> anyhow::Result<()> {
    let mut conn = chat.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    pending::heartbeat(&mut conn, replica).await?;
    Ok(())
}

/// Charges every orphaned call; how many.
pub async fn recover_once(chat: &Chat, settings: Recovery) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let now = Utc::now();
        let dead_before = (now - settings.replica_timeout).naive_utc();
        let stale_before = (now - settings.stale_after).naive_utc();
        let mut conn = chat.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = conn
            .transaction::<usize, DbError, _>(async |conn| {
                let calls =
                    pending::orphaned(conn, dead_before, stale_before, RECOVERY_BATCH).await?;
                for call in &calls {
                    charge_orphan(conn, call).await?;
                }
                pending::forget_replicas(conn, dead_before).await?;
                Ok(calls.len())
            })
            .await?;
        if n > 0 {
            chat.waker.wake();
        }
        total += n;
        if i64::try_from(n).unwrap_or(i64::MAX) < RECOVERY_BATCH {
            return Ok(total);
        }
    }
}

/// Charges one orphaned call, unless another recoverer claimed it first.
async fn charge_orphan(conn: &mut AsyncPgConnection, found: &PendingSend) -> Result<(), DbError> {
    // The conversation first, then the claim: the order a delete locks them.
    let conversation = match found.conversation_id {
        Some(id) => conversations::lock(conn, found.user_id, id).await?,
        None => None,
    };
    let Some(call) = pending::claim(conn, found.id).await? else {
        return Ok(());
    };
    let prices = providers::by_name(conn, &call.provider).await?;
    let prompt = u32::try_from(call.prompt_tokens).unwrap_or(0);
    let completion = u32::try_from(call.completion_tokens).unwrap_or(0);
    let cost = prices.map_or_else(BigDecimal::default, |p| {
        pricing::cost(
            prompt,
            completion,
            &p.input_token_cost_per_1k,
            &p.output_token_cost_per_1k,
        )
    });
    // Deleted meanwhile (unlinked by SET NULL): charged unlinked.
    let conversation = conversation.filter(|_| call.conversation_id.is_some());
    // No reply was saved: its place in the conversation is given back.
    let count = conversation.as_ref().map(|locked| Count {
        locked,
        messages: -1,
        created: None,
    });
    tracing::warn!(
        usage.id = %call.id,
        replica.id = %call.replica_id,
        prompt_tokens = prompt,
        completion_tokens = completion,
        "charging a call its replica did not finish"
    );
    charge(
        conn,
        &Charge {
            usage_id: call.id,
            user_id: call.user_id,
            message_id: None,
            provider: &call.provider,
            model: &call.model,
            reservation_id: call.reservation_id,
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost: &cost,
            api_key_id: call.api_key_id,
        },
        count,
    )
    .await
}
