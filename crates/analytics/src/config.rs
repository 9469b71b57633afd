//! The analytics service's configuration.

use std::time::Duration;

use aichat_config::ConfigError;
use aichat_messaging::AmqpConfig;

/// Everything the service reads from the environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/analytics` | its database |
/// | `DB_POOL_SIZE` | 2 × CPUs | most database connections |
/// | `GRPC_ADDR` | `127.0.0.1:50054` | where `serve` listens |
/// | `AMQP_URL`, `AMQP_EXCHANGE` | local RabbitMQ, `aichat.events` | events (analytics' queue is `<exchange>.analytics`) |
/// | `MAINTENANCE_INTERVAL_SECS` | `300` | how often `serve` snapshots today's MRR, re-reads billing's plans, creates the next months' partitions |
/// | `CONSUME_BATCH` | `1000` | events applied in one transaction at most (1..=1000; 1: one event per transaction; two batches are prefetched) |
/// | `IDENTITY_GRPC_URL` | empty | identity, for `backfill` (`ExportUsers`) |
/// | `CHAT_GRPC_URL` | empty | chat, for `backfill` (`ExportConversations`, `ExportMessages`, `ExportTokenUsage`) |
/// | `BILLING_GRPC_URL` | empty | billing: `ListPlans` at start-up and every maintenance round, and `backfill` (`ExportSubscriptions`, `ExportPayments`, `ExportInvoices`); empty: plans are only read by backfill |
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub db_pool_size: usize,
    pub grpc_addr: String,
    pub amqp: AmqpConfig,
    /// The period of the maintenance round.
    pub maintenance_interval: Duration,
    /// Most events applied in one transaction (1: one at a time).
    pub consume_batch: usize,
    pub identity_grpc_url: Option<String>,
    pub chat_grpc_url: Option<String>,
    pub billing_grpc_url: Option<String>,
}

impl Config {
    /// Reads the environment; see the table above.
    pub fn from_env() -> Result<Self, ConfigError> {
        let maintenance_interval = aichat_config::seconds("MAINTENANCE_INTERVAL_SECS", 300)?;
        if maintenance_interval < Duration::from_secs(1) {
            return Err(ConfigError {
                name: "MAINTENANCE_INTERVAL_SECS".to_owned(),
                value: maintenance_interval.as_secs().to_string(),
                reason: "must be at least 1".to_owned(),
            });
        }
        let consume_batch: usize = aichat_config::parse("CONSUME_BATCH", 1000)?;
        if !(1..=1000).contains(&consume_batch) {
            return Err(ConfigError {
                name: "CONSUME_BATCH".to_owned(),
                value: consume_batch.to_string(),
                reason: "must be 1 to 1000".to_owned(),
            });
        }
        Ok(Self {
            database_url: aichat_config::string(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/analytics",
            ),
            db_pool_size: aichat_config::parse(
                "DB_POOL_SIZE",
                2 * std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(2),
            )?,
            grpc_addr: aichat_config::string("GRPC_ADDR", "127.0.0.1:50054"),
            amqp: AmqpConfig::from_env(),
            maintenance_interval,
            consume_batch,
            identity_grpc_url: aichat_config::optional("IDENTITY_GRPC_URL"),
            chat_grpc_url: aichat_config::optional("CHAT_GRPC_URL"),
            billing_grpc_url: aichat_config::optional("BILLING_GRPC_URL"),
        })
    }
}
