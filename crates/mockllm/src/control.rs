//! The control API under `/_mock`, for tests and load runs to steer the
//! mock: queue faults, change pacing, read counters.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{Fault, config::ConfigPatch, state::State};

/// `POST /_mock/faults`: a JSON array of [`Fault`]s, appended to the queue.
pub(crate) async fn queue_faults(
    state: web::Data<State>,
    faults: web::Json<Vec<Fault>>,
) -> HttpResponse {
    let queued = state.queue(faults.into_inner());
    HttpResponse::Ok().json(json!({"queued": queued}))
}

/// `DELETE /_mock/faults`: forget every queued fault.
pub(crate) async fn clear_faults(state: web::Data<State>) -> HttpResponse {
    state.clear_faults();
    HttpResponse::NoContent().finish()
}

/// `GET /_mock/config`.
pub(crate) async fn config(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(ConfigPatch::from(state.config()))
}

/// `PUT /_mock/config`: `{"ttftMs", "tokenDelayMs", "replyTokens"}`, each
/// optional; answers the whole resulting configuration.
pub(crate) async fn set_config(
    state: web::Data<State>,
    patch: web::Json<ConfigPatch>,
) -> HttpResponse {
    let config = state.config().patched(patch.into_inner());
    state.set_config(config);
    HttpResponse::Ok().json(ConfigPatch::from(config))
}

/// `GET /_mock/stats`: model requests received per format, and faults
/// still queued.
pub(crate) async fn stats(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.stats())
}
