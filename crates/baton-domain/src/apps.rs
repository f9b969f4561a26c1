//! The vocabulary of apps (SPEC §0, §4.4): app ids, types, directions, transaction
//! types and reward value types. Shared by the registry, schemes and the API.

use std::fmt;

use crate::problem::Problem;

/// A canonical app id (`UPPER_SNAKE`). Parsing is case-insensitive, treats `-` as `_`
/// and maps the documented alias `TANGOCARD` to `TANGOCARD_RAAS` (SPEC §1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

pub const MAX_APP_ID: usize = 64;

impl AppId {
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let canonical: String =
            input.trim().chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }).collect();
        let valid = !canonical.is_empty()
            && canonical.len() <= MAX_APP_ID
            && canonical.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(Problem::not_found("APP_NOT_FOUND")
                .message("No app has this id.")
                .detail("appId", input.chars().take(64).collect::<String>()));
        }
        Ok(Self(if canonical == "TANGOCARD" { "TANGOCARD_RAAS".into() } else { canonical }))
    }

    /// For ids known to be canonical (the registry's own).
    pub fn from_static(id: &'static str) -> Self {
        Self(id.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

use crate::words::word_enum;

word_enum!(
    /// `PAYMENT` apps move cash through the bank; `REWARD` apps pay out in gift cards and the like.
    AppType, "INVALID_APP_TYPE", [Payment => "PAYMENT", Reward => "REWARD"]
);

word_enum!(
    /// `DEBIT` collects from the customer; `CREDIT` pays out to the customer.
    Direction, "INVALID_DIRECTION", [Debit => "DEBIT", Credit => "CREDIT"]
);

word_enum!(
    /// Merchant-initiated (`MIT`, e.g. scheduled) or customer-initiated (`CIT`, e.g. checkout).
    TransactionType, "INVALID_TRANSACTION_TYPE", [Mit => "MIT", Cit => "CIT"]
);

word_enum!(
    /// How a reward is valued: one fixed face value, or any value in a range.
    ValueType, "INVALID_VALUE_TYPE", [FixedValue => "FIXED_VALUE", VariableValue => "VARIABLE_VALUE"]
);

word_enum!(
    /// Collect schemes route DEBIT instructions, payout schemes CREDIT ones.
    SchemeKind, "INVALID_SCHEME_KIND", [Collect => "collect", Payout => "payout"]
);

impl SchemeKind {
    pub fn direction(self) -> Direction {
        match self {
            SchemeKind::Collect => Direction::Debit,
            SchemeKind::Payout => Direction::Credit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_normalise() {
        for input in ["BRAINTREE_SDK", "braintree_sdk", "Braintree-SDK", " braintree-sdk "] {
            assert_eq!(AppId::parse(input).unwrap().as_str(), "BRAINTREE_SDK");
        }
        for input in ["TANGOCARD", "tangocard", "tangocard-raas", "TANGOCARD_RAAS"] {
            assert_eq!(AppId::parse(input).unwrap().as_str(), "TANGOCARD_RAAS");
        }
        assert_eq!(AppId::parse("no spaces").unwrap_err().code, "APP_NOT_FOUND");
        assert!(AppId::parse("").is_err());
    }

    #[test]
    fn words_parse_in_any_case() {
        assert_eq!("debit".parse::<Direction>(), Ok(Direction::Debit));
        assert_eq!("Variable_Value".parse::<ValueType>(), Ok(ValueType::VariableValue));
        assert_eq!(SchemeKind::parse("PAYOUT", "kind").unwrap().direction(), Direction::Credit);
        assert_eq!(AppType::parse("other", "appType").unwrap_err().code, "INVALID_APP_TYPE");
    }
}
