//! What tokens cost: tokens × the provider's price per 1K tokens, exact
//! decimals (NUMERIC(10,8) prices, NUMERIC(10,6) costs), never floats.

use bigdecimal::{BigDecimal, RoundingMode};

/// The cost of a call, rounded half-up to the micro-dollar (the column's
/// scale).
pub fn cost(
    prompt_tokens: u32,
    completion_tokens: u32,
    input_per_1k: &BigDecimal,
    output_per_1k: &BigDecimal,
) -> BigDecimal {
    let thousand = BigDecimal::from(1000);
    let input = BigDecimal::from(prompt_tokens) * input_per_1k / &thousand;
    let output = BigDecimal::from(completion_tokens) * output_per_1k / &thousand;
    (input + output).with_scale_round(6, RoundingMode::HalfUp)
}

/// Decimal text as the API shows money: plain notation, no exponent.
pub fn to_text(value: &BigDecimal) -> String {
    value.to_plain_string()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    #[test]
    fn cost_is_exact_and_rounded_to_micro_dollars() {
        // 1,234 input at $0.0025/1K + 567 output at $0.01/1K = 0.003085 + 0.00567
        assert_eq!(
            cost(1234, 567, &d("0.00250000"), &d("0.01000000")),
            d("0.008755")
        );
        assert_eq!(
            to_text(&cost(1234, 567, &d("0.0025"), &d("0.01"))),
            "0.008755"
        );
        // Half a micro-dollar rounds up.
        assert_eq!(cost(1, 0, &d("0.0005"), &d("0")), d("0.000001"));
        assert_eq!(cost(0, 0, &d("0.0025"), &d("0.01")), d("0"));
        assert_eq!(to_text(&cost(0, 0, &d("0.0025"), &d("0.01"))), "0.000000");
    }

    #[test]
    fn many_small_costs_sum_exactly() {
        let one = cost(7, 13, &d("0.00125"), &d("0.005"));
        let total: BigDecimal = (0..1000).map(|_| one.clone()).sum();
        assert_eq!(total, one * BigDecimal::from(1000));
    }
}
