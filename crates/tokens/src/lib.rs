#![doc = include_str!("../README.md")]

use std::collections::HashMap;

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{RngCore, rngs::OsRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The JOSE `typ` of an access token (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The session (refresh-token family) it belongs to: revoking the
    /// session revokes the token.
    pub sid: Uuid,
    /// `user` or `admin`.
    pub role: String,
    /// Issued at, not before, expires (seconds since the epoch).
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
}

/// Why a key or token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the key is not an Ed25519 PKCS#8 private key")]
    BadPrivateKey,
    #[error("the public key is not 32 bytes of base64url")]
    BadPublicKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token's key id is not one of ours")]
    UnknownKey,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A public key of the set, as a JWK carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Key id: the first 16 characters of the base64url SHA-256 of the key.
    pub kid: String,
    /// base64url (no padding) of the 32-byte Ed25519 public key (JWK `x`).
    pub x: String,
}

impl PublicKey {
    /// From the JWK `x` value; the kid is derived from it.
    pub fn from_x(x: &str) -> Result<Self, TokenError> {
        let raw = URL_SAFE_NO_PAD
            .decode(x.trim())
            .map_err(|_| TokenError::BadPublicKey)?;
        if raw.len() != 32 {
            return Err(TokenError::BadPublicKey);
        }
        Ok(Self {
            kid: kid_of(&raw),
            x: x.trim().to_owned(),
        })
    }
}

fn kid_of(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    URL_SAFE_NO_PAD.encode(digest)[..16].to_owned()
}

/// PKCS#8 v1 DER prefix of an Ed25519 private key (RFC 8410); the 32-byte
/// seed follows.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Signs access tokens with the current private key.
pub struct Signer {
    key: EncodingKey,
    public: PublicKey,
}

impl Signer {
    /// A brand-new random key (development and tests).
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `keygen` writes
    /// and `openssl genpkey -algorithm ed25519` does.
    pub fn from_pem(pem: &str) -> Result<Self, TokenError> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----") && !l.is_empty())
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| TokenError::BadPrivateKey)?;
        let seed = der
            .strip_prefix(&PKCS8_PREFIX[..])
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or(TokenError::BadPrivateKey)?;
        Ok(Self::from_seed(seed))
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        Self {
            key: EncodingKey::from_ed_der(&der),
            public: PublicKey {
                kid: kid_of(&public),
                x: URL_SAFE_NO_PAD.encode(public),
            },
        }
    }

    /// A new key as PKCS#8 PEM: what `identity keygen` prints.
    pub fn generate_pem() -> String {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        )
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `claims` as an `at+jwt` with this key's `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.public.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }
}

/// Verifies access tokens against a key set.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl Verifier {
    /// A verifier trusting `keys`, for tokens from `issuer` to `audience`.
    pub fn new(keys: &[PublicKey], issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let mut map = HashMap::new();
        for key in keys {
            let decoding =
                DecodingKey::from_ed_components(&key.x).map_err(|_| TokenError::BadPublicKey)?;
            map.insert(key.kid.clone(), decoding);
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Ok(Self {
            keys: map,
            validation,
        })
    }

    /// Whether a key id is in the set.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The claims of a valid access token.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid("algorithm not allowed".to_owned()));
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::Invalid("not an access token".to_owned()));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
