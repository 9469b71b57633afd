//! Chat rules with no I/O: input limits, cursors, prices,
//! languages, the days of a usage report.

pub mod context;
pub mod input;
pub mod language;
pub mod pricing;
pub mod usage;

/// Field name → what is wrong: the `errors` of a `validation_failed` problem.
pub type FieldErrors = std::collections::BTreeMap<String, String>;
