#![doc = include_str!("../README.md")]

use std::time::Duration;

use anyhow::Context;
use diesel::{
    Connection, RunQueryDsl,
    connection::SimpleConnection,
    migration::{Migration, MigrationSource},
    pg::Pg,
    sql_query,
};
use diesel_async::{
    AsyncConnection, AsyncPgConnection, SimpleAsyncConnection as _,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, deadpool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

pub mod page;
#[cfg(feature = "testing")]
pub mod testing;

/// The pool type every service uses.
pub type Pool = deadpool::Pool<AsyncPgConnection>;
/// A connection checked out of [`Pool`].
pub type PooledConnection = deadpool::Object<AsyncPgConnection>;
/// The error of [`Pool::get`].
pub type PoolError = deadpool::PoolError;

/// How a service's pool is sized and bounded.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_size: usize,
    /// How long a caller waits for a free connection before `Unavailable`.
    pub wait_timeout: Duration,
    /// Set on every new connection: no query runs longer than this.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// Builds a bounded pool. Connections are opened lazily, so this does not
/// fail when the database is down; [`check`] tells whether it is up.
pub fn pool(url: &str, settings: &PoolSettings) -> anyhow::Result<Pool> {
    let statement_timeout_ms = settings.statement_timeout.as_millis();
    let mut config = ManagerConfig::default();
    // diesel-async's default (`Verified`) runs `SELECT 1` on every checkout:
    // one more round trip per use of the pool. `Fast` still drops a
    // connection in a broken transaction or whose socket the server closed
    // (a restart, a terminated backend): `is_broken` checks both.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement_timeout_ms}; SET TIME ZONE 'UTC'"
            ))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    deadpool::Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.wait_timeout))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// Whether a query failed because the database is away (a lost or refused
/// connection, a server shutting sessions down, a statement timeout): an
/// outage to answer with 503, not a bug.
pub fn is_outage(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        )
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(_, info) => {
            let m = info.message();
            m.starts_with("terminating connection")
                || m.starts_with("canceling statement due to statement timeout")
        }
        _ => false,
    }
}

/// Lets the current transaction commit without waiting for its WAL flush
/// (PostgreSQL's asynchronous commit, `SET LOCAL synchronous_commit = off`).
/// A crash may lose the transaction, never corrupt anything, and no other
/// transaction waits less. Only for transactions whose loss is harmless:
/// a quota reservation (the call it holds quota for is settled from its
/// event anyway), or marking outbox rows published (they are sent again,
/// and consumers deduplicate). Takes a shared reference, so it pipelines
/// with the transaction's next statements.
pub async fn commit_without_flush(conn: &AsyncPgConnection) -> diesel::QueryResult<()> {
    batch(conn, "SET LOCAL synchronous_commit = off").await
}

/// Runs `body` in a transaction whose `BEGIN` travels with the body's first
/// statements. diesel's `transaction` waits for BEGIN's answer before it
/// runs anything: a round trip of its own, which at light load costs as
/// much as a statement (a wake-up of the server and one of the client).
/// Here BEGIN is sent first and the body's statements right behind it, on
/// the same connection: the server runs them in that order (a request goes
/// out when its future is first polled, and `join` polls BEGIN first).
///
/// Like diesel's: COMMIT when the body succeeds, ROLLBACK when it fails. The
/// body gets the connection shared, to pipeline its own statements; it must
/// not open a transaction of its own. A connection that may still be inside
/// the transaction (the future dropped halfway, a ROLLBACK or COMMIT that did
/// not answer) is closed, never handed back to the pool: the pool's recycling
/// only knows the transactions diesel's manager opened.
pub async fn transaction<T, E>(
    conn: PooledConnection,
    body: impl AsyncFnOnce(&AsyncPgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    let mut open = Open(Some(conn));
    let Some(conn) = open.0.as_deref() else {
        return Err(diesel::result::Error::BrokenTransactionManager.into());
    };
    let (begun, result) = futures::join!(batch(conn, "BEGIN"), body(conn));
    // A BEGIN that failed leaves nothing open (the server had no
    // transaction to abort), but the connection is suspect: closed.
    begun?;
    match result {
        Ok(value) => {
            batch(conn, "COMMIT").await?;
            open.close();
            Ok(value)
        }
        Err(error) => {
            if batch(conn, "ROLLBACK").await.is_ok() {
                open.close();
            }
            Err(error)
        }
    }
}

/// Runs `sql` (no parameters) on a shared connection, so it pipelines with
/// the statements around it.
async fn batch(mut conn: &AsyncPgConnection, sql: &str) -> diesel::QueryResult<()> {
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, sql).await
}

