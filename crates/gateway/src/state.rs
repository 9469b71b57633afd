//! What every handler shares.

use std::{sync::Arc, time::Duration};

use aichat_proto::{
    analytics::v1::analytics_client::AnalyticsClient, billing::v1::billing_client::BillingClient,
    chat::v1::chat_client::ChatClient, identity::v1::identity_client::IdentityClient,
};
use tonic::transport::Channel;

use aichat_ratelimit::RateLimiter;

use crate::{
    api_keys::ApiKeys, backends::Channels, config::Config, metrics::Metrics, sessions::Sessions,
};

/// The limits the account endpoints apply.
pub struct Limits {
    pub login_ip: RateLimiter,
    pub login_email: RateLimiter,
    pub register_ip: RateLimiter,
    pub register_email: RateLimiter,
    pub forgot_ip: RateLimiter,
    pub forgot_email: RateLimiter,
    pub reset_ip: RateLimiter,
    pub verify_ip: RateLimiter,
    pub refresh_ip: RateLimiter,
    pub resend_user: RateLimiter,
    /// Completions per API key (`/v1`), on top of the plan's send rate.
    pub api_key: RateLimiter,
}

impl Limits {
    /// The defaults, each scaled by `multiplier` (0 turns them off).
    pub fn new(multiplier: u32) -> Self {
        let minute = Duration::from_secs(60);
        let hour = Duration::from_secs(3600);
        let l = |n: u32, period| RateLimiter::new(n.saturating_mul(multiplier), period);
        Self {
            login_ip: l(30, minute),
            login_email: l(10, minute),
            register_ip: l(10, minute),
            register_email: l(5, hour),
            forgot_ip: l(10, minute),
            forgot_email: l(5, hour),
            reset_ip: l(10, minute),
            verify_ip: l(20, minute),
            refresh_ip: l(120, minute),
            resend_user: l(5, hour),
            api_key: l(120, minute),
        }
    }
}

/// What every handler of one worker sees, behind `web::Data`. The gRPC
/// connection is the worker's own (made on its thread, so a request never
/// hops threads on its way to identity); everything else is shared.
pub struct AppState {
    pub identity: IdentityClient<Channel>,
    pub chat: ChatClient<Channel>,
    /// Chat for streamed sends: a connection of its own whose deadline is
    /// the stream's, not the unary calls'.
    pub chat_stream: ChatClient<Channel>,
    pub billing: BillingClient<Channel>,
    /// The admin dashboard's figures (admins only: the routes check the
    /// role before calling).
    pub analytics: AnalyticsClient<Channel>,
    /// The same connections, for the health checks of `/readyz?verbose`.
    pub channels: Channels,
    pub sessions: Arc<Sessions>,
    /// API-key checks and their short cache (crate::api_keys).
    pub api_keys: Arc<ApiKeys>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
}
