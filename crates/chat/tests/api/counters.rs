//! The conversation counters chat's events carry (`counters` on
//! `chat.message.created` and `chat.tokens.used`, and
//! `chat.conversation.updated`): the values and the `updatedAt` the
//! transaction wrote to the conversations row, so a consumer can keep the
//! newest by `updatedAt`.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::time::Duration;

use aichat_billing::testing::TestBilling;
use aichat_chat::testing::{Providers, TestChat};
use aichat_events::chat::ConversationCounters;
use aichat_mockllm::{MockConfig, MockServer};
use aichat_proto::chat::v1::{
    ConversationRef, CreateConversationRequest, SendMessageRequest, chat_client::ChatClient,
    send_message_event::Event,
};
use chrono::NaiveDateTime;
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use tonic::transport::Channel;
use uuid::Uuid;

/// Chat with a billing to reserve at and a mock LLM to call.
struct Rig {
    billing: TestBilling,
    mock: MockServer,
    chat: TestChat,
    client: ChatClient<Channel>,
    user_id: String,
}

impl Rig {
    async fn spawn(mock: MockConfig) -> Self {
        let amqp = aichat_billing::testing::unique_amqp();
        let billing = TestBilling::spawn(amqp.clone()).await.unwrap();
        let mock = MockServer::start(mock).await.unwrap();
        let chat = TestChat::spawn(amqp, &billing.url, Providers::mock(&mock.url()))
            .await
            .unwrap();
        let client = ChatClient::connect(chat.url.clone()).await.unwrap();
        Self {
            billing,
            mock,
            chat,
            client,
            user_id: Uuid::now_v7().to_string(),
        }
    }

    async fn conversation(&mut self) -> String {
        self.client
            .create_conversation(CreateConversationRequest {
                user_id: self.user_id.clone(),
                model: "gpt-4o".into(),
                title: None,
                description: None,
                system_prompt: None,
            })
            .await
            .unwrap()
            .into_inner()
            .id
    }

    /// Sends a message and reads its events to the end; the last one.
    async fn send(&mut self, conversation_id: &str, content: &str) -> Event {
        let mut stream = self
            .client
            .send_message(SendMessageRequest {
                user_id: self.user_id.clone(),
                conversation_id: conversation_id.to_owned(),
                content: content.to_owned(),
                model: None,
            })
            .await
            .unwrap()
            .into_inner();
        let mut last = None;
        while let Some(event) = stream.message().await.unwrap() {
            last = event.event;
        }
        last.unwrap()
    }

    /// Queues failures at the mock (`POST /_mock/faults`).
    async fn faults(&self, faults: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_mock/faults", self.mock.url()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// The conversation's events (type and payload), in the order they
    /// were written.
    async fn events(&self, conversation_id: &str) -> Vec<(String, Value)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            eventtype: String,
            #[diesel(sql_type = diesel::sql_types::Jsonb)]
            payload: Value,
        }
        let pool = self.chat.pool().unwrap();
        let mut conn = pool.get().await.unwrap();
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT eventType, payload FROM outbox \
             WHERE payload->'data'->>'conversationId' = $1 ORDER BY createdAt, id",
        )
        .bind::<diesel::sql_types::Text, _>(conversation_id)
        .load(&mut conn)
        .await
        .unwrap();
        rows.into_iter()
            .map(|r| (r.eventtype, r.payload["data"].clone()))
            .collect()
    }

    /// The conversations row's counters.
    async fn row(&self, conversation_id: &str) -> ConversationCounters {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            messagecount: i32,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            tokencount: i32,
            #[diesel(sql_type = diesel::sql_types::Timestamp)]
            updatedat: NaiveDateTime,
        }
        let pool = self.chat.pool().unwrap();
        let mut conn = pool.get().await.unwrap();
        let row: Row = diesel::sql_query(
            "SELECT messageCount, tokenCount, updatedAt FROM conversations WHERE id = $1::uuid",
        )
        .bind::<diesel::sql_types::Text, _>(conversation_id)
        .get_result(&mut conn)
        .await
        .unwrap();
        ConversationCounters {
            message_count: row.messagecount,
            token_count: row.tokencount,
            updated_at: row.updatedat.and_utc(),
        }
    }

    async fn sql(&self, sql: &str) {
        let pool = self.chat.pool().unwrap();
        let mut conn = pool.get().await.unwrap();
        conn.batch_execute(sql).await.unwrap();
    }

    async fn stop(self) {
        self.chat.outbox_drained().await.unwrap();
        self.chat.stop().await;
        self.billing.stop().await;
        self.mock.stop().await;
    }
}

fn counters(data: &Value) -> Option<ConversationCounters> {
    data.get("counters")
        .map(|c| serde_json::from_value(c.clone()).unwrap())
}

