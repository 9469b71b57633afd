//! A user's usage per UTC day (`GetDailyUsage`), from `tokenUsage`.
#![expect(clippy::unwrap_used, reason = "test helpers: a failure fails the test")]

use std::str::FromStr;

use aichat_chat::{
    domain::{pricing, usage::DayWindow},
    store::usage::{self, Day},
    testing::{Providers, TestChat},
};
use aichat_db::testing::ChaosProxy;
use aichat_proto::chat::v1::{self as pb, chat_client::ChatClient};
use bigdecimal::BigDecimal;
use chrono::{Datelike, Days, NaiveDate, Utc};
use diesel_async::SimpleAsyncConnection;
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

/// A usage row of `user` created at `at` (UTC), in billing month `month`.
fn row(user: Uuid, at: &str, month: NaiveDate, tokens: i32, cost: &str) -> String {
    format!(
        "INSERT INTO tokenUsage (userId, provider, model, promptTokens, completionTokens, totalTokens, costUsd, billingMonth, createdAt) \
         VALUES ('{user}', 'openai', 'gpt-4o', {tokens}, 0, {tokens}, {cost}, '{month}', '{at}');"
    )
}

fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap()
}

fn d(s: &str) -> BigDecimal {
    BigDecimal::from_str(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_usage_sums_each_utc_day_exactly_and_fills_the_empty_ones() {
    let chat = spawn().await;
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let today = Utc::now().date_naive();
    let window = DayWindow::parse(30, today).unwrap();
    let first = window.first();
    let yesterday = today.pred_opt().unwrap();
    let before = first.pred_opt().unwrap();
    let tomorrow = today.succ_opt().unwrap();
    let mut sql = String::new();
    // Today: three rows whose costs a float would not sum exactly.
    sql += &row(
        user,
        &format!("{today} 00:00:00"),
        month_of(today),
        100,
        "0.100000",
    );
    sql += &row(
        user,
        &format!("{today} 12:00:00"),
        month_of(today),
        20,
        "0.200000",
    );
    sql += &row(
        user,
        &format!("{today} 23:59:59.999999"),
        month_of(today),
        3,
        "0.000001",
    );
    // The last instant of yesterday is yesterday's.
    sql += &row(
        user,
        &format!("{yesterday} 23:59:59.999999"),
        month_of(yesterday),
        7,
        "0.000007",
    );
    // The first day's first instant counts; the instant before it does not.
    sql += &row(
        user,
        &format!("{first} 00:00:00"),
        month_of(first),
        11,
        "0.000011",
    );
    sql += &row(
        user,
        &format!("{before} 23:59:59.999999"),
        month_of(before),
        1000,
        "1.000000",
    );
    // Tomorrow (a clock ahead) is not in the window.
    sql += &row(
        user,
        &format!("{tomorrow} 00:00:00"),
        month_of(tomorrow),
        1000,
        "1.000000",
    );
    // Another user's usage, today and on the first day.
    sql += &row(
        other,
        &format!("{today} 10:00:00"),
        month_of(today),
        5000,
        "5.000000",
    );
    sql += &row(
        other,
        &format!("{first} 10:00:00"),
        month_of(first),
        5000,
        "5.000000",
    );
    conn.batch_execute(&sql).await.unwrap();

    let days = usage::daily(&mut conn, user, &window).await.unwrap();
    assert_eq!(days.len(), 30, "every day of the window");
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.date).collect();
    let expected: Vec<NaiveDate> = (0..30)
        .map(|i| first.checked_add_days(Days::new(i)).unwrap())
        .collect();
    assert_eq!(dates, expected, "oldest first, one per day, today last");
    assert_eq!(
        days[29],
        Day {
            date: today,
            tokens: 123,
            cost_usd: d("0.300001")
        }
    );
    assert_eq!(pricing::to_text(&days[29].cost_usd), "0.300001");
    assert_eq!(
        (days[28].tokens, days[28].cost_usd.clone()),
        (7, d("0.000007"))
    );
    assert_eq!(
        (days[0].tokens, days[0].cost_usd.clone()),
        (11, d("0.000011"))
    );
    for day in &days[1..28] {
        assert_eq!(day.tokens, 0, "{day:?}");
        assert_eq!(
            pricing::to_text(&day.cost_usd),
            "0.000000",
            "zero, at the column's scale"
        );
    }

    // The other user sees only theirs.
    let theirs = usage::daily(&mut conn, other, &window).await.unwrap();
    assert_eq!(theirs.len(), 30);
    assert_eq!(theirs.iter().map(|d| d.tokens).sum::<i64>(), 10_000);
    assert_eq!(theirs[0].cost_usd, d("5.000000"));
    assert_eq!(theirs[29].cost_usd, d("5.000000"));
    // A user with nothing: thirty zero days.
    let nobody = usage::daily(&mut conn, Uuid::now_v7(), &window)
        .await
        .unwrap();
    assert_eq!(nobody.len(), 30);
    assert!(
        nobody
            .iter()
            .all(|day| day.tokens == 0 && day.cost_usd == d("0"))
    );
    drop(conn);
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_of_a_deleted_conversation_still_counts() {
    let chat = spawn().await;
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let user = Uuid::now_v7();
    let conversation = Uuid::now_v7();
    let today = Utc::now().date_naive();
    conn.batch_execute(&format!(
        "INSERT INTO conversations (id, userId, title, model) VALUES ('{conversation}', '{user}', 't', 'gpt-4o');
         INSERT INTO tokenUsage (userId, conversationId, provider, model, promptTokens, completionTokens, totalTokens, costUsd, billingMonth, createdAt)
           VALUES ('{user}', '{conversation}', 'openai', 'gpt-4o', 40, 2, 42, 0.000420, '{}', '{today} 08:00:00');
         DELETE FROM conversations WHERE id = '{conversation}';",
        month_of(today)
    ))
    .await
    .unwrap();
    let window = DayWindow::parse(1, today).unwrap();
    let days = usage::daily(&mut conn, user, &window).await.unwrap();
    assert_eq!(
        days,
        vec![Day {
            date: today,
            tokens: 42,
            cost_usd: d("0.000420")
        }]
    );
    drop(conn);
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_straddling_a_months_end_counts_on_the_day_it_was_stamped() {
    // Rows charged before charge() took the billing month and createdAt
    // from one instant may straddle a month's end: the month before, with
    // a createdAt in the next.
    let chat = spawn().await;
    let pool = chat.pool().unwrap();
    let mut conn = pool.get().await.unwrap();
    let user = Uuid::now_v7();
    let today = Utc::now().date_naive();
    let month = month_of(today);
    let previous = month_of(month.pred_opt().unwrap());
    conn.batch_execute(&row(
        user,
        &format!("{month} 00:00:00.000001"),
        previous,
        9,
        "0.000009",
    ))
    .await
    .unwrap();
    // A window starting on the month's first day.
    let days = u32::try_from((today - month).num_days() + 1).unwrap();
    let window = DayWindow::parse(days, today).unwrap();
    assert_eq!(window.first(), month);
    let usage = usage::daily(&mut conn, user, &window).await.unwrap();
    assert_eq!((usage[0].date, usage[0].tokens), (month, 9));
    drop(conn);
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_daily_usage_defaults_to_thirty_days_and_refuses_other_counts() {
    let chat = spawn().await;
    let mut client = ChatClient::connect(chat.url.clone()).await.unwrap();
    let user = Uuid::now_v7().to_string();
    let before = Utc::now().date_naive();
    let list = client
        .get_daily_usage(pb::GetDailyUsageRequest {
            user_id: user.clone(),
            days: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let after = Utc::now().date_naive();
    assert_eq!(list.items.len(), 30);
    let last = &list.items[29];
    assert!(
        [before, after].contains(&NaiveDate::parse_from_str(&last.date, "%Y-%m-%d").unwrap()),
        "today last: {}",
        last.date
    );
    assert_eq!((last.tokens, last.cost_usd.as_str()), (0, "0.000000"));
    for (days, expected) in [(1, 1), (366, 366)] {
        let list = client
            .get_daily_usage(pb::GetDailyUsageRequest {
                user_id: user.clone(),
                days,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.items.len(), expected);
    }
    let refused = client
        .get_daily_usage(pb::GetDailyUsageRequest {
            user_id: user.clone(),
            days: 367,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let details: serde_json::Value = serde_json::from_slice(refused.details()).unwrap();
    assert_eq!(details["code"], "validation_failed");
    assert_eq!(details["errors"]["days"], "must be between 1 and 366");
    let refused = client
        .get_daily_usage(pb::GetDailyUsageRequest {
            user_id: "not-a-user".into(),
            days: 30,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    chat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_daily_usage_answers_unavailable_while_the_database_is_away() {
    let amqp = aichat_billing::testing::unique_amqp();
    let server = aichat_db::testing::server_url();
    let authority = server
        .split_once("://")
        .unwrap()
        .1
        .rsplit_once('@')
        .map_or(server.as_str(), |(_, r)| r)
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = ChaosProxy::start(authority.clone()).await.unwrap();
    let chat = TestChat::spawn_with(
        amqp,
        "http://127.0.0.1:9",
        Providers::mock("http://127.0.0.1:9"),
        |config| {
            config.database_url =
                config
                    .database_url
                    .replacen(&authority, &format!("127.0.0.1:{}", proxy.port), 1);
        },
    )
    .await
    .unwrap();
    let mut client = ChatClient::connect(chat.url.clone()).await.unwrap();
    let request = || pb::GetDailyUsageRequest {
        user_id: Uuid::now_v7().to_string(),
        days: 7,
    };
    assert_eq!(
        client
            .get_daily_usage(request())
            .await
            .unwrap()
            .into_inner()
            .items
            .len(),
        7
    );
    proxy.break_connections();
    let refused = client.get_daily_usage(request()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    proxy.restore();
    let mut answered = false;
    for _ in 0..100 {
        if client.get_daily_usage(request()).await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered, "answers again once the database is back");
    chat.stop().await;
    proxy.stop().await;
}
