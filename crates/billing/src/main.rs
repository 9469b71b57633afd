//! The billing binary: parse the command, read config, run.

use aichat_billing::Config;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "billing",
    about = "Plans, token usage and quota reservations of the AI chat platform"
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
    /// Find or create each paid plan's Stripe Product and monthly/yearly
    /// Prices (by lookup key, `aichat_plus_month`...), store their ids in
    /// plans, and exit. Does nothing without STRIPE_SECRET_KEY.
    StripeSync,
    /// List every subscription in Stripe, repair the local rows that
    /// differ (a missed webhook), and exit. Does nothing without
    /// STRIPE_SECRET_KEY.
    Reconcile,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = aichat_telemetry::init("billing")?;
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(&config.grpc_addr)
                .await
                .with_context(|| format!("binding GRPC_ADDR {}", config.grpc_addr))?;
            aichat_billing::run(listener, config, aichat_lifecycle::shutdown_on_signal()).await
        }
        Command::Migrate => {
            let applied = aichat_billing::migrate(&config.database_url).await?;
            tracing::info!(applied, "billing database migrated");
            aichat_billing::declare_queues(&config.amqp).await?;
            tracing::info!(exchange = %config.amqp.exchange, "billing queues declared");
            Ok(())
        }
        Command::ReplayDlq => {
            let moved =
                aichat_messaging::dlq::replay(&config.amqp, aichat_billing::events::QUEUE).await?;
            tracing::info!(moved, "dead letters moved back to the billing queue");
            Ok(())
        }
        Command::StripeSync => {
            if let Some(done) = aichat_billing::stripe_sync(&config).await? {
                tracing::info!(
                    plans = done.plans,
                    products.created = done.products_created,
                    prices.created = done.prices_created,
                    plans.updated = done.plans_updated,
                    "plans in step with Stripe"
                );
            }
            Ok(())
        }
        Command::Reconcile => {
            if let Some(done) = aichat_billing::reconcile_once(&config).await? {
                tracing::info!(
                    subscriptions.listed = done.listed,
                    subscriptions.repaired = done.repaired,
                    subscriptions.skipped = done.skipped,
                    subscriptions.failed = done.failed,
                    "reconciled with Stripe"
                );
            }
            Ok(())
        }
    }
}
