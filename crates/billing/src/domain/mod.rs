//! Metering rules with no I/O: what a billing month is and how months roll
//! over, the quota arithmetic, money on the wire, and what a request may ask
//! for (checkout intervals, cancellation reasons).
//! Unit-tested here; the service layer only calls these.

pub mod money;
pub mod month;
pub mod quota;
pub mod subscription;

pub use month::{BillingMonth, Placement};
pub use quota::{Balance, TokenAmount};

use std::collections::BTreeMap;

/// Field name → what is wrong with it: the `errors` of a
/// `validation_failed` problem.
pub type FieldErrors = BTreeMap<String, String>;

/// The plan every user starts on, and stays on until a subscription says
/// otherwise.
pub const FREE_PLAN: &str = "Free";
