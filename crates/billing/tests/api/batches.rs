//! Usage events applied in batches (`events::handle_batch`): one
//! transaction for a run of them, the same effects as one at a time.

use std::time::Duration;

use aichat_billing::{events, service::Metering};
use aichat_events::{Envelope, Event};
use aichat_messaging::consumer::RawEnvelope;
use uuid::Uuid;

use crate::helpers::{
    Harness, conversation_created, last_month, money, registered, this_month, tokens_used,
};

/// The envelope as the consumer hands it to a batch (its payload as text).
#[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
fn raw(envelope: &Envelope) -> RawEnvelope {
    serde_json::from_slice(&serde_json::to_vec(envelope).unwrap()).unwrap()
}

#[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
fn wrap<E: Event>(event: &E) -> Envelope {
    Envelope::new(event, Default::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_usage_events_does_what_applying_them_one_at_a_time_does() {
    let h = Harness::start().await;
    let metering = Metering::new(h.pool.clone(), chrono::Duration::minutes(2));
    // Has a row of this month, two reservations to settle and one held.
    let counted = Uuid::now_v7();
    let first = h.reserve(counted, 1_000).await.unwrap();
    let second = h.reserve(counted, 2_000).await.unwrap();
    h.reserve(counted, 3_000).await.unwrap();
    let id =
        |r: &aichat_proto::billing::v1::Reservation| Uuid::parse_str(&r.reservation_id).unwrap();
    // Billing has not heard of this one yet: started on Free, one at a time.
    let newcomer = Uuid::now_v7();
    // A row of last month: rolled over, one at a time.
    let returning = Uuid::now_v7();
    h.reserve(returning, 10).await.unwrap();
    h.execute(&format!(
        "UPDATE usageTracking SET billingMonth = '{}', tokensUsed = 77 WHERE userId = '{returning}'",
        last_month()
    ))
    .await;
    // Registers in the middle of the batch.
    let registering = Uuid::now_v7();

    let applied_before = wrap(&tokens_used(counted, None, 5, "0.5", this_month()));
    events::handle_batch(&metering, vec![raw(&applied_before)])
        .await
        .unwrap();
    let settles_first = wrap(&tokens_used(
        counted,
        Some(id(&first)),
        900,
        "0.001800",
        this_month(),
    ));
    let batch = vec![
        settles_first.clone(),
        wrap(&tokens_used(newcomer, None, 40, "0.000080", this_month())),
        wrap(&conversation_created(counted)),
        // A redelivery inside the batch, and one of an event applied before.
        settles_first.clone(),
        applied_before.clone(),
        wrap(&registered(registering)),
        wrap(&tokens_used(returning, None, 60, "0.000120", this_month())),
        wrap(&tokens_used(
            counted,
            Some(id(&second)),
            2_100,
            "0.004200",
            this_month(),
        )),
        wrap(&tokens_used(registering, None, 7, "0.000014", this_month())),
        wrap(&conversation_created(newcomer)),
    ];
    events::handle_batch(&metering, batch.iter().map(raw).collect())
        .await
        .unwrap();

    let row = h.row(counted).await.unwrap();
    assert_eq!(
        (row.tokens(), row.messages(), row.conversations()),
        (5 + 900 + 2_100, 3, 1)
    );
    assert_eq!(row.cost(), money("0.506000"), "money is exact");
    assert_eq!(
        h.reservation_count(counted).await,
        1,
        "two settled, one held"
    );
    let u = h.usage(counted).await;
    assert_eq!(
        (u.reserved_tokens, u.remaining),
        (3_000, 100_000 - 3_005 - 3_000)
    );

    let row = h.row(newcomer).await.expect("started on Free");
    assert_eq!(
        (
            row.tokens(),
            row.messages(),
            row.conversations(),
            row.monthly_quota
        ),
        (40, 1, 1, 100_000)
    );
    let row = h.row(returning).await.unwrap();
    assert_eq!(row.billing_month, this_month(), "rolled over");
    assert_eq!(
        (row.tokens(), row.messages()),
        (60, 1),
        "last month's 77 left behind"
    );
    let row = h.row(registering).await.unwrap();
    assert_eq!((row.tokens(), row.messages()), (7, 1));
    for envelope in &batch {
        assert!(
            h.processed(envelope).await,
            "{} in the inbox",
            envelope.event_type
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_over_the_same_users_applied_at_once_never_deadlock() {
    let h = Harness::start().await;
    let metering = Metering::new(h.pool.clone(), chrono::Duration::minutes(2));
    let users: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    for user in &users {
        h.reserve(*user, 1).await.unwrap();
    }
    for round in 0..10 {
        // The same users, one batch in each order.
        let forward: Vec<Envelope> = users
            .iter()
            .map(|u| wrap(&tokens_used(*u, None, 1, "0.000001", this_month())))
            .collect();
        let backward: Vec<Envelope> = users
            .iter()
            .rev()
            .map(|u| wrap(&tokens_used(*u, None, 2, "0.000002", this_month())))
            .collect();
        let (a, b) = tokio::time::timeout(
            Duration::from_secs(20),
            futures::future::join(
                events::handle_batch(&metering, forward.iter().map(raw).collect()),
                events::handle_batch(&metering, backward.iter().map(raw).collect()),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round}: the batches never finished"));
        a.unwrap();
        b.unwrap();
    }
    for user in &users {
        let row = h.row(*user).await.unwrap();
        assert_eq!((row.tokens(), row.messages()), (30, 20));
        assert_eq!(row.cost(), money("0.000030"));
    }
    h.stop().await;
}
