//! Stripe webhook signatures, verified as Stripe specifies
//! (docs.stripe.com/webhooks#verify-manually; stripe-php
//! `WebhookSignature.php`): the `Stripe-Signature` header is
//! `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, each `v1` an HMAC-SHA256 with
//! the endpoint's secret over `"{t}.{raw body}"`. The event is genuine when
//! any `v1` matches under any of our secrets (several during a rotation);
//! other schemes (`v0`, a test-mode scheme) are ignored; the comparison is
//! constant-time; and `t` must be within the tolerance of now, in either
//! direction, so a captured request cannot be replayed later.
//!
//! This only decides whether the bytes came from Stripe; parsing the event
//! and applying it are the caller's.

use std::time::Duration;

use aichat_config::{ExposeSecret, SecretString};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's default tolerance (stripe-php `DEFAULT_TOLERANCE = 300`).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The header Stripe signs its webhook requests with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Why a webhook request is refused (each one a 400 for Stripe).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    MissingHeader,
    #[error("the Stripe-Signature header has no valid timestamp")]
    MalformedHeader,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches the payload")]
    Mismatch,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// Checks `payload` (the raw request body, byte for byte) against the
/// `Stripe-Signature` header with each of `secrets`; `now` and `tolerance`
/// bound the header's timestamp. Returns the signed timestamp.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[SecretString],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<DateTime<Utc>, SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = parse_header(header)?;
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    if parsed.v1.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let matched = secrets.iter().any(|secret| {
        let mac = signed_payload_mac(secret.expose_secret().as_bytes(), parsed.timestamp, payload);
        parsed
            .v1
            .iter()
            // `verify_slice` compares in constant time.
            .any(|signature| mac.clone().verify_slice(signature).is_ok())
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let age = now.timestamp().abs_diff(parsed.timestamp);
    if age > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    DateTime::from_timestamp(parsed.timestamp, 0).ok_or(SignatureError::MalformedHeader)
}

/// A `Stripe-Signature` header for `payload` signed with `secret` at
/// `timestamp`, as Stripe would send it (stripe-php's
/// `generateTestHeaderString`): for tests and the local stand-in.
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mac = signed_payload_mac(secret.as_bytes(), timestamp, payload);
    format!("t={timestamp},v1={}", hex(&mac.finalize().into_bytes()))
}

struct Header {
    timestamp: i64,
    /// The decoded `v1` signatures; those that are not hex are dropped (they
    /// cannot match).
    v1: Vec<Vec<u8>>,
}

/// `t=...,v1=...,v0=...`: comma-separated `key=value` pairs; the first `t`
/// counts; unknown keys are ignored, as Stripe's libraries do.
fn parse_header(header: &str) -> Result<Header, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::MalformedHeader)?,
                );
            }
            "v1" => v1.extend(unhex(value)),
            _ => {}
        }
    }
    Ok(Header {
        timestamp: timestamp.ok_or(SignatureError::MalformedHeader)?,
        v1,
    })
}

