//! The identity binary: parse the command, read config, run.

use aichat_identity::{Config, service};
use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: each password hash (argon2id)
/// takes a 19 MiB buffer, and glibc's allocator kept ~280 MiB of them after a
/// load of sign-ups and log-ins where mimalloc keeps ~45 MiB
/// (docs/benchmarks.md, "A/B"). The other services measured no CPU gain and
/// more memory with it, so they keep the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "identity",
    about = "Accounts, sessions and tokens of the AI chat platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve gRPC on GRPC_ADDR.
    Serve,
    /// Run the pending database migrations, declare the service's RabbitMQ
    /// queues and bindings, and exit.
    Migrate,
    /// Move every message of the dead-letter queue back to the service's
    /// queue (after the cause was fixed), and exit.
    ReplayDlq,
    /// Give the user with this email the admin role.
    MakeAdmin {
        #[arg(long)]
        email: String,
    },
    /// Print a new Ed25519 private key (PKCS#8 PEM) for JWT_PRIVATE_KEY_FILE.
    Keygen,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Keygen = cli.command {
        use std::io::Write;
        std::io::stdout().write_all(aichat_tokens::Signer::generate_pem().as_bytes())?;
        return Ok(());
    }
    let _telemetry = aichat_telemetry::init("identity")?;
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(&config.grpc_addr)
                .await
                .with_context(|| format!("binding GRPC_ADDR {}", config.grpc_addr))?;
            aichat_identity::run(listener, config, aichat_lifecycle::shutdown_on_signal()).await
        }
        Command::Migrate => {
            let applied = aichat_identity::migrate(&config.database_url).await?;
            tracing::info!(applied, "identity database migrated");
            aichat_identity::declare_queues(&config.amqp).await?;
            tracing::info!(exchange = %config.amqp.exchange, "identity queues declared");
            Ok(())
        }
        Command::ReplayDlq => {
            let moved =
                aichat_messaging::dlq::replay(&config.amqp, aichat_identity::events::QUEUE).await?;
            tracing::info!(moved, "dead letters moved back to the identity queue");
            Ok(())
        }
        Command::MakeAdmin { email } => {
            aichat_identity::migrate(&config.database_url).await?;
            let pool = aichat_identity::pool(&config)?;
            let accounts = aichat_identity::accounts(
                &config,
                pool,
                aichat_messaging::relay::Waker::default(),
                aichat_identity::mail::worker::MailWaker::default(),
            )?;
            match accounts.make_admin(&email).await {
                Ok(user) => {
                    tracing::info!(user.id = %user.id, email = %user.email, "the user is now an admin");
                    Ok(())
                }
                Err(service::Error::NotFound) => anyhow::bail!("no user has the email {email}"),
                Err(e) => Err(e.into()),
            }
        }
        Command::Keygen => Ok(()),
    }
}
