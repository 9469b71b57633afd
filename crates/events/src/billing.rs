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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Envelope, TraceContext};

    #[test]
    fn a_subscription_change_travels_in_camel_case() {
        let event = SubscriptionChanged {
            user_id: Uuid::nil(),
            plan_tier: "PLUS".to_owned(),
            status: "active".to_owned(),
            current_period_end: None,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let envelope = Envelope::new(&event, TraceContext::default()).unwrap();
        assert_eq!(envelope.event_type, "billing.subscription.changed");
        assert_eq!(
            envelope.data,
            serde_json::json!({
                "userId": "00000000-0000-0000-0000-000000000000",
                "planTier": "PLUS",
                "status": "active",
                "currentPeriodEnd": null,
                "occurredAt": "2023-11-14T22:13:20Z"
            })
        );
        assert_eq!(
            envelope.decode::<SubscriptionChanged>().unwrap().unwrap(),
            event
        );
    }
}
