//! Chat's view of billing (`billing.v1` over gRPC): the plan's limits, and
//! token reservations around each provider call.

use std::time::Duration;

use aichat_proto::billing::v1::{
    ReleaseRequest, ReserveRequest, UserRef, billing_client::BillingClient,
};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::service::Error;

/// What the user's plan allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_conversations: Option<i64>,
    pub max_messages_per_conversation: Option<i64>,
}

/// Tokens held at billing for one provider call.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub id: Uuid,
    /// The user's plan (`Free`, `Plus`, `Pro`).
    pub plan: String,
    /// The plan's limit of messages per conversation, if any.
    pub max_messages_per_conversation: Option<i64>,
}

/// Billing's answer to a reservation.
#[derive(Debug)]
pub enum Reserved {
    /// Granted: the tokens are held.
    Held(Reservation),
    /// The month's quota would be passed.
    QuotaExceeded,
    /// Two more messages would pass the plan's per-conversation limit.
    MessageLimit,
}

/// The billing client.
#[derive(Clone)]
pub struct Billing {
    client: BillingClient<Channel>,
}

impl Billing {
    /// A client of the billing service at `url` (connects lazily).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self {
            client: BillingClient::new(channel),
        })
    }

    /// The user's plan limits.
    pub async fn limits(&self, user_id: Uuid) -> Result<Limits, Error> {
        let limits = self
            .client
            .clone()
            .get_limits(UserRef {
                user_id: user_id.to_string(),
            })
            .await
            .map_err(unavailable)?
            .into_inner();
        Ok(Limits {
            max_conversations: limits.max_conversations.map(i64::from),
            max_messages_per_conversation: limits.max_messages_per_conversation.map(i64::from),
        })
    }

    /// Reserves `tokens` for a send into a conversation that holds
    /// `conversation_messages`; billing checks the quota and the plan's
    /// message limit in the same call.
    pub async fn reserve(
        &self,
        user_id: Uuid,
        tokens: u32,
        conversation_messages: i64,
    ) -> Result<Reserved, Error> {
        match self
            .client
            .clone()
            .reserve(ReserveRequest {
                user_id: user_id.to_string(),
                tokens: i64::from(tokens),
                conversation_messages: Some(conversation_messages),
            })
            .await
        {
            Ok(answer) => {
                let answer = answer.into_inner();
                let id = Uuid::parse_str(&answer.reservation_id).map_err(|e| {
                    Error::Unexpected(anyhow::anyhow!("billing sent a bad reservation id: {e}"))
                })?;
                Ok(Reserved::Held(Reservation {
                    id,
                    plan: answer.plan_name,
                    max_messages_per_conversation: answer
                        .max_messages_per_conversation
                        .map(i64::from),
                }))
            }
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                Ok(Reserved::QuotaExceeded)
            }
            Err(status)
                if status.code() == tonic::Code::FailedPrecondition
                    && aichat_proto::problem_code(&status).as_deref() == Some("message_limit") =>
            {
                Ok(Reserved::MessageLimit)
            }
            Err(status) => Err(unavailable(status)),
        }
    }

    /// Gives the reservation back (nothing was produced). Best effort: an
    /// unreleased reservation expires on its own.
    pub async fn release(&self, reservation: &Reservation) {
        if let Err(status) = self
            .client
            .clone()
            .release(ReleaseRequest {
                reservation_id: reservation.id.to_string(),
            })
            .await
        {
            tracing::warn!(reservation.id = %reservation.id, error = %status, "releasing a reservation failed; it will expire");
        }
    }
}

fn unavailable(status: tonic::Status) -> Error {
    Error::Unavailable(anyhow::anyhow!("billing: {status}"))
}
