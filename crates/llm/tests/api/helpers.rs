//! A mock provider per test, and the client and requests the tests use.
#![expect(clippy::unwrap_used, reason = "test harness: a failure fails the test")]

use std::time::Duration;

use aichat_llm::{
    ChatMessage, ChatRequest, EventStream, LlmClient, LlmError, ProviderConfig, ProviderKind,
    RetryPolicy, SecretString, StreamEvent, Usage,
};
use aichat_mockllm::{MockConfig, MockServer};
use futures::StreamExt;

/// Words in every mock reply, unless a test says otherwise.
pub const REPLY_TOKENS: usize = 8;

/// Defines one `#[tokio::test]` per provider kind, in a module named after
/// the behaviour, calling `$body(kind)`.
macro_rules! each_provider {
    ($name:ident, $body:path) => {
        mod $name {
            use aichat_llm::ProviderKind;

            #[tokio::test]
            async fn openai() {
                $body(ProviderKind::OpenAi).await;
            }

            #[tokio::test]
            async fn anthropic() {
                $body(ProviderKind::Anthropic).await;
            }

            #[tokio::test]
            async fn google() {
                $body(ProviderKind::Google).await;
            }
        }
    };
}
pub(crate) use each_provider;

/// A running mock and an HTTP client for its control API.
pub struct Mock {
    pub server: MockServer,
    control: reqwest::Client,
}

impl Mock {
    /// A mock answering at once with [`REPLY_TOKENS`]-word replies.
    pub async fn start() -> Self {
        Self::start_with(MockConfig {
            reply_tokens: REPLY_TOKENS,
            ..MockConfig::instant()
        })
        .await
    }

    pub async fn start_with(config: MockConfig) -> Self {
        Self {
            server: MockServer::start(config).await.unwrap(),
            control: reqwest::Client::new(),
        }
    }

    /// The mock as a provider of `kind`.
    pub fn provider(&self, kind: ProviderKind) -> ProviderConfig {
        ProviderConfig {
            kind,
            base_url: match kind {
                ProviderKind::OpenAi => self.server.openai_base_url(),
                ProviderKind::Anthropic | ProviderKind::Google => self.server.url(),
            },
            api_key: SecretString::from("test-key"),
        }
    }

    /// Queues faults (`POST /_mock/faults`).
    pub async fn faults(&self, faults: serde_json::Value) {
        let response = self
            .control
            .post(format!("{}/_mock/faults", self.server.url()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{response:?}");
    }

    /// One reply to [`request`] from the mock as a provider of `kind`,
    /// collected to its end.
    pub async fn reply(&self, kind: ProviderKind) -> Outcome {
        collect(
            client()
                .stream(&self.provider(kind), &request(kind))
                .await
                .unwrap(),
        )
        .await
    }

    /// Model requests of `kind`'s format the mock received.
    pub async fn requests(&self, kind: ProviderKind) -> u64 {
        let stats: serde_json::Value = self
            .control
            .get(format!("{}/_mock/stats", self.server.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats[kind.as_str()].as_u64().unwrap()
    }
}

/// Retries quick enough for tests, patient enough for a 1 s `Retry-After`.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    }
}

pub fn client() -> LlmClient {
    LlmClient::new(retry_policy()).unwrap()
}

/// A model id of `kind`.
pub fn model(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "gpt-4o-mini",
        ProviderKind::Anthropic => "claude-sonnet-4-5",
        ProviderKind::Google => "gemini-2.0-flash",
    }
}

/// A system prompt of 2 words and a conversation of 2 + 3 + 4 words: 11
/// prompt tokens as the mock counts.
pub fn request(kind: ProviderKind) -> ChatRequest {
    ChatRequest {
        model: model(kind).into(),
        system: Some("Be brief.".into()),
        messages: vec![
            ChatMessage::user("Hello there"),
            ChatMessage::assistant("Hi, how's things?"),
            ChatMessage::user("What is a mock?"),
        ],
        max_tokens: 64,
        sampling: Default::default(),
    }
}

pub const PROMPT_WORDS: u32 = 11;

/// What a stream yielded: its text events, its usage if it completed, and
/// the error that ended it if one did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub pieces: Vec<String>,
    pub usage: Option<Usage>,
    pub error: Option<LlmError>,
}

impl Outcome {
    pub fn text(&self) -> String {
        self.pieces.concat()
    }
}

pub async fn collect(mut stream: EventStream) -> Outcome {
    let mut outcome = Outcome::default();
    while let Some(item) = stream.next().await {
        assert!(
            outcome.usage.is_none() && outcome.error.is_none(),
            "an event after the end: {item:?}"
        );
        match item {
            Ok(StreamEvent::Text(text)) => outcome.pieces.push(text),
            Ok(StreamEvent::Done(usage)) => outcome.usage = Some(usage),
            Err(error) => outcome.error = Some(error),
        }
    }
    outcome
}
