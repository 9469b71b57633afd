//! Money on the wire: `NUMERIC` columns are `BigDecimal` in Rust and decimal
//! strings in proto and JSON, never floats.

use bigdecimal::{BigDecimal, RoundingMode, ToPrimitive, Zero};

/// Decimals of a price (`DECIMAL(10, 2)`).
pub const PRICE_SCALE: i64 = 2;
/// Decimals of a usage cost (`DECIMAL(10, 6)`).
pub const COST_SCALE: i64 = 6;

/// `value` with exactly `scale` decimals, in plain notation (`"20.00"`,
/// `"0.000120"`), rounded half away from zero as PostgreSQL rounds a
/// `NUMERIC` into a narrower column.
pub fn to_wire(value: &BigDecimal, scale: i64) -> String {
    value
        .with_scale_round(scale, RoundingMode::HalfUp)
        .to_plain_string()
}

/// A cost an event reports: zero or more.
pub fn parse_cost(value: &BigDecimal) -> Result<BigDecimal, String> {
    if *value < BigDecimal::zero() {
        Err("must not be negative".to_owned())
    } else {
        Ok(value.clone())
    }
}

/// A price in whole cents (Stripe's `unit_amount`: the smallest unit of a
/// two-decimal currency), exactly: a sub-cent or negative amount, or one
/// past `i64`, is refused rather than rounded.
pub fn to_cents(value: &BigDecimal) -> Result<i64, String> {
    if *value < BigDecimal::zero() {
        return Err("must not be negative".to_owned());
    }
    let cents = value * BigDecimal::from(100);
    if !cents.is_integer() {
        return Err("has a fraction of a cent".to_owned());
    }
    cents
        .with_scale(0)
        .to_i64()
        .ok_or_else(|| "is too large".to_owned())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    #[test]
    fn prices_have_two_decimals_in_plain_notation() {
        assert_eq!(to_wire(&d("20"), PRICE_SCALE), "20.00");
        assert_eq!(to_wire(&d("0"), PRICE_SCALE), "0.00");
        assert_eq!(to_wire(&d("200.00"), PRICE_SCALE), "200.00");
        assert_eq!(to_wire(&d("1e3"), PRICE_SCALE), "1000.00");
    }

    #[test]
    fn costs_have_six_decimals_and_round_as_postgres_does() {
        assert_eq!(to_wire(&d("0.000123"), COST_SCALE), "0.000123");
        assert_eq!(to_wire(&d("1.2e-5"), COST_SCALE), "0.000012");
        assert_eq!(to_wire(&d("0.0000005"), COST_SCALE), "0.000001");
        assert_eq!(to_wire(&d("0.00000049"), COST_SCALE), "0.000000");
        assert_eq!(to_wire(&d("9999.999999"), COST_SCALE), "9999.999999");
    }

    #[test]
    fn sums_of_many_small_costs_stay_exact() {
        let total = (0..1000).fold(BigDecimal::zero(), |acc, _| acc + d("0.000001"));
        assert_eq!(to_wire(&total, COST_SCALE), "0.001000");
        assert_eq!(total, d("0.001"));
    }

    #[test]
    fn a_negative_cost_is_refused() {
        assert!(parse_cost(&d("-0.000001")).is_err());
        assert!(parse_cost(&d("0")).is_ok());
        assert_eq!(parse_cost(&d("0.5")).unwrap(), d("0.5"));
    }

    #[test]
    fn prices_convert_to_exact_cents() {
        assert_eq!(to_cents(&d("20.00")), Ok(2000));
        assert_eq!(to_cents(&d("20")), Ok(2000));
        assert_eq!(to_cents(&d("0")), Ok(0));
        assert_eq!(to_cents(&d("199.99")), Ok(19999));
        assert_eq!(to_cents(&d("0.01")), Ok(1));
        assert_eq!(to_cents(&d("1e3")), Ok(100_000));
        assert_eq!(to_cents(&d("12.340000")), Ok(1234));
        assert_eq!(to_cents(&d("99999999.99")), Ok(9_999_999_999));
    }

    #[test]
    fn sub_cent_negative_and_huge_prices_are_refused_not_rounded() {
        assert!(to_cents(&d("0.001")).is_err());
        assert!(to_cents(&d("19.995")).is_err());
        assert!(to_cents(&d("-1.00")).is_err());
        assert!(to_cents(&d("1e30")).is_err());
    }
}
