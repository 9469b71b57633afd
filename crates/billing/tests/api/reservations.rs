//! Reserve, settle (chat.tokens.used), Release, the quota, and expiry.

use std::time::Duration;

use aichat_billing::store::reservations;
use aichat_proto::billing::v1::{ReleaseRequest, ReserveRequest};
use chrono::Utc;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{Harness, details, eventually, this_month, tokens_used};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_holds_quota_until_settled_or_released() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();

    // Reserve: the quota is held.
    let r = h.reserve(user, 2_000).await.unwrap();
    assert_eq!(r.remaining, 98_000);
    let expires = r.expires_at.unwrap().seconds - Utc::now().timestamp();
    assert!((100..=121).contains(&expires), "two minutes: {expires}");
    let u = h.usage(user).await;
    assert_eq!(
        (u.tokens_used, u.reserved_tokens, u.remaining),
        (0, 2_000, 98_000)
    );
    assert_eq!(u.billing_month, this_month().to_string());

    // Release: given back, once.
    let release = |id: String| {
        let mut c = h.client.clone();
        async move {
            c.release(ReleaseRequest { reservation_id: id })
                .await
                .unwrap()
                .into_inner()
                .released
        }
    };
    assert!(release(r.reservation_id.clone()).await);
    assert!(!release(r.reservation_id.clone()).await, "idempotent");
    assert_eq!(h.usage(user).await.remaining, 100_000);

    // Settle: the real tokens count, the reservation goes.
    let r = h.reserve(user, 3_000).await.unwrap();
    let id = Uuid::parse_str(&r.reservation_id).unwrap();
    let event = h
        .billing
        .publish(&tokens_used(user, Some(id), 2_500, "0.005", this_month()))
        .await
        .unwrap();
    h.wait_processed(&event).await;
    let u = h.usage(user).await;
    assert_eq!(u.tokens_used, 2_500);
    assert_eq!(u.reserved_tokens, 0);
    assert_eq!(u.remaining, 97_500);
    assert_eq!(u.messages_count, 1);
    assert_eq!(u.cost_this_month, "0.005000");
    let mut conn = h.pool.get().await.unwrap();
    assert_eq!(reservations::find(&mut conn, id).await.unwrap(), None);
    assert!(
        !release(r.reservation_id).await,
        "a settled reservation is gone"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_past_the_quota_is_refused_with_quota_exceeded() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();

    let all = h.reserve(user, 100_000).await.unwrap();
    assert_eq!(all.remaining, 0);
    let refused = h.reserve(user, 1).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(details(&refused)["code"], "quota_exceeded");
    assert_eq!(h.reservation_count(user).await, 1, "nothing was held");

    // Used tokens count like reserved ones; a reply longer than its
    // reservation is still charged, and `remaining` stops at zero.
    let id = Uuid::parse_str(&all.reservation_id).unwrap();
    let event = h
        .billing
        .publish(&tokens_used(user, Some(id), 100_500, "0.2", this_month()))
        .await
        .unwrap();
    h.wait_processed(&event).await;
    let u = h.usage(user).await;
    assert_eq!((u.tokens_used, u.remaining), (100_500, 0));
    let refused = h.reserve(user, 1).await.unwrap_err();
    assert_eq!(details(&refused)["code"], "quota_exceeded");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reservation_frees_its_quota_and_is_swept() {
    let h = Harness::start_with(|c| {
        c.reservation_ttl = Duration::from_secs(1);
        c.maintenance_interval = Duration::from_secs(1);
    })
    .await;
    let user = Uuid::now_v7();

    // A chat call that reserved everything and crashed.
    let crashed = h.reserve(user, 100_000).await.unwrap();
    let crashed_id = Uuid::parse_str(&crashed.reservation_id).unwrap();
    assert_eq!(
        h.reserve(user, 1).await.unwrap_err().code(),
        Code::ResourceExhausted
    );

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Expired: no longer counted, whether or not it was swept yet.
    let next = h.reserve(user, 60_000).await.unwrap();
    assert_eq!(next.remaining, 40_000);

    // The sweeper deletes it.
    eventually("the sweeper", Duration::from_secs(5), || async {
        let mut conn = h.pool.get().await.unwrap();
        reservations::find(&mut conn, crashed_id)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_refuses_a_send_past_the_plans_message_limit() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let ask = |held: i64| {
        let mut c = h.client.clone();
        async move {
            c.reserve(ReserveRequest {
                user_id: user.to_string(),
                tokens: 1_000,
                conversation_messages: Some(held),
            })
            .await
        }
    };

    // Free allows 50 messages per conversation, and a send adds two.
    let refused = ask(49).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(details(&refused)["code"], "message_limit");
    assert_eq!(h.usage(user).await.reserved_tokens, 0, "nothing is held");

    let granted = ask(48).await.unwrap().into_inner();
    assert_eq!(granted.remaining, 99_000);
    assert_eq!(h.usage(user).await.reserved_tokens, 1_000);
    h.stop().await;
}
