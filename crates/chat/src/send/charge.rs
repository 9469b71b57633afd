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

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

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
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub usage_id: Uuid,
    pub user_id: Uuid,
    /// `None` for a call made with an API key.
    pub conversation_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub provider: String,
    pub model: String,
    pub reservation_id: Uuid,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// USD, at the provider's prices.
    pub cost: BigDecimal,
    pub text: String,
}

impl Reply {
    /// A reply of `provider`, priced at its rates.
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of one reply, named at the call"
    )]
    pub(super) fn new(
        usage_id: Uuid,
        (user_id, conversation_id, api_key_id): (Uuid, Option<Uuid>, Option<Uuid>),
        provider: &Provider,
        model: &str,
        reservation_id: Uuid,
        prompt_tokens: u32,
        completion_tokens: u32,
        text: String,
    ) -> Self {
        Self {
            usage_id,
            user_id,
            conversation_id,
            api_key_id,
            provider: provider.name.clone(),
            model: model.to_owned(),
            reservation_id,
            prompt_tokens,
            completion_tokens,
            cost: pricing::cost(
                prompt_tokens,
                completion_tokens,
                &provider.input_token_cost_per_1k,
                &provider.output_token_cost_per_1k,
            ),
            text,
        }
    }
}

/// How [`finish`] ended.
#[derive(Debug)]
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

