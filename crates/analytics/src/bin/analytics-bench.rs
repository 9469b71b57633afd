//! `make bench-analytics` (deploy/local/bench_analytics.sh): times the
//! admin queries on a database the generator filled, and the consumer's
//! ingest rate, one JSON line per measurement on stdout.
//!
//! - `migrate`: migrates `DATABASE_URL` (before the generator runs).
//! - `queries --runs 20`: each admin query of `store::queries` (the
//!   functions the gRPC service calls) `runs` times after a warm-up; p50,
//!   p99 and the rows answered. The paged lists (TokenUsageByUser,
//!   OverdueInvoices, LifetimeValue) are timed for their first page of 100
//!   (the largest `?limit=`) and, `…@deep`, for the page of 100 after the
//!   first 100,000 rows (or the list's last full page when shorter: the
//!   cursor found by paging through it 1000 rows at a time, as the CSV
//!   export does).
//! - `ingest --events 200000 --batch 1000`: a service of its own (a fresh
//!   database, its queue on an exchange of its own) consuming `events`
//!   realistic chat events (per exchange a user message, an assistant
//!   message and its tokenUsage, each with the conversation's counters),
//!   published at once; events/s from the first publish until every event
//!   has its userEvents row. `--batch 1` is one event per transaction; `--backlog` publishes
//!   everything first and times the consumer draining it. Besides the rate,
//!   the CPU time per event of this process and of the database's backends
//!   (from /proc): on a shared machine, a steadier measure than the rate.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use aichat_analytics::{
    store::queries,
    testing::{self, TestAnalytics},
};
use anyhow::Context;
use chrono::{Datelike, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "analytics-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate DATABASE_URL.
    Migrate,
    /// Time every admin query on DATABASE_URL.
    Queries {
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Print TopUsers (days, top 10) as the service answers it, one JSON
    /// line a user (to compare with the seed's query in psql).
    TopUsers {
        #[arg(long, default_value_t = 30)]
        days: i32,
    },
    /// Measure the consumer's ingest rate.
    Ingest {
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Events per transaction at most (1: one at a time; the
        /// service's default `CONSUME_BATCH` is 1,000).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Publish everything while the consumer is stopped, then time
        /// draining the backlog only (the consumer's own rate).
        #[arg(long)]
        backlog: bool,
    },
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/aichat_bench_analytics".to_owned())
}

fn emit(line: &serde_json::Value) -> anyhow::Result<()> {
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Migrate => {
            aichat_analytics::migrate(&database_url()).await?;
            Ok(())
        }
        Command::Queries { runs } => bench_queries(runs).await,
        Command::TopUsers { days } => {
            let pool = aichat_db::pool(&database_url(), &aichat_db::PoolSettings::default())?;
            let mut conn = pool.get().await?;
            for u in queries::top_users(&mut conn, days, 10).await? {
                emit(&json!({
                    "user_id": u.user_id,
                    "conversation_count": u.conversation_count,
                    "total_tokens": u.total_tokens,
                }))?;
            }
            Ok(())
        }
        Command::Ingest {
            events,
            batch,
            backlog,
        } => bench_ingest(events, batch, backlog).await,
    }
}

/// The page size the benchmark asks for: the API's largest `?limit=`.
const PAGE: i64 = 100;
/// How deep the `@deep` pages start.
const DEEP_ROWS: usize = 100_000;

/// The cursors of the `@deep` pages, by rpc name.
type DeepCursors = std::collections::HashMap<&'static str, Option<String>>;

/// Pages through a list 1000 rows at a time until `DEEP_ROWS` are behind
/// (or the list's last full page starts): the cursor there.
async fn deep_cursor(
    conn: &mut AsyncPgConnection,
    name: &'static str,
    month: NaiveDate,
) -> anyhow::Result<Option<String>> {
    let mut cursor: Option<String> = None;
    let mut seen = 0usize;
    while seen < DEEP_ROWS {
        let request = queries::PageRequest {
            size: 1000,
            cursor: cursor.clone(),
        };
        let bad = |_| anyhow::anyhow!("bad cursor");
        let (n, next) = match name {
            "TokenUsageByUser" => {
                let p = queries::token_usage_by_user(conn, month, &request)
                    .await?
                    .map_err(bad)?;
                (p.items.len(), p.next)
            }
            "OverdueInvoices" => {
                let p = queries::overdue_invoices(conn, &request)
                    .await?
                    .map_err(bad)?;
                (p.items.len(), p.next)
            }
            "LifetimeValue" => {
                let p = queries::lifetime_value(conn, &request)
                    .await?
                    .map_err(bad)?;
                (p.items.len(), p.next)
            }
            other => anyhow::bail!("{other} is not paged"),
        };
        seen += n;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(cursor)
}

/// One admin query, by its rpc name (`…@deep`: a paged list's deep page).
async fn run_query(
    conn: &mut AsyncPgConnection,
    name: &str,
    month: NaiveDate,
    deep: &DeepCursors,
) -> anyhow::Result<usize> {
    let today = Utc::now().date_naive();
    let (name, cursor) = match name.split_once('@') {
        Some((name, _)) => (name, deep.get(name).cloned().flatten()),
        None => (name, None),
    };
    let page = queries::PageRequest { size: PAGE, cursor };
    let bad = |_| anyhow::anyhow!("bad cursor");
    Ok(match name {
        "Signups" => queries::signups(conn, 30).await?.len(),
        "UsersByPlan" => queries::users_by_plan(conn).await?.len(),
        "TokenUsageByUser" => queries::token_usage_by_user(conn, month, &page)
            .await?
            .map_err(bad)?
            .items
            .len(),
        "TokenUsageByModel" => queries::token_usage_by_model(conn, month).await?.len(),
        "Subscriptions" => queries::subscriptions(conn).await?.len(),
        "Mrr" => usize::from(!queries::mrr(conn).await?.is_empty()),
        "TopUsers" => queries::top_users(conn, 30, 10).await?.len(),
        "ConversationLength" => usize::from(
            queries::conversation_length(conn, 30)
                .await?
                .avg_messages
                .is_some(),
        ),
        "OverdueInvoices" => queries::overdue_invoices(conn, &page)
            .await?
            .map_err(bad)?
            .items
            .len(),
        "LifetimeValue" => queries::lifetime_value(conn, &page)
            .await?
            .map_err(bad)?
            .items
            .len(),
        "DailySeries" => queries::daily_series(conn, today - chrono::Duration::days(29), today)
            .await?
            .len(),
        other => anyhow::bail!("no query {other}"),
    })
}

const QUERIES: [&str; 14] = [
    "Signups",
    "UsersByPlan",
    "TokenUsageByUser",
    "TokenUsageByUser@deep",
    "TokenUsageByModel",
    "Subscriptions",
    "Mrr",
    "TopUsers",
    "ConversationLength",
    "OverdueInvoices",
    "OverdueInvoices@deep",
    "LifetimeValue",
    "LifetimeValue@deep",
    "DailySeries",
];

/// The paged lists.
const PAGED: [&str; 3] = ["TokenUsageByUser", "OverdueInvoices", "LifetimeValue"];

async fn bench_queries(runs: usize) -> anyhow::Result<()> {
    let pool = aichat_db::pool(&database_url(), &aichat_db::PoolSettings::default())?;
    let mut conn = pool.get().await?;
    // Last month: a complete month of usage.
    let today = Utc::now().date_naive();
    let this_month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).context("month")?;
    let month = this_month
        .pred_opt()
        .and_then(|d| NaiveDate::from_ymd_opt(d.year(), d.month(), 1))
        .context("month")?;
    let mut deep = DeepCursors::new();
    for name in PAGED {
        deep.insert(name, deep_cursor(&mut conn, name, month).await?);
    }
    for name in QUERIES {
        let rows = run_query(&mut conn, name, month, &deep).await?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            run_query(&mut conn, name, month, &deep).await?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        emit(&json!({
            "query": name,
            "runs": runs,
            "rows": rows,
            "p50_ms": percentile(&times, 0.50),
            "p99_ms": percentile(&times, 0.99),
        }))?;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU seconds (user + system) of process `pid` ("self" for this one),
/// from /proc (clock ticks of 1/100 s); 0 when unreadable.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command (which may contain spaces), from field 3.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15: 11 and 12 after the state.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The CPU seconds of each PostgreSQL backend on the service's database
/// (the consumer's connections and the bench's own), by pid.
async fn backend_cpu(
    conn: &mut AsyncPgConnection,
) -> anyhow::Result<std::collections::HashMap<i32, f64>> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let pids: Vec<Pid> =
        diesel::sql_query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            .load(conn)
            .await?;
    Ok(pids
        .into_iter()
        .map(|p| (p.pid, cpu_seconds(&p.pid.to_string())))
        .collect())
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn bench_ingest(events: usize, batch: usize, backlog: bool) -> anyhow::Result<()> {
    let envelopes = testing::chat_events(events, 2_000)?;
    let last = envelopes.last().context("no events")?.id;
    let mut amqp = aichat_messaging::AmqpConfig::from_env();
    amqp.exchange = format!("aichat.bench.analytics.{}", Uuid::now_v7().simple());
    amqp.ephemeral = true;
    let mut analytics = TestAnalytics::spawn_with(amqp, |c| {
        c.consume_batch = batch;
    })
    .await?;
    let pool = analytics.pool()?;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    if backlog {
        analytics.pause().await;
    }
    let mut conn = pool.get().await?;
    let mut load = load_average();
    let mut start = Instant::now();
    let mut cpu_start = cpu_seconds("self");
    let mut pg_start = backend_cpu(&mut conn).await?;
    // Published in pages so the consumer starts while the rest is sent.
    for page in envelopes.chunks(5_000) {
        analytics.publish_envelopes(page).await?;
    }
    let published = start.elapsed();
    if backlog {
        load = load_average();
        pg_start = backend_cpu(&mut conn).await?;
        cpu_start = cpu_seconds("self");
        start = Instant::now();
        analytics.resume().await?;
    }
    // Done when every event is applied. Looked up cheaply until the last
    // event published is applied (counting userEvents every few
    // milliseconds would load the database being measured), then counted:
    // with two batches applied at once, the last batch can commit just
    // before the one ahead of it.
    let deadline = start + Duration::from_secs(1800);
    let mut last_seen = false;
    loop {
        if !last_seen {
            let done: Found = diesel::sql_query(
                "SELECT EXISTS (SELECT 1 FROM userEvents WHERE eventId = $1) AS found",
            )
            .bind::<diesel::sql_types::Uuid, _>(last)
            .get_result(&mut conn)
            .await?;
            last_seen = done.found;
        }
        if last_seen {
            let n: N = diesel::sql_query("SELECT count(*) AS n FROM userEvents")
                .get_result(&mut conn)
                .await?;
            if n.n == i64::try_from(events)? {
                break;
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "not applied in 30 min");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let cpu = cpu_seconds("self") - cpu_start;
    let pg_end = backend_cpu(&mut conn).await?;
    let pg: f64 = pg_end
        .iter()
        .map(|(pid, end)| end - pg_start.get(pid).copied().unwrap_or(0.0))
        .sum();
    drop(conn);
    analytics.stop().await;
    let per_event_us = |seconds: f64| seconds * 1e6 / events as f64;
    emit(&json!({
        "scenario": if backlog { "backlog" } else { "ingest" },
        "batch": batch,
        "events": events,
        "seconds": elapsed.as_secs_f64(),
        "publish_seconds": published.as_secs_f64(),
        "events_per_s": events as f64 / elapsed.as_secs_f64(),
        "load_average": load,
        // CPU spent while measured, per event: this process (the consumer,
        // and the publisher unless --backlog) and the database's backends.
        "process_cpu_us_per_event": per_event_us(cpu),
        "postgres_cpu_us_per_event": per_event_us(pg),
    }))
}
