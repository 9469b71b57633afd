//! The quota arithmetic: what is left of a month's tokens and whether a
//! reservation fits. All sums are `i64`, so no stored `INTEGER` can overflow
//! them.

/// A number of tokens a caller asks to reserve: at least 1, and small
/// enough for the `INTEGER` column that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenAmount(i32);

impl TokenAmount {
    /// Parses the requested amount.
    pub fn parse(tokens: i64) -> Result<Self, String> {
        if tokens < 1 {
            return Err("must be at least 1".to_owned());
        }
        i32::try_from(tokens)
            .map(Self)
            .map_err(|_| format!("must be at most {}", i32::MAX))
    }

    /// The amount.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// A month's quota and what holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// `monthlyQuota`.
    pub quota: i64,
    /// `tokensUsed`: settled usage. May pass the quota (a reply longer than
    /// its reservation is still charged).
    pub used: i64,
    /// Tokens held by unexpired reservations.
    pub reserved: i64,
}

impl Balance {
    /// Quota − used − reserved, never below zero.
    pub fn remaining(&self) -> i64 {
        self.quota
            .saturating_sub(self.used)
            .saturating_sub(self.reserved)
            .max(0)
    }

    /// Whether `tokens` more can be reserved: used + reserved + tokens must
    /// stay within the quota.
    pub fn admits(&self, tokens: TokenAmount) -> bool {
        self.used
            .saturating_add(self.reserved)
            .saturating_add(i64::from(tokens.get()))
            <= self.quota
    }

    /// The balance once `tokens` are reserved.
    pub fn with_reserved(self, tokens: TokenAmount) -> Self {
        Self {
            reserved: self.reserved.saturating_add(i64::from(tokens.get())),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balance(quota: i64, used: i64, reserved: i64) -> Balance {
        Balance {
            quota,
            used,
            reserved,
        }
    }

    #[test]
    fn a_requested_amount_is_positive_and_fits_an_integer_column() {
        assert!(TokenAmount::parse(0).is_err());
        assert!(TokenAmount::parse(-5).is_err());
        assert!(TokenAmount::parse(i64::MIN).is_err());
        assert_eq!(TokenAmount::parse(1).unwrap().get(), 1);
        assert_eq!(
            TokenAmount::parse(i64::from(i32::MAX)).unwrap().get(),
            i32::MAX
        );
        assert!(TokenAmount::parse(i64::from(i32::MAX) + 1).is_err());
    }

    #[test]
    fn remaining_subtracts_usage_and_reservations() {
        assert_eq!(balance(100_000, 0, 0).remaining(), 100_000);
        assert_eq!(balance(100_000, 30_000, 20_000).remaining(), 50_000);
        assert_eq!(balance(100_000, 100_000, 0).remaining(), 0);
    }

    #[test]
    fn remaining_is_never_negative() {
        assert_eq!(balance(100_000, 120_000, 0).remaining(), 0);
        assert_eq!(balance(100_000, 90_000, 20_000).remaining(), 0);
        assert_eq!(balance(0, 0, 0).remaining(), 0);
        assert_eq!(balance(0, i64::MAX, i64::MAX).remaining(), 0);
    }

    #[test]
    fn a_reservation_fits_up_to_the_last_token() {
        let t = |n| TokenAmount::parse(n).unwrap();
        assert!(balance(100_000, 60_000, 30_000).admits(t(10_000)));
        assert!(!balance(100_000, 60_000, 30_000).admits(t(10_001)));
        assert!(!balance(100_000, 100_000, 0).admits(t(1)));
        assert!(!balance(100_000, 120_000, 0).admits(t(1)));
        assert!(!balance(0, 0, 0).admits(t(1)));
        assert!(balance(i64::from(i32::MAX), 0, 0).admits(t(i64::from(i32::MAX))));
    }

    #[test]
    fn reserving_what_fits_never_passes_the_quota() {
        let t = TokenAmount::parse(3_000).unwrap();
        let mut b = balance(100_000, 1_000, 0);
        let mut granted = 0;
        while b.admits(t) {
            b = b.with_reserved(t);
            granted += 1;
        }
        assert_eq!(granted, 33);
        assert!(b.used + b.reserved <= b.quota);
        assert_eq!(b.remaining(), 0);
    }
}
