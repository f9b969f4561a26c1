//! Amounts: decimals on the wire (numbers or numeric strings), integers in minor units inside.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::codes::Currency;
use crate::problem::Problem;

/// A decimal as clients send it: a JSON number (`210`, `210.5`) or a numeric string (`"210.00"`).
///
/// Numbers are read from their textual form, never through `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalInput(pub Decimal);

impl<'de> Deserialize<'de> for DecimalInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DecimalInput;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal number or a numeric string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DecimalInput, E> {
                Ok(DecimalInput(Decimal::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DecimalInput, E> {
                Ok(DecimalInput(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DecimalInput, E> {
                // serde_json hands us f64 only for non-integers; its shortest round-trip
                // text is exactly what the client wrote for any amount with ≤15 digits.
                Decimal::from_str(&v.to_string())
                    .or_else(|_| Decimal::from_scientific(&v.to_string()))
                    .map(DecimalInput)
                    .map_err(|_| E::custom("not a decimal"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DecimalInput, E> {
                parse_decimal_text(v).map(DecimalInput).ok_or_else(|| E::custom("not a decimal"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Plain decimal text: optional sign, digits, optional fraction. No exponents, no spaces inside.
fn parse_decimal_text(s: &str) -> Option<Decimal> {
    let s = s.trim();
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits_ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(body.contains('.') && frac.is_empty());
    if !digits_ok {
        return None;
    }
    Decimal::from_str(s).ok()
}

/// An amount of a currency in its minor unit (e.g. cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount {
    pub minor: i64,
    pub currency: Currency,
}

impl Amount {
    /// Converts a decimal into minor units, refusing more fraction digits than the
    /// currency has (`INVALID_AMOUNT_PRECISION`) and values that do not fit.
    pub fn from_decimal(value: Decimal, currency: Currency, field: &str) -> Result<Self, Problem> {
        let value = value.normalize();
        if value.scale() > currency.exponent() {
            return Err(Problem::invalid_field(
                "INVALID_AMOUNT_PRECISION",
                field,
                "{field} has more decimal places than the currency allows.",
            )
            .detail("limit", currency.exponent().to_string()));
        }
        let scaled = value * Decimal::from(10i64.pow(currency.exponent()));
        let minor = i64::try_from(scaled)
            .map_err(|_| Problem::invalid_field("INVALID_AMOUNT", field, "{field} is out of range."))?;
        Ok(Self { minor, currency })
    }

    /// The amount as a decimal in major units (for output).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<DecimalInput, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_and_strings_are_decimals() {
        assert_eq!(parse("210").unwrap().0, Decimal::from(210));
        assert_eq!(parse("\"210.00\"").unwrap().0, Decimal::from_str("210.00").unwrap());
        assert_eq!(parse("0.1").unwrap().0, Decimal::from_str("0.1").unwrap());
        assert!(parse("\"1e3\"").is_err());
        assert!(parse("\"12.\"").is_err());
        assert!(parse("\"abc\"").is_err());
        assert!(parse("true").is_err());
    }

    #[test]
    fn minor_units_and_precision() {
        let a = Amount::from_decimal(Decimal::from_str("210.50").unwrap(), Currency::EUR, "amount").unwrap();
        assert_eq!(a.minor, 21050);
        assert_eq!(a.to_decimal().to_string(), "210.50");
        let p = Amount::from_decimal(Decimal::from_str("1.005").unwrap(), Currency::EUR, "amount").unwrap_err();
        assert_eq!(p.code, "INVALID_AMOUNT_PRECISION");
        // Trailing zeros beyond the exponent are not extra precision.
        assert!(Amount::from_decimal(Decimal::from_str("1.100").unwrap(), Currency::EUR, "amount").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn minor_units_round_trip(minor in -1_000_000_000_000i64..1_000_000_000_000i64) {
            let dec = Decimal::new(minor, 2);
            let a = Amount::from_decimal(dec, Currency::USD, "amount").unwrap();
            proptest::prop_assert_eq!(a.minor, minor);
            let text = format!("\"{}\"", dec);
            proptest::prop_assert_eq!(parse(&text).unwrap().0, dec);
        }
    }
}
