//! What every test needs: a running service, its client and pool, and all
//! of its answers at once (to compare two services' read models).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a failure fails the test"
)]

use aichat_analytics::testing::TestAnalytics;
use aichat_billing::testing::{delete_exchange, unique_amqp};
use aichat_events::Envelope;
use aichat_messaging::AmqpConfig;
use aichat_proto::analytics::v1::{
    self as pb, DaysRequest, Empty, MonthRequest, RangeRequest, TopUsersRequest,
    analytics_client::AnalyticsClient,
};
use chrono::{Duration, Utc};
use tonic::transport::Channel;

/// An analytics service of the test's own.
pub struct Harness {
    pub analytics: TestAnalytics,
    pub client: AnalyticsClient<Channel>,
    pub pool: aichat_db::Pool,
    amqp: AmqpConfig,
}

impl Harness {
    pub async fn start() -> Self {
        let amqp = unique_amqp();
        let analytics = TestAnalytics::spawn(amqp.clone()).await.unwrap();
        let client = analytics.client().await.unwrap();
        let pool = analytics.pool().unwrap();
        Self {
            analytics,
            client,
            pool,
            amqp,
        }
    }

    /// Publishes the envelopes in this order and waits until all are
    /// applied.
    pub async fn deliver(&self, envelopes: &[Envelope]) {
        self.analytics.publish_envelopes(envelopes).await.unwrap();
        self.analytics.wait_processed(envelopes).await.unwrap();
    }

    /// Every figure the service answers.
    pub async fn answers(&self) -> Answers {
        answers_of(&self.client).await
    }

    pub async fn stop(self) {
        self.analytics.stop().await;
        delete_exchange(&self.amqp).await.unwrap();
    }
}

/// Every figure a service answers (the daily series over the last 40 days).
pub async fn answers_of(client: &AnalyticsClient<Channel>) -> Answers {
    let mut c = client.clone();
    let today = Utc::now().date_naive();
    Answers {
        signups: c
            .signups(DaysRequest { days: 0 })
            .await
            .unwrap()
            .into_inner(),
        users_by_plan: c.users_by_plan(Empty {}).await.unwrap().into_inner(),
        by_user: all_user_usage(&mut c, "").await,
        by_model: c
            .token_usage_by_model(MonthRequest::default())
            .await
            .unwrap()
            .into_inner(),
        subscriptions: c.subscriptions(Empty {}).await.unwrap().into_inner(),
        mrr: c.mrr(Empty {}).await.unwrap().into_inner(),
        top_users: c
            .top_users(TopUsersRequest { days: 0, limit: 0 })
            .await
            .unwrap()
            .into_inner(),
        conversation_length: c
            .conversation_length(DaysRequest { days: 0 })
            .await
            .unwrap()
            .into_inner(),
        overdue: all_overdue(&mut c).await,
        lifetime_value: all_lifetime_value(&mut c).await,
        series: c
            .daily_series(RangeRequest {
                from: (today - Duration::days(40)).to_string(),
                to: today.to_string(),
            })
            .await
            .unwrap()
            .into_inner(),
    }
}

/// The page size the helpers page through the paged lists with: small, so
/// the answers cross pages.
pub const TEST_PAGE: u32 = 2;

