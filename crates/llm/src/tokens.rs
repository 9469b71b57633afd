//! Counting tokens before (or without) asking the provider.
//!
//! OpenAI models get their real BPE (tiktoken's `o200k_base` or
//! `cl100k_base`) and the chat framing from OpenAI's cookbook ("How to count
//! tokens with tiktoken"): 3 tokens per message, plus its role and content,
//! plus 3 priming the reply. Anthropic and Google publish no tokenizer, and
//! neither do the models behind an OpenAI-compatible server, so those get an
//! estimate: a quarter token per character, rounded up, plus 4 per message
//! and 3 for the reply. This is an estimate for budgeting and context checks;
//! billing uses what the provider reports.

use std::sync::LazyLock;

use tiktoken_rs::CoreBPE;

use crate::{ChatRequest, ProviderKind, Role};

/// Loaded on first use; the BPE ranks ship inside `tiktoken-rs`, so loading
/// reads no file and cannot meet the network.
static O200K_BASE: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::o200k_base().ok());
static CL100K_BASE: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::cl100k_base().ok());

/// Model name prefixes per encoding, as tiktoken's `model.py` maps them. The
/// `o200k` list is checked first: `gpt-4o` also starts with `gpt-4`.
const O200K_MODELS: &[&str] = &[
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-5",
    "o1",
    "o3",
    "o4",
];
const CL100K_MODELS: &[&str] = &["gpt-4", "gpt-3.5-turbo", "gpt-35-turbo"];

/// Per-message framing in the OpenAI chat format, and for the estimate.
const OPENAI_TOKENS_PER_MESSAGE: u32 = 3;
const ESTIMATED_TOKENS_PER_MESSAGE: u32 = 4;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING_TOKENS: u32 = 3;
const CHARS_PER_ESTIMATED_TOKEN: usize = 4;

/// The tokens `request` will be billed as prompt, counted for `model` on a
/// `kind` provider (see the module docs for how exact that is).
pub fn count_prompt_tokens(kind: ProviderKind, model: &str, request: &ChatRequest) -> u32 {
    let system = request.system.as_deref().map(|text| ("system", text));
    let turns = request.messages.iter().map(|message| {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        (role, message.content.as_str())
    });
    let messages = system.into_iter().chain(turns);
    match bpe_for(kind, model) {
        Some(bpe) => messages.fold(REPLY_PRIMING_TOKENS, |total, (role, content)| {
            total
                .saturating_add(OPENAI_TOKENS_PER_MESSAGE)
                .saturating_add(bpe_count(bpe, role))
                .saturating_add(bpe_count(bpe, content))
        }),
        None => messages.fold(REPLY_PRIMING_TOKENS, |total, (_, content)| {
            total
                .saturating_add(ESTIMATED_TOKENS_PER_MESSAGE)
                .saturating_add(estimate(content))
        }),
    }
}

/// The tokens of bare `text` (no chat framing) for `model` on a `kind`
/// provider: exact for OpenAI models, the estimate otherwise.
pub fn count_text_tokens(kind: ProviderKind, model: &str, text: &str) -> u32 {
    match bpe_for(kind, model) {
        Some(bpe) => bpe_count(bpe, text),
        None => estimate(text),
    }
}

fn bpe_for(kind: ProviderKind, model: &str) -> Option<&'static CoreBPE> {
    if kind != ProviderKind::OpenAi {
        return None;
    }
    // Routers name models `openai/gpt-4o`.
    let model = model.rsplit('/').next().unwrap_or(model);
    if O200K_MODELS.iter().any(|prefix| model.starts_with(prefix)) {
        O200K_BASE.as_ref()
    } else if CL100K_MODELS.iter().any(|prefix| model.starts_with(prefix)) {
        CL100K_BASE.as_ref()
    } else {
        None
    }
}

fn bpe_count(bpe: &CoreBPE, text: &str) -> u32 {
    u32::try_from(bpe.count_ordinary(text)).unwrap_or(u32::MAX)
}

