//! The services behind the gateway (identity, chat, billing, analytics) and whether
//! they answer their gRPC health checks as SERVING (each does only while its
//! database is up).
//!
//! This is not the gateway's readiness: with one backend out, the others'
//! routes keep working, and the routes that need it answer `503
//! unavailable` problems. A backend's state shows on `/metrics`
//! (`gateway_backend_up{backend="billing"} 0|1`, refreshed by a background
//! probe) and in the body of `/readyz?verbose` (probed on the spot).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::metrics::Metrics;

/// How long a health check may take before the backend counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A service the gateway calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Identity,
    Chat,
    Billing,
    Analytics,
}

impl Backend {
    /// Every backend, in the order they are shown.
    pub const ALL: [Self; 4] = [Self::Identity, Self::Chat, Self::Billing, Self::Analytics];

    /// Its name in metrics and in `/readyz?verbose`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Chat => "chat",
            Self::Billing => "billing",
            Self::Analytics => "analytics",
        }
    }

    /// The named service its health check answers for (the overall status,
    /// `""`, stays SERVING while the process runs).
    fn health_service(self) -> &'static str {
        match self {
            Self::Identity => "identity.v1.Identity",
            Self::Chat => "chat.v1.Chat",
            Self::Billing => "billing.v1.Billing",
            Self::Analytics => "analytics.v1.Analytics",
        }
    }
}

/// A connection to each backend.
#[derive(Clone)]
pub struct Channels {
    pub identity: Channel,
    pub chat: Channel,
    pub billing: Channel,
    pub analytics: Channel,
}

impl Channels {
    fn of(&self, backend: Backend) -> &Channel {
        match backend {
            Backend::Identity => &self.identity,
            Backend::Chat => &self.chat,
            Backend::Billing => &self.billing,
            Backend::Analytics => &self.analytics,
        }
    }

    /// Checks every backend at once, and records the outcome in `metrics`.
    pub async fn probe(&self, metrics: &Metrics) -> Vec<(Backend, bool)> {
        let (identity, chat, billing, analytics) = tokio::join!(
            self.serving(Backend::Identity),
            self.serving(Backend::Chat),
            self.serving(Backend::Billing),
            self.serving(Backend::Analytics),
        );
        let states = vec![
            (Backend::Identity, identity),
            (Backend::Chat, chat),
            (Backend::Billing, billing),
            (Backend::Analytics, analytics),
        ];
        for (backend, up) in &states {
            metrics.set_backend_up(backend.name(), *up);
        }
        states
    }

    /// Whether `backend` answers its health check as SERVING in time.
    async fn serving(&self, backend: Backend) -> bool {
        let mut health = HealthClient::new(self.of(backend).clone());
        tokio::time::timeout(
            CHECK_TIMEOUT,
            health.check(HealthCheckRequest {
                service: backend.health_service().to_owned(),
            }),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .is_some_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
    }
}

/// Probes the backends every `every` until `shutdown`, so `/metrics` follows
/// them without a request to `/readyz`.
pub async fn keep_probing(
    channels: Channels,
    metrics: std::sync::Arc<Metrics>,
    every: Duration,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        channels.probe(&metrics).await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => {}
        }
    }
}
