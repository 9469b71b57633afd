//! The consumed events: each applied once, by event id, in the transaction
//! of its effect.

use std::time::Duration;

use aichat_billing::domain::money::{COST_SCALE, to_wire};
use aichat_events::Envelope;
use aichat_proto::billing::v1::{UserRef, billing_client::BillingClient};
use bigdecimal::{BigDecimal, Zero};
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{
    Harness, conversation_created, deleted, eventually, money, registered, this_month, tokens_used,
};

#[expect(clippy::unwrap_used, reason = "test helper: a failure fails the test")]
async fn limits(client: &BillingClient<tonic::transport::Channel>, user: Uuid) -> (String, i32) {
    let l = client
        .clone()
        .get_limits(UserRef {
            user_id: user.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    (l.plan_name, l.conversations_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_starts_a_free_plan_row_and_conversations_are_counted() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let signup = h.billing.publish(&registered(user)).await.unwrap();
    h.wait_processed(&signup).await;

    let row = h.row(user).await.expect("a usage row");
    assert_eq!(row.monthly_quota, 100_000, "cached from the Free plan");
    assert_eq!(row.billing_month, this_month());
    assert_eq!(
        (row.tokens(), row.messages(), row.conversations()),
        (0, 0, 0)
    );
    assert!(row.cost().is_zero());

    let started = h
        .billing
        .publish(&conversation_created(user))
        .await
        .unwrap();
    h.wait_processed(&started).await;
    assert_eq!(limits(&h.client, user).await, ("Free".to_owned(), 1));

    // The same registration again (a redelivery) leaves the row alone.
    h.billing
        .publish_envelopes(std::slice::from_ref(&signup))
        .await
        .unwrap();
    let second = h
        .billing
        .publish(&conversation_created(user))
        .await
        .unwrap();
    h.wait_processed(&second).await;
    assert_eq!(limits(&h.client, user).await.1, 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_tokens_used_event_is_applied_once() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let r = h.reserve(user, 1_000).await.unwrap();
    let id = Uuid::parse_str(&r.reservation_id).unwrap();

    let event = h
        .billing
        .publish(&tokens_used(user, Some(id), 800, "0.0016", this_month()))
        .await
        .unwrap();
    // The broker delivers it twice more (a consumer crashed before acking).
    h.billing
        .publish_envelopes(&[event.clone(), event.clone()])
        .await
        .unwrap();
    // Events are applied in order: once this one is in, so are the others.
    let marker = h
        .billing
        .publish(&conversation_created(user))
        .await
        .unwrap();
    h.wait_processed(&marker).await;

    let u = h.usage(user).await;
    assert_eq!(u.tokens_used, 800);
    assert_eq!(u.messages_count, 1);
    assert_eq!(u.cost_this_month, "0.001600");
    assert_eq!(u.reserved_tokens, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tokens_used_events_add_up_exactly() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let mut envelopes = Vec::new();
    let mut tokens: i64 = 0;
    let mut cost = BigDecimal::zero();
    for i in 0..1_000 {
        let total = i % 997 + 1;
        let price = money(&format!("0.{:06}", i % 50 + 1));
        tokens += i64::from(total);
        cost += &price;
        let event = tokens_used(user, None, total, &price.to_string(), this_month());
        envelopes.push(Envelope::new(&event, Default::default()).unwrap());
    }
    h.billing.publish_envelopes(&envelopes).await.unwrap();

    eventually("1,000 messages", Duration::from_secs(120), || async {
        h.row(user).await.is_some_and(|row| row.messages() == 1_000)
    })
    .await;
    let row = h.row(user).await.unwrap();
    assert_eq!(row.tokens(), tokens);
    assert_eq!(row.cost(), cost, "money is exact");
    let u = h.usage(user).await;
    assert_eq!(u.tokens_used, tokens);
    assert_eq!(u.messages_count, 1_000);
    assert_eq!(u.cost_this_month, to_wire(&cost, COST_SCALE));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_removes_their_rows_for_good() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let signup = h.billing.publish(&registered(user)).await.unwrap();
    h.wait_processed(&signup).await;
    h.reserve(user, 5_000).await.unwrap();
    h.reserve(user, 7_000).await.unwrap();
    assert_eq!(h.reservation_count(user).await, 2);

    // Someone else's rows stay.
    let other = Uuid::now_v7();
    h.reserve(other, 1_000).await.unwrap();

    let gone = h.billing.publish(&deleted(user)).await.unwrap();
    h.wait_processed(&gone).await;
    assert!(h.row(user).await.is_none());
    assert_eq!(h.reservation_count(user).await, 0);
    assert!(h.row(other).await.is_some());
    assert_eq!(h.reservation_count(other).await, 1);

    // A late event about the user does not bring the row back, and neither
    // does a call.
    let late = h
        .billing
        .publish(&tokens_used(user, None, 100, "0.0002", this_month()))
        .await
        .unwrap();
    h.wait_processed(&late).await;
    assert!(h.row(user).await.is_none());
    let refused = h.reserve(user, 1).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_event_is_dead_lettered_and_changes_nothing() {
    use aichat_messaging::consumer::durable_queue_name;
    use lapin::options::BasicGetOptions;

    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let r = h.reserve(user, 1_000).await.unwrap();
    let id = Uuid::parse_str(&r.reservation_id).unwrap();

    // Negative tokens, and a month after next: neither can be applied.
    let mut negative = tokens_used(user, Some(id), 10, "0.0001", this_month());
    negative.total_tokens = -10;
    let far = tokens_used(
        user,
        Some(id),
        10,
        "0.0001",
        aichat_billing::domain::BillingMonth::containing(this_month())
            .next()
            .next()
            .first_day(),
    );
    let negative = h.billing.publish(&negative).await.unwrap();
    let far = h.billing.publish(&far).await.unwrap();

    let amqp = &h.billing.config.amqp;
    let dlq = format!(
        "{}.dlq",
        durable_queue_name(amqp, aichat_billing::events::QUEUE)
    );
    let (connection, channel) = aichat_messaging::connect(amqp).await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..200 {
        if let Some(message) = channel
            .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let envelope: Envelope = serde_json::from_slice(&message.delivery.data).unwrap();
            dead.push(envelope.id);
            if dead.len() == 2 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    dead.sort();
    let mut expected = vec![negative.id, far.id];
    expected.sort();
    assert_eq!(dead, expected, "both went to the dead-letter queue");
    assert!(!h.processed(&negative).await && !h.processed(&far).await);
    let u = h.usage(user).await;
    assert_eq!((u.tokens_used, u.messages_count), (0, 0));
    assert_eq!(u.reserved_tokens, 1_000, "the reservation is still held");
    let _ = connection.close(200, "done".into()).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_between_migrate_and_the_first_start_is_applied() {
    use aichat_billing::{store::usage, testing::TestBilling};
    use aichat_events::{Event, TraceContext, identity::UserRegistered};
    use lapin::{BasicProperties, Confirmation, options::*};

    // `billing migrate` on a fresh broker, then identity registers someone
    // before billing ever ran.
    let amqp = aichat_billing::testing::unique_amqp();
    aichat_billing::declare_queues(&amqp).await.unwrap();
    let user = Uuid::now_v7();
    let envelope = Envelope::new(&registered(user), TraceContext::default()).unwrap();
    let (connection, channel) = aichat_messaging::connect(&amqp).await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = channel
        .basic_publish(
            amqp.exchange.as_str().into(),
            UserRegistered::TYPE.into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&envelope).unwrap(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(confirm, Confirmation::Ack(None)));
    connection.close(200, "done".into()).await.unwrap();

    let billing = TestBilling::spawn(amqp).await.unwrap();
    let pool = billing.pool().unwrap();
    crate::helpers::eventually(
        "the registration to be applied",
        Duration::from_secs(10),
        || async {
            let mut conn = pool.get().await.unwrap();
            usage::find(&mut conn, user).await.unwrap().is_some()
        },
    )
    .await;
    billing.stop().await;
}
