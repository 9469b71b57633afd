//! The Export* calls analytics' backfill pages through: every row once, by
//! id, in pages of `limit`.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use aichat_chat::testing::{Providers, TestChat};
use aichat_proto::chat::v1::{self as pb, chat_client::ChatClient};
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use tonic::transport::Channel;
use uuid::Uuid;

async fn spawn() -> TestChat {
    let amqp = aichat_billing::testing::unique_amqp();
    // Nothing here calls billing or a provider.
    TestChat::spawn(
        amqp,
        "http://127.0.0.1:9",
        Providers::mock("http://127.0.0.1:9"),
    )
    .await
    .unwrap()
}

/// Ids as PostgreSQL orders them.
async fn ids(chat: &TestChat, table: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let rows: Vec<Id> =
        diesel::sql_query(format!("SELECT id::text AS id FROM {table} ORDER BY id"))
            .load(&mut conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.id).collect()
}

/// 23 conversations of two users, 31 messages in the first (some deleted),
/// 25 tokenUsage rows over three months (random ids, so pages cross
/// partitions), some unlinked.
async fn seed(chat: &TestChat, user: Uuid, other: Uuid) -> Uuid {
    let first = Uuid::now_v7();
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO conversations (id, userId, title, model, messageCount, tokenCount, createdAt, updatedAt)
           VALUES ('{first}', '{user}', 'first', 'gpt-4o', 31, 1234, '2026-11-02 10:00:00', '2026-11-03 11:00:00.123456');
         INSERT INTO conversations (userId, title, model)
           SELECT CASE WHEN i % 2 = 0 THEN '{user}'::uuid ELSE '{other}'::uuid END, 't' || i, 'claude-3-sonnet'
           FROM generate_series(1, 22) i;
         INSERT INTO messages (conversationId, role, content, tokenCount, model, isDeleted, deletedAt)
           SELECT '{first}', CASE WHEN i % 2 = 0 THEN 'assistant' ELSE 'user' END, 'm' || i, i,
                  CASE WHEN i % 2 = 0 THEN 'gpt-4o' END, i % 5 = 0, CASE WHEN i % 5 = 0 THEN now() END
           FROM generate_series(1, 31) i;
         INSERT INTO tokenUsage (userId, conversationId, provider, model, promptTokens, completionTokens, totalTokens, costUsd, billingMonth)
           SELECT '{user}', CASE WHEN i % 3 = 0 THEN NULL ELSE '{first}'::uuid END, 'openai', 'gpt-4o', i, 1, i + 1,
                  0.000123 * i, (date_trunc('month', now()) - (i % 3) * INTERVAL '1 month')::date
           FROM generate_series(1, 25) i;"
    ))
    .await
    .unwrap();
    first
}

/// Pages through one export with `limit`; every page's ids, and the number
/// of pages asked for.
async fn page_through<F, Fut>(limit: u32, mut call: F) -> (Vec<String>, usize)
where
    F: FnMut(pb::ExportRequest) -> Fut,
    Fut: Future<Output = (Vec<String>, String)>,
{
    let (mut all, mut pages, mut after) = (Vec::new(), 0, String::new());
    // 0 asks for the default page size.
    let size = if limit == 0 { 500 } else { limit as usize };
    loop {
        let (ids, next) = call(pb::ExportRequest {
            after: after.clone(),
            limit,
        })
        .await;
        pages += 1;
        assert!(ids.len() <= size);
        if next.is_empty() {
            assert!(ids.len() < size, "only a page not full is the last");
            all.extend(ids);
            return (all, pages);
        }
        assert_eq!(ids.len(), size, "a page with a next is full");
        assert_eq!(ids.last(), Some(&next), "next is the page's last id");
        all.extend(ids);
        after = next;
        assert!(pages < 100, "paging does not end");
    }
}

