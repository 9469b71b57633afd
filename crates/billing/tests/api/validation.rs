//! Bad input is refused at the edge with `validation_failed`, naming the
//! field, and changes nothing.

use aichat_proto::billing::v1::{ReleaseRequest, ReserveRequest, UserRef};
use uuid::Uuid;

use crate::helpers::{Harness, assert_invalid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_and_non_positive_token_counts_are_invalid_arguments() {
    let h = Harness::start().await;
    let mut c = h.client.clone();
    let user = Uuid::now_v7();

    for bad in ["not-a-uuid", "", "12345"] {
        let r = UserRef {
            user_id: bad.into(),
        };
        assert_invalid(c.get_usage(r.clone()).await, "userId");
        assert_invalid(c.get_limits(r).await, "userId");
        assert_invalid(
            c.reserve(ReserveRequest {
                user_id: bad.into(),
                tokens: 10,
                conversation_messages: None,
            })
            .await,
            "userId",
        );
    }
    assert_invalid(
        c.release(ReleaseRequest {
            reservation_id: "nope".into(),
        })
        .await,
        "reservationId",
    );
    for tokens in [0, -5, i64::MIN, i64::from(i32::MAX) + 1] {
        assert_invalid(
            c.reserve(ReserveRequest {
                user_id: user.to_string(),
                tokens,
                conversation_messages: None,
            })
            .await,
            "tokens",
        );
    }
    assert_invalid(
        c.reserve(ReserveRequest {
            user_id: user.to_string(),
            tokens: 10,
            conversation_messages: Some(-1),
        })
        .await,
        "conversationMessages",
    );
    assert!(h.row(user).await.is_none(), "refused calls write nothing");
    h.stop().await;
}