/// A connection inside a transaction [`transaction`] opened: unless closed,
/// it is taken out of the pool and dropped (its socket closed, so the
/// server rolls the transaction back).
struct Open(Option<PooledConnection>);

impl Open {
    /// The transaction ended: the connection may go back to the pool.
    fn close(&mut self) {
        self.0 = None;
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        // `close` hands the connection back by dropping it from `self.0`
        // before this runs; one still here is in an unknown state.
        if let Some(conn) = self.0.take() {
            drop(deadpool::Object::take(conn));
        }
    }
}

/// Runs `SELECT 1` through the pool: the readiness probe of a service.
pub async fn check(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await.context("getting a connection")?;
    conn.batch_execute("SELECT 1").await.context("SELECT 1")?;
    Ok(())
}

/// Runs the pending migrations of one service, idempotently.
///
/// A PostgreSQL advisory lock (keyed by `lock_name`) is held for the whole run
/// so that replicas starting together never race; the second one finds
/// nothing left to do. Each migration sets a `lock_timeout` so it never queues
/// behind a long transaction holding up every later query.
pub async fn migrate(
    url: &str,
    lock_name: &str,
    migrations: &'static EmbeddedMigrations,
) -> anyhow::Result<usize> {
    let url = url.to_owned();
    let key = advisory_key(lock_name);
    tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
            .with_context(|| "connecting to run migrations")?;
        SimpleConnection::batch_execute(&mut conn, "SET lock_timeout = '10s'")?;
        sql_query(format!("SELECT pg_advisory_lock({key})")).execute(&mut conn)?;
        let result = conn
            .run_pending_migrations(Embedded(migrations))
            .map(|done| done.len())
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"));
        sql_query(format!("SELECT pg_advisory_unlock({key})")).execute(&mut conn)?;
        result
    })
    .await
    .context("migration task")?
}

/// `EmbeddedMigrations` is neither `Copy` nor a source by reference.
struct Embedded(&'static EmbeddedMigrations);

impl MigrationSource<Pg> for Embedded {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        MigrationSource::<Pg>::migrations(self.0)
    }
}

/// A stable 63-bit key for `pg_advisory_lock` from a name (FNV-1a).
fn advisory_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_stable_and_distinct() {
        assert_eq!(advisory_key("identity"), advisory_key("identity"));
        assert_ne!(advisory_key("identity"), advisory_key("chat"));
        assert!(advisory_key("identity") >= 0);
    }
}

/// `query`, prepared once per connection and reused on every call after,
/// keyed by its SQL text (diesel's statement cache).
///
/// diesel prepares some statements afresh on every call, because their
/// text may differ from one call to the next under one Rust type: every
/// `UPDATE`, raw SQL (`sql_query`, `dsl::sql` fragments) and multi-row
/// inserts. Each such call costs one more round trip (Parse, Describe)
/// and a full parse and plan on the server. Wrap a statement whose text is
/// the same on every call (or takes a handful of shapes, as an insert of
/// one or two rows does) so it is prepared once; never one whose text
/// carries values (a `format!`), which would fill the cache.
#[derive(Debug, Clone, Copy)]
pub struct Cached<Q>(pub Q);

impl<Q: diesel::query_builder::QueryFragment<Pg>> diesel::query_builder::QueryFragment<Pg>
    for Cached<Q>
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, Pg>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: the cache is keyed by the statement's text.
impl<Q> diesel::query_builder::QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

/// What the tests below share: a `count(*)` over whatever follows FROM.
#[cfg(test)]
mod count {
    use diesel::{QueryableByName, sql_types::BigInt};
    use diesel_async::{AsyncPgConnection, RunQueryDsl};

    #[derive(QueryableByName)]
    pub(super) struct N {
        #[diesel(sql_type = BigInt)]
        pub(super) n: i64,
    }

    pub(super) async fn count(conn: &mut AsyncPgConnection, from: &str) -> i64 {
        diesel::sql_query(format!("SELECT count(*) AS n FROM {from}"))
            .get_result::<N>(conn)
            .await
            .unwrap()
            .n
    }
}

#[cfg(test)]
mod cached {
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    use super::{
        Cached,
        count::{N, count},
    };

    /// The statements prepared on this connection (the protocol's too).
    async fn prepared(conn: &mut AsyncPgConnection) -> i64 {
        count(conn, "pg_prepared_statements").await
    }

