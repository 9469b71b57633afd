//! A chat service for tests (feature `testing`): its own fresh database,
//! serving gRPC on a free port of 127.0.0.1, with the providers pointed at
//! a base URL of the caller's (the mock LLM server).

use std::time::Duration;

use aichat_config::SecretString;
use aichat_db::testing::{Template, TestDatabase};
use aichat_messaging::AmqpConfig;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::config::{Config, ProviderEndpoint};

/// The chat migrations as a test template.
pub static TEMPLATE: Template = Template::new("chat", &crate::MIGRATIONS);

/// A running chat service.
pub struct TestChat {
    pub db: TestDatabase,
    pub config: Config,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Where the providers of a test chat service are.
pub struct Providers {
    pub openai: String,
    pub anthropic: String,
    pub google: String,
}

impl Providers {
    /// All three at one mock server (`http://127.0.0.1:<port>`).
    pub fn mock(base: &str) -> Self {
        Self {
            openai: format!("{base}/v1"),
            anthropic: base.to_owned(),
            google: base.to_owned(),
        }
    }
}

impl TestChat {
    /// Starts one, publishing to `amqp`, reserving at `billing_url`.
    pub async fn spawn(
        amqp: AmqpConfig,
        billing_url: &str,
        providers: Providers,
    ) -> anyhow::Result<Self> {
        Self::spawn_with(amqp, billing_url, providers, |_| {}).await
    }

    /// The same, with the test's changes to the configuration.
    pub async fn spawn_with(
        amqp: AmqpConfig,
        billing_url: &str,
        providers: Providers,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let db = TestDatabase::new(&TEMPLATE).await?;
        let endpoint = |base_url: String| ProviderEndpoint {
            base_url,
            api_key: SecretString::from("test-key"),
        };
        let config = Config {
            database_url: db.url().to_owned(),
            db_pool_size: 8,
            grpc_addr: "127.0.0.1:0".to_owned(),
            billing_url: billing_url.to_owned(),
            amqp,
            openai: endpoint(providers.openai),
            anthropic: endpoint(providers.anthropic),
            google: endpoint(providers.google),
            provider_max_attempts: 3,
            breaker_threshold: 3,
            breaker_cool_down_secs: 1,
            sends_per_minute: Vec::new(),
            checkpoint_every: Duration::from_millis(200),
            delta_flush: Duration::from_millis(16),
            replica_timeout: Duration::from_secs(1),
            stale_call_after: Duration::from_secs(900),
        };
        let mut config = config;
        tweak(&mut config);
        // As `chat migrate` does before any service starts.
        crate::declare_queues(&config.amqp).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (run_config, run_shutdown) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(error) = crate::run(listener, run_config, run_shutdown).await {
                tracing::error!(error = format!("{error:#}"), "test chat failed");
            }
        });
        let me = Self {
            db,
            config,
            url,
            shutdown,
            tasks,
        };
        for _ in 0..200 {
            if let Ok(mut client) =
                aichat_proto::chat::v1::chat_client::ChatClient::connect(me.url.clone()).await
                && client
                    .list_models(aichat_proto::chat::v1::Empty {})
                    .await
                    .is_ok()
            {
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("the test chat service did not come up")
    }

    /// A pool on its database, for assertions.
    pub fn pool(&self) -> anyhow::Result<aichat_db::Pool> {
        crate::pool(&self.config)
    }

    /// Waits until the relay has published every event, or fails.
    pub async fn outbox_drained(&self) -> anyhow::Result<()> {
        let pool = self.pool()?;
        for _ in 0..400 {
            let mut conn = pool.get().await?;
            if aichat_messaging::outbox::pending(&mut conn).await? == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("the chat outbox still holds unpublished events")
    }

    /// Stops the service and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for TestChat {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
