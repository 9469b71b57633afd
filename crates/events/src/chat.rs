//! Events published by the chat service.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// A conversation was started (billing counts it against `maxConversations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationCreated {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub model: String,
    pub created_at: DateTime<Utc>,
}
impl Event for ConversationCreated {
    const TYPE: &'static str = "chat.conversation.created";
    const VERSION: u32 = 1;
}

/// A conversation was deleted by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDeleted {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
}
impl Event for ConversationDeleted {
    const TYPE: &'static str = "chat.conversation.deleted";
    const VERSION: u32 = 1;
}

/// A conversation's counters (`messageCount`, `tokenCount`) after the
/// transaction that changed them, ordered by `updatedAt` (the row's, set in
/// that transaction under the conversation's lock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationCounters {
    pub message_count: i32,
    pub token_count: i32,
    pub updated_at: DateTime<Utc>,
}

/// A conversation's counters changed in a transaction that writes no other
/// event carrying them (a send that produced nothing gives its reply's
/// place back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationUpdated {
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    pub counters: ConversationCounters,
}
impl Event for ConversationUpdated {
    const TYPE: &'static str = "chat.conversation.updated";
    const VERSION: u32 = 1;
}

/// A message was saved (one event per message: the user's and the reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCreated {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub user_id: Uuid,
    /// `user` or `assistant`.
    pub role: String,
    pub token_count: i32,
    pub model: Option<String>,
    pub language: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The conversation's counters after the transaction that saved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<ConversationCounters>,
}
impl Event for MessageCreated {
    const TYPE: &'static str = "chat.message.created";
    const VERSION: u32 = 1;
}

/// Tokens a provider call consumed, priced. Billing applies it once (by
/// event id) to the month's usage and settles the reservation it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokensUsed {
    /// The tokenUsage row.
    pub usage_id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    /// The billing reservation this settles, if one was made.
    pub reservation_id: Option<Uuid>,
    /// `openai`, `anthropic` or `google`.
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub total_tokens: i32,
    /// USD, NUMERIC(10,6), as a decimal string on the wire.
    pub cost_usd: BigDecimal,
    /// First day of the month the tokens count in.
    pub billing_month: NaiveDate,
    pub occurred_at: DateTime<Utc>,
    /// The conversation's counters after the transaction that charged the
    /// call (absent when no conversation was counted: deleted meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<ConversationCounters>,
    /// The API key a call without a conversation was made with (the
    /// OpenAI-compatible API); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<Uuid>,
}
impl Event for TokensUsed {
    const TYPE: &'static str = "chat.tokens.used";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn money_travels_as_a_decimal_string_and_comes_back_exact() {
        let event = TokensUsed {
            usage_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            conversation_id: None,
            message_id: None,
            reservation_id: None,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
            cost_usd: BigDecimal::from_str("0.000123").unwrap(),
            billing_month: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            occurred_at: Utc::now(),
            counters: None,
            api_key_id: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["costUsd"], "0.000123");
        assert_eq!(json["billingMonth"], "2026-11-01");
        let back: TokensUsed = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
