//! Monthly rollover: a row of a past month starts the current one, lazily
//! when touched and every maintenance round for all rows. Tokens of a
//! closed month are not counted.

use std::time::Duration;

use aichat_billing::domain::BillingMonth;
use uuid::Uuid;

use crate::helpers::{Harness, eventually, last_month, this_month, tokens_used};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_month_starts_from_zero_when_the_row_is_touched() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let event = h
        .billing
        .publish(&tokens_used(user, None, 40_000, "0.08", this_month()))
        .await
        .unwrap();
    h.wait_processed(&event).await;
    assert_eq!(h.usage(user).await.tokens_used, 40_000);

    // A month passes.
    h.execute(&format!(
        "UPDATE usageTracking SET billingMonth = '{}' WHERE userId = '{user}'",
        last_month()
    ))
    .await;
    let u = h.usage(user).await;
    assert_eq!(u.billing_month, this_month().to_string());
    assert_eq!(
        (u.tokens_used, u.messages_count, u.conversations_count),
        (0, 0, 0)
    );
    assert_eq!(u.cost_this_month, "0.000000");
    assert_eq!(u.remaining, 100_000);
    assert_eq!(h.row(user).await.unwrap().billing_month, this_month());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_a_closed_month_settle_the_reservation_but_count_nowhere() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let r = h.reserve(user, 2_000).await.unwrap();
    let id = Uuid::parse_str(&r.reservation_id).unwrap();

    let stale = h
        .billing
        .publish(&tokens_used(user, Some(id), 1_500, "0.003", last_month()))
        .await
        .unwrap();
    h.wait_processed(&stale).await;
    let u = h.usage(user).await;
    assert_eq!((u.tokens_used, u.messages_count), (0, 0));
    assert_eq!(u.cost_this_month, "0.000000");
    assert_eq!(u.reserved_tokens, 0, "the reservation is settled anyway");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_round_rolls_over_rows_nobody_touches() {
    let h = Harness::start_with(|c| c.maintenance_interval = Duration::from_secs(1)).await;
    let users = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    for user in users {
        let event = h
            .billing
            .publish(&tokens_used(user, None, 1_000, "0.002", this_month()))
            .await
            .unwrap();
        h.wait_processed(&event).await;
    }
    // Two months pass for all of them.
    let two_ago = BillingMonth::containing(last_month()).previous();
    h.execute(&format!(
        "UPDATE usageTracking SET billingMonth = '{two_ago}'"
    ))
    .await;

    eventually("the rollover round", Duration::from_secs(5), || async {
        let mut all = true;
        for user in users {
            let row = h.row(user).await.unwrap();
            all &= row.billing_month == this_month()
                && row.tokens() == 0
                && row.messages() == 0
                && bigdecimal::Zero::is_zero(&row.cost());
        }
        all
    })
    .await;
    h.stop().await;
}
