//! Stripe's objects as the API returns them (docs.stripe.com/api), with
//! only the fields billing reads; unknown fields are ignored, so a newer
//! API version or webhook endpoint version adding fields changes nothing.
//! Timestamps are Unix seconds, amounts integers in the currency's smallest
//! unit, as on the wire; the accessors convert.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};

/// A page of a list call (`{"object": "list", "data": [...], "has_more"}`).
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    /// Whether another page follows: ask again with `starting_after` set to
    /// the last item's id.
    #[serde(default)]
    pub has_more: bool,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
        }
    }
}

/// A customer (`cus_...`).
#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A Checkout Session (`cs_...`): where the user pays.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    /// The page to send the user to (`null` once the session is complete or
    /// expired).
    pub url: Option<String>,
    pub mode: Option<String>,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    #[serde(default, deserialize_with = "optional_id")]
    pub customer: Option<String>,
    /// Set once a subscription-mode session completes.
    #[serde(default, deserialize_with = "optional_id")]
    pub subscription: Option<String>,
    pub client_reference_id: Option<String>,
}

/// A Billing Portal session: where the user manages their subscription.
#[derive(Debug, Clone, Deserialize)]
pub struct PortalSession {
    pub id: String,
    pub url: String,
    pub customer: String,
}

/// A product (`prod_...`): one per paid plan.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// How often a recurring price bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    /// The wire value (`recurring[interval]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Recurring {
    pub interval: Interval,
    #[serde(default = "one")]
    pub interval_count: u32,
}

fn one() -> u32 {
    1
}

/// A price (`price_...`): what a plan costs per interval.
#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
    #[serde(default)]
    pub active: bool,
    /// Lower-case ISO 4217 (`usd`).
    pub currency: String,
    /// In the currency's smallest unit (cents).
    pub unit_amount: Option<i64>,
    pub lookup_key: Option<String>,
    #[serde(deserialize_with = "id")]
    pub product: String,
    pub recurring: Option<Recurring>,
}

/// A subscription's status (docs.stripe.com/api/subscriptions/object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    /// A status newer than this code.
    #[serde(other)]
    Unknown,
}

/// Why a subscription was cancelled.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CancellationDetails {
    /// `cancellation_requested`, `payment_disputed`, `payment_failed`.
    pub reason: Option<String>,
    pub feedback: Option<String>,
    pub comment: Option<String>,
}

/// A subscription (`sub_...`), in either shape: before API version
/// `2025-03-31.basil` the current period is on the subscription; from it on,
/// on each item. Webhook payloads follow the endpoint's version, so both
/// are read.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(deserialize_with = "id")]
    pub customer: String,
    pub status: SubscriptionStatus,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub cancellation_details: Option<CancellationDetails>,
    pub trial_end: Option<i64>,
    /// The older shape's period (absent from basil on).
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub items: List<SubscriptionItem>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

/// One line of a subscription: a price and, from basil on, its period.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: Price,
    pub quantity: Option<u64>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
}

/// A span of time Stripe has invoiced for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Subscription {
    /// The current period: the subscription's own (before basil), else its
    /// first item's (our subscriptions have one item: the plan's price).
    pub fn current_period(&self) -> Option<Period> {
        let (start, end) =
            match (self.current_period_start, self.current_period_end) {
                (Some(start), Some(end)) => (start, end),
                _ => self.items.data.iter().find_map(|item| {
                    Some((item.current_period_start?, item.current_period_end?))
                })?,
            };
        Some(Period {
            start: timestamp(start)?,
            end: timestamp(end)?,
        })
    }

    /// The price the subscription bills (its first item's).
    pub fn price(&self) -> Option<&Price> {
        self.items.data.first().map(|item| &item.price)
    }

    pub fn trial_end(&self) -> Option<DateTime<Utc>> {
        self.trial_end.and_then(timestamp)
    }

    pub fn canceled_at(&self) -> Option<DateTime<Utc>> {
        self.canceled_at.and_then(timestamp)
    }

    pub fn created(&self) -> Option<DateTime<Utc>> {
        timestamp(self.created)
    }
}

/// An event (`evt_...`) as a webhook delivers it
/// (docs.stripe.com/api/events/object). `data.object` is rendered in the
/// endpoint's `api_version`, not necessarily the client's: read it with
/// [`Event::object`] into a type that accepts every shape.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    /// `customer.subscription.updated`, `invoice.paid`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// When Stripe created the event (Unix seconds): orders events that
    /// arrive out of order.
    pub created: i64,
    pub api_version: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    /// The object the event is about, as it was when the event happened.
    pub object: serde_json::Value,
    /// What changed, on `*.updated` events: the old values.
    pub previous_attributes: Option<serde_json::Value>,
}

