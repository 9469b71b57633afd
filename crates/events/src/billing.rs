//! Events published by the billing service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// The user's subscription changed (bought, renewed, upgraded, downgraded,
/// cancelled, ended): identity keeps `users.planTier` in step. Consumers
/// keep the newest by `occurredAt` (Stripe's time of the change), not by
/// arrival.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChanged {
    pub user_id: Uuid,
    /// The plan the user is on now: `FREE`, `PLUS` or `PRO`.
    pub plan_tier: String,
    /// The subscription's status as billing stores it: `active`,
    /// `past_due`, `unpaid`, `paused` or `canceled`.
    pub status: String,
    /// The end of the paid period (absent without one).
    pub current_period_end: Option<DateTime<Utc>>,
    /// When Stripe made the change (its event's `created`).
    pub occurred_at: DateTime<Utc>,
}
impl Event for SubscriptionChanged {
    const TYPE: &'static str = "billing.subscription.changed";
    const VERSION: u32 = 1;
}
