#![doc = include_str!("../README.md")]

mod config;
mod control;
mod faults;
mod formats;
mod reply;
mod state;

use std::net::SocketAddr;

use actix_web::{
    App, HttpResponse, HttpServer,
    body::MessageBody,
    dev::{ServiceFactory, ServiceRequest, ServiceResponse},
    web,
};
use anyhow::Context;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::MockConfig;
pub use faults::Fault;
use state::State;

/// The largest request body accepted: long conversations are large.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Serves the mock on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: std::net::TcpListener,
    config: MockConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = web::Data::new(State::new(config));
    let addr = listener.local_addr()?;
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let server = HttpServer::new(move || app(state.clone()))
        .workers(workers)
        // Tokens are small writes; without this, Nagle's algorithm holds one
        // back until the client's delayed ACK (about 40 ms).
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)
        .context("listening")?
        .run();
    tracing::info!(%addr, "mock LLM listening");
    let handle = server.handle();
    // Stops the server on shutdown; released when the server ends by itself.
    let stopped = shutdown.child_token();
    let tasks = TaskTracker::new();
    tasks.spawn({
        let stopped = stopped.clone();
        async move {
            stopped.cancelled().await;
            handle.stop(true).await;
        }
    });
    tasks.close();
    let served = server.await.context("serving HTTP");
    stopped.cancel();
    tasks.wait().await;
    tracing::info!("mock LLM stopped");
    served
}

/// The routes: the three provider APIs and the `/_mock` control API.
fn app(
    state: web::Data<State>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(BODY_LIMIT))
        .app_data(web::JsonConfig::default().limit(BODY_LIMIT))
        .route(
            "/v1/chat/completions",
            web::post().to(formats::openai::handle),
        )
        .route("/v1/messages", web::post().to(formats::anthropic::handle))
        // `{call}` is `{model}:{method}`: one segment, colon and all.
        .route(
            "/v1beta/models/{call}",
            web::post().to(formats::google::handle),
        )
        .service(
            web::scope("/_mock")
                .route("/faults", web::post().to(control::queue_faults))
                .route("/faults", web::delete().to(control::clear_faults))
                .route("/config", web::get().to(control::config))
                .route("/config", web::put().to(control::set_config))
                .route("/stats", web::get().to(control::stats)),
        )
        .route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().body("ok") }),
        )
}

/// A mock running in this process on an ephemeral port, for tests. Dropping
/// it stops the server; [`MockServer::stop`] also waits for it.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl MockServer {
    /// Binds `127.0.0.1:0` and serves there. Connections are accepted (by
    /// the kernel) as soon as this returns.
    pub async fn start(config: MockConfig) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(error) = run(listener, config, shutdown).await {
                    tracing::error!(error = format!("{error:#}"), "the mock LLM failed");
                }
            }
        });
        tasks.close();
        Ok(Self {
            addr,
            shutdown,
            tasks,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}`: the Anthropic and Google base URL; OpenAI
    /// clients want [`Self::openai_base_url`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:{port}/v1`, as OpenAI SDKs take their base URL.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Stops the server and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.wait().await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