/// Saves and charges a reply on its own, retrying a failed write a few
/// times (the database may be restarting); past that, recovery charges the
/// call from its pending row once the database is back. Replies usually go
/// through [`super::group::Finisher`], which saves the ones finishing
/// together at once and comes here for one its group could not save.
pub(super) async fn finish(chat: &Chat, reply: &Reply) -> anyhow::Result<Finished> {
    let mut attempt = 0;
    loop {
        match finish_group(chat, std::slice::from_ref(reply)).await {
            Ok(mut finished) => {
                return finished
                    .pop()
                    .ok_or_else(|| anyhow::anyhow!("a group of one finished nothing"));
            }
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

/// Saves and charges `replies` in one transaction; how each ended, in
/// their order. Every statement covers the whole group: the conversations
/// locked (in id order) and the calls claimed, the replies saved, then the
/// usage rows, the events and the counters. Replies in one conversation
/// count one after another, as if they had come one by one.
pub(super) async fn finish_group(chat: &Chat, replies: &[Reply]) -> anyhow::Result<Vec<Finished>> {
    let at = store::now();
    // Only a reply in a conversation is saved, so only it needs a language.
    let saved_as: Vec<(Uuid, Option<String>)> = replies
        .iter()
        .map(|r| {
            let language = r.conversation_id.and_then(|_| language::detect(&r.text));
            (Uuid::now_v7(), language)
        })
        .collect();
    let mut conversation_ids: Vec<Uuid> =
        replies.iter().filter_map(|r| r.conversation_id).collect();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let mut usage_ids: Vec<Uuid> = replies.iter().map(|r| r.usage_id).collect();
    usage_ids.sort_unstable();
    let conn = chat.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let finished = aichat_db::transaction(
        conn,
        async |shared: &AsyncPgConnection| -> Result<Vec<Finished>, DbError> {
            // The conversations are locked, so none can be deleted between
            // here and the commit; first, as a delete locks its conversation
            // before the pending sends it unlinks (one lock order, no
            // deadlock). Both in one round trip (pipelined, BEGIN ahead of
            // them). Should the server get them the other way round and meet
            // a delete, PostgreSQL breaks the deadlock and the replies are
            // saved again.
            let (locked, claimed) = futures::try_join!(
                async {
                    if conversation_ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    conversations::lock_many(shared, &conversation_ids).await
                },
                pending::claim_many(shared, &usage_ids),
            )?;
            let mut conversations: HashMap<Uuid, Conversation> =
                locked.into_iter().map(|c| (c.id, c)).collect();
            let claimed: HashSet<Uuid> = claimed.into_iter().collect();

            let mut writes = Writes::default();
            let mut new_messages = Vec::new();
            let mut outcomes = Vec::with_capacity(replies.len());
            for (reply, (assistant_id, language)) in replies.iter().zip(&saved_as) {
                if !claimed.contains(&reply.usage_id) {
                    outcomes.push(Outcome::AlreadyCharged);
                    continue;
                }
                let mut the_charge = Charge {
                    usage_id: reply.usage_id,
                    user_id: reply.user_id,
                    message_id: None,
                    provider: &reply.provider,
                    model: &reply.model,
                    reservation_id: reply.reservation_id,
                    prompt_tokens: reply.prompt_tokens,
                    completion_tokens: reply.completion_tokens,
                    cost: &reply.cost,
                    api_key_id: reply.api_key_id,
                };
                let Some(conversation_id) = reply.conversation_id else {
                    writes.charge(&the_charge, None)?;
                    outcomes.push(Outcome::Charged);
                    continue;
                };
                let Some(conversation) = conversations
                    .get_mut(&conversation_id)
                    .filter(|c| c.user_id == reply.user_id)
                else {
                    writes.charge(&the_charge, None)?;
                    outcomes.push(Outcome::ConversationGone);
                    continue;
                };
                new_messages.push(messages::New {
                    id: *assistant_id,
                    conversation_id,
                    role: "assistant",
                    content: &reply.text,
                    token_count: to_i32(reply.completion_tokens),
                    prompt_tokens: Some(to_i32(reply.prompt_tokens)),
                    completion_tokens: Some(to_i32(reply.completion_tokens)),
                    model: Some(&reply.model),
                    language: language.as_deref(),
                    created_at: at,
                });
                let created = ev::MessageCreated {
                    message_id: *assistant_id,
                    conversation_id,
                    user_id: reply.user_id,
                    role: "assistant".to_owned(),
                    token_count: to_i32(reply.completion_tokens),
                    model: Some(reply.model.clone()),
                    language: language.clone(),
                    created_at: at.and_utc(),
                    // Set by `charge`, with the tokens it adds.
                    counters: None,
                };
                the_charge.message_id = Some(*assistant_id);
                // The reply's place was counted with the user's message.
                writes.charge(
                    &the_charge,
                    Some(Count {
                        locked: conversation,
                        messages: 0,
                        created: Some(created),
                    }),
                )?;
                outcomes.push(Outcome::Saved(*assistant_id));
            }
            // The replies first, on their own: the usage rows refer to them,
            // and pipelined statements are not promised an order.
            let saved = if new_messages.is_empty() {
                Vec::new()
            } else {
                messages::insert(shared, &new_messages).await?
            };
            writes.write(shared).await?;
            let mut saved: HashMap<Uuid, Message> = saved.into_iter().map(|m| (m.id, m)).collect();
            outcomes
                .into_iter()
                .zip(replies)
                .map(|(outcome, reply)| -> Result<Finished, DbError> {
                    Ok(match outcome {
                        Outcome::AlreadyCharged => Finished::AlreadyCharged,
                        Outcome::Charged => Finished::Charged {
                            cost: reply.cost.clone(),
                        },
                        Outcome::ConversationGone => Finished::ConversationGone,
                        Outcome::Saved(id) => Finished::Saved {
                            assistant: saved.remove(&id).ok_or(DbError::NotFound)?,
                            cost: reply.cost.clone(),
                        },
                    })
                })
                .collect()
        },
    )
    .await?;
    chat.waker.wake();
    Ok(finished)
}

/// How one reply of a group ends, before its message is read back.
enum Outcome {
    AlreadyCharged,
    Charged,
    ConversationGone,
    /// Saved as this message.
    Saved(Uuid),
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
    /// The conversation, locked (`FOR UPDATE`) by this transaction; its
    /// counters and `updatedAt` are moved on in memory too, so a second
    /// charge to it in the same transaction counts after the first.
    locked: &'a mut Conversation,
    /// Messages to add: 0 when the reply's place was counted with the
    /// user's message, -1 when no reply was saved and it is given back.
    messages: i32,
    /// The reply's `chat.message.created`, if it was saved.
    created: Option<ev::MessageCreated>,
}

/// The rows, events and counter changes of one or more charges, written
/// together by [`Writes::write`]: one statement each whatever their number.
#[derive(Default)]
struct Writes<'a> {
    usage: Vec<usage::New<'a>>,
    outgoing: Vec<outbox::Outgoing>,
    /// Per conversation: messages and tokens added, and the last `updatedAt`.
    counts: Vec<(Uuid, i32, i32, store::Timestamp)>,
}

impl<'a> Writes<'a> {
    /// Adds a charge: its tokenUsage row and `chat.tokens.used`; with
    /// `count` (the conversation is still there), links the row to it, adds
    /// the call's tokens and `count.messages` to its counters, and adds the
    /// reply's `chat.message.created` if it was saved. Both events carry the
    /// counters after the change; without `count` they carry none.
    fn charge(&mut self, charge: &Charge<'a>, count: Option<Count<'_>>) -> Result<(), DbError> {
        let total = charge
            .prompt_tokens
            .saturating_add(charge.completion_tokens);
        // One instant for the row and its event, so its month is the one the
        // row's `createdAt` falls in.
        let created_at = store::now();
        let month = billing_month(created_at.date());
        let mut counters = None;
        let mut conversation_id = None;
        if let Some(Count {
            locked,
            messages,
            created,
        }) = count
        {
            let counted = Counted::new(locked, messages, to_i32(total));
            locked.message_count = Some(counted.after.message_count);
            locked.token_count = Some(counted.after.token_count);
            locked.updated_at = Some(counted.at);
            match self.counts.iter_mut().find(|c| c.0 == counted.id) {
                Some(change) => {
                    change.1 = change.1.saturating_add(counted.messages);
                    change.2 = change.2.saturating_add(counted.tokens);
                    change.3 = counted.at;
                }
                None => {
                    self.counts
                        .push((counted.id, counted.messages, counted.tokens, counted.at))
                }
            }
            if let Some(created) = created {
                self.outgoing
                    .push(outbox::Outgoing::new(&ev::MessageCreated {
                        counters: Some(counted.after.clone()),
                        ..created
                    })?);
            }
            conversation_id = Some(counted.id);
            counters = Some(counted.after);
        }
        self.outgoing.push(outbox::Outgoing::new(&ev::TokensUsed {
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
        self.usage.push(usage::New {
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
        });
        Ok(())
    }

    /// Writes it all, in one round trip (pipelined).
    async fn write(&self, conn: &AsyncPgConnection) -> Result<(), DbError> {
        if self.usage.is_empty() {
            return Ok(());
        }
        let counts = async {
            if self.counts.is_empty() {
                return Ok(0);
            }
            conversations::add_counts(conn, &self.counts).await
        };
        futures::try_join!(
            usage::insert(conn, &self.usage),
            outbox::insert(conn, &self.outgoing),
            counts,
        )?;
        Ok(())
    }
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
    let mut conversation = conversation.filter(|_| call.conversation_id.is_some());
    // No reply was saved: its place in the conversation is given back.
    let count = conversation.as_mut().map(|locked| Count {
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
    let mut writes = Writes::default();
    writes.charge(
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
    )?;
    writes.write(conn).await
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use aichat_db::testing::TestDatabase;
    use aichat_messaging::relay::Waker;
    use diesel::{QueryableByName, sql_types::Integer};
    use diesel_async::RunQueryDsl;

    use super::*;

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = Integer)]
        n: i32,
    }

    #[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
    async fn pending_call(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        conversation_id: Option<Uuid>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let at = store::now();
        pending::insert(
            conn,
            &PendingSend {
                id,
                replica_id: Uuid::now_v7(),
                user_id,
                conversation_id,
                user_message_id: None,
                reservation_id: Uuid::now_v7(),
                provider: "openai".to_owned(),
                model: "gpt-4o-mini".to_owned(),
                prompt_tokens: 10,
                completion_tokens: 0,
                created_at: at,
                checkpoint_at: at,
                api_key_id: None,
            },
        )
        .await
        .unwrap();
        id
    }

    #[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
    fn reply(
        usage_id: Uuid,
        user_id: Uuid,
        conversation_id: Option<Uuid>,
        completion: u32,
    ) -> Reply {
        Reply {
            usage_id,
            user_id,
            conversation_id,
            api_key_id: conversation_id.is_none().then(Uuid::now_v7),
            provider: "openai".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            reservation_id: Uuid::now_v7(),
            prompt_tokens: 10,
            completion_tokens: completion,
            cost: "0.000123".parse().unwrap(),
            text: "a reply".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_group_saves_each_reply_as_it_would_alone() {
        let db = TestDatabase::new(&crate::testing::TEMPLATE).await.unwrap();
        let chat = Chat::new(
            aichat_db::pool(db.url(), &Default::default()).unwrap(),
            Waker::default(),
        );
        let user = Uuid::now_v7();
        let mut conn = chat.conn().await.unwrap();
        let new = |title| conversations::New {
            user_id: user,
            title,
            description: None,
            model: "gpt-4o-mini",
            system_prompt: None,
        };
        let kept = conversations::insert(&mut conn, &new("kept"))
            .await
            .unwrap();
        let gone = conversations::insert(&mut conn, &new("gone"))
            .await
            .unwrap();
        let replies = vec![
            // Two replies in one conversation: the second counts after the first.
            reply(
                pending_call(&mut conn, user, Some(kept.id)).await,
                user,
                Some(kept.id),
                20,
            ),
            reply(
                pending_call(&mut conn, user, Some(kept.id)).await,
                user,
                Some(kept.id),
                30,
            ),
            // Its conversation is deleted before the group is saved.
            reply(
                pending_call(&mut conn, user, Some(gone.id)).await,
                user,
                Some(gone.id),
                40,
            ),
            // An API key's call.
            reply(pending_call(&mut conn, user, None).await, user, None, 50),
            // Charged by recovery already: its pending row is gone.
            reply(Uuid::now_v7(), user, Some(kept.id), 60),
        ];
        assert!(
            conversations::delete(&mut conn, user, gone.id)
                .await
                .unwrap()
        );

        let finished = finish_group(&chat, &replies).await.unwrap();
        assert!(
            matches!(&finished[0], Finished::Saved { assistant, .. } if assistant.token_count == 20)
        );
        assert!(
            matches!(&finished[1], Finished::Saved { assistant, .. } if assistant.token_count == 30)
        );
        assert!(matches!(finished[2], Finished::ConversationGone));
        assert!(matches!(finished[3], Finished::Charged { .. }));
        assert!(matches!(finished[4], Finished::AlreadyCharged));

        let row = conversations::lock(&conn, user, kept.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.token_count, Some(30 + 40), "both replies' tokens, once");
        assert_eq!(
            row.message_count, kept.message_count,
            "their places were counted before"
        );
        // Each reply's event carries the counters after it: one after the other.
        let after: Vec<N> = diesel::sql_query(
            "SELECT (payload->'data'->'counters'->>'tokenCount')::int AS n FROM outbox \
             WHERE eventType = 'chat.message.created' ORDER BY n",
        )
        .load(&mut conn)
        .await
        .unwrap();
        assert_eq!(after.iter().map(|r| r.n).collect::<Vec<_>>(), [30, 70]);
        let usage: Vec<N> =
            diesel::sql_query("SELECT totalTokens AS n FROM tokenUsage ORDER BY totalTokens")
                .load(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            usage.iter().map(|r| r.n).collect::<Vec<_>>(),
            [30, 40, 50, 60]
        );
        let pending: Vec<N> = diesel::sql_query("SELECT count(*)::int AS n FROM pendingSends")
            .load(&mut conn)
            .await
            .unwrap();
        assert_eq!(pending[0].n, 0, "every call claimed");
    }
}
