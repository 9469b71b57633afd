#![doc = include_str!("../README.md")]

pub mod api_keys;
pub mod auth;
pub mod backends;
pub mod config;
pub mod csv;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod session_cookie;
pub mod sessions;
pub mod state;
pub mod webapp;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix_cors::Cors;
use actix_web::{
    App, HttpMessage, HttpResponse, HttpServer,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
    middleware::{Condition, DefaultHeaders, Next, from_fn},
    web,
};
use aichat_events::identity::{ApiKeyRevoked, SessionRevoked};
use aichat_messaging::consumer::{self, HandlerError, Queue, Spec};
use aichat_proto::{
    analytics::v1::analytics_client::AnalyticsClient, billing::v1::billing_client::BillingClient,
    chat::v1::chat_client::ChatClient, identity::v1::identity_client::IdentityClient,
};
use anyhow::Context;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::transport::Endpoint;
use tracing::Instrument;

pub use config::Config;
use problem::{Code, Problem};
use routes::RequestId;
use sessions::Sessions;
use state::{AppState, Limits};

/// Serves HTTP on `listener` until `shutdown` is cancelled, with the
/// background work the gateway needs (signing keys, deny list, revocation
/// feed, backend probes).
pub async fn run(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let unary = config.grpc_timeout;
    let endpoint = service_endpoint(&config.identity_url, unary).context("IDENTITY_GRPC_URL")?;
    let chat_endpoint = service_endpoint(&config.chat_url, unary).context("CHAT_GRPC_URL")?;
    let chat_stream_endpoint =
        service_endpoint(&config.chat_url, config.chat_stream_timeout).context("CHAT_GRPC_URL")?;
    let billing_endpoint =
        service_endpoint(&config.billing_url, unary).context("BILLING_GRPC_URL")?;
    let analytics_endpoint =
        service_endpoint(&config.analytics_url, unary).context("ANALYTICS_GRPC_URL")?;
    let sessions = Arc::new(Sessions::new(
        IdentityClient::new(endpoint.connect_lazy()),
        config.access_token_ttl,
    ));
    let api_keys = Arc::new(api_keys::ApiKeys::new(IdentityClient::new(
        endpoint.connect_lazy(),
    )));
    let tasks = TaskTracker::new();
    tasks.spawn(keep_keys_fresh(sessions.clone(), shutdown.clone()));
    // The deny list comes from identity, not from the broker: a replica
    // that cannot reach RabbitMQ still refuses revoked tokens.
    tasks.spawn(keep_revocations_fresh(
        sessions.clone(),
        config.revocation_resync,
        shutdown.clone(),
    ));
    tasks.spawn(follow_revocations(
        config.amqp.clone(),
        sessions.clone(),
        api_keys.clone(),
        shutdown.clone(),
    ));

    let limits = Arc::new(Limits::new(config.rate_limit_multiplier));
    let metrics = Arc::new(metrics::Metrics::default());
    tasks.spawn(backends::keep_probing(
        backends::Channels {
            identity: endpoint.connect_lazy(),
            chat: chat_endpoint.connect_lazy(),
            billing: billing_endpoint.connect_lazy(),
            analytics: analytics_endpoint.connect_lazy(),
        },
        metrics.clone(),
        Duration::from_secs(5),
        shutdown.clone(),
    ));
    let shared_config = Arc::new(config.clone());
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        // Runs once on each worker thread: the worker's own connection.
        let channel = endpoint.connect_lazy();
        let chat_channel = chat_endpoint.connect_lazy();
        let billing_channel = billing_endpoint.connect_lazy();
        let analytics_channel = analytics_endpoint.connect_lazy();
        app(web::Data::new(AppState {
            identity: IdentityClient::new(channel.clone()),
            chat: ChatClient::new(chat_channel.clone()),
            chat_stream: ChatClient::new(chat_stream_endpoint.connect_lazy()),
            billing: BillingClient::new(billing_channel.clone()),
            analytics: AnalyticsClient::new(analytics_channel.clone()),
            channels: backends::Channels {
                identity: channel,
                chat: chat_channel,
                billing: billing_channel,
                analytics: analytics_channel,
            },
            sessions: sessions.clone(),
            api_keys: api_keys.clone(),
            limits: limits.clone(),
            metrics: metrics.clone(),
            config: shared_config.clone(),
        }))
    })
    .workers(config.http_workers.max(1))
    // actix's default is 5 s: shorter than a proxy's idle upstream
    // connections, which would then meet closing ones (HTTP_KEEP_ALIVE_SECS).
    .keep_alive(config.keep_alive)
    // Streamed replies are many small writes: with Nagle's algorithm on (the
    // OS default actix keeps), a delta can wait for the client's delayed ACK,
    // about 40 ms.
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)
    .context("listening")?
    .run();
    tracing::info!(%addr, "gateway listening");
    let handle = server.handle();
    tasks.spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        }
    });
    let served = server.await.context("serving HTTP");
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!("gateway stopped");
    served
}

