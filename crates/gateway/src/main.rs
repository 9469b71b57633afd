//! The gateway binary: parse the command, read config, run.

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "gateway", about = "The HTTP edge of the AI chat platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP on HTTP_ADDR.
    Serve,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli {
        command: Command::Serve,
    } = Cli::parse();
    let _telemetry = aichat_telemetry::init("gateway")?;
    let config = aichat_gateway::Config::from_env()?;
    let listener = std::net::TcpListener::bind(&config.http_addr)
        .with_context(|| format!("binding HTTP_ADDR {}", config.http_addr))?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the signal watcher lives as long as the process"
    )]
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        tracing::info!("shutting down");
        signal.cancel();
    });
    aichat_gateway::run(listener, config, shutdown).await
}
