//! Each figure after the scenario's events, as the seed's query answers it
//! on the owning services' tables after the same history.

use aichat_proto::analytics::v1::{
    self as pb, DaysRequest, Empty, MonthRequest, RangeRequest, TopUsersRequest,
};
use chrono::Duration;

use crate::{
    helpers::{Harness, seed_plans},
    scenario::Scenario,
};

#[tokio::test]
async fn every_figure_answers_what_the_seed_query_answers() {
    let h = Harness::start().await;
    seed_plans(&h.pool).await;
    let s = Scenario::new();
    h.deliver(&s.events).await;
    let mut c = h.client.clone();

    // Signups: 30 days, newest first, zeros filled; D's account is gone.
    let signups = c
        .signups(DaysRequest { days: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(signups.items.len(), 30);
    assert_eq!(signups.items[0].date, s.today.to_string());
    assert_eq!(signups.items[0].new_users, 4);
    assert!(signups.items[1..].iter().all(|d| d.new_users == 0));
    assert_eq!(
        signups.items[29].date,
        (s.today - Duration::days(29)).to_string()
    );

    // Users by plan: A on Plus, B on Pro, C (cancelled) and E on Free.
    let by_plan = c.users_by_plan(Empty {}).await.unwrap().into_inner();
    let by_plan: Vec<(String, i64)> = by_plan
        .items
        .into_iter()
        .map(|p| (p.plan_tier, p.count))
        .collect();
    assert_eq!(
        by_plan,
        [("FREE".into(), 2), ("PLUS".into(), 1), ("PRO".into(), 1)]
    );

    // Token usage by user: D's tokens stay (chat keeps them, unlinked).
    let by_user = c
        .token_usage_by_user(MonthRequest::default())
        .await
        .unwrap()
        .into_inner();
    let by_user: Vec<(String, i64, String)> = by_user
        .items
        .into_iter()
        .map(|u| (u.user_id, u.total_tokens, u.total_cost))
        .collect();
    assert_eq!(
        by_user,
        [
            (s.b.to_string(), 300, "0.009000".into()),
            (s.a.to_string(), 100, "0.001000".into()),
            (s.d.to_string(), 50, "0.000500".into()),
        ]
    );
    let month = s.today.format("%Y-%m").to_string();
    let named = c
        .token_usage_by_user(MonthRequest {
            month: month.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named.month, month);
    assert_eq!(named.items.len(), 3);
    let empty = c
        .token_usage_by_user(MonthRequest {
            month: "2001-01".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.items.is_empty());

    // By model: PostgreSQL's AVG of an integer column, digit for digit.
    let by_model = c
        .token_usage_by_model(MonthRequest::default())
        .await
        .unwrap()
        .into_inner();
    let by_model: Vec<(String, i64, i64, String, String)> = by_model
        .items
        .into_iter()
        .map(|m| {
            (
                m.model,
                m.usage_count,
                m.total_tokens,
                m.avg_tokens,
                m.total_cost,
            )
        })
        .collect();
    assert_eq!(
        by_model,
        [
            (
                "claude-3-sonnet".into(),
                1,
                300,
                "300.0000000000000000".into(),
                "0.009000".into()
            ),
            (
                "gpt-4o".into(),
                2,
                150,
                "75.0000000000000000".into(),
                "0.001500".into()
            ),
        ]
    );

    // Active subscriptions: C's was cancelled.
    let subscriptions = c.subscriptions(Empty {}).await.unwrap().into_inner();
    let subscriptions: Vec<(String, i64, i64)> = subscriptions
        .items
        .into_iter()
        .map(|p| (p.plan, p.subscription_count, p.user_count))
        .collect();
    assert_eq!(subscriptions, [("Plus".into(), 1, 1), ("Pro".into(), 1, 1)]);

    // MRR: Plus monthly 20.00 + Pro yearly 500.00 / 12 (the seed's fault
    // would say 70.00).
    let mrr = c.mrr(Empty {}).await.unwrap().into_inner();
    assert_eq!((mrr.mrr.as_str(), mrr.currency.as_str()), ("61.67", "USD"));

    // Top users: D's and E's conversations are deleted.
    let top = c
        .top_users(TopUsersRequest { days: 0, limit: 0 })
        .await
        .unwrap()
        .into_inner();
    let top: Vec<(String, i64, i64)> = top
        .items
        .into_iter()
        .map(|u| (u.user_id, u.conversation_count, u.total_tokens))
        .collect();
    assert_eq!(top, [(s.b.to_string(), 1, 300), (s.a.to_string(), 1, 100)]);
    let one = c
        .top_users(TopUsersRequest { days: 7, limit: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.items.len(), 1);

    let length = c
        .conversation_length(DaysRequest { days: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(length.avg_messages, "2.0000000000000000");
    assert_eq!(length.avg_tokens, "200.0000000000000000");

    // Overdue: the open invoice past due, not the one not yet due, not the
    // paid one.
    let overdue = c
        .overdue_invoices(pb::PageRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(overdue.next_cursor.is_empty());
    assert_eq!(overdue.items.len(), 1, "{overdue:?}");
    let o = &overdue.items[0];
    assert_eq!(o.id, s.overdue_invoice.to_string());
    assert_eq!(o.user_id, s.c.to_string());
    assert_eq!(o.total, "20.00");
    assert_eq!(o.due_date, (s.today - Duration::days(5)).to_string());
    assert!(o.invoice_number.ends_with("-1"));

    // Lifetime value: succeeded payments of existing users; B's failed
    // one, C's refunded one and deleted D's are out; E's partly refunded
    // payment is still succeeded.
    let ltv = c
        .lifetime_value(pb::PageRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(ltv.next_cursor.is_empty());
    // The same rows a page of one at a time, each page's cursor leading to
    // the next.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = c
            .lifetime_value(pb::PageRequest {
                limit: 1,
                cursor: cursor.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.items.len(), 1, "{page:?}");
        paged.extend(page.items);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(paged, ltv.items);
    let ltv: Vec<(String, String, i64, String)> = ltv
        .items
        .iter()
        .map(|v| {
            (
                v.user_id.clone(),
                v.amount.clone(),
                v.payment_count,
                v.total_spent.clone(),
            )
        })
        .collect();
    let mut small = [s.a.to_string(), s.e.to_string()];
    small.sort();
    assert_eq!(
        ltv,
        [
            (s.b.to_string(), "500.00".into(), 1, "500.00".into()),
            (small[0].clone(), "20.00".into(), 1, "20.00".into()),
            (small[1].clone(), "20.00".into(), 1, "20.00".into()),
        ]
    );

    // The daily series: today's figures, and the subscriptions begun
    // three days ago.
    let series = c
        .daily_series(RangeRequest {
            from: (s.today - Duration::days(3)).to_string(),
            to: s.today.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(series.items.len(), 4);
    let first = &series.items[0];
    assert_eq!(first.new_subscriptions, 3);
    assert_eq!(first.revenue, "0.00");
    let today = &series.items[3];
    assert_eq!(today.date, s.today.to_string());
    assert_eq!(today.signups, 4);
    assert_eq!(today.messages, 4);
    assert_eq!(today.tokens, 450);
    assert_eq!(today.cost, "0.010500");
    // 20 (A) + 500 (B) + 0 (C, refunded) + 20 (D) + 15 (E, 5 refunded).
    assert_eq!(today.revenue, "555.00");
    assert_eq!(today.churned_subscriptions, 1);
    assert_eq!(today.mrr, "61.67");
    assert!(
        series.items[1..3].iter().all(|p| p.signups == 0
            && p.tokens == 0
            && p.cost == "0.000000"
            && p.revenue == "0.00")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_subscription_change_written_before_plan_id_existed_counts_by_its_tier() {
    use aichat_events::{Envelope, TraceContext, billing::SubscriptionChanged};
    let h = Harness::start().await;
    seed_plans(&h.pool).await;
    let user = uuid::Uuid::now_v7();
    // As billing wrote them before the fields: no subscription, plan,
    // interval or period start.
    let old = SubscriptionChanged {
        user_id: user,
        plan_tier: "PRO".into(),
        status: "active".into(),
        current_period_end: Some(chrono::Utc::now() + Duration::days(20)),
        occurred_at: chrono::Utc::now(),
        subscription_id: None,
        plan_id: None,
        interval: None,
        current_period_start: None,
    };
    let envelope = Envelope::new(&old, TraceContext::default()).unwrap();
    assert!(envelope.data.get("planId").is_none());
    h.deliver(&[envelope]).await;
    let mut c = h.client.clone();
    let subscriptions = c.subscriptions(Empty {}).await.unwrap().into_inner();
    assert_eq!(subscriptions.items.len(), 1);
    assert_eq!(subscriptions.items[0].plan, "Pro");
    assert_eq!(subscriptions.items[0].subscription_count, 1);
    // Without a period start the seed's MRR predicate cannot hold.
    assert_eq!(c.mrr(Empty {}).await.unwrap().into_inner().mrr, "0.00");
    h.stop().await;
}

/// TopUsers at a size where its threshold algorithm reads several rounds
/// and stops early: the answer is the seed's query on the same rows, for
/// several windows and sizes, with deleted conversations, conversations
/// before the window (in its first month and earlier), dated ahead, and
/// ties (broken by user id).
#[tokio::test]
async fn top_users_equal_the_seed_query_on_many_users() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Seed {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        user_id: uuid::Uuid,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        conversation_count: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total_tokens: i64,
    }
    let h = Harness::start().await;
    let mut conn = h.pool.get().await.unwrap();
    // 400 users, skewed (user k's conversations ~ 400 / k), over 70 days
    // back and 3 ahead; every 7th deleted; tokens in steps of 100 so sums tie.
    diesel::sql_query(
        "INSERT INTO conversations (conversationId, userId, createdAt, messageCount, tokenCount, \
           deletedAt) \
         SELECT gen_random_uuid(), md5('top-user' || k)::uuid, \
           LOCALTIMESTAMP - ((i * 7919 + k * 104729) % 73 - 3) * interval '1 day' \
             - (i % 24) * interval '1 hour', \
           1 + i % 9, 100 * (1 + (i * k) % 5), \
           CASE WHEN (i + k) % 7 = 0 THEN LOCALTIMESTAMP END \
         FROM generate_series(1, 400) AS k, generate_series(1, 400) AS i WHERE i <= 400 / k",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // Counters of a few change, some conversations are deleted afterwards.
    diesel::sql_query(
        "UPDATE conversations SET tokenCount = tokenCount + 1000 \
         WHERE userId IN (md5('top-user7')::uuid, md5('top-user30')::uuid)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query(
        "UPDATE conversations SET deletedAt = LOCALTIMESTAMP \
         WHERE userId = md5('top-user2')::uuid",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let mut c = h.client.clone();
    for (days, limit) in [(30, 10), (30, 3), (7, 5), (1, 10), (60, 100), (366, 1)] {
        let seed: Vec<Seed> = diesel::sql_query(
            "SELECT userId AS user_id, COUNT(*) AS conversation_count, \
               SUM(tokenCount) AS total_tokens \
             FROM conversations \
             WHERE deletedAt IS NULL AND createdAt >= LOCALTIMESTAMP - make_interval(days => $1) \
             GROUP BY userId ORDER BY total_tokens DESC, userId LIMIT $2",
        )
        .bind::<diesel::sql_types::Integer, _>(days)
        .bind::<diesel::sql_types::BigInt, _>(i64::from(limit))
        .load(&mut conn)
        .await
        .unwrap();
        assert_eq!(seed.len(), usize::try_from(limit).unwrap());
        let answer = c
            .top_users(TopUsersRequest {
                days: u32::try_from(days).unwrap(),
                limit,
            })
            .await
            .unwrap()
            .into_inner();
        let answer: Vec<(String, i64, i64)> = answer
            .items
            .into_iter()
            .map(|u| (u.user_id, u.conversation_count, u.total_tokens))
            .collect();
        let seed: Vec<(String, i64, i64)> = seed
            .into_iter()
            .map(|u| (u.user_id.to_string(), u.conversation_count, u.total_tokens))
            .collect();
        assert_eq!(answer, seed, "days {days}, limit {limit}");
    }
    drop(conn);
    h.stop().await;
}