/// A backend's gRPC endpoint. No `http2_adaptive_window`: on a short round
/// trip it shrinks the connection window, and h2 (0.4.20) sizes its budget
/// for small DATA frames by that window. Streamed deltas are small frames:
/// with a few hundred replies in flight on a busy gateway the budget ran out
/// and h2 closed the connection with ENHANCE_YOUR_CALM, failing every reply
/// on it. hyper's fixed windows (5 MiB per connection) leave ample room.
///
/// `timeout` is every call's deadline (sent along as `grpc-timeout`); a call
/// past it fails as `Cancelled`, which the gateway answers as 504
/// `upstream_timeout`.
fn service_endpoint(url: &str, timeout: Duration) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .tcp_nodelay(true))
}

/// The actix application: middleware, routes, error shapes.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let json_limit = state.config.json_body_limit;
    let origins = state.config.cors_allowed_origins.clone();
    let cors_enabled = !origins.is_empty();
    let cors = origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers(["x-request-id", "retry-after"])
        .max_age(3600);
    App::new()
        .app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(|error, _| json_problem(&error).into()),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, _| Problem::new(Code::NotFound, "No such resource.").into()),
        )
        .app_data(web::QueryConfig::default().error_handler(|error, _| {
            Problem::new(Code::ValidationFailed, format!("Bad query string: {error}")).into()
        }))
        .service(
            web::scope("/api/v1")
                .configure(routes::accounts::routes)
                .configure(routes::api_keys::routes)
                .configure(routes::chat::routes)
                .configure(routes::billing::routes)
                .configure(routes::analytics::routes),
        )
        .configure(routes::openai::routes)
        .configure(routes::webhooks::routes)
        .configure(test_routes)
        .route("/healthz", web::get().to(routes::ops::healthz))
        .route("/readyz", web::get().to(routes::ops::readyz))
        .route("/metrics", web::get().to(routes::ops::metrics))
        .route("/openapi.json", web::get().to(routes::ops::openapi))
        .default_service(web::to(not_found))
        .wrap(Condition::new(cors_enabled, cors))
        .wrap(
            DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("X-Frame-Options", "DENY"))
                .add(("Referrer-Policy", "no-referrer"))
                .add((
                    "Content-Security-Policy",
                    "default-src 'none'; frame-ancestors 'none'",
                ))
                .add(("Cross-Origin-Resource-Policy", "same-origin"))
                .add((
                    "Strict-Transport-Security",
                    "max-age=63072000; includeSubDomains",
                ))
                .add(("Cache-Control", "no-store")),
        )
        .wrap(from_fn(observe))
}

/// Routes only the tests have (feature `testing`): nothing otherwise.
fn test_routes(_cfg: &mut web::ServiceConfig) {
    #[cfg(feature = "testing")]
    _cfg.route("/_test/api-key", web::get().to(api_keys::whoami));
}

/// The answer to a request no route takes: 405 with `Allow` for a known
/// path (also the default service of each resource), the web app's file
/// or page (see [`webapp`]), else 404.
pub(crate) async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, Problem> {
    let Some(pattern) = req.match_pattern() else {
        // Not a path of the API: perhaps the web app's.
        if let Some(state) = req.app_data::<web::Data<AppState>>()
            && let Some(answer) = webapp::serve(&req, &state.config.web_dir).await
        {
            return answer;
        }
        return Err(Problem::new(Code::NotFound, "No such resource."));
    };
    // A known path with another method: 405 and the methods it has
    // (those of the contract; the operations endpoints answer GET).
    use actix_web::ResponseError as _;
    let mut response = Problem::new(
        Code::MethodNotAllowed,
        format!("{} is not allowed here.", req.method()),
    )
    .error_response();
    let allow = openapi::allowed_methods(&pattern).unwrap_or("GET");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    Ok(response)
}

