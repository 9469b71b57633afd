//! Operations endpoints (not under `/api/v1`): liveness, readiness,
//! metrics, the OpenAPI document.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use utoipa::OpenApi as _;

use crate::state::AppState;

/// Alive: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready: this replica can serve, i.e. it is listening (it answers) and can
/// check tokens (signing keys and deny list loaded from identity). The
/// backends' health is not part of it: an outage of one gives 503 problems
/// on its routes only, rather than taking every gateway out of service.
/// `?verbose` adds each backend's state (probed now) and whether the
/// revocation events are subscribed; the status code stays this replica's.
pub async fn readyz(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let keys = state.sessions.has_keys();
    let deny_list = state.sessions.has_revocations();
    let ready = keys && deny_list;
    let mut body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "signingKeys": keys, "denyList": deny_list },
    });
    if verbose(req.query_string()) {
        let backends: serde_json::Map<String, serde_json::Value> = state
            .channels
            .probe(&state.metrics)
            .await
            .into_iter()
            .map(|(backend, up)| {
                (
                    backend.name().to_owned(),
                    json!(if up { "up" } else { "down" }),
                )
            })
            .collect();
        body["backends"] = backends.into();
        body["revocationEvents"] = json!(if state.sessions.has_subscribed_to_events() {
            "subscribed"
        } else {
            "not_subscribed"
        });
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether the query asks for details: `verbose`, `verbose=1`, `verbose=true`.
fn verbose(query: &str) -> bool {
    query.split('&').any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        name == "verbose" && !matches!(value, "0" | "false")
    })
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
