//! The mock LLM binary: read config, init telemetry, serve until a signal.

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "mockllm",
    about = "A fake LLM provider: OpenAI, Anthropic and Gemini streaming formats, with fault injection. \
             Configured by MOCK_ADDR, MOCK_TTFT_MS, MOCK_TOKEN_DELAY_MS, MOCK_REPLY_TOKENS."
)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli {} = Cli::parse();
    let _telemetry = aichat_telemetry::init("mockllm")?;
    let config = aichat_mockllm::MockConfig::from_env()?;
    let addr = aichat_config::string("MOCK_ADDR", "127.0.0.1:8090");
    let listener =
        std::net::TcpListener::bind(&addr).with_context(|| format!("binding MOCK_ADDR {addr}"))?;
    aichat_mockllm::run(listener, config, aichat_lifecycle::shutdown_on_signal()).await
}
