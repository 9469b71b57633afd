//! Real producers: identity, billing and chat (with the mock LLM) publish
//! what they publish; analytics' answers equal the seed's sample queries run
//! on their tables.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::time::{Duration, Instant};

use aichat_analytics::testing::TestAnalytics;
use aichat_billing::testing::{TestBilling, delete_exchange, unique_amqp};
use aichat_chat::testing::{Providers, TestChat};
use aichat_identity::testing::TestIdentity;
use aichat_proto::{
    analytics::v1::{DaysRequest, Empty, MonthRequest, analytics_client::AnalyticsClient},
    chat::v1::{CreateConversationRequest, SendMessageRequest, chat_client::ChatClient},
    identity::v1::{RegisterRequest, identity_client::IdentityClient},
};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Text, Timestamp},
};
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use tonic::transport::Channel;

#[derive(QueryableByName, Debug, PartialEq)]
struct SignupRow {
    #[diesel(sql_type = Timestamp)]
    signup_date: chrono::NaiveDateTime,
    #[diesel(sql_type = BigInt)]
    new_users: i64,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    plantier: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct UserUsageRow {
    #[diesel(sql_type = Text)]
    userid: String,
    #[diesel(sql_type = BigInt)]
    total_tokens: i64,
    #[diesel(sql_type = Text)]
    total_cost: String,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct ModelUsageRow {
    #[diesel(sql_type = Text)]
    model: String,
    #[diesel(sql_type = BigInt)]
    usage_count: i64,
    #[diesel(sql_type = BigInt)]
    total_tokens: i64,
    #[diesel(sql_type = Text)]
    avg_tokens: String,
}

/// The seed's answers on identity's and chat's tables (the seed's SQL as
/// written; decimals as text, ties ordered by id).
async fn seed_answers(
    identity: &aichat_db::Pool,
    chat: &aichat_db::Pool,
) -> (
    Vec<SignupRow>,
    Vec<PlanRow>,
    Vec<UserUsageRow>,
    Vec<ModelUsageRow>,
) {
    let mut conn = identity.get().await.unwrap();
    let signups: Vec<SignupRow> = diesel::sql_query(
        "SELECT DATE_TRUNC('day', createdAt) as signup_date, COUNT(*) as new_users \
         FROM users WHERE createdAt >= NOW() - INTERVAL '30 days' \
         GROUP BY DATE_TRUNC('day', createdAt) ORDER BY signup_date DESC",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let plans: Vec<PlanRow> = diesel::sql_query(
        "SELECT planTier, COUNT(*) as count FROM users WHERE isActive = TRUE \
         GROUP BY planTier ORDER BY planTier",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let mut conn = chat.get().await.unwrap();
    let by_user: Vec<UserUsageRow> = diesel::sql_query(
        "SELECT userId::text AS userid, SUM(totalTokens) as total_tokens, \
           SUM(costUsd)::text as total_cost \
         FROM tokenUsage WHERE billingMonth = DATE_TRUNC('month', CURRENT_DATE)::date \
         GROUP BY userId ORDER BY total_tokens DESC, userId",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let by_model: Vec<ModelUsageRow> = diesel::sql_query(
        "SELECT model, COUNT(*) as usage_count, SUM(totalTokens) as total_tokens, \
           AVG(totalTokens)::text as avg_tokens \
         FROM tokenUsage WHERE billingMonth = DATE_TRUNC('month', CURRENT_DATE)::date \
         GROUP BY model ORDER BY total_tokens DESC, model",
    )
    .load(&mut conn)
    .await
    .unwrap();
    (signups, plans, by_user, by_model)
}

/// analytics' answers in the seed's shapes.
async fn analytics_answers(
    client: &mut AnalyticsClient<Channel>,
) -> (
    Vec<SignupRow>,
    Vec<PlanRow>,
    Vec<UserUsageRow>,
    Vec<ModelUsageRow>,
) {
    let signups = client
        .signups(DaysRequest { days: 0 })
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .filter(|d| d.new_users > 0)
        .map(|d| SignupRow {
            signup_date: chrono::NaiveDate::parse_from_str(&d.date, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            new_users: d.new_users,
        })
        .collect();
    let plans = client
        .users_by_plan(Empty {})
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|p| PlanRow {
            plantier: p.plan_tier,
            count: p.count,
        })
        .collect();
    let by_user = client
        .token_usage_by_user(MonthRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|u| UserUsageRow {
            userid: u.user_id,
            total_tokens: u.total_tokens,
            total_cost: u.total_cost,
        })
        .collect();
    let by_model = client
        .token_usage_by_model(MonthRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|m| ModelUsageRow {
            model: m.model,
            usage_count: m.usage_count,
            total_tokens: m.total_tokens,
            avg_tokens: m.avg_tokens,
        })
        .collect();
    (signups, plans, by_user, by_model)
}

#[tokio::test]
async fn answers_equal_the_seed_queries_on_the_producers_tables() {
    let amqp = unique_amqp();
    let billing = TestBilling::spawn(amqp.clone()).await.unwrap();
    // Bound to every event type before anything is published.
    let analytics = TestAnalytics::spawn_with(amqp.clone(), |c| {
        c.billing_grpc_url = Some(billing.url.clone());
    })
    .await
    .unwrap();
    let identity = TestIdentity::spawn(amqp.clone()).await.unwrap();
    let mock = aichat_mockllm::MockServer::start(aichat_mockllm::MockConfig {
        ttft: Duration::from_millis(5),
        token_delay: Duration::from_millis(1),
        reply_tokens: 12,
    })
    .await
    .unwrap();
    let chat = TestChat::spawn(amqp.clone(), &billing.url, Providers::mock(&mock.url()))
        .await
        .unwrap();

    let mut users = IdentityClient::connect(identity.url.clone()).await.unwrap();
    let mut conversations = ChatClient::connect(chat.url.clone()).await.unwrap();
    let models = ["gpt-4o-mini", "claude-3-5-haiku-latest", "gpt-4o-mini"];
    for (n, model) in models.iter().enumerate() {
        let user = users
            .register(RegisterRequest {
                email: format!("live-{n}-{}@example.com", uuid::Uuid::now_v7().simple()),
                password: "correct horse battery staple".into(),
                name: format!("Live {n}"),
            })
            .await
            .unwrap()
            .into_inner();
        let conversation = conversations
            .create_conversation(CreateConversationRequest {
                user_id: user.id.clone(),
                model: (*model).to_owned(),
                title: None,
                description: None,
                system_prompt: None,
            })
            .await
            .unwrap()
            .into_inner();
        for _ in 0..=n {
            let mut stream = conversations
                .send_message(SendMessageRequest {
                    user_id: user.id.clone(),
                    conversation_id: conversation.id.clone(),
                    content: "How many tokens is this?".into(),
                    model: None,
                })
                .await
                .unwrap()
                .into_inner();
            while let Some(event) = stream.next().await {
                event.unwrap();
            }
        }
    }
    identity.outbox_drained().await.unwrap();
    chat.outbox_drained().await.unwrap();

    let seed = seed_answers(&identity.pool().unwrap(), &chat.pool().unwrap()).await;
    assert_eq!(seed.0.iter().map(|d| d.new_users).sum::<i64>(), 3);
    assert_eq!(seed.2.len(), 3, "{:?}", seed.2);
    let mut client = analytics.client().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answers = analytics_answers(&mut client).await;
        if answers == seed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "analytics {answers:?} != seed {seed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    analytics.stop().await;
    chat.stop().await;
    mock.stop().await;
    identity.stop().await;
    billing.stop().await;
    delete_exchange(&amqp).await.unwrap();
}
