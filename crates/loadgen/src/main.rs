#![doc = include_str!("../README.md")]

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Me,
    Login,
    Refresh,
    /// A streamed message through the gateway (gateway → chat → billing →
    /// provider); latency is measured to the first delta and to the end.
    Chat,
    /// The same streamed request straight to the provider (`--base` is the
    /// provider's OpenAI-compatible root, e.g. the mock's `/v1`).
    Direct,
    /// The same streamed request through the platform's OpenAI-compatible
    /// API (`--base` is the gateway; each client makes an API key):
    /// gateway `/v1` → chat → billing → provider, metered as `chat` is.
    #[value(name = "openai")]
    OpenAi,
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
    /// A file created when the measured window begins (after the clients'
    /// set-up and the warm-up), so another tool (deploy/local/cpu_share.py
    /// --after) can measure the same window.
    #[arg(long)]
    mark: Option<std::path::PathBuf>,
}

const PASSWORD: &str = "correct horse battery staple";

struct Client {
    http: reqwest::Client,
    base: String,
    email: String,
    access: String,
    refresh: String,
    /// For `chat`: the conversation and how many messages went into it.
    conversation: String,
    sent: u32,
    /// For `openai`: the client's API key.
    api_key: String,
}

/// One request's outcome: time to first token (streams) and in all.
struct Sample {
    first_us: u32,
    total_us: u32,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Whether `text` holds an OpenAI chunk with reply text: `"content":"`
/// followed by a character (the opening chunk's content is empty).
fn has_text_delta(text: &str) -> bool {
    text.match_indices("\"content\":\"")
        .any(|(i, m)| text[i + m.len()..].chars().next().is_some_and(|c| c != '"'))
}

/// Reads an SSE body to its end; the time the first chunk holding `marker`
/// arrived (None if the stream ended without one, or with an error: an
/// `error` event, or an OpenAI chunk holding `error`).
async fn read_stream(
    r: reqwest::Response,
    started: Instant,
    marker: impl Fn(&str) -> bool,
) -> anyhow::Result<Option<Duration>> {
    use futures::StreamExt;
    let mut body = r.bytes_stream();
    let mut first = None;
    // The end of what came so far: a marker may be split across chunks.
    let mut tail = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if first.is_none() && marker(&tail) {
            first = Some(started.elapsed());
        }
        let keep = tail.len().saturating_sub(200);
        let cut = (keep..=tail.len())
            .find(|&i| tail.is_char_boundary(i))
            .unwrap_or(tail.len());
        tail.drain(..cut);
    }
    if tail.contains("event: error") || tail.contains("{\"error\"") {
        return Ok(None);
    }
    Ok(first)
}

