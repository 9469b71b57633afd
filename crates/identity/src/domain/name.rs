//! A user's display name.

/// At most 255 characters as sent (the API's schema states the JSON
/// string's length), 1 or more after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a name as typed.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("is required".to_owned());
        }
        if raw.chars().count() > 255 {
            return Err("must be at most 255 characters".to_owned());
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"é".repeat(255)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(256)).is_err());
        assert!(DisplayName::parse("Ada\u{0}").is_err());
    }

    #[test]
    fn the_bound_counts_the_name_as_sent_white_space_included() {
        // The API's schema states maxLength of the JSON string as sent.
        assert!(DisplayName::parse(&format!(" {}", "x".repeat(255))).is_err());
        assert!(DisplayName::parse(&format!("{} ", "x".repeat(254))).is_ok());
    }
}
