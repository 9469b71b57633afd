//! The quota arithmetic: what is left of a month's tokens. All sums are
//! `i64`, so no stored `INTEGER` can overflow them. Whether a reservation
//! fits is decided under the usage row's lock by `reserve_tokens` (see
//! `store::reservations::reserve`).

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
}
