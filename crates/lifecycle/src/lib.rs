#![doc = include_str!("../README.md")]

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::{
    codegen::http,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

/// A token cancelled by the first SIGINT (Ctrl-C) or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the signal watcher lives as long as the process"
    )]
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        tracing::info!("shutting down");
        cancel.cancel();
    });
    shutdown
}

/// How often a gRPC service re-checks its database for its health status.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Serves a service's gRPC API (`routes`, whose full name is `service`, its
/// `NamedService::NAME`) on `listener`, with the standard gRPC health
/// service, until `shutdown` is cancelled; then waits for every task on
/// `tasks` to end. The same in identity, chat and billing:
///
/// - health: `service` is SERVING while `pool`'s database answers (checked
///   every 5 s), NOT_SERVING while it does not and once shutting down;
/// - every request gets a span with its path and `x-request-id`, continuing
///   the caller's trace (W3C trace context in the metadata);
/// - `TCP_NODELAY` on every connection (streamed replies are small writes).
pub async fn serve_grpc(
    service: &'static str,
    routes: Routes,
    listener: TcpListener,
    pool: aichat_db::Pool,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(service, ServingStatus::Serving)
        .await;
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            loop {
                let status = match aichat_db::check(&pool).await {
                    Ok(()) => ServingStatus::Serving,
                    Err(_) => ServingStatus::NotServing,
                };
                reporter.set_service_status(service, status).await;
                tokio::select! {
                    () = tokio::time::sleep(HEALTH_CHECK_EVERY) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            reporter
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        });
    }

    let addr = listener.local_addr()?;
    tracing::info!(%addr, service, "gRPC listening");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = Server::builder()
        .trace_fn(request_span)
        .add_routes(routes.add_service(health))
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned())
        .await
        .context("serving gRPC");
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!(service, "stopped");
    served
}

/// The span of one gRPC request, child of the caller's trace if it sent one.
fn request_span(request: &http::Request<()>) -> tracing::Span {
    let header = |name: &str| request.headers().get(name)?.to_str().ok();
    let span = tracing::info_span!(
        "grpc",
        path = %request.uri().path(),
        request_id = %header("x-request-id").unwrap_or(""),
    );
    let trace: HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), header(k)?.to_owned())))
        .collect();
    if !trace.is_empty() {
        aichat_telemetry::set_parent_from_headers(&span, &trace);
    }
    span
}
