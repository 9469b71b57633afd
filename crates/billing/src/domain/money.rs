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

/// Stripe's zero-decimal currencies (docs.stripe.com/currencies): an
/// amount of `500` JPY is ¥500. ISK, HUF and TWD stay two-decimal in the
/// API (whole units are sent as multiples of 100), so they are not here.
const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Stripe's three-decimal currencies: their amounts end in 0 (Stripe
/// requires it), so they still fit two decimals.
const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// The largest magnitude a `DECIMAL(10, 2)` column holds.
const MAX_PRICE: i64 = 99_999_999;

/// An ISO 4217 code as billing stores it: three letters, upper case.
pub fn parse_currency(code: &str) -> Result<String, String> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(format!("{code:?} is not a currency code"))
    }
}

/// A Stripe amount (an integer in the currency's smallest unit) as the
/// exact decimal of a `DECIMAL(10, 2)` column: `1999` USD is `19.99`,
/// `500` JPY is `500`, `12340` KWD is `12.34`. Refused rather than rounded:
/// an amount with a third decimal, or one past the column's range.
pub fn from_minor_units(amount: i64, currency: &str) -> Result<BigDecimal, String> {
    let currency = parse_currency(currency)?;
    let decimals = if ZERO_DECIMAL.contains(&currency.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&currency.as_str()) {
        3
    } else {
        2
    };
    let value = BigDecimal::new(amount.into(), decimals);
    if !(&value * BigDecimal::from(100)).is_integer() {
        return Err(format!("{amount} {currency} has more than two decimals"));
    }
    if value.abs() > BigDecimal::from(MAX_PRICE) + BigDecimal::new(99.into(), 2) {
        return Err(format!("{amount} {currency} is too large"));
    }
    Ok(value.with_scale(PRICE_SCALE))
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
    #[test]
    fn stripe_amounts_convert_exactly_by_the_currencys_decimals() {
        assert_eq!(from_minor_units(1999, "usd"), Ok(d("19.99")));
        assert_eq!(from_minor_units(2000, "EUR").unwrap().to_string(), "20.00");
        assert_eq!(from_minor_units(0, "usd"), Ok(d("0")));
        assert_eq!(from_minor_units(-500, "usd"), Ok(d("-5.00")));
        assert_eq!(from_minor_units(500, "jpy"), Ok(d("500")));
        assert_eq!(from_minor_units(1_000_000, "krw"), Ok(d("1000000")));
        // ISK is two-decimal in Stripe's API.
        assert_eq!(from_minor_units(50_000, "isk"), Ok(d("500")));
        assert_eq!(from_minor_units(12_340, "kwd"), Ok(d("12.34")));
        assert_eq!(from_minor_units(9_999_999_999, "usd"), Ok(d("99999999.99")));
    }

    #[test]
    fn stripe_amounts_that_do_not_fit_are_refused_not_rounded() {
        assert!(from_minor_units(12_345, "kwd").is_err());
        assert!(from_minor_units(10_000_000_000, "usd").is_err());
        assert!(from_minor_units(100_000_000, "jpy").is_err());
        assert!(from_minor_units(100, "us").is_err());
        assert!(from_minor_units(100, "u$d").is_err());
    }

    #[test]
    fn currencies_are_stored_in_upper_case() {
        assert_eq!(parse_currency("usd"), Ok("USD".to_owned()));
        assert_eq!(parse_currency("JPY"), Ok("JPY".to_owned()));
        assert!(parse_currency("").is_err());
        assert!(parse_currency("dollars").is_err());
    }
}