    #[tokio::test]
    async fn a_cached_statement_is_prepared_once_and_a_plain_one_every_time() {
        let server = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let mut conn = AsyncPgConnection::establish(&format!("{server}/postgres"))
            .await
            .unwrap();
        let query = || diesel::sql_query("SELECT $1::bigint + 1 AS n");
        let before = prepared(&mut conn).await;
        for i in 0..3 {
            let plain: N = query()
                .bind::<BigInt, _>(i)
                .get_result(&mut conn)
                .await
                .unwrap();
            assert_eq!(plain.n, i + 1);
        }
        // Prepared, used and closed each time: nothing stays.
        assert_eq!(prepared(&mut conn).await, before);
        for i in 0..3 {
            let cached: N = Cached(query().bind::<BigInt, _>(i))
                .get_result(&mut conn)
                .await
                .unwrap();
            assert_eq!(cached.n, i + 1);
        }
        assert_eq!(prepared(&mut conn).await, before + 1, "prepared once, kept");
    }
}

#[cfg(test)]
mod pipelined_transaction {
    use std::time::Duration;

    use diesel::{
        QueryableByName,
        sql_types::{BigInt, Bool, Integer},
    };
    use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection as _};

    use super::{PoolSettings, count::count, pool, transaction};

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        pid: i64,
        #[diesel(sql_type = Bool)]
        in_transaction: bool,
        #[diesel(sql_type = Bool)]
        has_table: bool,
    }

    /// The session's backend, whether a transaction with writes is open on
    /// it, and whether its temporary table is there.
    async fn state(conn: &mut AsyncPgConnection) -> Row {
        diesel::sql_query(
            "SELECT pg_backend_pid()::bigint AS pid, \
                    pg_current_xact_id_if_assigned() IS NOT NULL AS in_transaction, \
                    to_regclass('pg_temp.t') IS NOT NULL AS has_table",
        )
        .get_result(conn)
        .await
        .unwrap()
    }

    async fn insert(conn: &AsyncPgConnection, n: i32) -> diesel::QueryResult<usize> {
        diesel::sql_query("INSERT INTO t VALUES ($1)")
            .bind::<Integer, _>(n)
            .execute(&mut &*conn)
            .await
    }

    #[tokio::test]
    async fn begin_travels_with_the_body_and_a_dropped_transaction_never_returns_to_the_pool() {
        let server = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let settings = PoolSettings {
            max_size: 1,
            ..PoolSettings::default()
        };
        let pool = pool(&format!("{server}/postgres"), &settings).unwrap();
        let mut conn = pool.get().await.unwrap();
        conn.batch_execute("CREATE TEMPORARY TABLE t (n integer)")
            .await
            .unwrap();
        let first = state(&mut conn).await;
        assert!(first.has_table && !first.in_transaction);
        drop(conn);

        // Committed when the body succeeds.
        let done = transaction(pool.get().await.unwrap(), async |conn| {
            insert(conn, 1).await
        })
        .await;
        assert_eq!(done.unwrap(), 1);
        // Rolled back when it fails: the insert ran inside the transaction,
        // so BEGIN reached the server before it.
        let failed: Result<(), diesel::result::Error> =
            transaction(pool.get().await.unwrap(), async |conn| {
                insert(conn, 2).await?;
                Err(diesel::result::Error::RollbackTransaction)
            })
            .await;
        assert!(failed.is_err());
        let mut conn = pool.get().await.unwrap();
        assert_eq!(
            count(&mut conn, "t").await,
            1,
            "the failed body's insert was rolled back"
        );
        let after = state(&mut conn).await;
        assert_eq!(
            after.pid, first.pid,
            "an ended transaction's connection goes back to the pool"
        );
        assert!(!after.in_transaction);
        drop(conn);

        // A transaction dropped halfway (its caller went away): its
        // connection is closed, and the pool opens a clean one.
        let stalled = tokio::time::timeout(
            Duration::from_millis(200),
            transaction(pool.get().await.unwrap(), async |conn| {
                insert(conn, 3).await?;
                std::future::pending::<diesel::QueryResult<()>>().await
            }),
        )
        .await;
        assert!(
            stalled.is_err(),
            "the body never ends: the timeout drops it"
        );
        let mut conn = pool.get().await.unwrap();
        let fresh = state(&mut conn).await;
        assert_ne!(
            fresh.pid, first.pid,
            "the connection left inside a transaction was closed"
        );
        assert!(!fresh.in_transaction);
        assert!(
            !fresh.has_table,
            "a new session: the temporary table went with the old one"
        );
    }
}
