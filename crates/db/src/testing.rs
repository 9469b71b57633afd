//! The per-test database harness (crates.io's `TestDatabase`, one for every
//! service): migrations run once per process into a template database named
//! after a hash of the migrations, and each test gets its own copy,
//! `CREATE DATABASE … TEMPLATE`, dropped when the handle is dropped.
//!
//! Databases are named `aichat_t_<pid>_…`; those left by a process that died
//! (its pid no longer runs) are swept when a process sets up its templates.

mod chaos;

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::EmbeddedMigrations;
use tokio::sync::OnceCell;

pub use chaos::ChaosProxy;

/// The server the tests use; `TEST_DATABASE_URL` overrides it.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn url_for(db: &str) -> String {
    format!("{}/{db}", server_url().trim_end_matches('/'))
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's own database. Dropping it drops the database.
pub struct TestDatabase {
    name: String,
    url: String,
}

/// The migrations of one service, set up once per process as a template.
pub struct Template {
    name: &'static str,
    migrations: &'static EmbeddedMigrations,
    ready: OnceCell<String>,
}

impl Template {
    /// `name` names the service (`identity`, ...).
    pub const fn new(name: &'static str, migrations: &'static EmbeddedMigrations) -> Self {
        Self {
            name,
            migrations,
            ready: OnceCell::const_new(),
        }
    }

    async fn template_name(&'static self) -> anyhow::Result<&'static str> {
        let name = self
            .ready
            .get_or_try_init(|| async {
                // One template per service and process: always built from the
                // migrations this binary embeds, never a stale one.
                let name = format!("aichat_t_{}_tpl_{}", std::process::id(), self.name);
                let mut admin = admin().await?;
                sweep_dead(&mut admin).await?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await?;
                crate::migrate(&url_for(&name), self.name, self.migrations).await?;
                anyhow::Ok(name)
            })
            .await?;
        Ok(name.as_str())
    }
}

impl TestDatabase {
    /// A fresh, migrated database of its own.
    pub async fn new(template: &'static Template) -> anyhow::Result<Self> {
        let tpl = template.template_name().await?;
        let name = format!(
            "aichat_t_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin().await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {tpl}"))
            .await
            .with_context(|| format!("creating {name}"))?;
        Ok(Self {
            url: url_for(&name),
            name,
        })
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a thread
        // of its own and wait for it, so the database is gone when the test ends.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = admin().await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = done.join();
    }
}

async fn admin() -> anyhow::Result<AsyncPgConnection> {
    AsyncPgConnection::establish(&url_for("postgres"))
        .await
        .context("connecting to the test PostgreSQL server (TEST_DATABASE_URL)")
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Drops test databases and templates whose process is gone.
async fn sweep_dead(admin: &mut AsyncPgConnection) -> anyhow::Result<()> {
    let all: Vec<Name> = sql_query(
        "SELECT datname::text AS datname FROM pg_database \
         WHERE datname LIKE 'aichat\\_t\\_%'",
    )
    .load(admin)
    .await?;
    for Name { datname } in all {
        let pid = datname
            .strip_prefix("aichat_t_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if pid.is_some() && !alive {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"))
                .await;
        }
    }
    Ok(())
}