fn signed_payload_mac(secret: &[u8], timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const PAYLOAD: &str = r#"{"id":"evt_test_webhook","object":"event"}"#;
    const T: i64 = 1_492_774_577;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(T, 0).unwrap()
    }

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter().map(|s| SecretString::from(*s)).collect()
    }

    fn check(
        payload: &str,
        header: Option<&str>,
        with: &[&str],
    ) -> Result<DateTime<Utc>, SignatureError> {
        verify(
            payload.as_bytes(),
            header,
            &secrets(with),
            now(),
            DEFAULT_TOLERANCE,
        )
    }

    #[test]
    fn signing_matches_an_independent_hmac_sha256() {
        // printf '1492774577.{"id":"evt_test_webhook","object":"event"}' \
        //   | openssl dgst -sha256 -hmac whsec_test_secret
        assert_eq!(
            sign(PAYLOAD.as_bytes(), SECRET, T),
            "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"
        );
    }

    #[test]
    fn a_valid_signature_passes_and_returns_its_timestamp() {
        let header = sign(PAYLOAD.as_bytes(), SECRET, T);
        assert_eq!(check(PAYLOAD, Some(&header), &[SECRET]), Ok(now()));
    }

    #[test]
    fn one_changed_body_byte_fails() {
        let header = sign(PAYLOAD.as_bytes(), SECRET, T);
        let changed = PAYLOAD.replace("evt_test_webhook", "evt_test_webhooK");
        assert_eq!(
            check(&changed, Some(&header), &[SECRET]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_reserialised_body_fails() {
        let header = sign(PAYLOAD.as_bytes(), SECRET, T);
        let value: serde_json::Value = serde_json::from_str(PAYLOAD).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        assert_ne!(pretty, PAYLOAD);
        assert_eq!(
            check(&pretty, Some(&header), &[SECRET]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_matching_v1_among_several_passes() {
        let valid = sign(PAYLOAD.as_bytes(), SECRET, T);
        let good = valid.split_once(",v1=").unwrap().1;
        let forged = "0".repeat(64);
        for header in [
            format!("t={T},v1={forged},v1={good}"),
            format!("t={T},v1={good},v1={forged}"),
            format!("t={T},v0={forged},v1={good}"),
            format!("v1={good}, t={T}"),
        ] {
            assert_eq!(
                check(PAYLOAD, Some(&header), &[SECRET]),
                Ok(now()),
                "{header}"
            );
        }
    }

    #[test]
    fn only_a_v0_signature_fails_even_if_it_would_match() {
        let valid = sign(PAYLOAD.as_bytes(), SECRET, T);
        let good = valid.split_once(",v1=").unwrap().1;
        assert_eq!(
            check(PAYLOAD, Some(&format!("t={T},v0={good}")), &[SECRET]),
            Err(SignatureError::NoSignature)
        );
    }

    #[test]
    fn timestamps_past_the_tolerance_fail_in_both_directions() {
        for t in [T - 301, T + 301] {
            let header = sign(PAYLOAD.as_bytes(), SECRET, t);
            assert_eq!(
                check(PAYLOAD, Some(&header), &[SECRET]),
                Err(SignatureError::Stale),
                "t = now {:+}",
                t - T
            );
        }
        for t in [T - 300, T + 300] {
            let header = sign(PAYLOAD.as_bytes(), SECRET, t);
            assert!(
                check(PAYLOAD, Some(&header), &[SECRET]).is_ok(),
                "t = now {:+}",
                t - T
            );
        }
    }

    #[test]
    fn a_wrong_secret_fails() {
        let header = sign(PAYLOAD.as_bytes(), "whsec_someone_else", T);
        assert_eq!(
            check(PAYLOAD, Some(&header), &[SECRET]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn during_a_rotation_either_secret_passes() {
        let old = sign(PAYLOAD.as_bytes(), "whsec_old", T);
        let new = sign(PAYLOAD.as_bytes(), "whsec_new", T);
        for header in [old, new] {
            assert!(check(PAYLOAD, Some(&header), &["whsec_new", "whsec_old"]).is_ok());
        }
    }

    #[test]
    fn a_missing_header_fails() {
        assert_eq!(
            check(PAYLOAD, None, &[SECRET]),
            Err(SignatureError::MissingHeader)
        );
    }

    #[test]
    fn malformed_headers_fail() {
        let valid = sign(PAYLOAD.as_bytes(), SECRET, T);
        let good = valid.split_once(",v1=").unwrap().1;
        assert_eq!(
            check(PAYLOAD, Some(""), &[SECRET]),
            Err(SignatureError::MalformedHeader)
        );
        assert_eq!(
            check(PAYLOAD, Some(&format!("v1={good}")), &[SECRET]),
            Err(SignatureError::MalformedHeader)
        );
        assert_eq!(
            check(PAYLOAD, Some(&format!("t=yesterday,v1={good}")), &[SECRET]),
            Err(SignatureError::MalformedHeader)
        );
        assert_eq!(
            check(PAYLOAD, Some(&format!("t={T}")), &[SECRET]),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            check(PAYLOAD, Some(&format!("t={T},v1=not-hex")), &[SECRET]),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            check(
                PAYLOAD,
                Some(&format!("t={T},v1={}", &good[..10])),
                &[SECRET]
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn without_a_configured_secret_everything_fails() {
        let header = sign(PAYLOAD.as_bytes(), SECRET, T);
        assert_eq!(
            check(PAYLOAD, Some(&header), &[]),
            Err(SignatureError::NoSecret)
        );
    }
}
