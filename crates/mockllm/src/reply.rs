//! The mock's "model": a deterministic reply from a fixed vocabulary,
//! seeded by the last user message, and its own token counts (a token is a
//! word: whitespace-separated).

use crate::MockConfig;

/// Words replies are made of. Some are multi-byte in UTF-8 so that clients
/// are exercised on characters split across reads.
const VOCABULARY: [&str; 32] = [
    "the", "model", "answers", "quickly", "and", "politely", "about", "rivers", "café", "naïve",
    "über", "data", "streams", "flow", "through", "世界", "🚀", "tokens", "arrive", "one", "by",
    "one", "until", "done", "while", "tests", "listen", "closely", "to", "every", "byte", "crème",
];

/// Why the reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The reply is as long as configured.
    Stop,
    /// The request's max tokens cut it short.
    Length,
}

/// A reply, decided before any of it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The pieces streamed, one token each: the first word, then ` word`s.
    pub(crate) pieces: Vec<String>,
    pub(crate) prompt_tokens: u32,
    pub(crate) finish: Finish,
}

impl Reply {
    /// The reply to a conversation whose last user message is `last_user`
    /// and whose texts (system prompt and every message) are `prompt`.
    pub(crate) fn new<'a>(
        last_user: &str,
        prompt: impl IntoIterator<Item = &'a str>,
        max_tokens: Option<u32>,
        config: &MockConfig,
    ) -> Self {
        let limit = max_tokens.map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
        let length = config.reply_tokens.min(limit);
        let mut seed = fnv1a(last_user.as_bytes());
        let pieces = (0..length)
            .map(|i| {
                seed = splitmix64(seed);
                let word = VOCABULARY[usize::try_from(seed % VOCABULARY.len() as u64).unwrap_or(0)];
                if i == 0 {
                    word.to_owned()
                } else {
                    format!(" {word}")
                }
            })
            .collect();
        Self {
            pieces,
            prompt_tokens: prompt
                .into_iter()
                .map(count_words)
                .fold(0, u32::saturating_add),
            finish: if length < config.reply_tokens {
                Finish::Length
            } else {
                Finish::Stop
            },
        }
    }

    /// The whole reply.
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    /// One token per piece.
    pub(crate) fn completion_tokens(&self) -> u32 {
        u32::try_from(self.pieces.len()).unwrap_or(u32::MAX)
    }
}

fn count_words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// FNV-1a, 64 bits: stable across runs and Rust versions, unlike
/// `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(reply_tokens: usize) -> MockConfig {
        MockConfig {
            reply_tokens,
            ..MockConfig::instant()
        }
    }

    #[test]
    fn the_same_question_gets_the_same_reply_and_another_gets_another() {
        let a = Reply::new("What is Rust?", ["What is Rust?"], None, &config(12));
        let again = Reply::new("What is Rust?", ["What is Rust?"], None, &config(12));
        let b = Reply::new("What is Go?", ["What is Go?"], None, &config(12));
        assert_eq!(a, again);
        assert_ne!(a.text(), b.text());
    }

    #[test]
    fn a_reply_has_the_configured_number_of_words_and_counts_them() {
        let reply = Reply::new("hi", ["be brief", "hi there"], None, &config(7));
        assert_eq!(reply.pieces.len(), 7);
        assert_eq!(reply.text().split_whitespace().count(), 7);
        assert_eq!(reply.completion_tokens(), 7);
        assert_eq!(reply.prompt_tokens, 4);
        assert_eq!(reply.finish, Finish::Stop);
    }

    #[test]
    fn max_tokens_cuts_the_reply_short() {
        let reply = Reply::new("hi", ["hi"], Some(3), &config(7));
        assert_eq!(reply.completion_tokens(), 3);
        assert_eq!(reply.finish, Finish::Length);
    }
}
