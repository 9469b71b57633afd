#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]
use std::time::Duration;

use aichat_chat::testing::{Providers, TestChat};
use aichat_events::{Envelope, Event, TraceContext, identity::UserDeleted};
use aichat_messaging::AmqpConfig;
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use lapin::{BasicProperties, options::BasicPublishOptions};
use uuid::Uuid;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(chat: &TestChat, sql: &str) -> i64 {
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let row: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {sql}"))
        .get_result(&mut conn)
        .await
        .unwrap();
    row.n
}

fn amqp() -> AmqpConfig {
    aichat_billing::testing::unique_amqp()
}

async fn spawn(amqp: AmqpConfig) -> TestChat {
    // Nothing here calls billing or a provider.
    TestChat::spawn(
        amqp,
        "http://127.0.0.1:9",
        Providers::mock("http://127.0.0.1:9"),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_usage_is_partitioned_by_month_with_a_year_of_partitions_ahead() {
    let chat = spawn(amqp()).await;
    let ahead = count(
        &chat,
        "pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = 'tokenusage' AND c.relname >= 'tokenusage_' || to_char(now(), 'YYYY_MM')",
    )
    .await;
    assert!(ahead >= 12, "{ahead} partitions from this month on");
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(
        "INSERT INTO tokenUsage (userId, provider, model, promptTokens, completionTokens, totalTokens, costUsd, billingMonth) \
         VALUES (gen_random_uuid(), 'openai', 'gpt-4o', 1, 2, 3, 0.000123, date_trunc('month', now() + interval '1 month')::date)",
    )
    .await
    .unwrap();
    assert_eq!(count(&chat, "tokenUsage").await, 1);
    // Not the first day of a month, or an unknown provider: refused.
    for bad in [
        "VALUES (gen_random_uuid(), 'openai', 'gpt-4o', 1, 2, 3, 0.1, '2026-11-02')",
        "VALUES (gen_random_uuid(), 'mistral', 'x', 1, 2, 3, 0.1, '2026-11-01')",
    ] {
        let sql = format!(
            "INSERT INTO tokenUsage (userId, provider, model, promptTokens, completionTokens, totalTokens, costUsd, billingMonth) {bad}"
        );
        assert!(conn.batch_execute(&sql).await.is_err(), "{bad}");
    }
    // The seed's sample queries run unchanged.
    for sample in [
        "SELECT userId, SUM(totalTokens) as total_tokens, SUM(costUsd) as total_cost FROM tokenUsage \
         WHERE billingMonth = DATE_TRUNC('month', CURRENT_DATE)::date GROUP BY userId ORDER BY total_tokens DESC",
        "SELECT model, COUNT(*) as usage_count, SUM(totalTokens) as total_tokens, AVG(totalTokens) as avg_tokens FROM tokenUsage \
         WHERE billingMonth = DATE_TRUNC('month', CURRENT_DATE)::date GROUP BY model ORDER BY total_tokens DESC",
        "SELECT userId, COUNT(DISTINCT id) as conversation_count, SUM(tokenCount) as total_tokens FROM conversations \
         WHERE createdAt >= NOW() - INTERVAL '30 days' GROUP BY userId ORDER BY total_tokens DESC LIMIT 10",
        "SELECT AVG(messageCount) as avg_messages, AVG(tokenCount) as avg_tokens FROM conversations \
         WHERE createdAt >= NOW() - INTERVAL '30 days'",
    ] {
        conn.batch_execute(sample).await.unwrap();
    }
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_conversations_go_and_usage_rows_stay_unlinked_once() {
    let amqp = amqp();
    let chat = spawn(amqp.clone()).await;
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    for (u, c, m) in [
        (user, Uuid::now_v7(), Uuid::now_v7()),
        (other, Uuid::now_v7(), Uuid::now_v7()),
    ] {
        conn.batch_execute(&format!(
            "INSERT INTO conversations (id, userId, title, model) VALUES ('{c}', '{u}', 't', 'gpt-4o');
             INSERT INTO messages (id, conversationId, role, content) VALUES ('{m}', '{c}', 'user', 'hi');
             INSERT INTO tokenUsage (userId, conversationId, messageId, provider, model, promptTokens, completionTokens, totalTokens, costUsd, billingMonth)
               VALUES ('{u}', '{c}', '{m}', 'openai', 'gpt-4o', 1, 2, 3, 0.000010, date_trunc('month', now())::date);"
        ))
        .await
        .unwrap();
    }
    // The service's queue was declared before it started (as `chat migrate`
    // does): publish twice.
    let envelope = Envelope::new(&UserDeleted { user_id: user }, TraceContext::default()).unwrap();
    let (connection, channel) = aichat_messaging::connect(&amqp).await.unwrap();
    for _ in 0..2 {
        channel
            .basic_publish(
                amqp.exchange.as_str().into(),
                UserDeleted::TYPE.into(),
                BasicPublishOptions::default(),
                &serde_json::to_vec(&envelope).unwrap(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut gone = false;
    for _ in 0..100 {
        if count(&chat, &format!("conversations WHERE userId = '{user}'")).await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the user's conversations are deleted");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&chat, "messages").await,
        1,
        "only the other user's message is left"
    );
    assert_eq!(count(&chat, &format!("tokenUsage WHERE userId = '{user}' AND conversationId IS NULL AND messageId IS NULL")).await, 1);
    assert_eq!(
        count(
            &chat,
            &format!("tokenUsage WHERE userId = '{other}' AND conversationId IS NOT NULL")
        )
        .await,
        1
    );
    assert_eq!(
        count(&chat, &format!("inbox WHERE eventId = '{}'", envelope.id)).await,
        1,
        "applied once"
    );
    let queue = aichat_messaging::consumer::durable_queue_name(&amqp, "chat");
    let _ = channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await;
    let _ = channel
        .queue_delete(format!("{queue}.dlq").as_str().into(), Default::default())
        .await;
    let _ = channel
        .exchange_delete(amqp.exchange.as_str().into(), Default::default())
        .await;
    let _ = connection.close(200, "done".into()).await;
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_of_a_send_is_bounded_to_the_newest_messages() {
    let chat = spawn(amqp()).await;
    let user = Uuid::now_v7();
    let conversation = Uuid::now_v7();
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO conversations (id, userId, title, model) VALUES ('{conversation}', '{user}', 't', 'gpt-4o'); \
         INSERT INTO messages (id, conversationId, role, content, createdAt) \
         SELECT gen_random_uuid(), '{conversation}', 'user', 'message ' || i, \
                TIMESTAMP '2026-01-01' + i * INTERVAL '1 second' \
         FROM generate_series(1, 250) AS i;"
    ))
    .await
    .unwrap();
    let history = aichat_chat::store::messages::history(&conn, user, conversation, 200)
        .await
        .unwrap();
    assert_eq!(history.len(), 200, "bounded in the query");
    assert_eq!(
        history[0].content, "message 51",
        "the newest 200, oldest first"
    );
    assert_eq!(history[199].content, "message 250");
    let other = aichat_chat::store::messages::history(&conn, Uuid::now_v7(), conversation, 200)
        .await
        .unwrap();
    assert!(
        other.is_empty(),
        "another user's conversation has no history"
    );
    drop(conn);
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_at_the_service_never_pass_the_conversation_limit() {
    let chat = spawn(amqp()).await;
    let service = aichat_chat::service::Chat::new(chat.pool().unwrap(), Default::default());
    let user = Uuid::now_v7();
    let creates = (0..30).map(|_| {
        let service = service.clone();
        async move {
            let new = service
                .check_new_conversation(aichat_chat::service::NewConversation {
                    model: "gpt-4o",
                    title: None,
                    description: None,
                    system_prompt: None,
                })
                .await
                .unwrap();
            service.create_conversation(user, new, Some(20)).await
        }
    });
    let results = futures::future::join_all(creates).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 20, "exactly the limit");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(aichat_chat::service::CreateError::Limit)))
    );
    assert_eq!(
        count(&chat, &format!("conversations WHERE userId = '{user}'")).await,
        20
    );
    chat.stop().await;
}
