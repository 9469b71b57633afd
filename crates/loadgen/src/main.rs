#![doc = include_str!("../README.md")]

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    Me,
    Login,
    Refresh,
}

#[derive(Parser)]
#[command(name = "loadgen")]
struct Args {
    /// The gateway, e.g. http://127.0.0.1:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Clients in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of measured load (after a 2 s warm-up).
    #[arg(long, default_value_t = 20)]
    duration: u64,
}

const PASSWORD: &str = "correct horse battery staple";

struct Client {
    http: reqwest::Client,
    base: String,
    email: String,
    access: String,
    refresh: String,
}

impl Client {
    async fn new(base: &str, run: &str, i: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let email = format!("bench-{run}-{i}@example.com");
        let r = http
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD, "name": "Bench"}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("register answered {}: {}", r.status(), r.text().await?);
        }
        let mut me = Self {
            http,
            base: base.to_owned(),
            email,
            access: String::new(),
            refresh: String::new(),
        };
        if !me.login().await? {
            bail!("the first log-in failed");
        }
        Ok(me)
    }

    async fn login(&mut self) -> anyhow::Result<bool> {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": self.email, "password": PASSWORD}))
            .send()
            .await?;
        self.take_tokens(r).await
    }

    async fn take_tokens(&mut self, r: reqwest::Response) -> anyhow::Result<bool> {
        if r.status() != 200 {
            return Ok(false);
        }
        let body: Value = r.json().await?;
        self.access = body["accessToken"]
            .as_str()
            .context("accessToken")?
            .to_owned();
        self.refresh = body["refreshToken"]
            .as_str()
            .context("refreshToken")?
            .to_owned();
        Ok(true)
    }

    async fn one(&mut self, scenario: Scenario) -> anyhow::Result<bool> {
        match scenario {
            Scenario::Me => {
                let r = self
                    .http
                    .get(format!("{}/api/v1/me", self.base))
                    .bearer_auth(&self.access)
                    .send()
                    .await?;
                let ok = r.status() == 200;
                r.bytes().await?;
                Ok(ok)
            }
            Scenario::Login => self.login().await,
            Scenario::Refresh => {
                let r = self
                    .http
                    .post(format!("{}/api/v1/auth/refresh", self.base))
                    .json(&json!({"refreshToken": self.refresh}))
                    .send()
                    .await?;
                self.take_tokens(r).await
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut clients = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        clients.push(
            Client::new(&args.base, &run, i)
                .await
                .with_context(|| format!("setting up client {i}"))?,
        );
    }

    let warm_up = Duration::from_secs(2);
    let start = Instant::now();
    let measure_from = start + warm_up;
    let end = measure_from + Duration::from_secs(args.duration);
    let tasks = TaskTracker::new();
    let mut handles = Vec::new();
    for mut client in clients {
        let scenario = args.scenario;
        handles.push(tasks.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = client.one(scenario).await.unwrap_or(false);
                if t >= measure_from {
                    if ok {
                        tally
                            .latencies_us
                            .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        tally.errors += 1;
                    }
                }
            }
            tally
        }));
    }
    tasks.close();
    let mut all = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let tally = handle.await?;
        all.extend(tally.latencies_us);
        errors += tally.errors;
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[i]) / 1000.0
    };
    let seconds = args.duration as f64;
    let report = json!({
        "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "concurrency": args.concurrency,
        "seconds": args.duration,
        "requests": all.len(),
        "errors": errors,
        "rps": (all.len() as f64 / seconds).round(),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    });
    use std::io::Write;
    writeln!(std::io::stdout(), "{report}")?;
    Ok(())
}
