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

/// Ready: the signing keys are loaded and identity answers its gRPC health
/// check as SERVING (which it does only while its database is up).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.sessions.has_keys();
    let mut health = HealthClient::new(state.identity_channel.clone());
    let identity = tokio::time::timeout(
        Duration::from_secs(2),
        health.check(HealthCheckRequest {
            service: "identity.v1.Identity".to_owned(),
        }),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .is_some_and(|r| r.into_inner().status == ServingStatus::Serving as i32);
    let ready = keys && identity;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "identity": identity, "signingKeys": keys },
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
