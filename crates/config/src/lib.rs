#![doc = include_str!("../README.md")]

use std::{str::FromStr, time::Duration};

pub use secrecy::{ExposeSecret, SecretString};

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub name: String,
    /// What it holds.
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

/// The variable, if set and not empty.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable, or `default`.
pub fn string(name: &str, default: &str) -> String {
    optional(name).unwrap_or_else(|| default.to_owned())
}

/// The variable as a secret, or `default`.
pub fn secret(name: &str, default: &str) -> SecretString {
    SecretString::from(string(name, default))
}

/// The variable parsed as `T`, or `default`.
pub fn parse<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError {
            name: name.to_owned(),
            reason: e.to_string(),
            value,
        }),
    }
}

/// A boolean: `true`/`false`/`1`/`0`/`yes`/`no`.
pub fn flag(name: &str, default: bool) -> Result<bool, ConfigError> {
    match optional(name) {
        None => Ok(default),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError {
                name: name.to_owned(),
                value,
                reason: "expected true or false".to_owned(),
            }),
        },
    }
}

/// A duration in whole seconds.
pub fn seconds(name: &str, default: u64) -> Result<Duration, ConfigError> {
    parse(name, default).map(Duration::from_secs)
}

/// A comma-separated list; empty items are dropped.
pub fn list(name: &str, default: &str) -> Vec<String> {
    string(name, default)
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_take_their_default() {
        assert_eq!(string("AICHAT_TEST_UNSET_VAR", "x"), "x");
        assert_eq!(parse::<u16>("AICHAT_TEST_UNSET_VAR", 7).ok(), Some(7));
        assert_eq!(flag("AICHAT_TEST_UNSET_VAR", true).ok(), Some(true));
        assert_eq!(
            list("AICHAT_TEST_UNSET_VAR", "a, b,,c"),
            vec!["a", "b", "c"]
        );
    }
}
