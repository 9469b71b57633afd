//! `replay-dlq`: dead letters go back to their service's queue once the
//! cause is fixed.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use aichat_messaging::{
    consumer::{self, HandlerError},
    dlq,
};

use crate::helpers::{
    Calls, Running, cleanup, depth, event, eventually, publish, publish_raw, spec, unique_amqp,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_dead_letter_queue_hands_its_events_to_the_fixed_consumer() {
    let amqp = unique_amqp();
    consumer::declare_durable(&amqp, &[spec("billing")])
        .await
        .unwrap();
    let dead = dlq::queue_name(&amqp, "billing");
    // A bug refuses every event, until it is "fixed".
    let fixed = Arc::new(AtomicBool::new(false));
    let applied = Calls::default();
    let consumer = {
        let (fixed, applied) = (fixed.clone(), applied.clone());
        Running::start(&amqp, spec("billing"), move |_| {
            let (fixed, applied) = (fixed.clone(), applied.clone());
            async move {
                if !fixed.load(Ordering::SeqCst) {
                    return Err(HandlerError::Permanent(anyhow::anyhow!("a bug")));
                }
                applied.next();
                Ok(())
            }
        })
    };
    for _ in 0..3 {
        publish(&amqp, &event()).await;
    }
    // Not an envelope at all: dead-lettered too, and replayed back into
    // the dead-letter queue (poison stays poison).
    publish_raw(&amqp, "identity.user.deleted", b"not json").await;
    eventually("four dead letters", || async {
        depth(&amqp, &dead).await == 4
    })
    .await;
    assert_eq!(dlq::depth(&amqp, "billing").await.unwrap(), 4);

    fixed.store(true, Ordering::SeqCst);
    assert_eq!(dlq::replay(&amqp, "billing").await.unwrap(), 4);
    eventually("the three events are applied", || async {
        applied.count() == 3
    })
    .await;
    eventually("only the poison is left", || async {
        depth(&amqp, &dead).await == 1
    })
    .await;
    consumer.stop().await;
    cleanup(&amqp, &["billing"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_an_empty_dead_letter_queue_moves_nothing() {
    let amqp = unique_amqp();
    consumer::declare_durable(&amqp, &[spec("chat")])
        .await
        .unwrap();
    assert_eq!(dlq::replay(&amqp, "chat").await.unwrap(), 0);
    // A service whose queue was never declared: an error, not a silent 0.
    assert!(dlq::replay(&amqp, "nobody").await.is_err());
    cleanup(&amqp, &["chat"]).await;
}
