//! Cards: numbers (Luhn, brand from the IIN, last four) and expiry dates.
//!
//! A [`CardNumber`] never prints its digits: it has no `Display`, its `Debug` is masked
//! and its problems never echo the input. [`CardNumber::expose`] hands the digits to
//! the one caller that needs them (the vault, to encrypt them).

use std::fmt;

use serde_json::Value;
use time::OffsetDateTime;

use crate::problem::Problem;
use crate::words::word_enum;

/// Whether `digits` (ASCII digits only, at least two) passes the Luhn (mod 10) check.
/// Anything else, including the empty string, fails.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 {
                    dd - 9
                } else {
                    dd
                }
            } else {
                d
            }
        })
        .sum();
    // (Not `is_multiple_of`: the workspace supports Rust 1.85.)
    matches!(sum % 10, 0)
}

word_enum!(
    /// A card brand, named by the payment method ids the apps use.
    CardBrand, "INVALID_CARD_BRAND", [
        Visa => "VISA",
        Mastercard => "MASTERCARD",
        AmericanExpress => "AMERICAN-EXPRESS",
        Discover => "DISCOVER",
        Maestro => "MAESTRO",
    ]
);

impl CardBrand {
    /// The payment method id (`VISA`, `AMERICAN-EXPRESS`, …), as in the marketplace.
    pub fn method_id(self) -> &'static str {
        self.as_str()
    }

    /// The brand of a card number from its leading digits (IIN), if it is one of ours:
    /// VISA `4`; MASTERCARD `51`–`55`, `2221`–`2720`; AMERICAN-EXPRESS `34`, `37`;
    /// DISCOVER `6011`, `644`–`649`, `65`, `622126`–`622925`; MAESTRO `50`, `56`–`58`,
    /// `6304`, `6759`, `6761`–`6763`.
    pub fn from_iin(digits: &str) -> Option<CardBrand> {
        let prefix = |n: usize| -> Option<u32> {
            digits.get(..n).filter(|p| p.bytes().all(|b| b.is_ascii_digit())).and_then(|p| p.parse().ok())
        };
        let p1 = prefix(1)?;
        let p2 = prefix(2);
        let p3 = prefix(3);
        let p4 = prefix(4);
        let p6 = prefix(6);
        let within = |p: Option<u32>, lo: u32, hi: u32| p.is_some_and(|p| (lo..=hi).contains(&p));
        if p1 == 4 {
            Some(CardBrand::Visa)
        } else if matches!(p2, Some(34 | 37)) {
            Some(CardBrand::AmericanExpress)
        } else if within(p2, 51, 55) || within(p4, 2221, 2720) {
            Some(CardBrand::Mastercard)
        } else if p4 == Some(6011) || within(p3, 644, 649) || p2 == Some(65) || within(p6, 622126, 622925) {
            Some(CardBrand::Discover)
        } else if p2 == Some(50) || within(p2, 56, 58) || matches!(p4, Some(6304 | 6759 | 6761..=6763)) {
            Some(CardBrand::Maestro)
        } else {
            None
        }
    }
}

/// A card number: 12–19 digits passing the Luhn check. Spaces and dashes in the
/// input are dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    pub const MIN_DIGITS: usize = 12;
    pub const MAX_DIGITS: usize = 19;

    /// Parses a card number; any failure (blank included) is `400 INVALID_CARD_NUMBER`
    /// with `field` only — the input is never echoed.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let digits: String = input.trim().chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let ok = (Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && luhn_valid(&digits);
        if !ok {
            return Err(Problem::invalid_field("INVALID_CARD_NUMBER", field, "{field} is not a valid card number."));
        }
        Ok(Self(digits))
    }

    /// The brand from the IIN, `None` for numbers outside the brands Baton knows.
    pub fn brand(&self) -> Option<CardBrand> {
        CardBrand::from_iin(&self.0)
    }

    /// The last four digits (display data).
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// Every digit but the last four replaced by `*` (`************4242`).
    pub fn masked(&self) -> String {
        format!("{}{}", "*".repeat(self.0.len() - 4), self.last4())
    }

    /// The number of digits.
    pub fn digit_count(&self) -> usize {
        self.0.len()
    }

    /// The bare digits. Only for the vault (to encrypt) and PSP tokenization; never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

