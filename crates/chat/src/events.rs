//! What chat consumes: `identity.user.deleted` deletes the user's
//! conversations and messages (tokenUsage rows stay, their conversation and
//! message links set to NULL, as the seed's ON DELETE SET NULL says).

use aichat_events::Event;
use aichat_events::identity::UserDeleted;
use aichat_messaging::{
    AmqpConfig,
    consumer::{self, HandlerError, Queue, Spec},
    inbox,
};
use diesel_async::AsyncConnection;
use tokio_util::sync::CancellationToken;

use crate::service::Chat;

/// The event types chat's queue is bound to.
pub const CONSUMED: [&str; 1] = [UserDeleted::TYPE];

/// The service name its durable queue is named after.
pub const QUEUE: &str = "chat";

/// The consumer's set-up.
pub fn spec() -> Spec {
    Spec {
        queue: Queue::Durable(QUEUE.to_owned()),
        bindings: CONSUMED.iter().map(|t| (*t).to_owned()).collect(),
        prefetch: 16,
        retry: Default::default(),
    }
}

/// Consumes chat's queue until `shutdown`.
pub async fn consume(amqp: AmqpConfig, chat: Chat, shutdown: CancellationToken) {
    consumer::run(amqp, spec(), shutdown, || async {}, move |envelope| {
        let chat = chat.clone();
        async move {
            let Some(event) = envelope.decode::<UserDeleted>() else { return Ok(()) };
            let event = event.map_err(|e| HandlerError::Permanent(e.into()))?;
            let mut conn = chat.pool.get().await.map_err(|e| HandlerError::Transient(e.into()))?;
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                if inbox::claim(conn, &envelope).await? {
                    let n = chat.forget_user(conn, event.user_id).await?;
                    tracing::info!(user.id = %event.user_id, conversations = n, "deleted a user's conversations");
                }
                Ok(())
            })
            .await
            .map_err(|e| HandlerError::Transient(e.into()))
        }
    })
    .await;
}
