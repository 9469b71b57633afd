//! Webhooks from third parties, at the root (not under `/api/v1`): no
//! bearer token, each verified by the service it is for.

use actix_web::{HttpRequest, HttpResponse, web};
use aichat_proto::billing::v1 as pb;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::grpc;
use crate::{
    problem::{Code, Problem, ProblemBody},
    state::AppState,
};

/// Stripe's own limit on what it sends is well below this; a larger body is
/// not Stripe's.
pub const STRIPE_BODY_LIMIT: usize = 512 * 1024;

/// The header Stripe signs its deliveries with.
const STRIPE_SIGNATURE: &str = "Stripe-Signature";

/// What Stripe is answered when it may stop retrying.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceived {
    pub received: bool,
}

/// A Stripe event delivery: billing verifies the `Stripe-Signature` over
/// the raw body and applies the event once (a redelivery or an event type
/// billing does not handle is acknowledged too).
#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks", operation_id = "stripe_webhook",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`, as Stripe signs")),
    request_body(content = Object, content_type = "application/json", description = "A Stripe event, byte for byte as Stripe sent it"),
    responses((status = 200, body = WebhookReceived),
        (status = 400, body = ProblemBody, description = "`invalid_signature`: missing, forged or stale `Stripe-Signature`; `invalid_event`: signed, but not an event"),
        (status = 413, body = ProblemBody, description = "`payload_too_large`: over 512 KiB"),
        (status = 503, body = ProblemBody, description = "`stripe_not_configured`: no webhook secret is set; `unavailable`: billing is down (Stripe retries)")))]
pub async fn stripe(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut body: web::Payload,
) -> Result<HttpResponse, Problem> {
    let mut payload = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Problem::new(Code::MalformedBody, e.to_string()))?;
        if payload.len() + chunk.len() > STRIPE_BODY_LIMIT {
            return Err(Problem::new(
                Code::PayloadTooLarge,
                "A Stripe event is at most 512 KiB.",
            ));
        }
        payload.extend_from_slice(&chunk);
    }
    let signature = req
        .headers()
        .get(STRIPE_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state
        .billing
        .clone()
        .handle_stripe_webhook(grpc(
            &req,
            pb::StripeWebhook {
                payload: payload.freeze().to_vec(),
                signature,
            },
        ))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookReceived { received: true }))
}

/// Mounts the webhooks at the root.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/stripe", web::post().to(stripe));
}
