//! An identity service for tests (feature `testing`): its own fresh
//! database, its own exchange, its own mail folder, serving gRPC on a free
//! port of 127.0.0.1. Used by identity's tests and by the gateway's.

use std::{path::PathBuf, time::Duration};

use aichat_db::testing::{Template, TestDatabase};
use aichat_messaging::AmqpConfig;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use crate::config::{Config, MailTransport};

/// The identity migrations as a test template.
pub static TEMPLATE: Template = Template::new("identity", &crate::MIGRATIONS);

/// A running identity service.
pub struct TestIdentity {
    pub db: TestDatabase,
    pub config: Config,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub mail_dir: PathBuf,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// A RabbitMQ exchange name no other test uses.
pub fn unique_exchange() -> String {
    format!("aichat.test.{}", Uuid::now_v7().simple())
}

/// The broker the tests use: `TEST_AMQP_URL`, or the local one.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

impl TestIdentity {
    /// Starts one, publishing to `amqp`.
    pub async fn spawn(amqp: AmqpConfig) -> anyhow::Result<Self> {
        Self::spawn_with(amqp, |_| {}).await
    }

    /// Starts one, publishing to `amqp`, with `configure` applied to its
    /// test configuration (another mail transport, other timeouts).
    pub async fn spawn_with(
        amqp: AmqpConfig,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let db = TestDatabase::new(&TEMPLATE).await?;
        let mail_dir =
            std::env::temp_dir().join(format!("aichat-mail-{}", Uuid::now_v7().simple()));
        let mut config = Config {
            database_url: db.url().to_owned(),
            db_pool_size: 8,
            grpc_addr: "127.0.0.1:0".to_owned(),
            amqp,
            jwt_private_key_file: None,
            jwt_previous_public_keys: Vec::new(),
            jwt_issuer: "aichat-identity".to_owned(),
            jwt_audience: "aichat".to_owned(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            mail: MailTransport::File(mail_dir.clone()),
            smtp_timeout: Duration::from_secs(5),
            mail_max_attempts: 8,
            mail_retry_base: Duration::from_millis(200),
            mail_from: "AI Chat <no-reply@localhost>".to_owned(),
            public_url: "http://localhost:8080".to_owned(),
            retention_days: 7,
            retention_interval: Duration::from_secs(3600),
        };
        configure(&mut config);
        // As `identity migrate` does before any service starts.
        crate::declare_queues(&config.amqp).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (run_config, run_shutdown) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(error) = crate::run(listener, run_config, run_shutdown).await {
                tracing::error!(error = format!("{error:#}"), "test identity failed");
            }
        });
        let me = Self {
            db,
            config,
            url,
            mail_dir,
            shutdown,
            tasks,
        };
        me.wait_until_serving().await?;
        Ok(me)
    }

    async fn wait_until_serving(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            if let Ok(mut client) =
                aichat_proto::identity::v1::identity_client::IdentityClient::connect(
                    self.url.clone(),
                )
                .await
                && client
                    .get_signing_keys(aichat_proto::identity::v1::Empty {})
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("the test identity service did not come up")
    }

    /// A pool on its database, for assertions.
    pub fn pool(&self) -> anyhow::Result<aichat_db::Pool> {
        crate::pool(&self.config)
    }

    /// Every mail written so far, oldest first, as raw RFC 5322 text.
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// The `?token=` of the newest mail to `email` whose link path is `path`
    /// (`verify-email` or `reset-password`).
    pub fn token_from_mail(&self, email: &str, path: &str) -> Option<String> {
        let needle = format!("/{path}?token=");
        self.mails()
            .into_iter()
            .rev()
            .filter(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(email)))
            .find_map(|m| {
                let unfolded = m
                    .replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=");
                let start = unfolded.find(&needle)? + needle.len();
                Some(
                    unfolded[start..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect(),
                )
            })
    }

    /// Waits until the mail worker has sent every queued mail, or fails.
    /// Mails leave after the request that queued them has answered; call
    /// this before reading [`Self::mails`].
    pub async fn mail_sent(&self) -> anyhow::Result<()> {
        let pool = self.pool()?;
        for _ in 0..400 {
            let mut conn = pool.get().await?;
            if crate::store::mail::pending(&mut conn).await? == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::bail!("mails are still waiting to be sent")
    }

    /// Like [`Self::token_from_mail`], once every queued mail has been sent.
    pub async fn wait_for_token(&self, email: &str, path: &str) -> Option<String> {
        self.mail_sent().await.ok()?;
        self.token_from_mail(email, path)
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
        anyhow::bail!("the outbox still holds unpublished events")
    }

    /// Stops the service and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}

impl Drop for TestIdentity {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}
