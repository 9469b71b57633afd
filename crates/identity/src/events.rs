//! What identity consumes: `billing.subscription.changed` sets the user's
//! `planTier` (`FREE`, `PLUS`, `PRO`), so `/me` and the next access token
//! show the plan. Applied once (inbox, same transaction) and never over a
//! newer change: the row keeps the `occurredAt` of the change it holds
//! (`planTierChangedAt`), and an older event is skipped.

use aichat_events::Event;
use aichat_events::billing::SubscriptionChanged;
use aichat_messaging::{
    AmqpConfig,
    consumer::{self, HandlerError, Queue, Spec},
    inbox,
};
use diesel_async::AsyncConnection;
use tokio_util::sync::CancellationToken;

use crate::store::users;

/// The event types identity's queue is bound to.
pub const CONSUMED: [&str; 1] = [SubscriptionChanged::TYPE];

/// The service name its durable queue is named after.
pub const QUEUE: &str = "identity";

/// The plan tiers `users.planTier` allows.
const TIERS: [&str; 3] = ["FREE", "PLUS", "PRO"];

/// The consumer's set-up.
pub fn spec() -> Spec {
    Spec {
        queue: Queue::Durable(QUEUE.to_owned()),
        bindings: CONSUMED.iter().map(|t| (*t).to_owned()).collect(),
        prefetch: 16,
        retry: Default::default(),
    }
}

/// Consumes identity's queue until `shutdown`.
pub async fn consume(amqp: AmqpConfig, pool: aichat_db::Pool, shutdown: CancellationToken) {
    consumer::run(amqp, spec(), shutdown, || async {}, move |envelope| {
        let pool = pool.clone();
        async move {
            let Some(event) = envelope.decode::<SubscriptionChanged>() else {
                return Ok(());
            };
            if envelope.version != SubscriptionChanged::VERSION {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "version {} of {} is not understood",
                    envelope.version,
                    SubscriptionChanged::TYPE
                )));
            }
            let event = event.map_err(|e| HandlerError::Permanent(e.into()))?;
            if !TIERS.contains(&event.plan_tier.as_str()) {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "unknown plan tier {}",
                    event.plan_tier
                )));
            }
            let mut conn = pool
                .get()
                .await
                .map_err(|e| HandlerError::Transient(e.into()))?;
            conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                if inbox::claim(conn, &envelope).await? {
                    let changed = users::set_plan_tier(
                        conn,
                        event.user_id,
                        &event.plan_tier,
                        event.occurred_at.naive_utc(),
                    )
                    .await?;
                    tracing::info!(user.id = %event.user_id, plan_tier = %event.plan_tier, changed, "plan tier from billing");
                }
                Ok(())
            })
            .await
            .map_err(|e| HandlerError::Transient(e.into()))
        }
    })
    .await;
}
