//! What users may send: titles, prompts and messages within bounds.

/// Longest message a user may send, in characters.
pub const MAX_CONTENT_CHARS: usize = 32_000;
/// Longest system prompt, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 8_000;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// A title: trimmed, 1..=500 characters (the column's bound), no control
/// characters.
pub fn title(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if t.chars().count() > 500 {
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

/// Free text bounded to `max` characters; empty means "none".
pub fn optional_text(raw: &str, max: usize) -> Result<Option<String>, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(Some(t.to_owned()))
}

/// A message's content: not blank, at most [`MAX_CONTENT_CHARS`].
pub fn content(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if raw.chars().count() > MAX_CONTENT_CHARS {
        return Err(format!("must be at most {MAX_CONTENT_CHARS} characters"));
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
}
