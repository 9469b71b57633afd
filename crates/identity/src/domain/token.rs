//! Secret tokens (refresh, email verification, password reset): 256 random
//! bits from the OS CSPRNG, sent to the user once, stored only as SHA-256.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};

/// A fresh token (43 URL-safe characters) and the hash to store.
pub fn generate() -> (String, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a token: lower-case hex SHA-256. A fast hash is right
/// here: the token has 256 bits of entropy, so nothing can be guessed.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    hex
}

/// Whether a presented token could be one of ours (cheap shape check before
/// any database look-up).
pub fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_well_formed_and_hashed() {
        let (a, ha) = generate();
        let (b, hb) = generate();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(well_formed(&a));
        assert_eq!(hash(&a), ha);
        assert_eq!(ha.len(), 64);
        assert!(!well_formed("short"));
        assert!(!well_formed(&format!("{}!", &a[..42])));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
