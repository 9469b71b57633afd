//! Fitting a conversation into a model's context window.

/// Tokens a model accepts in one request (prompt + reply), by model family.
pub fn window(model: &str) -> u32 {
    let m = model.to_ascii_lowercase();
    if m.starts_with("gemini-1.5") || m.starts_with("gemini-2") {
        1_000_000
    } else if m.starts_with("claude") {
        200_000
    } else if m.starts_with("gpt-4o") || m.starts_with("gpt-4-turbo") || m.starts_with("gpt-4.1") {
        128_000
    } else if m.starts_with("gpt-3.5") {
        16_385
    } else {
        8_192
    }
}

/// How many of the newest `sizes` (token counts of the history, oldest
/// first) fit in `budget` after `fixed` tokens (system prompt, new message,
/// reply). Returns the index of the first message to keep.
pub fn keep_from(sizes: &[u32], fixed: u32, budget: u32) -> usize {
    let mut left = budget.saturating_sub(fixed);
    let mut first = sizes.len();
    for (i, size) in sizes.iter().enumerate().rev() {
        if *size > left {
            break;
        }
        left -= size;
        first = i;
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_messages_that_fit_are_kept() {
        assert_eq!(keep_from(&[10, 10, 10], 5, 100), 0);
        assert_eq!(keep_from(&[50, 30, 20], 10, 59), 2);
        assert_eq!(keep_from(&[50, 30, 20], 10, 60), 1);
        assert_eq!(keep_from(&[50, 30, 20], 10, 110), 0);
        assert_eq!(keep_from(&[10], 100, 50), 1, "nothing fits");
        assert_eq!(keep_from(&[], 0, 10), 0);
    }

    #[test]
    fn windows_by_family() {
        assert_eq!(window("gpt-4o-mini"), 128_000);
        assert_eq!(window("gpt-4"), 8_192);
        assert_eq!(window("claude-3-opus"), 200_000);
        assert_eq!(window("gemini-1.5-pro"), 1_000_000);
    }
}
