//! Concurrent reservations never overspend: the quota check and the insert
//! run under the user's usage row lock.

use futures::future::join_all;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{Harness, details, this_month, tokens_used};

const CALLS: usize = 50;

/// Fires `CALLS` Reserve calls of `tokens` at once; returns how many were
/// granted, failing on any refusal other than `quota_exceeded`.
async fn reserve_at_once(h: &Harness, user: Uuid, tokens: i64) -> i64 {
    let calls = (0..CALLS).map(|_| h.reserve(user, tokens));
    let mut granted = 0;
    for result in join_all(calls).await {
        match result {
            Ok(_) => granted += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(details(&status)["code"], "quota_exceeded");
            }
        }
    }
    granted
}

#[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
async fn reserved_in_db(h: &Harness, user: Uuid) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    let mut conn = h.pool.get().await.unwrap();
    let sum: Sum = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT COALESCE(SUM(tokens), 0)::bigint AS total FROM tokenReservations \
             WHERE userId = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(user),
        &mut conn,
    )
    .await
    .unwrap();
    sum.total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reservations_near_the_quota_never_overspend() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    // 85,000 of 100,000 used: room for exactly 15 reservations of 1,000.
    let used = h
        .billing
        .publish(&tokens_used(user, None, 85_000, "0.17", this_month()))
        .await
        .unwrap();
    h.wait_processed(&used).await;

    let granted = reserve_at_once(&h, user, 1_000).await;
    let reserved = reserved_in_db(&h, user).await;
    assert_eq!(reserved, granted * 1_000);
    assert!(85_000 + reserved <= 100_000, "overspent: {reserved}");
    assert_eq!(granted, 15, "every reservation that fits is granted");
    assert_eq!(h.usage(user).await.remaining, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_reservations_start_one_row_and_never_overspend() {
    let h = Harness::start().await;
    // No usage row yet: all fifty race to start it.
    let user = Uuid::now_v7();
    let granted = reserve_at_once(&h, user, 3_000).await;
    let reserved = reserved_in_db(&h, user).await;
    assert_eq!(reserved, granted * 3_000);
    assert!(reserved <= 100_000, "overspent: {reserved}");
    assert_eq!(granted, 33);
    let row = h.row(user).await.unwrap();
    assert_eq!(row.monthly_quota, 100_000);
    h.stop().await;
}
