//! API keys: what a key looks like, how it is made and stored, and what a
//! key's name may be. A key is `sk-aichat-` and 43 URL-safe characters: 256
//! random bits from the OS CSPRNG. It is shown to its owner once; identity
//! keeps only its SHA-256 (as [`super::token`] does for refresh tokens) and
//! the first characters ([`PREFIX_LEN`]) so the owner can recognise it.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{RngCore, rngs::OsRng};

use super::token;

/// What every key starts with: recognisable by people and secret scanners.
pub const KEY_PREFIX: &str = "sk-aichat-";

/// How many characters of the key are kept in the clear (`sk-aichat-AbCd`):
/// the fixed prefix and 4 random characters (24 of the 256 bits).
pub const PREFIX_LEN: usize = KEY_PREFIX.len() + 4;

/// The most characters a key's name may have.
pub const NAME_MAX: usize = 100;

/// The most keys a user may hold that have not expired.
pub const MAX_LIVE_KEYS: i64 = 20;

/// A new key as its owner sees it once, and what is stored of it.
#[derive(Debug)]
pub struct NewKey {
    /// The whole key: returned once, never stored.
    pub secret: String,
    /// Its SHA-256, lower-case hex: the stored form.
    pub hash: String,
    /// Its first [`PREFIX_LEN`] characters.
    pub prefix: String,
}

/// A fresh key.
pub fn generate() -> NewKey {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewKey {
        hash: hash(&secret),
        prefix: secret.chars().take(PREFIX_LEN).collect(),
        secret,
    }
}

/// The stored form of a presented key.
pub fn hash(key: &str) -> String {
    token::hash(key)
}

/// Whether a presented key could be one of ours (a cheap shape check before
/// any database look-up).
pub fn well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(token::well_formed)
}

/// A key's name: 1 to [`NAME_MAX`] characters as sent, something left
/// after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    /// Parses a name as typed.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("is required".to_owned());
        }
        if raw.chars().count() > NAME_MAX {
            return Err(format!("must be at most {NAME_MAX} characters"));
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
    fn keys_are_random_prefixed_and_stored_as_a_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("sk-aichat-"));
        assert_eq!(a.secret.len(), KEY_PREFIX.len() + 43);
        assert!(well_formed(&a.secret));
        assert_eq!(hash(&a.secret), a.hash);
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.secret[KEY_PREFIX.len()..]));
        assert_eq!(a.prefix, a.secret[..14]);
        assert!(!well_formed(&a.secret[KEY_PREFIX.len()..]));
        assert!(!well_formed(&format!(
            "{}!",
            &a.secret[..a.secret.len() - 1]
        )));
        assert!(!well_formed("sk-aichat-short"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(KeyName::parse("  ci ").unwrap().as_str(), "ci");
        assert!(KeyName::parse("").is_err());
        assert!(KeyName::parse("  ").is_err());
        assert!(KeyName::parse(&"é".repeat(100)).is_ok());
        assert!(KeyName::parse(&"é".repeat(101)).is_err());
        assert!(KeyName::parse("a\u{7}b").is_err());
    }
}