/// A card's expiry month. The card is valid through the last day of that month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardExpiry {
    // Field order matters for `Ord`: year first.
    year: u16,
    month: u8,
}

impl CardExpiry {
    /// From numbers: `month` 1–12; `year` either two digits (0–99, meaning 2000–2099)
    /// or four (1000–9999). Else `400 INVALID_EXPIRY`; a month before `now`'s (UTC)
    /// gives `400 CARD_EXPIRED`. Problems name `expiryMonth` or `expiryYear`.
    pub fn new(month: u32, year: u32, now: OffsetDateTime) -> Result<Self, Problem> {
        if !(1..=12).contains(&month) {
            return Err(invalid_expiry("expiryMonth"));
        }
        let year = match year {
            0..=99 => 2000 + year,
            1000..=9999 => year,
            _ => return Err(invalid_expiry("expiryYear")),
        };
        let expiry = CardExpiry { year: year as u16, month: month as u8 };
        if expiry.is_expired_at(now) {
            let field = if i32::from(expiry.year) < now.to_offset(time::UtcOffset::UTC).year() {
                "expiryYear"
            } else {
                "expiryMonth"
            };
            return Err(Problem::invalid_field("CARD_EXPIRED", field, "The card has expired."));
        }
        Ok(expiry)
    }

    /// From text: `month` one or two digits, `year` exactly two or four digits.
    pub fn parse(month: &str, year: &str, now: OffsetDateTime) -> Result<Self, Problem> {
        let month = parse_digits(month.trim(), &[1, 2]).ok_or_else(|| invalid_expiry("expiryMonth"))?;
        let year = parse_digits(year.trim(), &[2, 4]).ok_or_else(|| invalid_expiry("expiryYear"))?;
        Self::new(month, year, now)
    }

    /// From JSON: each part a non-negative integer or a string as for [`CardExpiry::parse`].
    pub fn from_json(month: &Value, year: &Value, now: OffsetDateTime) -> Result<Self, Problem> {
        let month = json_part(month, &[1, 2]).ok_or_else(|| invalid_expiry("expiryMonth"))?;
        let year = json_part(year, &[2, 4]).ok_or_else(|| invalid_expiry("expiryYear"))?;
        Self::new(month, year, now)
    }

    pub fn month(self) -> u8 {
        self.month
    }

    /// The four-digit year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Whether the card's last valid month ended before `now` (UTC).
    pub fn is_expired_at(self, now: OffsetDateTime) -> bool {
        let now = now.to_offset(time::UtcOffset::UTC);
        (i32::from(self.year), self.month) < (now.year(), u8::from(now.month()))
    }

    /// `MM/YYYY`, e.g. `03/2030`.
    pub fn display(self) -> String {
        format!("{:02}/{:04}", self.month, self.year)
    }
}

fn invalid_expiry(field: &'static str) -> Problem {
    Problem::invalid_field("INVALID_EXPIRY", field, "{field} is not a valid card expiry.")
}

