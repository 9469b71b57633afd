//! Nothing published is lost: queues declared at deploy time (`migrate`)
//! keep events until their consumer first runs, and events no queue is
//! bound to wait in the alternate exchange's `unrouted` queue.

use aichat_events::Envelope;
use aichat_messaging::consumer;
use lapin::{
    ExchangeKind,
    options::{BasicGetOptions, ExchangeDeclareOptions},
    types::FieldTable,
};

use crate::helpers::{Calls, Running, cleanup, event, eventually, publish, spec, unique_amqp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_after_migrate_but_before_the_consumer_ever_ran_is_consumed() {
    let amqp = unique_amqp();
    // `billing migrate`: the queue and its bindings, no consumer.
    consumer::declare_durable(&amqp, &[spec("billing")])
        .await
        .unwrap();
    let envelope = event();
    publish(&amqp, &envelope).await;

    let got = Calls::default();
    let consumer = {
        let (got, id) = (got.clone(), envelope.id);
        Running::start(&amqp, spec("billing"), move |e| {
            let got = got.clone();
            async move {
                assert_eq!(e.id, id);
                got.next();
                Ok(())
            }
        })
    };
    eventually("the consumer gets it", || async { got.count() == 1 }).await;
    consumer.stop().await;
    cleanup(&amqp, &["billing"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_no_queue_is_bound_to_lands_in_the_unrouted_queue() {
    let amqp = unique_amqp();
    consumer::declare_durable(&amqp, &[spec("billing")])
        .await
        .unwrap();
    let mut envelope = event();
    envelope.event_type = "analytics.not.consumed.yet".to_owned();
    publish(&amqp, &envelope).await;

    let (connection, channel) = aichat_messaging::connect(&amqp).await.unwrap();
    let message = channel
        .basic_get(
            amqp.unrouted().as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the event is in the unrouted queue");
    let kept: Envelope = serde_json::from_slice(&message.delivery.data).unwrap();
    assert_eq!(kept.id, envelope.id);
    assert_eq!(
        message.delivery.routing_key.as_str(),
        "analytics.not.consumed.yet",
        "with its routing key, so it can be routed again"
    );
    connection.close(200, "done".into()).await.unwrap();
    cleanup(&amqp, &["billing"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_declared_by_an_older_release_without_arguments_is_still_used() {
    let amqp = unique_amqp();
    // What `make run` machines have: the exchange, no alternate exchange.
    let connection = lapin::Connection::connect(&amqp.url, Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            amqp.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    consumer::declare_durable(&amqp, &[spec("billing")])
        .await
        .unwrap();
    let got = Calls::default();
    let consumer = {
        let got = got.clone();
        Running::start(&amqp, spec("billing"), move |_| {
            let got = got.clone();
            async move {
                got.next();
                Ok(())
            }
        })
    };
    publish(&amqp, &event()).await;
    eventually("the consumer gets it", || async { got.count() == 1 }).await;
    consumer.stop().await;
    connection.close(200, "done".into()).await.unwrap();
    cleanup(&amqp, &["billing"]).await;
}
