//! ISO 4217 currencies and ISO 3166-1 alpha-2 countries supported by Baton (SPEC §1).

use std::fmt;
use std::str::FromStr;

use crate::problem::Problem;

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident, $err:literal, [$($variant:ident),* $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl $name {
            /// Parses a code case-insensitively; `field` names the input for the problem.
            pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
                input.parse().map_err(|_| {
                    Problem::invalid_field($err, field, "{field} is not a supported code.")
                        .detail("value", input.chars().take(16).collect::<String>())
                })
            }
        }
    };
}

code_enum!(
    /// A supported ISO 4217 currency.
    Currency, "INVALID_CURRENCY", [BRL, CAD, CHF, EUR, GBP, MXN, SAR, THB, USD, ZAR]
);

code_enum!(
    /// A supported ISO 3166-1 alpha-2 country.
    Country, "INVALID_COUNTRY",
    [AT, BE, BR, BG, CA, HR, CY, CZ, DK, EE, FI, FR, DE, GR, HU, IS, IE, IT, LV, LT, LU, MT, MX,
     NL, NO, PL, PT, RO, SA, RS, SK, SI, ZA, ES, SE, CH, TH, UA, GB, US]
);

impl Currency {
    /// Digits after the decimal point in this currency's minor unit.
    pub fn exponent(self) -> u32 {
        // Every currency Baton supports today has two decimal places.
        2
    }
}

impl FromStr for Currency {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let upper = s.trim().to_ascii_uppercase();
        Self::ALL.iter().copied().find(|c| c.as_str() == upper).ok_or(())
    }
}

impl FromStr for Country {
    type Err = ();
    /// Accepts `UK` for `GB`, as the documented clients send it.
    fn from_str(s: &str) -> Result<Self, ()> {
        let upper = s.trim().to_ascii_uppercase();
        if upper == "UK" {
            return Ok(Country::GB);
        }
        Self::ALL.iter().copied().find(|c| c.as_str() == upper).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_accepts_uk_and_any_case() {
        assert_eq!("UK".parse::<Country>(), Ok(Country::GB));
        assert_eq!("ch".parse::<Country>(), Ok(Country::CH));
        assert!("XX".parse::<Country>().is_err());
        assert_eq!(Country::ALL.len(), 40);
    }

    #[test]
    fn currency_parse_reports_field() {
        let p = Currency::parse("ABC", "currency").unwrap_err();
        assert_eq!(p.code, "INVALID_CURRENCY");
        assert!(p.details.iter().any(|(k, v)| k == "field" && v == "currency"));
        assert_eq!(Currency::parse("gbp", "currency"), Ok(Currency::GBP));
    }
}