fn parse_digits(s: &str, lengths: &[usize]) -> Option<u32> {
    (lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn json_part(v: &Value, lengths: &[usize]) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => parse_digits(s.trim(), lengths),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-05-15 12:00 UTC);

    #[test]
    fn luhn_known_values() {
        for ok in [
            "4242424242424242",
            "5555555555554444",
            "378282246310005",
            "4000000000000002",
            "6011111111111117",
            "79927398713",
        ] {
            assert!(luhn_valid(ok), "{ok}");
        }
        for bad in ["4242424242424241", "79927398710", "", "0", "4242 4242", "abc"] {
            assert!(!luhn_valid(bad), "{bad}");
        }
        assert!(luhn_valid("00"));
    }

    #[test]
    fn test_cards_parse_with_brand_and_last4() {
        let cases = [
            ("4242424242424242", CardBrand::Visa, "4242"),
            ("5555555555554444", CardBrand::Mastercard, "4444"),
            ("2223003122003222", CardBrand::Mastercard, "3222"),
            ("378282246310005", CardBrand::AmericanExpress, "0005"),
            ("4000000000000002", CardBrand::Visa, "0002"),
            ("6011111111111117", CardBrand::Discover, "1117"),
            ("6759649826438453", CardBrand::Maestro, "8453"),
        ];
        for (number, brand, last4) in cases {
            let card = CardNumber::parse(number, "cardNumber").unwrap();
            assert_eq!(card.brand(), Some(brand), "{number}");
            assert_eq!(card.last4(), last4);
            assert_eq!(card.expose(), number);
        }
        assert_eq!(CardBrand::AmericanExpress.method_id(), "AMERICAN-EXPRESS");
    }

    #[test]
    fn separators_are_dropped() {
        let card = CardNumber::parse(" 4242 4242-4242 4242 ", "cardNumber").unwrap();
        assert_eq!(card.expose(), "4242424242424242");
        assert_eq!(card.masked(), "************4242");
        assert_eq!(card.digit_count(), 16);
    }

    #[test]
    fn bad_numbers_are_refused_without_echo() {
        for bad in ["4242424242424241", "4242", "", "4242x42424242424", "42424242424242424242", "0000 0000 000"] {
            let p = CardNumber::parse(bad, "details.cardNumber").unwrap_err();
            assert_eq!(p.code, "INVALID_CARD_NUMBER");
            assert_eq!(p.details, vec![("field".into(), "details.cardNumber".to_string())]);
            assert!(!p.render(&[]).contains("4242424"));
        }
    }

    #[test]
    fn debug_never_prints_the_number() {
        let card = CardNumber::parse("4242424242424242", "cardNumber").unwrap();
        let debug = format!("{card:?}");
        assert_eq!(debug, "CardNumber(************4242)");
        assert!(!debug.contains("424242424242"));
    }

    #[test]
    fn iin_ranges() {
        let cases: &[(&str, Option<CardBrand>)] = &[
            ("4", Some(CardBrand::Visa)),
            ("51", Some(CardBrand::Mastercard)),
            ("55", Some(CardBrand::Mastercard)),
            ("56", Some(CardBrand::Maestro)),
            ("2220", None),
            ("2221", Some(CardBrand::Mastercard)),
            ("2720", Some(CardBrand::Mastercard)),
            ("2721", None),
            ("34", Some(CardBrand::AmericanExpress)),
            ("37", Some(CardBrand::AmericanExpress)),
            ("35", None),
            ("6011", Some(CardBrand::Discover)),
            ("6012", None),
            ("644", Some(CardBrand::Discover)),
            ("649", Some(CardBrand::Discover)),
            ("65", Some(CardBrand::Discover)),
            ("622126", Some(CardBrand::Discover)),
            ("622925", Some(CardBrand::Discover)),
            ("622926", None),
            ("50", Some(CardBrand::Maestro)),
            ("58", Some(CardBrand::Maestro)),
            ("59", None),
            ("6304", Some(CardBrand::Maestro)),
            ("6759", Some(CardBrand::Maestro)),
            ("6761", Some(CardBrand::Maestro)),
            ("6763", Some(CardBrand::Maestro)),
            ("6764", None),
            ("1", None),
            ("", None),
        ];
        for (iin, brand) in cases {
            assert_eq!(CardBrand::from_iin(&format!("{iin}{}", "0".repeat(16 - iin.len()))), *brand, "{iin}");
        }
        assert_eq!(CardBrand::parse("american-express", "brand"), Ok(CardBrand::AmericanExpress));
    }

    #[test]
    fn expiry_accepts_two_and_four_digit_years() {
        let e = CardExpiry::new(12, 30, NOW).unwrap();
        assert_eq!((e.month(), e.year()), (12, 2030));
        assert_eq!(e.display(), "12/2030");
        assert_eq!(CardExpiry::parse("3", "2031", NOW).unwrap().display(), "03/2031");
        assert_eq!(CardExpiry::parse("05", "26", NOW).unwrap().display(), "05/2026");
        assert_eq!(CardExpiry::from_json(&serde_json::json!(5), &serde_json::json!("2026"), NOW).unwrap().year(), 2026);
        assert_eq!(CardExpiry::from_json(&serde_json::json!("07"), &serde_json::json!(2027), NOW).unwrap().month(), 7);
    }

    #[test]
    fn expiry_in_the_past_is_expired() {
        let p = CardExpiry::new(4, 2026, NOW).unwrap_err();
        assert_eq!((p.code.as_ref(), p.details[0].1.as_str()), ("CARD_EXPIRED", "expiryMonth"));
        let p = CardExpiry::new(12, 2025, NOW).unwrap_err();
        assert_eq!((p.code.as_ref(), p.details[0].1.as_str()), ("CARD_EXPIRED", "expiryYear"));
        assert_eq!(CardExpiry::new(1, 20, NOW).unwrap_err().code, "CARD_EXPIRED");
        // Valid through the end of the month, in UTC.
        let e = CardExpiry::new(5, 2026, NOW).unwrap();
        assert!(!e.is_expired_at(datetime!(2026-05-31 23:59:59 UTC)));
        assert!(e.is_expired_at(datetime!(2026-06-01 00:00 UTC)));
        assert!(e.is_expired_at(datetime!(2026-05-31 23:30 -01:00)));
    }

    #[test]
    fn malformed_expiry_is_invalid() {
        let code = |r: Result<CardExpiry, Problem>| r.unwrap_err().code.to_string();
        assert_eq!(code(CardExpiry::new(0, 2030, NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::new(13, 2030, NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::new(1, 203, NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::new(1, 20300, NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::parse("", "2030", NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::parse("1a", "2030", NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::parse("12", "030", NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::parse("012", "2030", NOW)), "INVALID_EXPIRY");
        assert_eq!(code(CardExpiry::parse("-1", "2030", NOW)), "INVALID_EXPIRY");
        assert_eq!(
            code(CardExpiry::from_json(&serde_json::json!(true), &serde_json::json!(2030), NOW)),
            "INVALID_EXPIRY"
        );
        assert_eq!(
            code(CardExpiry::from_json(&serde_json::json!(1.5), &serde_json::json!(2030), NOW)),
            "INVALID_EXPIRY"
        );
        let p = CardExpiry::parse("12", "x", NOW).unwrap_err();
        assert_eq!(p.details[0].1, "expiryYear");
    }

    proptest! {
        #[test]
        fn one_wrong_digit_breaks_luhn(body in "[0-9]{11,18}", pos in 0usize..19, delta in 1u8..10) {
            // Complete `body` to a Luhn-valid number, then change one digit.
            let check = (0..10u8).map(|d| format!("{body}{d}")).find(|n| luhn_valid(n)).unwrap();
            prop_assert!(CardNumber::parse(&check, "cardNumber").is_ok());
            let pos = pos % check.len();
            let mut bytes = check.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(!luhn_valid(&changed));
            prop_assert!(CardNumber::parse(&changed, "cardNumber").is_err());
        }

        #[test]
        fn debug_is_always_masked(body in "[0-9]{11,18}") {
            let n = (0..10u8).map(|d| format!("{body}{d}")).find(|n| luhn_valid(n)).unwrap();
            let card = CardNumber::parse(&n, "cardNumber").unwrap();
            let debug = format!("{card:?}");
            prop_assert!(!debug.contains(&n[..n.len() - 4]));
            let tail = format!("{})", &n[n.len() - 4..]);
            prop_assert!(debug.ends_with(&tail));
        }
    }
}
