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

/// A batched consumer applies two batches at once and settles them in
/// delivery order: when the first fails (slowly, after the second has been
/// applied), the second is not acked before the first's deliveries are
/// settled one at a time; the poison one alone is dead-lettered and every
/// other event is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_applied_at_once_settle_in_order_and_a_failed_one_goes_one_at_a_time() {
    use std::{
        collections::HashMap,
        sync::{
            Arc, Mutex,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use aichat_messaging::consumer::{Batch, RawEnvelope};
    use tokio_util::{sync::CancellationToken, task::TaskTracker};

    let amqp = unique_amqp();
    let spec = consumer::Spec {
        prefetch: 40,
        ..spec("analytics")
    };
    consumer::declare_durable(&amqp, std::slice::from_ref(&spec))
        .await
        .unwrap();
    let queue = consumer::durable_queue_name(&amqp, "analytics");
    let dlq = format!("{queue}.dlq");
    let events: Vec<_> = (0..30).map(|_| event()).collect();
    let poison = events[3].id;
    for e in &events {
        publish(&amqp, e).await;
    }

    let applied: Arc<Mutex<HashMap<uuid::Uuid, usize>>> = Arc::default();
    // Batches being applied now, and the most at any one time.
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let one = {
        let applied = applied.clone();
        move |e: aichat_events::Envelope| {
            let applied = applied.clone();
            async move {
                if e.id == poison {
                    return Err(HandlerError::Permanent(anyhow::anyhow!("poison")));
                }
                *applied.lock().unwrap().entry(e.id).or_default() += 1;
                Ok(())
            }
        }
    };
    let batch = {
        let (applied, running, most) = (applied.clone(), running.clone(), most.clone());
        move |batch: Vec<RawEnvelope>| {
            let (applied, running, most) = (applied.clone(), running.clone(), most.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let failed = batch.iter().any(|e| e.id == poison);
                // The failing batch takes longer than the one behind it.
                tokio::time::sleep(Duration::from_millis(if failed { 300 } else { 20 })).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if failed {
                    return Err(HandlerError::Transient(anyhow::anyhow!("rolled back")));
                }
                let mut applied = applied.lock().unwrap();
                for e in &batch {
                    *applied.entry(e.id).or_default() += 1;
                }
                Ok(())
            }
        }
    };
    tasks.spawn(consumer::run_batched(
        amqp.clone(),
        spec,
        Batch {
            max: 5,
            wait: Duration::from_millis(50),
            in_flight: 2,
        },
        shutdown.clone(),
        || async {},
        one,
        batch,
    ));

    eventually("every other event is applied", || async {
        applied.lock().unwrap().len() == events.len() - 1
    })
    .await;
    eventually("the poison event is dead-lettered", || async {
        depth(&amqp, &dlq).await == 1
    })
    .await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;

    assert!(
        applied.lock().unwrap().values().all(|n| *n == 1),
        "each applied once: {:?}",
        applied.lock().unwrap()
    );
    assert!(!applied.lock().unwrap().contains_key(&poison));
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "two batches were applied at once"
    );
    // Stopped: whatever was not acked would be back in the queue.
    assert_eq!(depth(&amqp, &queue).await, 0, "everything settled");
    cleanup(&amqp, &["analytics"]).await;
}
