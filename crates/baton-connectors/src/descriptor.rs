//! What the marketplace shows about an app (SPEC §4.4): its capabilities, methods and
//! configuration schema. Descriptors are `const` data; each connector module owns one.

use std::fmt;
use std::str::FromStr;

use baton_domain::{AppId, AppType, Country, Currency, Direction, Problem, TransactionType};
use serde_json::Value;

use crate::config::{ConfigSchema, ValidConfig};

/// One payment method an app offers (SPEC §4.4 `PaymentMethod`, without `iconUrl`, which
/// the HTTP layer derives from `id`; see [`crate::payment_method_icon_svg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentMethod {
    /// Wire id, e.g. `VISA`, `AMERICAN-EXPRESS`, `DIRECT_DEBIT` (exactly as shown to clients).
    pub id: &'static str,
    pub name: &'static str,
    /// A card-scheme method entered through the card form (debit cards such as Maestro included).
    pub is_credit_card: bool,
    pub supports_direct_sale: bool,
    pub supports_recurring: bool,
    /// The merchant must check the method is activated at the provider (e.g. Amex on Braintree).
    pub provider_warning_required: bool,
    pub tags: &'static [&'static str],
    /// The directions this method serves; a subset of the app's directions.
    pub directions: &'static [Direction],
}

impl PaymentMethod {
    pub fn supports(&self, direction: Direction) -> bool {
        self.directions.contains(&direction)
    }

    /// Whether `input` names this method: case-insensitive, with `-` ≡ `_`
    /// (`american_express` finds `AMERICAN-EXPRESS`).
    pub fn is(&self, input: &str) -> bool {
        same_id(self.id, input)
    }
}

/// Case-insensitive comparison treating `-` and `_` alike.
pub(crate) fn same_id(canonical: &str, input: &str) -> bool {
    let input = input.trim();
    canonical.len() == input.len()
        && canonical.bytes().zip(input.bytes()).all(|(a, b)| {
            let norm = |c: u8| if c == b'-' { b'_' } else { c.to_ascii_uppercase() };
            norm(a) == norm(b)
        })
}

/// A card issuer network (SPEC §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    Visa,
    Mastercard,
    AmericanExpress,
    Discover,
}

impl Network {
    pub const ALL: &'static [Network] =
        &[Network::Visa, Network::Mastercard, Network::AmericanExpress, Network::Discover];

    pub fn as_str(self) -> &'static str {
        match self {
            Network::Visa => "VISA",
            Network::Mastercard => "MASTERCARD",
            Network::AmericanExpress => "AMERICAN_EXPRESS",
            Network::Discover => "DISCOVER",
        }
    }

    /// Parses case-insensitively (`-` ≡ `_`, `AMEX` accepted); `field` names the input
    /// for the `INVALID_NETWORK` problem.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        input.parse().map_err(|_| {
            Problem::invalid_field("INVALID_NETWORK", field, "{field} is not one of the accepted values.")
                .detail("value", input.chars().take(32).collect::<String>())
        })
    }
}

impl FromStr for Network {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.trim().eq_ignore_ascii_case("AMEX") {
            return Ok(Network::AmericanExpress);
        }
        Self::ALL.iter().copied().find(|n| same_id(n.as_str(), s)).ok_or(())
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How the app's transactions reach a final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Settlement {
    /// The provider answers with the final outcome (cards, rewards).
    Immediate,
    /// The provider accepts the instruction and settles later (direct debit, bank transfer);
    /// the engine must poll or wait for a notification.
    Asynchronous,
}

/// Everything the marketplace and the engine need to know about one app.
#[derive(Debug, Clone, Copy)]
pub struct AppDescriptor {
    /// Canonical `UPPER_SNAKE` id.
    pub app_id: &'static str,
    pub name: &'static str,
    pub developer_id: &'static str,
    pub developer_name: &'static str,
    pub description: &'static str,
    /// A small self-contained SVG document (no external references).
    pub icon_svg: &'static str,
    pub tags: &'static [&'static str],
    pub app_type: AppType,
    pub directions: &'static [Direction],
    pub payment_methods: &'static [PaymentMethod],
    pub networks: &'static [Network],
    pub transaction_types: &'static [TransactionType],
    pub countries: &'static [Country],
    pub currencies: &'static [Currency],
    pub settlement: Settlement,
    pub config: &'static ConfigSchema,
}

