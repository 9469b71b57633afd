//! A consumer holds a delivery through transient failures (no redelivery,
//! so a quorum queue's delivery limit never dead-letters it) and
//! dead-letters only what fails for good.

use aichat_messaging::consumer::{self, DELIVERY_LIMIT, HandlerError};

use crate::helpers::{
    Calls, Running, cleanup, depth, event, eventually, publish, spec, unique_amqp,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_past_the_delivery_limit_are_retried_not_dead_lettered() {
    let amqp = unique_amqp();
    let spec = spec("billing");
    consumer::declare_durable(&amqp, std::slice::from_ref(&spec))
        .await
        .unwrap();
    let queue = consumer::durable_queue_name(&amqp, "billing");
    let dlq = format!("{queue}.dlq");
    let envelope = event();
    publish(&amqp, &envelope).await;

    // The database is "down" for twice as many attempts as the queue's
    // delivery limit allows redeliveries.
    let failures = usize::try_from(DELIVERY_LIMIT).unwrap() * 2;
    let calls = Calls::default();
    let applied = Calls::default();
    let consumer = {
        let (calls, applied, id) = (calls.clone(), applied.clone(), envelope.id);
        Running::start(&amqp, spec, move |got| {
            let (calls, applied) = (calls.clone(), applied.clone());
            async move {
                assert_eq!(got.id, id);
                if calls.next() <= failures {
                    return Err(HandlerError::Transient(anyhow::anyhow!("database down")));
                }
                applied.next();
                Ok(())
            }
        })
    };
    eventually("the event is applied", || async { applied.count() == 1 }).await;
    eventually("the event is acked", || async {
        depth(&amqp, &queue).await == 0
    })
    .await;
    assert_eq!(calls.count(), failures + 1, "retried until it passed");
    assert_eq!(depth(&amqp, &dlq).await, 0, "nothing dead-lettered");
    consumer.stop().await;
    assert_eq!(applied.count(), 1);
    cleanup(&amqp, &["billing"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_goes_to_this_services_dead_letter_queue_only() {
    let amqp = unique_amqp();
    // Two services bound to the same event: billing refuses it for good,
    // chat applies it.
    consumer::declare_durable(&amqp, &[spec("billing"), spec("chat")])
        .await
        .unwrap();
    let billing = Running::start(&amqp, spec("billing"), |_| async {
        Err(HandlerError::Permanent(anyhow::anyhow!(
            "cannot be applied"
        )))
    });
    let chat_calls = Calls::default();
    let chat = {
        let calls = chat_calls.clone();
        Running::start(&amqp, spec("chat"), move |_| {
            let calls = calls.clone();
            async move {
                calls.next();
                Ok(())
            }
        })
    };
    publish(&amqp, &event()).await;
    let billing_dlq = aichat_messaging::dlq::queue_name(&amqp, "billing");
    let chat_dlq = aichat_messaging::dlq::queue_name(&amqp, "chat");
    eventually("billing dead-lettered it", || async {
        depth(&amqp, &billing_dlq).await == 1
    })
    .await;
    eventually("chat applied it", || async { chat_calls.count() == 1 }).await;
    assert_eq!(depth(&amqp, &chat_dlq).await, 0, "not chat's dead letter");
    billing.stop().await;
    chat.stop().await;
    cleanup(&amqp, &["billing", "chat"]).await;
}