fn estimate(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(CHARS_PER_ESTIMATED_TOKEN)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;

    fn request(system: Option<&str>, messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest {
            model: "unused".into(),
            system: system.map(str::to_owned),
            messages,
            max_tokens: 100,
            sampling: Default::default(),
        }
    }

    #[test]
    fn cl100k_counts_match_the_openai_cookbook() {
        // "How to count tokens with tiktoken": cl100k_base encodes
        // "tiktoken is great!" as [83, 1609, 5963, 374, 2294, 0].
        assert_eq!(
            count_text_tokens(ProviderKind::OpenAi, "gpt-4", "tiktoken is great!"),
            6
        );
        assert_eq!(
            count_text_tokens(ProviderKind::OpenAi, "gpt-3.5-turbo", "tiktoken is great!"),
            6
        );
    }

    #[test]
    fn gpt_4o_uses_o200k_which_splits_differently_from_cl100k() {
        let text = "antidisestablishmentarianism in Ελληνικά και 日本語";
        let o200k = count_text_tokens(ProviderKind::OpenAi, "gpt-4o-mini", text);
        let cl100k = count_text_tokens(ProviderKind::OpenAi, "gpt-4-turbo", text);
        assert!(o200k > 0 && cl100k > 0);
        assert_ne!(o200k, cl100k);
        for model in ["o1-mini", "gpt-4.1-nano", "openai/gpt-4o", "o3"] {
            assert_eq!(
                count_text_tokens(ProviderKind::OpenAi, model, text),
                o200k,
                "{model}"
            );
        }
    }

    #[test]
    fn openai_chat_framing_adds_three_per_message_plus_role_plus_three() {
        let hello = request(None, vec![ChatMessage::user("Hello world")]);
        let content = count_text_tokens(ProviderKind::OpenAi, "gpt-4o", "Hello world");
        let role = count_text_tokens(ProviderKind::OpenAi, "gpt-4o", "user");
        assert_eq!(
            count_prompt_tokens(ProviderKind::OpenAi, "gpt-4o", &hello),
            3 + role + content + 3
        );

        let with_system = request(Some("Be brief."), vec![ChatMessage::user("Hello world")]);
        let system = count_text_tokens(ProviderKind::OpenAi, "gpt-4o", "Be brief.")
            + count_text_tokens(ProviderKind::OpenAi, "gpt-4o", "system");
        assert_eq!(
            count_prompt_tokens(ProviderKind::OpenAi, "gpt-4o", &with_system),
            3 + system + 3 + role + content + 3
        );
    }

    #[test]
    fn other_providers_and_unknown_models_get_the_documented_estimate() {
        // 9 chars -> 3, 10 chars -> 3, 5 chars ("héllo") -> 2; 4 per message; 3 for the reply.
        let chat = request(
            Some("Be brief."),
            vec![
                ChatMessage::user("0123456789"),
                ChatMessage::assistant("héllo"),
            ],
        );
        let expected = 3 + (4 + 3) + (4 + 3) + (4 + 2);
        assert_eq!(
            count_prompt_tokens(ProviderKind::Anthropic, "claude-sonnet-4-5", &chat),
            expected
        );
        assert_eq!(
            count_prompt_tokens(ProviderKind::Google, "gemini-2.5-flash", &chat),
            expected
        );
        assert_eq!(
            count_prompt_tokens(ProviderKind::OpenAi, "llama3.2", &chat),
            expected
        );
        // A model name is not enough: gpt-4o behind Anthropic's kind is estimated.
        assert_eq!(
            count_prompt_tokens(ProviderKind::Anthropic, "gpt-4o", &chat),
            expected
        );
    }

    #[test]
    fn the_estimate_counts_characters_not_bytes() {
        assert_eq!(
            count_text_tokens(ProviderKind::Google, "gemini", "世界世界"),
            1
        );
        assert_eq!(count_text_tokens(ProviderKind::Google, "gemini", ""), 0);
    }
}