impl AppDescriptor {
    pub fn id(&self) -> AppId {
        AppId::from_static(self.app_id)
    }

    pub fn supports(&self, direction: Direction) -> bool {
        self.directions.contains(&direction)
    }

    pub fn supports_transaction_type(&self, t: TransactionType) -> bool {
        self.transaction_types.contains(&t)
    }

    pub fn supports_network(&self, n: Network) -> bool {
        self.networks.contains(&n)
    }

    pub fn supports_country(&self, c: Country) -> bool {
        self.countries.contains(&c)
    }

    pub fn supports_currency(&self, c: Currency) -> bool {
        self.currencies.contains(&c)
    }

    /// The ids of all payment methods, in the descriptor's order.
    pub fn method_ids(&self) -> Vec<String> {
        self.payment_methods.iter().map(|m| m.id.to_string()).collect()
    }

    /// The method named `id` (case-insensitive, `-` ≡ `_`).
    pub fn method(&self, id: &str) -> Option<&'static PaymentMethod> {
        self.payment_methods.iter().find(|m| m.is(id))
    }

    /// The methods serving `direction`, in the descriptor's order (e.g. the
    /// `availablePaymentMethods` of a collect rule's app entry for `Debit`).
    pub fn methods_for(&self, direction: Direction) -> Vec<&'static PaymentMethod> {
        self.payment_methods.iter().filter(|m| m.supports(direction)).collect()
    }

    /// Validates a configuration body (see [`crate::config`] for the rules).
    pub fn validate_config(&self, config: &Value) -> Result<ValidConfig, Vec<Problem>> {
        self.config.validate(config, None)
    }

    /// Validates a new configuration for an app that already has one: a secret field
    /// sent back as [`crate::config::MASK`] keeps its value from `previous_secrets`.
    pub fn validate_config_update(
        &self,
        config: &Value,
        previous_secrets: &Value,
    ) -> Result<ValidConfig, Vec<Problem>> {
        self.config.validate(config, Some(previous_secrets))
    }

    /// Whether the app passes the marketplace filters (SPEC §4.4).
    pub fn matches(&self, filter: &MarketplaceFilter) -> bool {
        fn any<T>(wanted: &[T], pred: impl Fn(&T) -> bool) -> bool {
            wanted.is_empty() || wanted.iter().any(pred)
        }
        any(&filter.app_types, |t| *t == self.app_type)
            && any(&filter.directions, |d| self.supports(*d))
            && any(&filter.payment_methods, |m| self.method(m).is_some())
            && any(&filter.transaction_types, |t| self.supports_transaction_type(*t))
            && any(&filter.networks, |n| self.supports_network(*n))
    }
}

/// Marketplace filters: OR within a filter, AND across filters; an empty filter passes all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketplaceFilter {
    pub app_types: Vec<AppType>,
    pub directions: Vec<Direction>,
    /// Method ids as the client sent them (matched case-insensitively, `-` ≡ `_`).
    pub payment_methods: Vec<String>,
    pub transaction_types: Vec<TransactionType>,
    pub networks: Vec<Network>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_leniently() {
        assert_eq!("visa".parse::<Network>(), Ok(Network::Visa));
        assert_eq!("American-Express".parse::<Network>(), Ok(Network::AmericanExpress));
        assert_eq!("amex".parse::<Network>(), Ok(Network::AmericanExpress));
        assert_eq!(" MASTERCARD ".parse::<Network>(), Ok(Network::Mastercard));
        let p = Network::parse("JCB", "networks").unwrap_err();
        assert_eq!(p.code, "INVALID_NETWORK");
        assert!(p.details.iter().any(|(k, v)| k == "field" && v == "networks"));
        let names: Vec<&str> = Network::ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["VISA", "MASTERCARD", "AMERICAN_EXPRESS", "DISCOVER"]);
        assert_eq!(serde_json::to_value(Network::Discover).unwrap(), "DISCOVER");
    }

    #[test]
    fn ids_compare_with_dashes_and_case() {
        assert!(same_id("AMERICAN-EXPRESS", "american_express"));
        assert!(same_id("DIRECT_DEBIT", "direct-debit"));
        assert!(!same_id("VISA", "VISA_"));
    }
}
