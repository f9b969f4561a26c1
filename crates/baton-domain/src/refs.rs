//! Merchant references (SPEC §1 "Identifiers"): `orderRef`, `instructionRef`, `customerRef`,
//! and the documented convention that `""` ids mean null.
//!
//! A ref is 1–100 characters of `[A-Za-z0-9._:-]`, compared exactly (case-sensitive).
//! Input is not trimmed: a blank input (empty or only whitespace) is reported as
//! missing (`*_REQUIRED`), anything else outside the alphabet as invalid (`INVALID_*`).

use std::fmt;

use crate::problem::Problem;

/// The longest ref, in characters.
pub const MAX_REF: usize = 100;

/// Whether `s` is a well-formed ref: 1–[`MAX_REF`] characters of `[A-Za-z0-9._:-]`.
pub fn is_valid_ref(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_REF
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `None` for a missing, empty or all-whitespace id (`""` ids mean null, SPEC §1);
/// otherwise the input unchanged.
pub fn blank_to_none(input: Option<String>) -> Option<String> {
    input.filter(|s| !s.trim().is_empty())
}

/// [`blank_to_none`] for borrowed input.
pub fn blank_to_none_str(input: Option<&str>) -> Option<&str> {
    input.filter(|s| !s.trim().is_empty())
}

/// Drops blank entries from a list of ids (`[""]` means `[]`, SPEC §1), keeping order.
pub fn drop_blank(items: Vec<String>) -> Vec<String> {
    items.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// A well-formed ref of no particular kind. The typed wrappers below are preferred.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref(String);

impl Ref {
    /// Parses a ref; blank input gives `required_code`, a malformed one `invalid_code`
    /// (both with `field`; the invalid one also with `limit`).
    pub fn parse_with(
        input: Option<&str>,
        field: &str,
        required_code: &'static str,
        invalid_code: &'static str,
    ) -> Result<Self, Problem> {
        let Some(s) = blank_to_none_str(input) else {
            return Err(Problem::invalid_field(required_code, field, "{field} is required."));
        };
        if !is_valid_ref(s) {
            return Err(Problem::invalid_field(
                invalid_code,
                field,
                "{field} must be 1 to {limit} letters, digits or . _ : -.",
            )
            .detail("limit", MAX_REF.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! typed_ref {
    ($(#[$meta:meta])* $name:ident, $required:literal, $invalid:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ref);

        impl $name {
            /// The code for a blank or missing ref.
            pub const REQUIRED_CODE: &'static str = $required;
            /// The code for a malformed ref.
            pub const INVALID_CODE: &'static str = $invalid;

            /// Parses a present value; blank input is reported as missing.
            pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
                Self::parse_required(Some(input), field)
            }

            /// Parses a value that must be present: `None` or blank → `*_REQUIRED`.
            pub fn parse_required(input: Option<&str>, field: &str) -> Result<Self, Problem> {
                Ref::parse_with(input, field, $required, $invalid).map(Self)
            }

            /// Parses an optional value: `None` or blank → `Ok(None)`.
            pub fn parse_optional(input: Option<&str>, field: &str) -> Result<Option<Self>, Problem> {
                match blank_to_none_str(input) {
                    None => Ok(None),
                    Some(s) => Self::parse(s, field).map(Some),
                }
            }

            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            pub fn into_string(self) -> String {
                self.0.into_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

typed_ref!(
    /// An order's reference, unique per tenant.
    OrderRef, "ORDER_REF_REQUIRED", "INVALID_ORDER_REF"
);

typed_ref!(
    /// An instruction's reference, unique per order.
    InstructionRef, "INSTRUCTION_REF_REQUIRED", "INVALID_INSTRUCTION_REF"
);

typed_ref!(
    /// The tenant's own id for a customer, unique per tenant.
    CustomerRef, "CUSTOMER_REF_REQUIRED", "INVALID_CUSTOMER_REF"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn detail<'a>(p: &'a Problem, key: &str) -> Option<&'a str> {
        p.details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["REF1", "I01", "C01", "a.b_c:d-e", "0", &"x".repeat(100)] {
            assert_eq!(OrderRef::parse(ok, "orderRef").unwrap().as_str(), ok);
        }
        assert_eq!(CustomerRef::parse("C01", "customerRef").unwrap().to_string(), "C01");
        assert_eq!(serde_json::to_string(&InstructionRef::parse("I01", "instructionRef").unwrap()).unwrap(), "\"I01\"");
    }

    #[test]
    fn refs_are_case_sensitive() {
        assert_ne!(OrderRef::parse("ref1", "orderRef").unwrap(), OrderRef::parse("REF1", "orderRef").unwrap());
    }

    #[test]
    fn blank_is_required_and_junk_is_invalid() {
        let p = OrderRef::parse("", "orderRef").unwrap_err();
        assert_eq!(p.code, "ORDER_REF_REQUIRED");
        assert_eq!(detail(&p, "field"), Some("orderRef"));
        assert_eq!(InstructionRef::parse("  ", "instructionRef").unwrap_err().code, "INSTRUCTION_REF_REQUIRED");
        assert_eq!(CustomerRef::parse_required(None, "customerRef").unwrap_err().code, "CUSTOMER_REF_REQUIRED");

        for bad in [" REF1", "REF 1", "REF/1", "ref#", "é", "a\n", &"x".repeat(101)] {
            let p = OrderRef::parse(bad, "orderRef").unwrap_err();
            assert_eq!(p.code, "INVALID_ORDER_REF", "{bad:?}");
            assert_eq!(detail(&p, "limit"), Some("100"));
            assert_eq!(p.kind, crate::problem::ProblemKind::BadRequest);
        }
        assert_eq!(InstructionRef::parse("a b", "instructionRef").unwrap_err().code, "INVALID_INSTRUCTION_REF");
        assert_eq!(CustomerRef::parse("a b", "customerRef").unwrap_err().code, "INVALID_CUSTOMER_REF");
    }

    #[test]
    fn optional_refs_treat_blank_as_null() {
        assert_eq!(CustomerRef::parse_optional(None, "customerRef"), Ok(None));
        assert_eq!(CustomerRef::parse_optional(Some(""), "customerRef"), Ok(None));
        assert_eq!(CustomerRef::parse_optional(Some("C1"), "customerRef").unwrap().unwrap().as_str(), "C1");
        assert!(CustomerRef::parse_optional(Some("C 1"), "customerRef").is_err());
    }

    #[test]
    fn blank_ids_mean_null() {
        assert_eq!(blank_to_none(None), None);
        assert_eq!(blank_to_none(Some(String::new())), None);
        assert_eq!(blank_to_none(Some("  ".into())), None);
        assert_eq!(blank_to_none(Some("3fa85f64".into())), Some("3fa85f64".to_string()));
        assert_eq!(blank_to_none_str(Some("")), None);
        assert_eq!(drop_blank(vec!["".into(), "a".into(), " ".into(), "b".into()]), ["a", "b"]);
    }

    proptest! {
        #[test]
        fn parse_agrees_with_the_alphabet(s in "[A-Za-z0-9._:-]{1,100}") {
            prop_assert_eq!(OrderRef::parse(&s, "orderRef").unwrap().into_string(), s);
        }

        #[test]
        fn anything_outside_the_alphabet_is_refused(
            prefix in "[A-Za-z0-9._:-]{0,10}",
            bad in "[^A-Za-z0-9._:-]",
            suffix in "[A-Za-z0-9._:-]{0,10}",
        ) {
            let s = format!("{prefix}{bad}{suffix}");
            prop_assert!(OrderRef::parse(&s, "orderRef").is_err());
        }
    }
}
