//! Mobile phone numbers in E.164 form.

use std::fmt;

use crate::problem::Problem;

/// A phone number in E.164 form: `+`, then 8–15 digits, the first not `0`.
/// Spaces and dashes in the input are dropped (`+44 7700-900123` → `+447700900123`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub const MIN_DIGITS: usize = 8;
    pub const MAX_DIGITS: usize = 15;

    /// Parses an E.164 number, else `400 INVALID_PHONE_NUMBER` with `field` only.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let s: String = input.trim().chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let ok = s.strip_prefix('+').is_some_and(|digits| {
            (Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        });
        if !ok {
            return Err(Problem::invalid_field(
                "INVALID_PHONE_NUMBER",
                field,
                "{field} must be an E.164 phone number (+ then 8 to 15 digits).",
            ));
        }
        Ok(Self(s))
    }

    /// The number in E.164 form (`+447700900123`). Personal data: for delivery only.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// Display form: `+`, the first two digits, the last three, and one `*` for each
    /// digit between: `+447700900123` → `+44*******123`.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let n = digits.len();
        format!("+{}{}{}", &digits[..2], "*".repeat(n - 5), &digits[n - 3..])
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn e164_numbers() {
        let p = PhoneNumber::parse("+447700900123", "phoneNumber").unwrap();
        assert_eq!(p.as_e164(), "+447700900123");
        assert_eq!(p.masked(), "+44*******123");
        assert_eq!(format!("{p:?}"), "PhoneNumber(+44*******123)");
        assert_eq!(PhoneNumber::parse(" +44 7700-900 123 ", "phoneNumber").unwrap(), p);
        assert_eq!(PhoneNumber::parse("+12025550123", "phoneNumber").unwrap().masked(), "+12******123");
        assert_eq!(PhoneNumber::parse("+12345678", "phoneNumber").unwrap().masked(), "+12***678");
        assert!(PhoneNumber::parse("+123456789012345", "phoneNumber").is_ok());
    }

    #[test]
    fn non_e164_is_refused_without_echo() {
        for bad in
            ["447700900123", "+0447700900", "+1234567", "+1234567890123456", "+44(0)7700900", "+44 77OO", "", "+"]
        {
            let p = PhoneNumber::parse(bad, "details.phoneNumber").unwrap_err();
            assert_eq!(p.code, "INVALID_PHONE_NUMBER", "{bad}");
            assert_eq!(p.details, vec![("field".into(), "details.phoneNumber".to_string())]);
        }
    }

    proptest! {
        #[test]
        fn valid_numbers_round_trip_and_mask(digits in "[1-9][0-9]{7,14}") {
            let n = format!("+{digits}");
            let p = PhoneNumber::parse(&n, "phoneNumber").unwrap();
            prop_assert_eq!(p.as_e164(), n.as_str());
            let masked = p.masked();
            prop_assert_eq!(masked.len(), n.len());
            prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 5);
        }
    }
}