impl Client {
    async fn new(base: &str, run: &str, i: usize, scenario: Scenario) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let mut me = Self {
            http,
            base: base.to_owned(),
            email: String::new(),
            access: String::new(),
            refresh: String::new(),
            conversation: String::new(),
            sent: 0,
            api_key: String::new(),
        };
        if scenario == Scenario::Direct {
            return Ok(me);
        }
        me.email = format!("bench-{run}-{i}@example.com");
        me.create(
            "register",
            "/api/v1/auth/register",
            json!({"email": me.email, "password": PASSWORD, "name": "Bench"}),
        )
        .await?;
        if !me.login().await? {
            bail!("the first log-in failed");
        }
        if scenario == Scenario::OpenAi {
            let body = me
                .create(
                    "creating an API key",
                    "/api/v1/me/api-keys",
                    json!({"name": "bench"}),
                )
                .await?;
            me.api_key = body["key"].as_str().context("key")?.to_owned();
        }
        Ok(me)
    }

    /// POSTs `body` to `path` (with the access token once logged in) and
    /// returns the JSON of its 201; any other status is `what`'s failure.
    async fn create(&self, what: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if !self.access.is_empty() {
            request = request.bearer_auth(&self.access);
        }
        let r = request.send().await?;
        if r.status() != 201 {
            bail!("{what} answered {}: {}", r.status(), r.text().await?);
        }
        Ok(r.json().await?)
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

    async fn new_conversation(&mut self) -> anyhow::Result<()> {
        let body = self
            .create(
                "creating a conversation",
                "/api/v1/conversations",
                json!({"model": "gpt-4o-mini"}),
            )
            .await?;
        self.conversation = body["id"].as_str().context("conversation id")?.to_owned();
        self.sent = 0;
        Ok(())
    }

    /// One request; `None` when it failed.
    async fn sample(&mut self, scenario: Scenario) -> anyhow::Result<Option<Sample>> {
        let started = Instant::now();
        let first = match scenario {
            Scenario::Chat => {
                // A fresh conversation every 10 messages keeps prompts short.
                if self.sent >= 10 || self.conversation.is_empty() {
                    self.new_conversation().await?;
                }
                self.sent += 1;
                let started = Instant::now();
                let r = self
                    .http
                    .post(format!(
                        "{}/api/v1/conversations/{}/messages",
                        self.base, self.conversation
                    ))
                    .bearer_auth(&self.access)
                    .header("accept", "text/event-stream")
                    .json(&json!({"content": "Tell me about rivers in two sentences."}))
                    .send()
                    .await?;
                if r.status() != 200 {
                    return Ok(None);
                }
                let first = read_stream(r, started, |t| t.contains("event: delta")).await?;
                return Ok(first.map(|f| Sample {
                    first_us: micros(f),
                    total_us: micros(started.elapsed()),
                }));
            }
            Scenario::Direct => {
                let r = self
                    .http
                    .post(format!("{}/chat/completions", self.base))
                    .bearer_auth("bench")
                    .json(&json!({
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": "Tell me about rivers in two sentences."}],
                        "max_completion_tokens": 1024,
                        "stream": true,
                        "stream_options": {"include_usage": true}
                    }))
                    .send()
                    .await?;
                if r.status() != 200 {
                    return Ok(None);
                }
                read_stream(r, started, |t| t.contains("\"content\"")).await?
            }
            Scenario::OpenAi => {
                let r = self
                    .http
                    .post(format!("{}/v1/chat/completions", self.base))
                    .bearer_auth(&self.api_key)
                    .json(&json!({
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": "Tell me about rivers in two sentences."}],
                        "max_completion_tokens": 1024,
                        "stream": true,
                        "stream_options": {"include_usage": true}
                    }))
                    .send()
                    .await?;
                if r.status() != 200 {
                    return Ok(None);
                }
                read_stream(r, started, has_text_delta).await?
            }
            other => {
                if !self.one(other).await? {
                    return Ok(None);
                }
                Some(started.elapsed())
            }
        };
        Ok(first.map(|f| Sample {
            first_us: micros(f),
            total_us: micros(started.elapsed()),
        }))
    }

    async fn one(&mut self, scenario: Scenario) -> anyhow::Result<bool> {
        match scenario {
            // Measured by `sample`, which never comes here for them.
            Scenario::Chat | Scenario::Direct | Scenario::OpenAi => Ok(false),
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
    first_us: Vec<u32>,
    errors: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut clients = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        clients.push(
            Client::new(&args.base, &run, i, args.scenario)
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
                let sample = client.sample(scenario).await.ok().flatten();
                if t >= measure_from {
                    match sample {
                        Some(s) => {
                            tally.latencies_us.push(s.total_us);
                            tally.first_us.push(s.first_us);
                        }
                        None => tally.errors += 1,
                    }
                }
            }
            tally
        }));
    }
    tasks.close();
    if let Some(mark) = &args.mark {
        tokio::time::sleep_until(measure_from.into()).await;
        std::fs::write(mark, format!("{}\n", args.duration))
            .with_context(|| format!("writing {}", mark.display()))?;
    }
    let mut all = Vec::new();
    let mut firsts = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let tally = handle.await?;
        all.extend(tally.latencies_us);
        firsts.extend(tally.first_us);
        errors += tally.errors;
    }
    all.sort_unstable();
    firsts.sort_unstable();
    let pct_of = |v: &[u32], p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        f64::from(v[i]) / 1000.0
    };
    let pct = |p: f64| pct_of(&all, p);
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
        "ttft_p50_ms": pct_of(&firsts, 0.50),
        "ttft_p99_ms": pct_of(&firsts, 0.99),
    });
    use std::io::Write;
    writeln!(std::io::stdout(), "{report}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::has_text_delta;

    #[test]
    fn the_opening_chunk_is_not_reply_text_but_a_delta_is() {
        let opening =
            r#"data: {"choices":[{"delta":{"content":"","role":"assistant"},"index":0}]}"#;
        assert!(!has_text_delta(opening));
        let delta = r#"data: {"choices":[{"delta":{"content":"Rivers"},"index":0}]}"#;
        assert!(has_text_delta(delta));
        assert!(has_text_delta(&format!("{opening}\n\n{delta}")));
    }
}
