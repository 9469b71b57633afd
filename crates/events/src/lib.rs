#![doc = include_str!("../README.md")]

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

pub mod billing;
pub mod chat;
pub mod identity;

/// A payload that can travel as an event.
pub trait Event: Serialize + DeserializeOwned {
    /// The event type, also its routing key: `<service>.<entity>.<what happened>`.
    const TYPE: &'static str;
    /// The payload's schema version; bumped on a breaking change.
    const VERSION: u32;
}

/// W3C trace context carried with an event so a consumer's span continues
/// the producer's trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceContext {
    /// `traceparent` header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// `tracestate` header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// What goes on the wire: the envelope around a payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T = serde_json::Value> {
    /// Unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// [`Event::TYPE`].
    #[serde(rename = "type")]
    pub event_type: String,
    /// [`Event::VERSION`].
    pub version: u32,
    /// When the change happened (the producer's commit).
    pub occurred_at: DateTime<Utc>,
    /// The producer's trace.
    #[serde(default)]
    pub trace_context: TraceContext,
    /// The payload.
    pub data: T,
}

impl Envelope {
    /// Wraps a payload in a new envelope with a fresh id.
    pub fn new<E: Event>(event: &E, trace_context: TraceContext) -> serde_json::Result<Self> {
        Ok(Self {
            id: Uuid::now_v7(),
            event_type: E::TYPE.to_owned(),
            version: E::VERSION,
            occurred_at: Utc::now(),
            trace_context,
            data: serde_json::to_value(event)?,
        })
    }

    /// The typed payload, when this envelope carries an `E`.
    pub fn decode<E: Event>(&self) -> Option<serde_json::Result<E>> {
        (self.event_type == E::TYPE).then(|| serde_json::from_value(self.data.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::identity::UserDeleted;
    use super::*;

    #[test]
    fn an_envelope_round_trips_and_decodes_only_its_own_type() {
        let event = UserDeleted {
            user_id: Uuid::now_v7(),
        };
        let envelope = Envelope::new(&event, TraceContext::default()).unwrap();
        let json = serde_json::to_string(&envelope).unwrap();
        assert!(json.contains(r#""type":"identity.user.deleted""#), "{json}");
        assert!(json.contains(r#""occurredAt""#), "{json}");
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.decode::<UserDeleted>().unwrap().unwrap(), event);
        assert!(back.decode::<super::identity::UserUpdated>().is_none());
    }
}
