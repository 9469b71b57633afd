//! The analytics binary: parse the command, read config, run.

use aichat_analytics::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "analytics",
    about = "The operators' figures of the AI chat platform, from every event"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve gRPC on GRPC_ADDR and consume events.
    Serve,
    /// Run the pending database migrations, declare the service's RabbitMQ
    /// queues and bindings, and exit.
    Migrate,
    /// Move every message of the dead-letter queue back to the service's
    /// queue (after the cause was fixed), and exit.
    ReplayDlq,
    /// Build the read models from the owning services' rows
    /// (IDENTITY_GRPC_URL, CHAT_GRPC_URL, BILLING_GRPC_URL), paged and
    /// resumable, and exit. Safe to run while `serve` consumes events, and
    /// twice.
    Backfill,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = aichat_telemetry::init("analytics")?;
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(&config.grpc_addr)
                .await
                .with_context(|| format!("binding GRPC_ADDR {}", config.grpc_addr))?;
            aichat_analytics::run(listener, config, aichat_lifecycle::shutdown_on_signal()).await
        }
        Command::Migrate => {
            let applied = aichat_analytics::migrate(&config.database_url).await?;
            tracing::info!(applied, "analytics database migrated");
            aichat_analytics::declare_queues(&config.amqp).await?;
            tracing::info!(exchange = %config.amqp.exchange, "analytics queues declared");
            Ok(())
        }
        Command::ReplayDlq => {
            let moved =
                aichat_messaging::dlq::replay(&config.amqp, aichat_analytics::events::QUEUE)
                    .await?;
            tracing::info!(moved, "dead letters moved back to the analytics queue");
            Ok(())
        }
        Command::Backfill => {
            let report = aichat_analytics::backfill(&config).await?;
            for (source, rows) in report.applied {
                tracing::info!(source, rows, "backfilled");
            }
            Ok(())
        }
    }
}
