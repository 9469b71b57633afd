//! The password policy (OWASP ASVS 5.0 §6.2): long enough, not absurdly
//! long, not the email, not a well-known password; no composition rules, no
//! truncation.

use std::{collections::HashSet, sync::LazyLock};

use secrecy::{ExposeSecret, SecretString};

/// Shortest password accepted.
pub const MIN_CHARS: usize = 10;
/// Longest password accepted (argon2 would take more, but nobody types more).
pub const MAX_CHARS: usize = 128;

/// Common passwords of at least [`MIN_CHARS`] characters, lower-cased: the
/// ones the length rule alone lets through. From Django's list of 20,000
/// common passwords (BSD-3-Clause), filtered to that length.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .collect()
});

/// A password that passed the policy. The text never shows in `Debug`.
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Checks a new password for the account with address `email`.
    pub fn parse(raw: &str, email: Option<&str>) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err("is required".to_owned());
        }
        if chars < MIN_CHARS {
            return Err(format!("must be at least {MIN_CHARS} characters"));
        }
        if chars > MAX_CHARS {
            return Err(format!("must be at most {MAX_CHARS} characters"));
        }
        let lower = raw.to_lowercase();
        if email.is_some_and(|e| e.trim().eq_ignore_ascii_case(raw.trim())) {
            return Err("must not be your email address".to_owned());
        }
        if COMMON.contains(lower.as_str()) {
            return Err("is too common; choose another".to_owned());
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The text, for hashing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters_and_bounded() {
        assert!(Password::parse("short", None).is_err());
        assert!(Password::parse("ééééééééé", None).is_err()); // 9 chars, 18 bytes
        assert!(Password::parse("éééééééééé", None).is_ok());
        assert!(Password::parse(&"x".repeat(128), None).is_ok());
        assert!(Password::parse(&"x".repeat(129), None).is_err());
        assert!(Password::parse("", None).is_err());
    }

    #[test]
    fn the_email_and_common_passwords_are_refused() {
        assert!(Password::parse("ada@example.com", Some("Ada@Example.com")).is_err());
        assert!(Password::parse("1234567890", None).is_err());
        assert!(Password::parse("Password123", None).is_err());
        assert!(Password::parse("correct horse battery staple", None).is_ok());
    }

    #[test]
    fn the_common_list_is_loaded() {
        assert!(COMMON.len() > 1_000);
        assert!(COMMON.iter().all(|p| p.chars().count() >= MIN_CHARS));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::parse("correct horse battery staple", None).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
