//! Account rules with no I/O: what a valid email, name and password are,
//! how secret tokens are made and stored, how export pages are asked for. Unit-tested here; the service
//! layer only calls these.

pub mod api_key;
pub mod email;
pub mod name;
pub mod password;
pub mod token;

pub use email::Email;
pub use name::DisplayName;
pub use password::Password;

use std::collections::BTreeMap;

/// Field name → what is wrong with it: the `errors` of a
/// `validation_failed` problem.
pub type FieldErrors = BTreeMap<String, String>;

/// Collects parse results field by field, so a request with three bad fields
/// hears about all three at once.
#[derive(Debug, Default)]
pub struct Validator {
    errors: FieldErrors,
}

impl Validator {
    /// Keeps the value, or records why `field` is refused.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(reason) => {
                self.errors.entry(field.to_owned()).or_insert(reason);
                None
            }
        }
    }

    /// Records a refusal found outside a parser.
    pub fn refuse(&mut self, field: &str, reason: &str) {
        self.errors
            .entry(field.to_owned())
            .or_insert_with(|| reason.to_owned());
    }

    /// The errors, if any.
    pub fn finish(self) -> Result<(), FieldErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}
