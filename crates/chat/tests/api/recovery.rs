//! A chat process killed mid-stream: every provider call it made is still
//! charged once, by the replica that comes after it. Chat runs here as a
//! child process (its real binary), so it can be killed with SIGKILL.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use aichat_billing::testing::TestBilling;
use aichat_db::testing::TestDatabase;
use aichat_messaging::AmqpConfig;
use aichat_mockllm::{MockConfig, MockServer};
use aichat_proto::chat::v1::{
    CreateConversationRequest, Empty, SendMessageRequest, chat_client::ChatClient,
    send_message_event::Event,
};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn number(pool: &aichat_db::Pool, sql: &str) -> i64 {
    let mut conn = pool.get().await.unwrap();
    let row: N = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
    row.n
}

/// Starts the chat binary on `port`.
fn chat_process(
    db: &TestDatabase,
    billing_url: &str,
    mock: &MockServer,
    amqp: &AmqpConfig,
    port: u16,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chat"))
        .arg("serve")
        .env("DATABASE_URL", db.url())
        .env("GRPC_ADDR", format!("127.0.0.1:{port}"))
        .env("BILLING_GRPC_URL", billing_url)
        .env("AMQP_URL", &amqp.url)
        .env("AMQP_EXCHANGE", &amqp.exchange)
        .env("AMQP_EPHEMERAL", "true")
        .env("OPENAI_BASE_URL", mock.openai_base_url())
        .env("OPENAI_API_KEY", "test-key")
        .env("ANTHROPIC_BASE_URL", mock.url())
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("GOOGLE_BASE_URL", mock.url())
        .env("GOOGLE_API_KEY", "test-key")
        .env("CHECKPOINT_SECS", "1")
        .env("REPLICA_TIMEOUT_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn client(port: u16) -> ChatClient<tonic::transport::Channel> {
    for _ in 0..400 {
        if let Ok(mut client) = ChatClient::connect(format!("http://127.0.0.1:{port}")).await
            && client.list_models(Empty {}).await.is_ok()
        {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("chat did not come up on {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn provider_calls(mock: &MockServer) -> i64 {
    let stats: serde_json::Value = reqwest::get(format!("{}/_mock/stats", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["openai"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_cut_by_a_chat_crash_are_charged_once_by_the_next_replica() {
    let amqp = aichat_billing::testing::unique_amqp();
    let billing = TestBilling::spawn(amqp.clone()).await.unwrap();
    // Long, slow replies: 200 tokens, 50 ms apart.
    let mock = MockServer::start(MockConfig {
        ttft: Duration::from_millis(5),
        token_delay: Duration::from_millis(50),
        reply_tokens: 200,
    })
    .await
    .unwrap();
    let db = TestDatabase::new(&aichat_chat::testing::TEMPLATE)
        .await
        .unwrap();
    let chat_pool = aichat_db::pool(db.url(), &aichat_db::PoolSettings::default()).unwrap();
    let port = free_port();
    let mut first = chat_process(&db, &billing.url, &mock, &amqp, port);
    let mut chat = client(port).await;

    let user_id = Uuid::now_v7().to_string();
    let conversation = chat
        .create_conversation(CreateConversationRequest {
            user_id: user_id.clone(),
            model: "gpt-4o".into(),
            title: None,
            description: None,
            system_prompt: None,
        })
        .await
        .unwrap()
        .into_inner();
    // Three replies streaming when the process dies.
    let mut streams = Vec::new();
    for i in 0..3 {
        let mut stream = chat
            .send_message(SendMessageRequest {
                user_id: user_id.clone(),
                conversation_id: conversation.id.clone(),
                content: format!("tell me a long story, number {i}"),
                model: None,
            })
            .await
            .unwrap()
            .into_inner();
        let first_event = stream.message().await.unwrap().unwrap();
        assert!(matches!(first_event.event, Some(Event::UserMessage(_))));
        streams.push(stream);
    }
    // Long enough for a checkpoint of each (every second).
    for stream in &mut streams {
        let mut deltas = 0;
        while deltas < 30 {
            if let Some(Event::Delta(_)) = stream.message().await.unwrap().unwrap().event {
                deltas += 1;
            }
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    drop(streams);
    assert_eq!(provider_calls(&mock).await, 3);
    assert_eq!(
        number(&chat_pool, "SELECT count(*) AS n FROM tokenUsage").await,
        0,
        "the dead replica charged nothing"
    );

    // The next replica (a new process on the same database) charges them.
    let port = free_port();
    let mut second = chat_process(&db, &billing.url, &mock, &amqp, port);
    let mut charged = 0;
    for _ in 0..200 {
        charged = number(&chat_pool, "SELECT count(*) AS n FROM tokenUsage").await;
        if charged == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        charged,
        provider_calls(&mock).await,
        "one row per provider call"
    );
    assert_eq!(
        number(&chat_pool, "SELECT count(*) AS n FROM pendingSends").await,
        0
    );
    assert_eq!(
        number(
            &chat_pool,
            "SELECT count(*) AS n FROM tokenUsage WHERE completionTokens >= 10"
        )
        .await,
        3,
        "charged with the checkpointed completion tokens"
    );
    assert_eq!(
        number(
            &chat_pool,
            "SELECT messageCount::bigint AS n FROM conversations"
        )
        .await,
        3,
        "three user messages; no reply was saved, so their places were given back"
    );
    // Recovery's `chat.tokens.used` carry the counters each charge left:
    // the last one, the row's.
    #[derive(QueryableByName)]
    struct Last {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        counters: serde_json::Value,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        row: serde_json::Value,
    }
    let last: Last = {
        let mut conn = chat_pool.get().await.unwrap();
        diesel::sql_query(
            "SELECT o.payload->'data'->'counters' AS counters, \
                    jsonb_build_object('messageCount', c.messageCount, 'tokenCount', c.tokenCount, \
                      'updatedAt', to_char(c.updatedAt, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')) AS row \
             FROM outbox o JOIN conversations c ON c.id::text = o.payload->'data'->>'conversationId' \
             WHERE o.eventType = 'chat.tokens.used' ORDER BY o.createdAt DESC, o.id DESC LIMIT 1",
        )
        .get_result(&mut conn)
        .await
        .unwrap()
    };
    let counters: aichat_events::chat::ConversationCounters =
        serde_json::from_value(last.counters).unwrap();
    assert_eq!(
        counters,
        serde_json::from_value(last.row).unwrap(),
        "the last charge's counters are the row's"
    );
    assert_eq!(counters.message_count, 3);
    // Billing settles the same tokens, and holds nothing more.
    let total = number(
        &chat_pool,
        "SELECT SUM(totalTokens)::bigint AS n FROM tokenUsage",
    )
    .await;
    let billing_pool = billing.pool().unwrap();
    let settled = format!(
        "SELECT COALESCE(SUM(tokensUsed), 0)::bigint AS n FROM usageTracking WHERE userId = '{user_id}'"
    );
    let mut billed = 0;
    for _ in 0..200 {
        billed = number(&billing_pool, &settled).await;
        if billed == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(billed, total, "billing equals chat");
    assert_eq!(
        number(&billing_pool, "SELECT count(*) AS n FROM tokenReservations").await,
        0,
        "every reservation settled"
    );
    // A restart after that charges nothing twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        number(&chat_pool, "SELECT count(*) AS n FROM tokenUsage").await,
        3
    );
    second.kill().unwrap();
    second.wait().unwrap();
    billing.stop().await;
    mock.stop().await;
}
