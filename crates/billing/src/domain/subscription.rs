//! What a user may ask of their subscription, parsed: the billing interval
//! of a checkout and the reason given for a cancellation.

/// How often a subscription bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    /// `month` or `year`, exactly.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "month" => Ok(Self::Month),
            "year" => Ok(Self::Year),
            _ => Err("must be month or year".to_owned()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

/// The longest cancellation reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A cancellation's reason in the user's words: trimmed, blank meaning none,
/// at most [`MAX_REASON_CHARS`] characters.
pub fn cancel_reason(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_REASON_CHARS {
        return Err(format!("must be at most {MAX_REASON_CHARS} characters"));
    }
    Ok(Some(value.to_owned()))
}

/// The status a user without a subscription shows (the Free plan).
pub const NO_SUBSCRIPTION: &str = "none";

/// The stored status of a subscription that has ended: a new checkout may
/// start another; nothing else can be done with it.
pub const ENDED: &str = "canceled";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_month_and_year_are_intervals() {
        assert_eq!(Interval::parse("month"), Ok(Interval::Month));
        assert_eq!(Interval::parse("year"), Ok(Interval::Year));
        for bad in ["", "Month", "monthly", "week", " year"] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reason_is_trimmed_and_bounded_in_characters() {
        assert_eq!(cancel_reason(None), Ok(None));
        assert_eq!(cancel_reason(Some("  ")), Ok(None));
        assert_eq!(
            cancel_reason(Some(" too pricey ")),
            Ok(Some("too pricey".to_owned()))
        );
        // 500 two-byte characters are fine; 501 are not.
        assert!(cancel_reason(Some(&"é".repeat(500))).unwrap().is_some());
        assert!(cancel_reason(Some(&"é".repeat(501))).is_err());
    }
}