/// Every page of TokenUsageByUser for `month` (empty: this month), joined.
pub async fn all_user_usage(c: &mut AnalyticsClient<Channel>, month: &str) -> pb::UserUsageList {
    let mut all = pb::UserUsageList::default();
    let mut cursor = String::new();
    loop {
        let page = c
            .token_usage_by_user(MonthRequest {
                month: month.to_owned(),
                limit: TEST_PAGE,
                cursor: cursor.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.items.len() <= TEST_PAGE as usize);
        all.month = page.month;
        all.items.extend(page.items);
        if page.next_cursor.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
    }
}

/// Every page of OverdueInvoices, joined.
pub async fn all_overdue(c: &mut AnalyticsClient<Channel>) -> pb::OverdueInvoiceList {
    let mut all = pb::OverdueInvoiceList::default();
    let mut cursor = String::new();
    loop {
        let page = c
            .overdue_invoices(pb::PageRequest {
                limit: TEST_PAGE,
                cursor: cursor.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.items.len() <= TEST_PAGE as usize);
        all.items.extend(page.items);
        if page.next_cursor.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
    }
}

/// Every page of LifetimeValue, joined.
pub async fn all_lifetime_value(c: &mut AnalyticsClient<Channel>) -> pb::LifetimeValueList {
    let mut all = pb::LifetimeValueList::default();
    let mut cursor = String::new();
    loop {
        let page = c
            .lifetime_value(pb::PageRequest {
                limit: TEST_PAGE,
                cursor: cursor.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.items.len() <= TEST_PAGE as usize);
        all.items.extend(page.items);
        if page.next_cursor.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
    }
}

/// All the answers of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub signups: pb::SignupList,
    pub users_by_plan: pb::PlanCountList,
    pub by_user: pb::UserUsageList,
    pub by_model: pb::ModelUsageList,
    pub subscriptions: pb::PlanSubscriptionList,
    pub mrr: pb::MrrReport,
    pub top_users: pb::TopUserList,
    pub conversation_length: pb::ConversationLengthReport,
    pub overdue: pb::OverdueInvoiceList,
    pub lifetime_value: pb::LifetimeValueList,
    pub series: pb::DailySeriesList,
}

/// The JSON details of a refused call.
pub fn details(status: &tonic::Status) -> serde_json::Value {
    serde_json::from_slice(status.details()).unwrap()
}

/// Asserts `result` is INVALID_ARGUMENT `validation_failed` naming `field`.
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = details(&status);
    assert_eq!(details["code"], "validation_failed", "{details}");
    assert!(details["errors"][field].is_string(), "{details}");
}

/// Writes billing's three seeded plans (as ListPlans gives them at
/// start-up) into the service's database.
pub async fn seed_plans(pool: &aichat_db::Pool) {
    let mut conn = pool.get().await.unwrap();
    for plan in crate::scenario::plans() {
        aichat_analytics::store::apply::plan(&mut conn, &plan)
            .await
            .unwrap();
    }
}

/// Every row of the read models, without their `updatedAt` (the time of
/// the write, not data), as text: equal dumps are equal read models.
pub async fn dump(pool: &aichat_db::Pool) -> String {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Rows {
        #[diesel(sql_type = diesel::sql_types::Text)]
        rows: String,
    }
    let mut conn = pool.get().await.unwrap();
    let mut out = String::new();
    for table in [
        "users",
        "plans",
        "subscriptions",
        "payments",
        "invoices",
        "conversations",
        "tokenUsage",
        "messages",
        "chatAnalytics",
        "revenueAnalytics",
        "tokenUsageUserMonthly",
        "paymentsLifetime",
        "usersPlanCounts",
        "signupsDaily",
        "subscriptionsActive",
        "chatDaily",
        "conversationsDaily",
        "conversationsUserMonthly",
    ] {
        let rows: Rows = diesel::sql_query(format!(
            "SELECT COALESCE(jsonb_agg(x ORDER BY x::text), '[]')::text AS rows \
             FROM (SELECT to_jsonb(t) - 'updatedat' AS x FROM {table} t) s"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        out.push_str(&format!("{table}: {}\n", rows.rows));
    }
    out
}

/// Each query aggregate (kept by triggers) next to what it aggregates,
/// recomputed from the read models: (aggregate, its rows, the recomputed
/// rows). Rows whose counters went back to zero count as absent.
const AGGREGATES: [(&str, &str, &str); 8] = [
    (
        "tokenUsageUserMonthly",
        "SELECT billingMonth, userId, usageCount, totalTokens, costUsd FROM tokenUsageUserMonthly \
         WHERE usageCount <> 0",
        "SELECT billingMonth, userId, count(*), sum(totalTokens), sum(costUsd) FROM tokenUsage \
         GROUP BY 1, 2",
    ),
    (
        "paymentsLifetime",
        "SELECT userId, amount, paymentCount, total FROM paymentsLifetime WHERE paymentCount <> 0",
        "SELECT userId, amount, count(*), sum(amount) FROM payments WHERE status = 'succeeded' \
         GROUP BY 1, 2",
    ),
    (
        "usersPlanCounts",
        "SELECT planTier, users FROM usersPlanCounts WHERE users <> 0",
        "SELECT planTier, count(*) FROM users \
         WHERE deletedAt IS NULL AND isActive AND createdAt IS NOT NULL GROUP BY 1",
    ),
    (
        "signupsDaily",
        "SELECT day, users FROM signupsDaily WHERE users <> 0",
        "SELECT createdAt::date, count(*) FROM users \
         WHERE deletedAt IS NULL AND createdAt IS NOT NULL GROUP BY 1",
    ),
    (
        "subscriptionsActive",
        "SELECT planId, planTier, billingInterval, periodStartDay, periodEndDay, subscriptions \
         FROM subscriptionsActive WHERE subscriptions <> 0",
        "SELECT COALESCE(s.planId, '00000000-0000-0000-0000-000000000000'::uuid), \
           COALESCE(s.planTier, ''), COALESCE(s.billingInterval, ''), \
           day_at_or_after(s.currentPeriodStart, 'infinity'), \
           day_at_or_after(s.currentPeriodEnd, '-infinity'), count(*) \
         FROM subscriptions s WHERE s.status = 'active' AND NOT EXISTS (SELECT 1 FROM users du \
           WHERE du.userId = s.userId AND du.deletedAt IS NOT NULL) GROUP BY 1, 2, 3, 4, 5",
    ),
    (
        "chatDaily",
        "SELECT day, messages, totalTokens, costUsd FROM chatDaily \
         WHERE messages <> 0 OR totalTokens <> 0 OR costUsd <> 0",
        "SELECT day, sum(messages), sum(totalTokens), sum(costUsd) FROM chatAnalytics GROUP BY 1",
    ),
    (
        "conversationsDaily",
        "SELECT day, conversations, messages, tokens FROM conversationsDaily \
         WHERE conversations <> 0",
        "SELECT createdAt::date, count(*), sum(messageCount), sum(tokenCount) FROM conversations \
         WHERE deletedAt IS NULL AND createdAt IS NOT NULL GROUP BY 1",
    ),
    (
        "conversationsUserMonthly",
        "SELECT month, userId, conversations, tokens FROM conversationsUserMonthly \
         WHERE conversations <> 0",
        "SELECT date_trunc('month', createdAt)::date, userId, count(*), sum(tokenCount) \
         FROM conversations WHERE deletedAt IS NULL AND createdAt IS NOT NULL GROUP BY 1, 2",
    ),
];

/// Asserts every query aggregate equals its recomputation from the read
/// models, and that the history gave them something to hold.
pub async fn assert_aggregates_match(pool: &aichat_db::Pool) {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Diff {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        differ: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
    }
    let mut conn = pool.get().await.unwrap();
    for (name, kept, recomputed) in AGGREGATES {
        let diff: Diff = diesel::sql_query(format!(
            "SELECT (SELECT count(*) FROM (({kept}) EXCEPT ({recomputed})) a) \
               + (SELECT count(*) FROM (({recomputed}) EXCEPT ({kept})) b) AS differ, \
             (SELECT count(*) FROM ({kept}) k) AS rows"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        assert_eq!(diff.differ, 0, "{name} differs from its read model");
        assert!(diff.rows > 0, "{name} holds nothing: a vacuous check");
    }
}

/// An event that touches no figure: published last, its being applied
/// means everything before it was (one consumer applies in order).
pub fn marker() -> aichat_events::Envelope {
    aichat_events::Envelope::new(
        &aichat_events::identity::UserLoggedIn {
            user_id: uuid::Uuid::now_v7(),
            session_id: uuid::Uuid::now_v7(),
            logged_in_at: Utc::now(),
        },
        aichat_events::TraceContext::default(),
    )
    .unwrap()
}

/// How many events the service has applied (their `userEvents` rows), read
/// on `pool`.
pub async fn applied(pool: &aichat_db::Pool) -> i64 {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().await.unwrap();
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM userEvents")
        .get_result(&mut conn)
        .await
        .unwrap();
    n.n
}
