//! Postal addresses of accounts and tenants (SPEC §4.1).

use crate::codes::Country;
use crate::problem::Problem;

/// Longest value accepted for one address line.
pub const MAX_ADDRESS_FIELD: usize = 200;

/// An address whose country, when given, is a supported one. Every line is optional:
/// the documented tenant form sends empty strings for lines it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub street_address: String,
    pub extended_street_address: String,
    pub locality: String,
    pub region: String,
    pub post_code: String,
    pub country: Option<Country>,
}

/// Address lines as received, before validation.
#[derive(Debug, Clone, Default)]
pub struct AddressInput<'a> {
    pub street_address: Option<&'a str>,
    pub extended_street_address: Option<&'a str>,
    pub locality: Option<&'a str>,
    pub region: Option<&'a str>,
    pub post_code: Option<&'a str>,
    pub country: Option<&'a str>,
}

impl Address {
    /// Validates every line, collecting one problem per bad field; `prefix` is
    /// prepended to field names (e.g. `address.`).
    pub fn parse(input: &AddressInput<'_>, prefix: &str) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut line = |name: &str, value: Option<&str>| -> String {
            let v = value.unwrap_or("").trim();
            if v.chars().any(char::is_control) {
                problems.push(Problem::invalid_field(
                    "CONTROL_CHARACTER_NOT_ALLOWED",
                    format!("{prefix}{name}"),
                    "{field} must not contain control characters.",
                ));
            } else if v.chars().count() > MAX_ADDRESS_FIELD {
                problems.push(
                    Problem::invalid_field(
                        "FIELD_TOO_LONG",
                        format!("{prefix}{name}"),
                        "{field} is longer than {limit} characters.",
                    )
                    .detail("limit", MAX_ADDRESS_FIELD.to_string()),
                );
            }
            v.to_string()
        };
        let street_address = line("streetAddress", input.street_address);
        let extended_street_address = line("extendedStreetAddress", input.extended_street_address);
        let locality = line("locality", input.locality);
        let region = line("region", input.region);
        let post_code = line("postCode", input.post_code);
        let country = match input.country.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match Country::parse(c, &format!("{prefix}country")) {
                Ok(c) => Some(c),
                Err(p) => {
                    problems.push(p);
                    None
                }
            },
        };
        if problems.is_empty() {
            Ok(Self { street_address, extended_street_address, locality, region, post_code, country })
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uk_becomes_gb_and_bad_country_is_reported() {
        let a =
            Address::parse(&AddressInput { country: Some("uk"), locality: Some(" London "), ..Default::default() }, "")
                .unwrap();
        assert_eq!(a.country, Some(Country::GB));
        assert_eq!(a.locality, "London");
        let errs = Address::parse(&AddressInput { country: Some("ZZ"), ..Default::default() }, "address.").unwrap_err();
        assert_eq!(errs[0].code, "INVALID_COUNTRY");
        assert!(errs[0].details.iter().any(|(k, v)| k == "field" && v == "address.country"));
    }
}
