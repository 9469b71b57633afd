//! `TestApp`: a whole account stack per test.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failure fails the test"
)]

use std::time::Duration;

use aichat_analytics::testing::TestAnalytics;
use aichat_billing::testing::TestBilling;
use aichat_chat::testing::{Providers, TestChat};
use aichat_gateway::Config;
use aichat_identity::testing::{TestIdentity, amqp_url, unique_exchange};
use aichat_messaging::AmqpConfig;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub identity: TestIdentity,
    pub billing: TestBilling,
    pub chat: TestChat,
    /// Only with [`TestApp::spawn_with_analytics`]: the gateway's
    /// `analytics_url` points at it (else at a closed port).
    pub analytics: Option<TestAnalytics>,
    /// The mock LLM server's base URL (`/_mock/...` controls it).
    pub mock: String,
    pub base: String,
    pub client: reqwest::Client,
    pub amqp: AmqpConfig,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

pub struct Gateway {
    pub base: String,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Login {
    pub access: String,
    pub refresh: String,
    pub user: Value,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_configured(tweak, |_| {}, |_| {}).await
    }

    /// With changes to the gateway's and to chat's configuration.
    pub async fn spawn_with_chat(
        tweak: impl FnOnce(&mut Config),
        chat_tweak: impl FnOnce(&mut aichat_chat::Config),
    ) -> Self {
        Self::spawn_configured(tweak, |_| {}, chat_tweak).await
    }

    /// Also changes billing's configuration (its `DATABASE_URL` through a
    /// `ChaosProxy`, ...) before it starts.
    pub async fn spawn_with_billing(
        tweak: impl FnOnce(&mut Config),
        adjust_billing: impl FnOnce(&mut aichat_billing::Config),
    ) -> Self {
        Self::spawn_configured(tweak, adjust_billing, |_| {}).await
    }

    /// The gateway's, billing's and chat's configuration changed by the test.
    pub async fn spawn_configured(
        tweak: impl FnOnce(&mut Config),
        adjust_billing: impl FnOnce(&mut aichat_billing::Config),
        chat_tweak: impl FnOnce(&mut aichat_chat::Config),
    ) -> Self {
        Self::spawn_stack(tweak, adjust_billing, chat_tweak, false).await
    }

    /// With an analytics service too (on the same exchange, its queue bound
    /// before any event is published, reading billing's plans), and
    /// billing's configuration changed by the test.
    pub async fn spawn_with_analytics(
        adjust_billing: impl FnOnce(&mut aichat_billing::Config),
    ) -> Self {
        Self::spawn_stack(|_| {}, adjust_billing, |_| {}, true).await
    }