impl Event {
    /// The event's object as `T`.
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data.object)
    }

    pub fn created(&self) -> Option<DateTime<Utc>> {
        timestamp(self.created)
    }
}

/// A Unix timestamp as a time (`None` past chrono's range).
pub fn timestamp(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// An expandable field: the id, or the expanded object's `id`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

pub(super) fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Expandable::deserialize(deserializer)? {
        Expandable::Id(id) | Expandable::Object { id } => id,
    })
}

pub(super) fn optional_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(
        Option::<Expandable>::deserialize(deserializer)?.map(|field| match field {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscription as API versions before basil return it (trimmed from
    /// docs.stripe.com/api/subscriptions/object of 2024-12-18.acacia).
    const ACACIA: &str = r#"{
      "id": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
      "object": "subscription",
      "cancel_at_period_end": false,
      "canceled_at": null,
      "cancellation_details": {"comment": null, "feedback": null, "reason": null},
      "created": 1679609767,
      "currency": "usd",
      "current_period_end": 1682288167,
      "current_period_start": 1679609767,
      "customer": "cus_Na6dX7aXxi11N4",
      "ended_at": null,
      "items": {
        "object": "list",
        "data": [{
          "id": "si_Na6dzxczY5fwHx",
          "object": "subscription_item",
          "created": 1679609768,
          "metadata": {},
          "price": {
            "id": "price_1MowQULkdIwHu7ixraBm864M",
            "object": "price",
            "active": true,
            "currency": "usd",
            "lookup_key": null,
            "product": "prod_Na6dGcTsmU0I4R",
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "unit_amount": 1000
          },
          "quantity": 1,
          "subscription": "sub_1MowQVLkdIwHu7ixeRlqHVzs"
        }],
        "has_more": false,
        "url": "/v1/subscription_items?subscription=sub_1MowQVLkdIwHu7ixeRlqHVzs"
      },
      "livemode": false,
      "metadata": {},
      "status": "active",
      "trial_end": null
    }"#;

    #[test]
    fn the_period_is_read_from_the_subscription_before_basil() {
        let sub: Subscription = serde_json::from_str(ACACIA).unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Active);
        assert_eq!(sub.customer, "cus_Na6dX7aXxi11N4");
        assert_eq!(
            sub.current_period(),
            Some(Period {
                start: timestamp(1_679_609_767).unwrap(),
                end: timestamp(1_682_288_167).unwrap(),
            })
        );
        let price = sub.price().unwrap();
        assert_eq!(price.unit_amount, Some(1000));
        assert_eq!(price.recurring.as_ref().unwrap().interval, Interval::Month);
    }

    #[test]
    fn the_period_is_read_from_the_items_from_basil_on() {
        let mut value: serde_json::Value = serde_json::from_str(ACACIA).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("current_period_start");
        object.remove("current_period_end");
        let item = &mut value["items"]["data"][0];
        item["current_period_start"] = 1_700_000_000.into();
        item["current_period_end"] = 1_702_592_000.into();
        // An expanded customer and an unknown status still parse.
        value["customer"] = serde_json::json!({"id": "cus_X", "object": "customer"});
        value["status"] = "something_new".into();
        let sub: Subscription = serde_json::from_value(value).unwrap();
        assert_eq!(
            sub.current_period(),
            Some(Period {
                start: timestamp(1_700_000_000).unwrap(),
                end: timestamp(1_702_592_000).unwrap(),
            })
        );
        assert_eq!(sub.customer, "cus_X");
        assert_eq!(sub.status, SubscriptionStatus::Unknown);
    }

    #[test]
    fn an_event_carries_its_object_in_the_endpoints_version() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "object": "event",
            "api_version": "2024-12-18.acacia",
            "created": 1686089970,
            "data": {
                "object": serde_json::from_str::<serde_json::Value>(ACACIA).unwrap(),
                "previous_attributes": {"cancel_at_period_end": true}
            },
            "livemode": false,
            "pending_webhooks": 0,
            "request": {"id": null, "idempotency_key": null},
            "type": "customer.subscription.updated"
        }))
        .unwrap();
        assert_eq!(event.kind, "customer.subscription.updated");
        assert_eq!(event.created(), timestamp(1_686_089_970));
        let sub: Subscription = event.object().unwrap();
        assert_eq!(sub.id, "sub_1MowQVLkdIwHu7ixeRlqHVzs");
        assert!(sub.current_period().is_some());
        assert_eq!(
            event.data.previous_attributes.unwrap()["cancel_at_period_end"],
            true
        );
    }
}
