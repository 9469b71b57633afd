//! A service's dead-letter queue: how deep it is, and putting its messages
//! back (`<service> replay-dlq`).
//!
//! Only poison ends up there (a message that is not an envelope, an event
//! its handler refuses for good, or one a consumer crashed on
//! [`crate::consumer::DELIVERY_LIMIT`] times): transient failures are
//! retried by the consumer without a redelivery. Once the cause is fixed (a
//! new release, a repaired row), an operator replays the queue.

use anyhow::Context;
use lapin::{
    Channel, Confirmation,
    options::{
        BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
        ConfirmSelectOptions, QueueDeclareOptions,
    },
    types::FieldTable,
};

use crate::{AmqpConfig, consumer::durable_queue_name};

/// The dead-letter queue of `service`'s queue.
pub fn queue_name(amqp: &AmqpConfig, service: &str) -> String {
    format!("{}.dlq", durable_queue_name(amqp, service))
}

/// Messages waiting in queue `queue` (passive declaration: the queue must
/// exist, else the broker closes `channel`).
pub async fn depth_on(channel: &Channel, queue: &str) -> anyhow::Result<u32> {
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("reading the depth of {queue}"))?;
    Ok(declared.message_count())
}

/// Messages waiting in `service`'s dead-letter queue.
pub async fn depth(amqp: &AmqpConfig, service: &str) -> anyhow::Result<u32> {
    let (connection, channel) = crate::connect(amqp).await?;
    let depth = depth_on(&channel, &queue_name(amqp, service)).await;
    let _ = connection.close(200, "done".into()).await;
    depth
}

/// Moves the messages in `service`'s dead-letter queue back to its queue;
/// returns how many. Each is published (directly to the queue, through the
/// default exchange, so no other service gets it again) with publisher
/// confirms, and removed from the dead-letter queue only once the broker
/// confirmed the copy: a failure midway leaves the rest where it was, and at
/// worst one message in both queues, which the consumer's inbox makes
/// harmless. Bounded by the depth at the start, so a message that fails
/// again while the replay runs is not replayed twice.
pub async fn replay(amqp: &AmqpConfig, service: &str) -> anyhow::Result<usize> {
    let (connection, channel) = crate::connect(amqp).await?;
    let result = replay_on(&channel, amqp, service).await;
    let _ = connection.close(200, "done".into()).await;
    result
}

async fn replay_on(channel: &Channel, amqp: &AmqpConfig, service: &str) -> anyhow::Result<usize> {
    let queue = durable_queue_name(amqp, service);
    let dlq = queue_name(amqp, service);
    // Both must exist: a replay into a queue nobody declared would vanish.
    depth_on(channel, &queue).await?;
    let waiting = depth_on(channel, &dlq).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("enabling publisher confirms")?;
    let mut moved = 0;
    for _ in 0..waiting {
        let Some(message) = channel
            .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .context("reading the dead-letter queue")?
        else {
            break;
        };
        let delivery = message.delivery;
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &delivery.data,
                delivery.properties.clone(),
            )
            .await
            .context("publishing a dead letter back")?
            .await
            .context("waiting for a publisher confirm")?;
        if !matches!(confirm, Confirmation::Ack(None)) {
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await
                .context("giving a dead letter back")?;
            anyhow::bail!("the broker did not take a replayed message into {queue}; {moved} moved");
        }
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .context("removing a replayed dead letter")?;
        moved += 1;
    }
    tracing::info!(queue = %queue, moved, "replayed the dead-letter queue");
    Ok(moved)
}
