//! A mock per test and a raw HTTP client.
#![expect(clippy::unwrap_used, reason = "test harness: a failure fails the test")]

use aichat_mockllm::{MockConfig, MockServer};

pub struct TestMock {
    pub server: MockServer,
    pub http: reqwest::Client,
}

impl TestMock {
    /// Instant replies of 5 words.
    pub async fn start() -> Self {
        Self {
            server: MockServer::start(MockConfig {
                reply_tokens: 5,
                ..MockConfig::instant()
            })
            .await
            .unwrap(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub const OPENAI_AUTH: &[(&str, &str)] = &[("authorization", "Bearer sk-test")];
pub const ANTHROPIC_AUTH: &[(&str, &str)] = &[
    ("x-api-key", "sk-ant-test"),
    ("anthropic-version", "2023-06-01"),
];
pub const GOOGLE_AUTH: &[(&str, &str)] = &[("x-goog-api-key", "test-key")];

/// The `data:` payloads of an event stream, with their `event:` names.
pub fn events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            (name, data)
        })
        .collect()
}
