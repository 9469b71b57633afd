//! Password hashing: argon2id with the OWASP parameters (m = 19 MiB, t = 2,
//! p = 1, the `argon2` crate's defaults), on the blocking pool so a hash
//! (tens of milliseconds of CPU) never stalls the async workers.

use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

/// At most one hash per CPU at a time: argon2id takes 19 MiB and a core for
/// tens of milliseconds, so more in parallel only adds memory and makes every
/// waiting log-in slower. The rest queue in order.
static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2),
    )
});

use anyhow::Context;
use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};

/// A hash of a password nobody knows: unknown emails are checked against it,
/// so a log-in with an unknown email costs the same argon2 time as one with
/// a wrong password and timing tells nothing.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(
            b"no account has this password",
            &SaltString::generate(&mut OsRng),
        )
        .ok()
        .map(|h| h.to_string())
});

/// Hashes a new password.
pub async fn hash(password: &str) -> anyhow::Result<String> {
    let _slot = SLOTS.acquire().await.context("hashing slots")?;
    let password = SecretString::from(password.to_owned());
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(
                password.expose_secret().as_bytes(),
                &SaltString::generate(&mut OsRng),
            )
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("hashing task")?
}

/// Whether `password` matches `stored`; with `stored = None` (no such
/// account) it checks against the dummy hash and answers `false`, in the
/// same time.
pub async fn verify(password: &str, stored: Option<String>) -> anyhow::Result<bool> {
    let _slot = SLOTS.acquire().await.context("hashing slots")?;
    let password = Arc::new(SecretString::from(password.to_owned()));
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let Some(hash) = stored.or_else(|| DUMMY_HASH.clone()) else {
            return false;
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
    .context("verifying task")
}

/// Computes the dummy hash now, at start-up, instead of on the first
/// unknown-email log-in (which would then take twice as long).
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash("correct horse battery staple").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("correct horse battery staple", Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse battery staple", Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("no account has this password", None).await.unwrap());
        assert!(!verify("anything", Some("not a hash".into())).await.unwrap());
    }
}