    async fn spawn_stack(
        tweak: impl FnOnce(&mut Config),
        adjust_billing: impl FnOnce(&mut aichat_billing::Config),
        chat_tweak: impl FnOnce(&mut aichat_chat::Config),
        with_analytics: bool,
    ) -> Self {
        let amqp = AmqpConfig {
            url: amqp_url(),
            exchange: unique_exchange(),
            ephemeral: true,
        };
        let identity = TestIdentity::spawn(amqp.clone())
            .await
            .expect("identity starts");
        let billing = TestBilling::spawn_with(amqp.clone(), adjust_billing)
            .await
            .expect("billing starts");
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mock_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mock = format!("http://{}", mock_listener.local_addr().unwrap());
        let mock_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let config = aichat_mockllm::MockConfig {
                ttft: Duration::from_millis(5),
                token_delay: Duration::from_millis(1),
                reply_tokens: 12,
            };
            if let Err(e) = aichat_mockllm::run(mock_listener, config, mock_shutdown).await {
                panic!("mock LLM failed: {e:#}");
            }
        });
        let chat = TestChat::spawn_with(
            amqp.clone(),
            &billing.url,
            Providers::mock(&mock),
            chat_tweak,
        )
        .await
        .expect("chat starts");
        let analytics = if with_analytics {
            Some(
                TestAnalytics::spawn_with(amqp.clone(), |c| {
                    c.billing_grpc_url = Some(billing.url.clone());
                })
                .await
                .expect("analytics starts"),
            )
        } else {
            None
        };
        let mut app = Self {
            identity,
            billing,
            chat,
            analytics,
            mock,
            base: String::new(),
            // Idle connections are dropped before the gateway's keep-alive
            // (actix: 5 s) closes them: a request sent on a connection the
            // server is closing at that moment fails with IncompleteMessage
            // (seen once in CI, a POST in outage.rs, which reqwest cannot
            // retry), a race of the test's client, not of the gateway.
            client: reqwest::Client::builder()
                .user_agent("aichat-tests/1")
                .pool_idle_timeout(std::time::Duration::from_secs(3))
                .build()
                .unwrap(),
            amqp,
            shutdown,
            tasks,
        };
        app.base = app.gateway_with(tweak).await.base;
        app
    }

    /// Starts one more gateway on the same identity service and exchange.
    pub async fn gateway_with(&self, tweak: impl FnOnce(&mut Config)) -> Gateway {
        let mut config = Config {
            http_addr: "127.0.0.1:0".into(),
            http_workers: 1,
            keep_alive: Duration::from_secs(75),
            identity_url: self.identity.url.clone(),
            chat_url: self.chat.url.clone(),
            billing_url: self.billing.url.clone(),
            // Without an analytics service the admin routes' refusals come
            // before any call, and a call finds it down.
            analytics_url: self
                .analytics
                .as_ref()
                .map_or_else(|| Self::closed_port_url("http"), |a| a.url.clone()),
            amqp: self.amqp.clone(),
            access_token_ttl: Duration::from_secs(900),
            revocation_resync: Duration::from_secs(30),
            cors_allowed_origins: vec!["https://app.example.com".into()],
            trusted_proxies: 0,
            json_body_limit: 256 * 1024,
            rate_limit_multiplier: 1,
            grpc_timeout: Duration::from_secs(15),
            chat_stream_timeout: Duration::from_secs(600),
            web_dir: "/nonexistent/web/dist".into(),
            refresh_cookie_max_age: Duration::from_secs(30 * 24 * 3600),
        };
        tweak(&mut config);
        // With the test's broker, wait until it follows revocation events
        // too, so a revocation made next is seen within a second.
        let follows_events = config.amqp.url == self.amqp.url;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            if let Err(e) = aichat_gateway::run(listener, config, shutdown).await {
                panic!("gateway failed: {e:#}");
            }
        });
        // Ready once it has the signing keys and the deny list.
        for _ in 0..400 {
            if let Ok(r) = self
                .client
                .get(format!("{base}/readyz?verbose"))
                .send()
                .await
                && r.status() == StatusCode::OK
                && (!follows_events
                    || r.json::<Value>().await.unwrap()["revocationEvents"] == "subscribed")
            {
                return Gateway { base };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway did not become ready");
    }

    /// A URL where nothing listens (a stopped service).
    pub fn closed_port_url(scheme: &str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("{scheme}://{addr}")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        self.call_at(&self.base, method, path, token, body).await
    }

    pub async fn call_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    /// A GET asking for `accept` (`text/csv`, ...).
    pub async fn get_as(&self, path: &str, token: Option<&str>, accept: &str) -> Response {
        let mut req = self.client.get(self.url(path)).header("Accept", accept);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn register(&self, email: &str) -> Response {
        self.post(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "name": "Ada Lovelace"}),
        )
        .await
    }

    pub async fn login_response(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str) -> Login {
        let r = self.login_response(email, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        Login {
            access: body["accessToken"].as_str().unwrap().to_owned(),
            refresh: body["refreshToken"].as_str().unwrap().to_owned(),
            user: body["user"].clone(),
        }
    }

    /// Registers (without verifying) and logs in.
    pub async fn signup(&self, email: &str) -> Login {
        assert_eq!(self.register(email).await.status(), StatusCode::CREATED);
        self.login(email).await
    }

    /// Signs a user up and makes them an admin as `identity make-admin`
    /// does, then logs in again: the new access token carries the role.
    pub async fn admin(&self, email: &str) -> Login {
        let before = self.signup(email).await;
        assert_eq!(before.user["role"], "user");
        let accounts = aichat_identity::accounts(
            &self.identity.config,
            self.identity.pool().unwrap(),
            aichat_messaging::relay::Waker::default(),
            aichat_identity::mail::worker::MailWaker::default(),
        )
        .unwrap();
        let user = accounts.make_admin(email).await.unwrap();
        assert_eq!(user.role, "admin");
        let login = self.login(email).await;
        assert_eq!(login.user["role"], "admin", "{}", login.user);
        login
    }

    pub async fn me(&self, token: &str) -> Response {
        self.call(Method::GET, "/api/v1/me", Some(token), None)
            .await
    }

    /// Polls until `GET /me` with `token` answers `status`; how long it took.
    pub async fn until_me_is(
        &self,
        base: &str,
        token: &str,
        status: StatusCode,
        within: Duration,
    ) -> Option<Duration> {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            let r = self
                .call_at(base, Method::GET, "/api/v1/me", Some(token), None)
                .await;
            if r.status() == status {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Rows in an identity table.
    pub async fn count(&self, sql_from_where: &str) -> i64 {
        let pool = self.identity.pool().unwrap();
        let mut conn = pool.get().await.unwrap();
        let c: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {sql_from_where}"))
            .get_result(&mut conn)
            .await
            .unwrap();
        c.n
    }

    /// Runs a statement on the identity database (to age a token, ...).
    pub async fn execute(&self, sql: &str) {
        let pool = self.identity.pool().unwrap();
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    /// Checks the outbox drained, stops everything, removes the exchange.
    pub async fn finish(self) {
        self.identity
            .outbox_drained()
            .await
            .expect("every identity event was published");
        self.chat
            .outbox_drained()
            .await
            .expect("every chat event was published");
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Ok((conn, channel)) = aichat_messaging::connect(&self.amqp).await {
            let _ = channel
                .exchange_delete(self.amqp.exchange.as_str().into(), Default::default())
                .await;
            let _ = conn.close(200, "done".into()).await;
        }
        let TestApp {
            identity,
            billing,
            chat,
            analytics,
            ..
        } = self;
        if let Some(analytics) = analytics {
            analytics.stop().await;
        }
        chat.stop().await;
        billing.stop().await;
        identity.stop().await;
    }
}

/// The problem body of a response, after checking its status and media type.
pub async fn problem(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    let content_type = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(body["type"].as_str().unwrap().ends_with(code), "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// A private queue on the test exchange, to see what services publish.
pub struct EventTap {
    connection: lapin::Connection,
    consumer: tokio::sync::Mutex<lapin::Consumer>,
}

impl EventTap {
    pub async fn bind(amqp: &AmqpConfig, routing_key: &str) -> Self {
        use lapin::{options::*, types::FieldTable};
        let (connection, channel) = aichat_messaging::connect(amqp).await.unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.name().clone(),
                amqp.exchange.as_str().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            connection,
            consumer: tokio::sync::Mutex::new(consumer),
        }
    }

    /// The next event, parsed.
    pub async fn next(&self, within: Duration) -> Option<Value> {
        use futures::StreamExt;
        let mut consumer = self.consumer.lock().await;
        let delivery = tokio::time::timeout(within, consumer.next())
            .await
            .ok()??
            .ok()?;
        serde_json::from_slice(&delivery.data).ok()
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
