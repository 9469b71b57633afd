//! Operations endpoints (not under `/api/v1`): liveness, readiness,
//! metrics, the OpenAPI document.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use utoipa::OpenApi as _;

use crate::state::AppState;

/// Alive: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Whether the service behind `channel` answers its gRPC health check for
/// `service` as SERVING (each does only while its database is up).
async fn serving(channel: &tonic::transport::Channel, service: &str) -> bool {
    let mut health = HealthClient::new(channel.clone());
    tokio::time::timeout(
        Duration::from_secs(2),
        health.check(HealthCheckRequest {
            service: service.to_owned(),
        }),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .is_some_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

/// Ready: the signing keys are loaded and identity, chat and billing answer
/// their health checks as SERVING.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.sessions.has_keys();
    let (identity, chat, billing) = tokio::join!(
        serving(&state.identity_channel, "identity.v1.Identity"),
        serving(&state.chat_channel, "chat.v1.Chat"),
        serving(&state.billing_channel, "billing.v1.Billing"),
    );
    let ready = keys && identity && chat && billing;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "identity": identity, "chat": chat, "billing": billing, "signingKeys": keys },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// The HTTP contract, generated from the handlers.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::ApiDoc::openapi())
}
