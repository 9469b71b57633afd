//! One adapter per wire protocol, behind [`ProviderKind`] and `match`.
//!
//! Each adapter module owns its wire structs and knows two things: how to
//! build the HTTP request, and how to turn the provider's server-sent events
//! into [`Output`]s. Everything they share (SSE framing, usage fallback,
//! error mapping, retries) lives here and in `client.rs`.

// First, so that its `conformance_tests!` is in scope in the adapters.
#[cfg(test)]
#[macro_use]
mod conformance;

pub(crate) mod anthropic;
pub(crate) mod google;
pub(crate) mod openai;

use std::{collections::VecDeque, fmt::Display, pin::Pin, sync::Arc};

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::{
    ChatRequest, LlmError, ProviderConfig, ProviderKind, StreamEvent, Usage,
    sse::{SseEvent, SseParser},
    tokens,
};

/// What an adapter made of one event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// Reply text (never empty).
    Text(String),
    /// The terminal event: the reply is complete.
    Finished(ReportedUsage),
}

/// Usage as the provider reported it; `None` where it did not.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportedUsage {
    pub(crate) prompt_tokens: Option<u32>,
    pub(crate) completion_tokens: Option<u32>,
}

/// Why a stream stopped before its terminal event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The provider sent its documented error event.
    Provider(String),
    /// The body ended, or could not be read, before the terminal event.
    Cut(String),
    /// Bytes that are not the provider's format.
    Protocol(String),
}

impl Failure {
    /// The error for a failure before any text: worth retrying, unless the
    /// bytes are not the protocol at all.
    pub(crate) fn before_first_token(self) -> LlmError {
        match self {
            Self::Provider(message) => LlmError::Unavailable(format!("error event: {message}")),
            Self::Cut(message) => LlmError::Unavailable(message),
            Self::Protocol(message) => LlmError::Protocol(message),
        }
    }

    /// The error for a failure after text was yielded.
    pub(crate) fn after_first_token(self) -> LlmError {
        let message = match self {
            Self::Provider(message) => format!("the provider sent an error: {message}"),
            Self::Cut(message) => message,
            Self::Protocol(message) => format!("unparseable event: {message}"),
        };
        LlmError::Interrupted { message }
    }
}

/// A provider's stream decoder, one variant per adapter.
#[derive(Debug)]
pub(crate) enum Decoder {
    OpenAi(openai::Decoder),
    Anthropic(anthropic::Decoder),
    Google(google::Decoder),
}

impl Decoder {
    pub(crate) fn new(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::OpenAi => Self::OpenAi(openai::Decoder::default()),
            ProviderKind::Anthropic => Self::Anthropic(anthropic::Decoder::default()),
            ProviderKind::Google => Self::Google(google::Decoder::default()),
        }
    }

    /// Reads one event.
    fn on_event(&mut self, event: &SseEvent) -> Result<Option<Output>, Failure> {
        match self {
            Self::OpenAi(decoder) => decoder.on_event(event),
            Self::Anthropic(decoder) => decoder.on_event(event),
            Self::Google(decoder) => decoder.on_event(event),
        }
    }

    /// The body ended cleanly without a terminal event: for Gemini that is
    /// the end of a finished reply, for the others a cut.
    fn on_end(&mut self) -> Result<ReportedUsage, Failure> {
        match self {
            Self::OpenAi(decoder) => decoder.on_end(),
            Self::Anthropic(decoder) => decoder.on_end(),
            Self::Google(decoder) => decoder.on_end(),
        }
    }
}

/// The streaming HTTP request for `request` on `provider`.
pub(crate) fn build_request(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    request: &ChatRequest,
) -> Result<reqwest::Request, LlmError> {
    let builder = match provider.kind {
        ProviderKind::OpenAi => openai::request(http, provider, request),
        ProviderKind::Anthropic => anthropic::request(http, provider, request),
        ProviderKind::Google => google::request(http, provider, request),
    }?;
    builder
        .build()
        .map_err(|error| LlmError::Misconfigured(error.to_string()))
}