/// The counters of the events that carry them, asserting what holds for
/// any conversation: the events one transaction writes carry the same
/// counters, and `updatedAt` strictly increases from one transaction to the
/// next. One entry per transaction.
fn changes(events: &[(String, Value)]) -> Vec<ConversationCounters> {
    let mut changes: Vec<ConversationCounters> = Vec::new();
    for (kind, data) in events {
        let Some(c) = counters(data) else { continue };
        match changes.last() {
            Some(last) if last.updated_at == c.updated_at => {
                assert_eq!(*last, c, "one transaction, one set of counters ({kind})");
            }
            Some(last) => assert!(
                c.updated_at > last.updated_at,
                "updatedAt goes back at {kind}: {last:?} then {c:?}"
            ),
            None => {}
        }
        if changes.last() != Some(&c) {
            changes.push(c);
        }
    }
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_send_carries_the_counters_its_conversation_row_holds() {
    let mut rig = Rig::spawn(MockConfig::instant()).await;
    let conversation = rig.conversation().await;
    let mut sent = 0;
    for content in ["hello there", "and once more"] {
        assert!(matches!(
            rig.send(&conversation, content).await,
            Event::Done(_)
        ));
        sent += 1;
        let events = rig.events(&conversation).await;
        let (kind, last) = events.last().unwrap();
        assert_eq!(kind, "chat.tokens.used");
        let row = rig.row(&conversation).await;
        assert_eq!(counters(last), Some(row.clone()), "the row after the send");
        assert_eq!(row.message_count, 2 * sent);

        // The user's message: +2 (its reply's place), no tokens yet; then
        // the reply and its charge, one transaction: the call's tokens.
        let kinds: Vec<(&str, Option<&str>)> = events
            .iter()
            .map(|(k, d)| (k.as_str(), d["role"].as_str()))
            .collect();
        let mut expected = vec![("chat.conversation.created", None)];
        for _ in 0..sent {
            expected.extend([
                ("chat.message.created", Some("user")),
                ("chat.message.created", Some("assistant")),
                ("chat.tokens.used", None),
            ]);
        }
        assert_eq!(kinds, expected);
        let changes = changes(&events);
        assert_eq!(changes.len(), 2 * usize::try_from(sent).unwrap());
        let user = counters(&events[events.len() - 3].1).unwrap();
        assert_eq!(user.message_count, 2 * sent);
        let charged = last["totalTokens"].as_i64().unwrap();
        assert!(charged > 0);
        assert_eq!(
            i64::from(row.token_count - user.token_count),
            charged,
            "the charge adds the call's tokens"
        );
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_provider_fails_before_any_token_gives_its_place_back_in_conversation_updated()
{
    let mut rig = Rig::spawn(MockConfig::instant()).await;
    let conversation = rig.conversation().await;
    // Twice: every attempt of the call (the test chat tries 3 times) fails.
    for content in ["hello", "again"] {
        rig.faults(json!(vec![json!({"kind": "server_error"}); 3]))
            .await;
        let refused = rig
            .client
            .send_message(SendMessageRequest {
                user_id: rig.user_id.clone(),
                conversation_id: conversation.clone(),
                content: content.into(),
                model: None,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    }

    let events = rig.events(&conversation).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "chat.conversation.created",
            "chat.message.created",
            "chat.conversation.updated",
            "chat.message.created",
            "chat.conversation.updated",
        ]
    );
    let row = rig.row(&conversation).await;
    assert_eq!((row.message_count, row.token_count), (2, 0));
    let changes: Vec<(i32, i32)> = changes(&events)
        .iter()
        .map(|c| (c.message_count, c.token_count))
        .collect();
    assert_eq!(
        changes,
        [(2, 0), (1, 0), (3, 0), (2, 0)],
        "each user message counts its reply's place, given back when none came"
    );
    let (_, last) = events.last().unwrap();
    assert_eq!(last["userId"], rig.user_id.as_str());
    assert_eq!(counters(last), Some(row), "the row after the give-back");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_stay_ordered_when_this_replicas_clock_is_behind_the_rows_updated_at() {
    let mut rig = Rig::spawn(MockConfig::instant()).await;
    let conversation = rig.conversation().await;
    // A replica whose clock runs an hour ahead changed the row last.
    rig.sql(&format!(
        "UPDATE conversations SET updatedAt = now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' \
         WHERE id = '{conversation}'"
    ))
    .await;
    let ahead = rig.row(&conversation).await.updated_at;
    assert!(matches!(
        rig.send(&conversation, "hello").await,
        Event::Done(_)
    ));
    let events = rig.events(&conversation).await;
    let changes = changes(&events);
    assert_eq!(changes.len(), 2, "the user's message, then the charge");
    assert!(
        changes[0].updated_at > ahead,
        "after the row's last change: {changes:?} vs {ahead}"
    );
    assert_eq!(changes[1], rig.row(&conversation).await);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_charged_after_its_conversation_went_carries_no_counters() {
    // Slow enough to delete the conversation while the reply streams.
    let mut rig = Rig::spawn(MockConfig {
        ttft: Duration::ZERO,
        token_delay: Duration::from_millis(40),
        reply_tokens: 20,
    })
    .await;
    let conversation = rig.conversation().await;
    let mut stream = rig
        .client
        .send_message(SendMessageRequest {
            user_id: rig.user_id.clone(),
            conversation_id: conversation.clone(),
            content: "tell me a story".into(),
            model: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(matches!(first.event, Some(Event::UserMessage(_))));
    rig.client
        .delete_conversation(ConversationRef {
            user_id: rig.user_id.clone(),
            conversation_id: conversation.clone(),
        })
        .await
        .unwrap();
    let mut last = None;
    while let Some(event) = stream.message().await.unwrap() {
        last = event.event;
    }
    assert!(matches!(last, Some(Event::Error(e)) if e.code == "conversation_deleted"));

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: Value,
    }
    let pool = rig.chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let used: Vec<Row> = diesel::sql_query(
        "SELECT payload FROM outbox WHERE eventType = 'chat.tokens.used' \
         AND payload->'data'->>'userId' = $1",
    )
    .bind::<diesel::sql_types::Text, _>(&rig.user_id)
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(used.len(), 1);
    let data = &used[0].payload["data"];
    assert!(data["conversationId"].is_null(), "{data}");
    assert!(data.get("counters").is_none(), "{data}");
    assert!(data["totalTokens"].as_i64().unwrap() > 0);
    drop(conn);
    rig.stop().await;
}