async fn conversations(client: &ChatClient<Channel>, limit: u32) -> (Vec<String>, usize) {
    page_through(limit, |r| {
        let mut client = client.clone();
        async move {
            let page = client.export_conversations(r).await.unwrap().into_inner();
            (
                page.items.into_iter().map(|c| c.conversation_id).collect(),
                page.next,
            )
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_page_through_every_row_once_in_id_order() {
    let chat = spawn().await;
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let first = seed(&chat, user, other).await;
    let client = ChatClient::connect(chat.url.clone()).await.unwrap();

    // 23 conversations: 7 + 7 + 7 + 2; 23 in one page of 500 (the default).
    let expected = ids(&chat, "conversations").await;
    assert_eq!(expected.len(), 23);
    assert_eq!(conversations(&client, 7).await, (expected.clone(), 4));
    assert_eq!(conversations(&client, 0).await, (expected.clone(), 1));
    assert_eq!(conversations(&client, 1000).await, (expected, 1));

    // 31 messages, the deleted ones too: a page of 31 is full, so one more
    // (empty) page ends it.
    let expected = ids(&chat, "messages").await;
    assert_eq!(expected.len(), 31);
    let messages = page_through(31, |r| {
        let mut client = client.clone();
        async move {
            let page = client.export_messages(r).await.unwrap().into_inner();
            (
                page.items.into_iter().map(|m| m.message_id).collect(),
                page.next,
            )
        }
    })
    .await;
    assert_eq!(messages, (expected.clone(), 2));
    let messages = page_through(4, |r| {
        let mut client = client.clone();
        async move {
            let page = client.export_messages(r).await.unwrap().into_inner();
            (
                page.items.into_iter().map(|m| m.message_id).collect(),
                page.next,
            )
        }
    })
    .await;
    assert_eq!(messages, (expected, 8));

    // 25 usage rows over three month partitions, 6 at a time.
    let expected = ids(&chat, "tokenUsage").await;
    assert_eq!(expected.len(), 25);
    let usage = page_through(6, |r| {
        let mut client = client.clone();
        async move {
            let page = client.export_token_usage(r).await.unwrap().into_inner();
            (
                page.items.into_iter().map(|u| u.usage_id).collect(),
                page.next,
            )
        }
    })
    .await;
    assert_eq!(usage, (expected, 5));

    // What a row says.
    let mut client = client.clone();
    let all = |limit| pb::ExportRequest {
        after: String::new(),
        limit,
    };
    let page = client
        .export_conversations(all(0))
        .await
        .unwrap()
        .into_inner();
    let c = page
        .items
        .iter()
        .find(|c| c.conversation_id == first.to_string())
        .unwrap();
    assert_eq!(
        (
            c.user_id.as_str(),
            c.model.as_str(),
            c.message_count,
            c.token_count
        ),
        (user.to_string().as_str(), "gpt-4o", 31, 1234)
    );
    let updated = c.updated_at.unwrap();
    assert_eq!(
        (updated.seconds, updated.nanos),
        (1_793_703_600, 123_456_000)
    );
    assert_eq!(
        page.items
            .iter()
            .filter(|c| c.user_id == other.to_string())
            .count(),
        11
    );
    let page = client.export_messages(all(0)).await.unwrap().into_inner();
    assert!(
        page.items
            .iter()
            .all(|m| m.user_id == user.to_string() && m.conversation_id == first.to_string())
    );
    let m = page.items.iter().find(|m| m.token_count == 5).unwrap();
    assert_eq!(
        (m.role.as_str(), m.model.as_str()),
        ("user", ""),
        "deleted, still exported"
    );
    let m = page.items.iter().find(|m| m.token_count == 10).unwrap();
    assert_eq!((m.role.as_str(), m.model.as_str()), ("assistant", "gpt-4o"));
    let page = client
        .export_token_usage(all(0))
        .await
        .unwrap()
        .into_inner();
    let u = page.items.iter().find(|u| u.prompt_tokens == 7).unwrap();
    assert_eq!(
        u.cost_usd, "0.000861",
        "a decimal string at the column's scale"
    );
    assert_eq!((u.completion_tokens, u.total_tokens), (1, 8));
    assert_eq!(u.conversation_id, first.to_string());
    assert!(u.billing_month.ends_with("-01"), "{}", u.billing_month);
    assert!(u.message_id.is_empty());
    let unlinked = page.items.iter().find(|u| u.prompt_tokens == 9).unwrap();
    assert!(unlinked.conversation_id.is_empty());
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_refuse_a_malformed_after_and_a_limit_over_1000() {
    let chat = spawn().await;
    let mut client = ChatClient::connect(chat.url.clone()).await.unwrap();
    let cases = [
        ("not-an-id", 10, vec!["after"]),
        ("", 1001, vec!["limit"]),
        ("42", u32::MAX, vec!["after", "limit"]),
    ];
    for (after, limit, fields) in cases {
        let request = || pb::ExportRequest {
            after: after.to_owned(),
            limit,
        };
        let refusals = [
            client.export_conversations(request()).await.unwrap_err(),
            client.export_messages(request()).await.unwrap_err(),
            client.export_token_usage(request()).await.unwrap_err(),
        ];
        for refused in refusals {
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
            let details: serde_json::Value = serde_json::from_slice(refused.details()).unwrap();
            assert_eq!(details["code"], "validation_failed");
            let named: Vec<&str> = details["errors"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(named, fields, "{details}");
        }
    }
    // An id no row has is a fine place to start: rows after it.
    let page = client
        .export_conversations(pb::ExportRequest {
            after: Uuid::max().to_string(),
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.items.is_empty() && page.next.is_empty());
    chat.stop().await;
}
