//! What every test needs: a running service, a client, a pool, event
//! builders, and a way to wait for the consumer.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failure fails the test"
)]

use std::{future::Future, str::FromStr, time::Duration};

use aichat_billing::{
    config::Config,
    domain::BillingMonth,
    store::{schema::token_reservations, usage},
    testing::{TestBilling, delete_exchange, unique_amqp},
};
use aichat_events::{
    Envelope,
    chat::{ConversationCreated, TokensUsed},
    identity::{UserDeleted, UserRegistered, UserSnapshot},
};
use aichat_messaging::AmqpConfig;
use aichat_proto::billing::v1::{ReserveRequest, Usage, UserRef, billing_client::BillingClient};
use bigdecimal::BigDecimal;
use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;

/// A billing service of the test's own, and ways to look inside it.
pub struct Harness {
    pub billing: TestBilling,
    pub client: BillingClient<Channel>,
    pub pool: aichat_db::Pool,
    amqp: AmqpConfig,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let amqp = unique_amqp();
        let billing = TestBilling::spawn_with(amqp.clone(), adjust).await.unwrap();
        let client = billing.client().await.unwrap();
        let pool = billing.pool().unwrap();
        Self {
            billing,
            client,
            pool,
            amqp,
        }
    }

    /// The user's usage row, straight from the database.
    pub async fn row(&self, user_id: Uuid) -> Option<usage::Usage> {
        let mut conn = self.pool.get().await.unwrap();
        usage::find(&mut conn, user_id).await.unwrap()
    }

    /// How many reservations the user has in the database.
    pub async fn reservation_count(&self, user_id: Uuid) -> i64 {
        let mut conn = self.pool.get().await.unwrap();
        token_reservations::table
            .filter(token_reservations::user_id.eq(user_id))
            .count()
            .get_result(&mut conn)
            .await
            .unwrap()
    }

    /// Runs SQL against the service's database (to simulate time passing).
    pub async fn execute(&self, sql: &str) {
        let mut conn = self.pool.get().await.unwrap();
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    /// Whether the consumer has applied (or skipped) this event.
    pub async fn processed(&self, envelope: &Envelope) -> bool {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.unwrap();
        let found: N = diesel::sql_query("SELECT count(*) AS n FROM inbox WHERE eventId = $1")
            .bind::<diesel::sql_types::Uuid, _>(envelope.id)
            .get_result(&mut conn)
            .await
            .unwrap();
        found.n == 1
    }

    /// Waits until the consumer has processed `envelope`.
    pub async fn wait_processed(&self, envelope: &Envelope) {
        eventually(
            "the event to be processed",
            Duration::from_secs(10),
            || async { self.processed(envelope).await },
        )
        .await;
    }

    pub async fn usage(&self, user_id: Uuid) -> Usage {
        self.client
            .clone()
            .get_usage(UserRef {
                user_id: user_id.to_string(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn reserve(
        &self,
        user_id: Uuid,
        tokens: i64,
    ) -> Result<aichat_proto::billing::v1::Reservation, Status> {
        self.client
            .clone()
            .reserve(ReserveRequest {
                user_id: user_id.to_string(),
                tokens,
                conversation_messages: None,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn stop(self) {
        self.billing.stop().await;
        delete_exchange(&self.amqp).await.unwrap();
    }
}

/// Polls `check` until it is true, or fails the test after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The JSON details of a refused call.
pub fn details(status: &Status) -> serde_json::Value {
    serde_json::from_slice(status.details()).unwrap()
}

/// Asserts `result` is INVALID_ARGUMENT `validation_failed` naming `field`.
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = details(&status);
    assert_eq!(details["code"], "validation_failed", "{details}");
    assert!(details["errors"][field].is_string(), "{details}");
}

pub fn money(s: &str) -> BigDecimal {
    BigDecimal::from_str(s).unwrap()
}

pub fn this_month() -> NaiveDate {
    BillingMonth::of(Utc::now()).first_day()
}

pub fn last_month() -> NaiveDate {
    BillingMonth::of(Utc::now()).previous().first_day()
}

pub fn registered(user_id: Uuid) -> UserRegistered {
    UserRegistered {
        user: UserSnapshot {
            user_id,
            email: format!("{}@example.com", user_id.simple()),
            name: "Meter Reader".into(),
            plan_tier: "FREE".into(),
            role: "user".into(),
            email_verified: false,
            created_at: Utc::now(),
        },
    }
}

pub fn deleted(user_id: Uuid) -> UserDeleted {
    UserDeleted { user_id }
}

pub fn conversation_created(user_id: Uuid) -> ConversationCreated {
    ConversationCreated {
        conversation_id: Uuid::now_v7(),
        user_id,
        model: "gpt-4o-mini".into(),
        created_at: Utc::now(),
    }
}

/// A priced reply of `total` tokens in `month`, settling `reservation`.
pub fn tokens_used(
    user_id: Uuid,
    reservation: Option<Uuid>,
    total: i32,
    cost: &str,
    month: NaiveDate,
) -> TokensUsed {
    TokensUsed {
        usage_id: Uuid::now_v7(),
        user_id,
        conversation_id: Some(Uuid::now_v7()),
        message_id: Some(Uuid::now_v7()),
        reservation_id: reservation,
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        prompt_tokens: total / 2,
        completion_tokens: total - total / 2,
        total_tokens: total,
        cost_usd: money(cost),
        billing_month: month,
        occurred_at: Utc::now(),
        counters: None,
        api_key_id: None,
    }
}
