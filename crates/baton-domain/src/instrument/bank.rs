//! Bank accounts and direct-debit mandates: IBANs, UK account numbers and sort codes,
//! US routing numbers, mandate schemes and references.
//!
//! Problems about account identifiers never echo the input; `Debug` is masked.

use std::fmt;

use crate::codes::Country;
use crate::problem::Problem;
use crate::words::word_enum;

/// IBAN lengths per country (SWIFT IBAN registry), covering every supported IBAN
/// country of SPEC §1 and the other common ones. An IBAN of a country not listed is refused.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The IBAN length for a country code (uppercase), if Baton knows the country uses IBANs.
pub fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS.iter().find(|(c, _)| *c == country).map(|&(_, n)| n)
}

/// ISO 13616 mod-97 of an IBAN (country code and check digits moved to the end,
/// letters as 10–35). `None` for characters other than ASCII uppercase letters and digits.
fn iban_mod97(iban: &str) -> Option<u32> {
    if iban.len() < 4 {
        return None;
    }
    let (head, tail) = iban.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.bytes().chain(head.bytes()) {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return None,
        }
    }
    Some(rem)
}

/// An International Bank Account Number in electronic format (no spaces, uppercase):
/// a known IBAN country, two check digits, the country's length, and mod-97 = 1.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Iban(String);

impl Iban {
    /// Parses an IBAN; whitespace is dropped and letters uppercased. Any failure is
    /// `400 INVALID_IBAN` with `field` only — the input is never echoed.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let iban: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        let b = iban.as_bytes();
        let ok = b.len() >= 5
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..4].iter().all(u8::is_ascii_digit)
            && b[4..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && iban_length(&iban[..2]) == Some(b.len())
            && iban_mod97(&iban) == Some(1);
        if !ok {
            return Err(Problem::invalid_field("INVALID_IBAN", field, "{field} is not a valid IBAN."));
        }
        Ok(Self(iban))
    }

    /// The two-letter country code the IBAN starts with (which may be a country Baton
    /// does not otherwise support, e.g. `LI`).
    pub fn country(&self) -> &str {
        &self.0[..2]
    }

    /// The IBAN's country when it is one of Baton's supported countries.
    pub fn supported_country(&self) -> Option<Country> {
        self.country().parse().ok()
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// Display form: country, check digits and the last four characters, with three
    /// fixed mask groups whatever the length: `DE89 **** **** **** 3000`.
    pub fn masked(&self) -> String {
        format!("{} **** **** **** {}", &self.0[..4], self.last4())
    }

    /// The full IBAN in electronic format. For the vault and PSPs only; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iban({})", self.masked())
    }
}

/// A UK bank account number: exactly 8 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UkAccountNumber(String);

impl UkAccountNumber {
    /// Parses 8 digits (surrounding whitespace ignored), else `400 INVALID_ACCOUNT_NUMBER`
    /// with `field` only.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let s = input.trim();
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::invalid_field("INVALID_ACCOUNT_NUMBER", field, "{field} must be 8 digits."));
        }
        Ok(Self(s.to_string()))
    }

    pub fn last4(&self) -> &str {
        &self.0[4..]
    }

    /// `****5678`.
    pub fn masked(&self) -> String {
        format!("****{}", self.last4())
    }

    /// The full number. For the vault and PSPs only; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UkAccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UkAccountNumber({})", self.masked())
    }
}

/// A UK sort code: 6 digits, given bare or in pairs separated by dashes or spaces.
/// Not secret (it names a bank branch); shown as `12-34-56`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortCode(String);

impl SortCode {
    /// Parses `123456`, `12-34-56` or `12 34 56`, else `400 INVALID_SORT_CODE` with `field`.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let s = input.trim().as_bytes();
        let digits: Vec<u8> = match s.len() {
            6 => s.to_vec(),
            8 if s[2] == s[5] && matches!(s[2], b'-' | b' ') => [&s[..2], &s[3..5], &s[6..]].concat(),
            _ => Vec::new(),
        };
        if digits.len() != 6 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Problem::invalid_field(
                "INVALID_SORT_CODE",
                field,
                "{field} must be 6 digits, optionally as 12-34-56.",
            ));
        }
        Ok(Self(String::from_utf8(digits).expect("ASCII digits")))
    }

    /// The six digits.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// `12-34-56`.
    pub fn display(&self) -> String {
        format!("{}-{}-{}", &self.0[..2], &self.0[2..4], &self.0[4..])
    }
}

