//! What users may send: titles, prompts and messages within bounds.

/// Longest message a user may send, in characters.
pub const MAX_CONTENT_CHARS: usize = 32_000;
/// Longest system prompt, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 8_000;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

const NUL: &str = "must not contain the character U+0000";

/// A title: at most 500 characters as sent (the column's bound; the API's
/// schema states the JSON string's length), trimmed, not empty, no control
/// characters.
pub fn title(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if raw.chars().count() > 500 {
        return Err("must be at most 500 characters".to_owned());
    }
    if t.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(t.to_owned())
}

/// The title of a conversation started without one: the start of its first
/// message, or "New conversation".
pub fn default_title() -> String {
    "New conversation".to_owned()
}

/// Free text bounded to `max` characters as sent, trimmed; blank means
/// "none". No NUL character (PostgreSQL's text cannot hold one).
pub fn optional_text(raw: &str, max: usize) -> Result<Option<String>, String> {
    if raw.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if raw.contains('\0') {
        return Err(NUL.to_owned());
    }
    let t = raw.trim();
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

/// A message's content: not blank, at most [`MAX_CONTENT_CHARS`], no NUL
/// character.
pub fn content(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if raw.chars().count() > MAX_CONTENT_CHARS {
        return Err(format!("must be at most {MAX_CONTENT_CHARS} characters"));
    }
    if raw.contains('\0') {
        return Err(NUL.to_owned());
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_texts_are_bounded() {
        assert_eq!(title("  Hi ").unwrap(), "Hi");
        assert!(title(" ").is_err());
        assert!(title(&"x".repeat(501)).is_err());
        assert!(title("a\nb").is_err());
        assert_eq!(optional_text("  ", 10).unwrap(), None);
        assert!(optional_text(&"x".repeat(11), 10).is_err());
        assert!(content("   ").is_err());
        assert!(content(&"é".repeat(MAX_CONTENT_CHARS)).is_ok());
        assert!(content(&"é".repeat(MAX_CONTENT_CHARS + 1)).is_err());
    }

    #[test]
    fn texts_with_a_nul_character_are_refused() {
        // PostgreSQL's text cannot hold U+0000: storing one failed with 500.
        assert!(optional_text("a\u{0}b", 10).is_err());
        assert!(content("a\u{0}b").is_err());
        assert!(title("a\u{0}b").is_err());
    }

    #[test]
    fn bounds_count_the_text_as_sent_white_space_included() {
        // The API's schema states maxLength of the JSON string as sent.
        assert!(title(&format!(" {}", "x".repeat(500))).is_err());
        assert!(title(&format!("{}\t", "x".repeat(499))).is_ok());
        assert!(optional_text(&format!("{} ", "x".repeat(10)), 10).is_err());
        assert!(content(&format!("{} ", "x".repeat(MAX_CONTENT_CHARS))).is_err());
    }
}
