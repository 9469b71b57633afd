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

    /// Reserves `tokens`; `None` when the month's quota would be exceeded.
    pub async fn reserve(&self, user_id: Uuid, tokens: u32) -> Result<Option<Reservation>, Error> {
        match self
            .client
            .clone()
            .reserve(ReserveRequest {
                user_id: user_id.to_string(),
                tokens: i64::from(tokens),
            })
            .await
        {
            Ok(answer) => {
                let id = Uuid::parse_str(&answer.into_inner().reservation_id).map_err(|e| {
                    Error::Unexpected(anyhow::anyhow!("billing sent a bad reservation id: {e}"))
                })?;
                Ok(Some(Reservation { id }))
            }
            Err(status) if status.code() == tonic::Code::ResourceExhausted => Ok(None),
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
