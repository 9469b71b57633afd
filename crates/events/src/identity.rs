//! Events published by the identity service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// A user account as events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSnapshot {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    /// `FREE`, `PLUS` or `PRO`.
    pub plan_tier: String,
    /// `user` or `admin`.
    pub role: String,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

/// A new account was created (billing starts the Free plan's usage row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user: UserSnapshot,
}
impl Event for UserRegistered {
    const TYPE: &'static str = "identity.user.registered";
    const VERSION: u32 = 1;
}

/// The user proved they own their email address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEmailVerified {
    pub user_id: Uuid,
    pub email: String,
    pub verified_at: DateTime<Utc>,
}
impl Event for UserEmailVerified {
    const TYPE: &'static str = "identity.user.email_verified";
    const VERSION: u32 = 1;
}

/// A successful log-in opened a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLoggedIn {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub logged_in_at: DateTime<Utc>,
}
impl Event for UserLoggedIn {
    const TYPE: &'static str = "identity.user.logged_in";
    const VERSION: u32 = 1;
}

/// Something a consumer may mirror changed (name, role, plan tier, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    pub user: UserSnapshot,
}
impl Event for UserUpdated {
    const TYPE: &'static str = "identity.user.updated";
    const VERSION: u32 = 1;
}

/// The account is gone: every service deletes what the user owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDeleted {
    pub user_id: Uuid,
}
impl Event for UserDeleted {
    const TYPE: &'static str = "identity.user.deleted";
    const VERSION: u32 = 1;
}

/// Sessions ended before their time (logout, password change or reset,
/// refresh-token reuse, account deletion). Access tokens of these sessions
/// must be refused from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRevoked {
    pub user_id: Uuid,
    pub session_ids: Vec<Uuid>,
    /// `logout`, `password_changed`, `password_reset`, `refresh_token_reuse`,
    /// `session_deleted`, `account_deleted`.
    pub reason: String,
    pub revoked_at: DateTime<Utc>,
}
impl Event for SessionRevoked {
    const TYPE: &'static str = "identity.session.revoked";
    const VERSION: u32 = 1;
}

/// An API key stopped working before its time: its owner deleted it, or
/// the account was deleted (one event per key). A gateway that caches key
/// checks may drop the key at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRevoked {
    pub user_id: Uuid,
    pub api_key_id: Uuid,
    /// `key_deleted`, `account_deleted`.
    pub reason: String,
    pub revoked_at: DateTime<Utc>,
}
impl Event for ApiKeyRevoked {
    const TYPE: &'static str = "identity.api_key.revoked";
    const VERSION: u32 = 1;
}