/// A header value that is not logged or printed (`Debug` shows
/// `Sensitive`).
pub(crate) fn secret_header(value: &str) -> Result<reqwest::header::HeaderValue, LlmError> {
    let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        LlmError::Misconfigured("the API key is not a valid HTTP header value".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `base` and `path` joined with exactly one slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Stands in for usage the provider did not report.
#[derive(Debug, Clone)]
pub(crate) struct Accounting {
    pub(crate) kind: ProviderKind,
    pub(crate) request: Arc<ChatRequest>,
}

impl Accounting {
    fn usage(&self, reported: ReportedUsage, reply: &str) -> Usage {
        if reported.prompt_tokens.is_none() || reported.completion_tokens.is_none() {
            tracing::warn!(
                provider = %self.kind,
                model = %self.request.model,
                "the provider reported no usage; counting it ourselves"
            );
        }
        let model = &self.request.model;
        Usage {
            prompt_tokens: reported
                .prompt_tokens
                .unwrap_or_else(|| tokens::count_prompt_tokens(self.kind, model, &self.request)),
            completion_tokens: reported
                .completion_tokens
                .unwrap_or_else(|| tokens::count_text_tokens(self.kind, model, reply)),
        }
    }
}

/// Decoded events, ending after [`StreamEvent::Done`] or one failure.
pub(crate) type Decoded = Pin<Box<dyn Stream<Item = Result<StreamEvent, Failure>> + Send>>;

struct Decoding<S> {
    body: Pin<Box<S>>,
    sse: SseParser,
    decoder: Decoder,
    accounting: Accounting,
    /// The reply so far, for counting it if the provider does not.
    reply: String,
    ready: VecDeque<Result<StreamEvent, Failure>>,
    finished: bool,
}

/// Decodes a response body of `accounting.kind`'s format.
pub(crate) fn decode<S, E>(body: S, accounting: Accounting) -> Decoded
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Display,
{
    let state = Decoding {
        body: Box::pin(body),
        sse: SseParser::new(),
        decoder: Decoder::new(accounting.kind),
        accounting,
        reply: String::new(),
        ready: VecDeque::new(),
        finished: false,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.ready.pop_front() {
                return Some((item, state));
            }
            if state.finished {
                return None;
            }
            state.read().await;
        }
    }))
}

impl<S, E> Decoding<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Display,
{
    /// Reads one chunk of the body into `ready`, or marks the end.
    async fn read(&mut self) {
        match self.body.next().await {
            Some(Ok(bytes)) => match self.sse.push(&bytes) {
                Ok(events) => {
                    for event in events {
                        let step = self.decoder.on_event(&event);
                        self.take(step);
                        if self.finished {
                            break;
                        }
                    }
                }
                Err(error) => self.fail(Failure::Protocol(error.to_string())),
            },
            Some(Err(error)) => {
                self.fail(Failure::Cut(format!("reading the stream failed: {error}")));
            }
            None => {
                let end = self
                    .decoder
                    .on_end()
                    .map(|usage| Some(Output::Finished(usage)));
                self.take(end);
            }
        }
    }

    fn take(&mut self, step: Result<Option<Output>, Failure>) {
        match step {
            Ok(None) => {}
            Ok(Some(Output::Text(text))) => {
                self.reply.push_str(&text);
                self.ready.push_back(Ok(StreamEvent::Text(text)));
            }
            Ok(Some(Output::Finished(reported))) => {
                let usage = self.accounting.usage(reported, &self.reply);
                self.ready.push_back(Ok(StreamEvent::Done(usage)));
                self.finished = true;
            }
            Err(failure) => self.fail(failure),
        }
    }

    fn fail(&mut self, failure: Failure) {
        let failure = match failure {
            Failure::Cut(message) if !self.reply.is_empty() => Failure::Cut(format!(
                "{message} (after {} characters of reply)",
                self.reply.chars().count()
            )),
            other => other,
        };
        self.ready.push_back(Err(failure));
        self.finished = true;
    }
}
