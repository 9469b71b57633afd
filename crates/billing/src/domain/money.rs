//! Money on the wire: `NUMERIC` columns are `BigDecimal` in Rust and decimal
//! strings in proto and JSON, never floats.

use bigdecimal::{BigDecimal, RoundingMode, Zero};

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
}