/// A US ABA routing transit number: 9 digits with the ABA checksum
/// (3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 mod 10). Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutingNumber(String);

impl RoutingNumber {
    /// Parses 9 digits passing the checksum, else `400 INVALID_ROUTING_NUMBER` with `field`.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let s = input.trim();
        let ok = s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit()) && {
            let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
            matches!((3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10, 0)
        };
        if !ok {
            return Err(Problem::invalid_field(
                "INVALID_ROUTING_NUMBER",
                field,
                "{field} is not a valid routing number.",
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

word_enum!(
    /// The direct-debit scheme a mandate belongs to.
    MandateScheme, "INVALID_MANDATE_SCHEME", [Sepa => "SEPA", Bacs => "BACS"]
);

/// A mandate reference (SEPA "unique mandate reference", BACS DDI reference):
/// trimmed, 1–35 printable ASCII characters. Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MandateReference(String);

impl MandateReference {
    pub const MAX: usize = 35;

    /// Parses a reference, else `400 INVALID_MANDATE_REFERENCE` with `field` and `limit`.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let s = input.trim();
        if s.is_empty() || s.len() > Self::MAX || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Problem::invalid_field(
                "INVALID_MANDATE_REFERENCE",
                field,
                "{field} must be 1 to {limit} printable characters.",
            )
            .detail("limit", Self::MAX.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD_IBANS: &[&str] = &[
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "NL91ABNA0417164300",
        "FR1420041010050500013M02606",
        "BE68539007547034",
        "CH9300762011623852957",
        "NO9386011117947",
        "AT611904300234573201",
        "ES9121000418450200051332",
        "IT60X0542811101000000123456",
        "MT84MALT011000012345MTLCAST001S",
    ];

    #[test]
    fn known_good_ibans() {
        for iban in GOOD_IBANS {
            let parsed = Iban::parse(iban, "iban").unwrap();
            assert_eq!(parsed.expose(), *iban);
            assert_eq!(parsed.country(), &iban[..2]);
        }
        let de = Iban::parse("de89 3704 0044 0532 0130 00", "iban").unwrap();
        assert_eq!(de.expose(), "DE89370400440532013000");
        assert_eq!(de.masked(), "DE89 **** **** **** 3000");
        assert_eq!(de.last4(), "3000");
        assert_eq!(de.supported_country(), Some(Country::DE));
        assert_eq!(Iban::parse("GB82WEST12345698765432", "iban").unwrap().supported_country(), Some(Country::GB));
        assert_eq!(Iban::parse("LI21088100002324013AA", "iban").unwrap().supported_country(), None);
    }

    #[test]
    fn every_supported_iban_country_has_a_length() {
        let non_iban = [Country::CA, Country::MX, Country::ZA, Country::TH, Country::US];
        for c in Country::ALL {
            assert_eq!(iban_length(c.as_str()).is_some(), !non_iban.contains(c), "{c}");
        }
    }

    #[test]
    fn bad_ibans_are_refused_without_echo() {
        for bad in [
            "DE89370400440532013001",  // check digits wrong
            "DE8937040044053201300",   // too short for DE
            "DE893704004405320130000", // too long for DE
            "XX89370400440532013000",  // unknown country
            "US12345678901234567890",  // not an IBAN country
            "DEAB370400440532013000",  // letters as check digits
            "DE89-3704-0044-0532-0130-00",
            "DE89370400440532013000É",
            "",
            "DE",
        ] {
            let p = Iban::parse(bad, "details.iban").unwrap_err();
            assert_eq!(p.code, "INVALID_IBAN", "{bad}");
            assert_eq!(p.details, vec![("field".into(), "details.iban".to_string())]);
        }
    }

    #[test]
    fn iban_debug_is_masked() {
        let iban = Iban::parse("GB82WEST12345698765432", "iban").unwrap();
        assert_eq!(format!("{iban:?}"), "Iban(GB82 **** **** **** 5432)");
    }

    #[test]
    fn uk_account_numbers_and_sort_codes() {
        let acc = UkAccountNumber::parse("12345678", "accountNumber").unwrap();
        assert_eq!((acc.masked().as_str(), acc.expose()), ("****5678", "12345678"));
        assert_eq!(format!("{acc:?}"), "UkAccountNumber(****5678)");
        for bad in ["1234567", "123456789", "1234567a", "", "1234 5678"] {
            let p = UkAccountNumber::parse(bad, "accountNumber").unwrap_err();
            assert_eq!(p.code, "INVALID_ACCOUNT_NUMBER", "{bad}");
            assert_eq!(p.details.len(), 1);
        }
        for ok in ["123456", "12-34-56", "12 34 56", " 12-34-56 "] {
            let sc = SortCode::parse(ok, "sortCode").unwrap();
            assert_eq!((sc.digits(), sc.display().as_str()), ("123456", "12-34-56"));
        }
        for bad in ["12345", "1234567", "12-3456", "1-234-56", "12-34 56", "ab-cd-ef", "12--3456", "12-34-5a", ""] {
            assert_eq!(SortCode::parse(bad, "sortCode").unwrap_err().code, "INVALID_SORT_CODE", "{bad}");
        }
    }

    #[test]
    fn routing_numbers() {
        for ok in ["011000015", "021000021", "111000025", "026009593"] {
            assert_eq!(RoutingNumber::parse(ok, "routingNumber").unwrap().as_str(), ok);
        }
        for bad in ["011000016", "12345678", "1234567890", "01100001a", ""] {
            assert_eq!(RoutingNumber::parse(bad, "routingNumber").unwrap_err().code, "INVALID_ROUTING_NUMBER");
        }
    }

    #[test]
    fn mandates() {
        assert_eq!(MandateScheme::parse("sepa", "scheme"), Ok(MandateScheme::Sepa));
        assert_eq!(MandateScheme::parse("BACS", "scheme").unwrap().as_str(), "BACS");
        assert_eq!(MandateScheme::parse("ACH", "scheme").unwrap_err().code, "INVALID_MANDATE_SCHEME");
        assert_eq!(MandateReference::parse(" MANDATE-0001 ", "mandateReference").unwrap().as_str(), "MANDATE-0001");
        assert!(MandateReference::parse(&"R".repeat(35), "mandateReference").is_ok());
        for bad in ["", "   ", &"R".repeat(36), "tab\there", "café"] {
            let p = MandateReference::parse(bad, "mandateReference").unwrap_err();
            assert_eq!(p.code, "INVALID_MANDATE_REFERENCE", "{bad:?}");
        }
    }

    #[test]
    fn every_single_substitution_breaks_an_iban() {
        // mod-97 catches every digit-for-digit and letter-for-letter substitution; try them all.
        for good in GOOD_IBANS {
            let good = good.as_bytes();
            for pos in 0..good.len() {
                let class: Vec<u8> =
                    if good[pos].is_ascii_digit() { (b'0'..=b'9').collect() } else { (b'A'..=b'Z').collect() };
                for c in class.into_iter().filter(|&c| c != good[pos]) {
                    let mut s = good.to_vec();
                    s[pos] = c;
                    let s = String::from_utf8(s).unwrap();
                    assert!(Iban::parse(&s, "iban").is_err(), "{s}");
                }
            }
        }
    }

    #[test]
    fn every_adjacent_swap_breaks_an_iban() {
        // Likewise for swapping two neighbouring digits or two neighbouring letters.
        for good in GOOD_IBANS {
            let good = good.as_bytes();
            for pos in 0..good.len() - 1 {
                let (a, b) = (good[pos], good[pos + 1]);
                if a == b || a.is_ascii_digit() != b.is_ascii_digit() {
                    continue;
                }
                let mut s = good.to_vec();
                s.swap(pos, pos + 1);
                let s = String::from_utf8(s).unwrap();
                assert!(Iban::parse(&s, "iban").is_err(), "{s}");
            }
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_canonical_ibans(s in "[ -~]{0,40}") {
            if let Ok(iban) = Iban::parse(&s, "iban") {
                prop_assert_eq!(iban.expose().len(), iban_length(iban.country()).unwrap());
                prop_assert_eq!(iban_mod97(iban.expose()), Some(1));
            }
        }
    }
}