fn json_problem(error: &actix_web::error::JsonPayloadError) -> Problem {
    use actix_web::error::JsonPayloadError as E;
    match error {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => Problem::new(
            Code::PayloadTooLarge,
            "The JSON body is larger than allowed.",
        ),
        E::ContentType => Problem::new(
            Code::UnsupportedMediaType,
            "Send the body as application/json.",
        ),
        E::Deserialize(e) => Problem::malformed_body(e),
        _ => Problem::new(Code::MalformedBody, "The body could not be read."),
    }
}

/// Per request: a request id (the client's `X-Request-Id` if sane, else a
/// new UUID v7), a span carrying it so every log line has it, one access
/// log line, and the metrics.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let span =
        tracing::info_span!("http", request_id = %request_id, method = %method, route = %route);
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state.metrics.observe(
            metrics::Labels {
                method: method.clone(),
                route: route.clone(),
                status,
            },
            elapsed.as_secs_f64(),
        );
    }
    span.in_scope(|| {
        tracing::info!(status, duration_ms = elapsed.as_secs_f64() * 1000.0, path = %response.request().path(), "request");
    });
    Ok(response)
}

/// Loads the signing keys as soon as identity answers, then refreshes them
/// every five minutes.
async fn keep_keys_fresh(sessions: Arc<Sessions>, shutdown: CancellationToken) {
    let mut failures = 0;
    while !shutdown.is_cancelled() {
        let wait = match sessions.refresh_keys().await {
            Ok(()) => {
                failures = 0;
                Duration::from_secs(300)
            }
            Err(error) => {
                if failures % 20 == 0 {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "cannot load signing keys from identity yet"
                    );
                }
                failures += 1;
                aichat_messaging::backoff(failures.min(6))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => {}
        }
        sessions.prune();
    }
}

/// Loads the deny list from identity as soon as identity answers (tokens
/// are refused with 503 until then), then reloads it every `resync`: events
/// tell revocations within a second, this bounds how late one is seen while
/// the broker cannot be reached or an event was lost.
async fn keep_revocations_fresh(
    sessions: Arc<Sessions>,
    resync: Duration,
    shutdown: CancellationToken,
) {
    let mut failures = 0;
    while !shutdown.is_cancelled() {
        let wait = match sessions.load_revocations().await {
            Ok(n) => {
                tracing::debug!(revocations = n, "deny list loaded");
                failures = 0;
                resync
            }
            Err(error) => {
                if failures % 20 == 0 {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "cannot load the deny list from identity"
                    );
                }
                failures += 1;
                aichat_messaging::backoff(failures.min(6))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => {}
        }
    }
}

/// Keeps the deny list in step with identity's revocations as they happen,
/// and drops revoked API keys from their cache at once (which does not rely
/// on it: see [`api_keys`]).
async fn follow_revocations(
    amqp: aichat_messaging::AmqpConfig,
    sessions: Arc<Sessions>,
    api_keys: Arc<api_keys::ApiKeys>,
    shutdown: CancellationToken,
) {
    let spec = Spec {
        queue: Queue::Ephemeral,
        bindings: vec![
            <SessionRevoked as aichat_events::Event>::TYPE.to_owned(),
            <ApiKeyRevoked as aichat_events::Event>::TYPE.to_owned(),
        ],
        prefetch: 64,
        retry: Default::default(),
    };
    let on_connected = {
        let sessions = sessions.clone();
        move || {
            let sessions = sessions.clone();
            async move {
                sessions.events_subscribed();
                // Events missed while disconnected: ask identity.
                match sessions.load_revocations().await {
                    Ok(n) => tracing::debug!(revocations = n, "deny list rebuilt"),
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "cannot rebuild the deny list")
                    }
                }
            }
        }
    };
    consumer::run(amqp, spec, shutdown, on_connected, move |envelope| {
        let sessions = sessions.clone();
        let api_keys = api_keys.clone();
        async move {
            if let Some(event) = envelope.decode::<ApiKeyRevoked>() {
                let event = event.map_err(|e| HandlerError::Permanent(e.into()))?;
                api_keys.forget(event.api_key_id);
                return Ok(());
            }
            match envelope.decode::<SessionRevoked>() {
                Some(Ok(event)) => {
                    sessions.revoke(event.session_ids);
                    Ok(())
                }
                Some(Err(error)) => Err(HandlerError::Permanent(error.into())),
                None => Ok(()),
            }
        }
    })
    .await;
}
