//! The provider-neutral request and the events a reply streams as. Each
//! adapter translates these to and from its own wire structs.

/// Who said a message. The system prompt is not a message: it is
/// [`ChatRequest::system`], because Anthropic and Gemini take it apart from
/// the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The person chatting.
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// Plain text.
    pub content: String,
}

impl ChatMessage {
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// A model turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A chat completion to stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The provider's model id (`gpt-4o-mini`, `claude-sonnet-4-5`,
    /// `gemini-2.5-flash`, `llama3.2` on Ollama, ...).
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The conversation so far, oldest first; the last one is normally the
    /// user's.
    pub messages: Vec<ChatMessage>,
    /// The most tokens the reply may have.
    pub max_tokens: u32,
    /// How the reply is sampled; the provider's defaults when left empty.
    pub sampling: Sampling,
}

/// Sampling settings a caller may choose (the OpenAI-compatible API passes
/// its client's on). Each adapter writes them in its provider's words.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    /// Randomness, 0 to 2 as OpenAI and Gemini take it; Anthropic takes 0
    /// to 1, so more is sent as 1 there.
    pub temperature: Option<f64>,
    /// Sequences that end the reply where they would appear (not included
    /// in it).
    pub stop: Vec<String>,
}

/// What a reply stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The next piece of the reply; never empty.
    Text(String),
    /// The reply is complete. Always the last event of a stream that did not
    /// fail.
    Done(Usage),
}

/// Tokens billed for one completion, as the provider reported them (see the
/// README for the rare case where it reports none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Usage {
    /// Tokens read: system prompt and conversation.
    pub prompt_tokens: u32,
    /// Tokens written, including any hidden reasoning the provider bills.
    pub completion_tokens: u32,
}
