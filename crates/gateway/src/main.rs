//! The gateway binary: parse the command, read config, run.

use anyhow::Context;
use clap::{Parser, Subcommand};

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
    aichat_gateway::run(listener, config, aichat_lifecycle::shutdown_on_signal()).await
}
