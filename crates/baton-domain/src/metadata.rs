//! Metadata (SPEC §1): the flat string→string map that orders, instructions and
//! customer defaults carry, never interpreted, echoed in responses and webhooks.
//!
//! Limits: at most 50 keys, keys 1–40 characters, values at most 500 characters
//! (characters are Unicode scalar values), else `400 METADATA_LIMIT_EXCEEDED`.
//! `[]` and `null` mean empty (the documented clients send `"metadata": []`).
//! The optional card guard refuses keys or values that contain a card number
//! (`400 METADATA_SENSITIVE_DATA`), without echoing them.
//!
//! Entries are kept **sorted by key** (byte order), so output and equality do not
//! depend on the order a client sent them in. Keys are case-sensitive and kept exactly
//! as sent (no trimming).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::instrument::luhn_valid;
use crate::problem::Problem;
use crate::text::has_refused_control;

/// How strictly metadata is checked beyond its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataRules {
    /// Refuse keys and values containing a card number (see [`contains_card_number`]).
    pub card_guard: bool,
    /// Refuse control characters: any in a key; in a value, any but tab, line feed and
    /// carriage return (`baton_domain::text`).
    pub refuse_controls: bool,
}

impl MetadataRules {
    /// Limits, control characters and the card guard: for input from clients.
    pub const STRICT: MetadataRules = MetadataRules { card_guard: true, refuse_controls: true };
    /// Limits and control characters: for deployments that turn the card guard off.
    pub const NO_CARD_GUARD: MetadataRules = MetadataRules { card_guard: false, refuse_controls: true };
    /// Limits only: for re-reading stored data, which was judged when it was written.
    pub const STORED: MetadataRules = MetadataRules { card_guard: false, refuse_controls: false };
}

impl Default for MetadataRules {
    fn default() -> Self {
        Self::STRICT
    }
}

/// A validated metadata map, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub const MAX_KEYS: usize = 50;
    pub const MAX_KEY_CHARS: usize = 40;
    pub const MAX_VALUE_CHARS: usize = 500;

    /// The empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses client input with [`MetadataRules::STRICT`]: an object of strings, `[]` or
    /// `null` (empty). Any other shape, or a non-string value, is `400 INVALID_METADATA`.
    pub fn parse(value: &Value, field: &str) -> Result<Self, Problem> {
        Self::parse_with(value, field, MetadataRules::STRICT)
    }

    /// [`Metadata::parse`] for an optional field: absent means empty.
    pub fn parse_opt(value: Option<&Value>, field: &str) -> Result<Self, Problem> {
        value.map_or_else(|| Ok(Self::new()), |v| Self::parse(v, field))
    }

    /// Parses with explicit rules. Problems carry `field`; limit problems carry `limit`;
    /// problems about one entry carry its `key` once the key itself is known to be safe.
    pub fn parse_with(value: &Value, field: &str, rules: MetadataRules) -> Result<Self, Problem> {
        match value {
            Value::Null => Ok(Self::new()),
            Value::Array(items) if items.is_empty() => Ok(Self::new()),
            Value::Object(map) => {
                if map.len() > Self::MAX_KEYS {
                    return Err(too_many_keys(field));
                }
                let mut out = BTreeMap::new();
                for (key, value) in map {
                    check_key(key, field, rules)?;
                    let Value::String(value) = value else {
                        return Err(invalid(field, "{field} values must be strings.").detail("key", key.clone()));
                    };
                    check_value(key, value, field, rules)?;
                    out.insert(key.clone(), value.clone());
                }
                Ok(Self(out))
            }
            _ => Err(invalid(field, "{field} must be an object of string values.")),
        }
    }

    /// Builds metadata from pairs (later duplicates win), checking them as
    /// [`Metadata::parse_with`] does.
    pub fn from_pairs<I>(pairs: I, field: &str, rules: MetadataRules) -> Result<Self, Problem>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut out = BTreeMap::new();
        for (key, value) in pairs {
            check_key(&key, field, rules)?;
            check_value(&key, &value, field, rules)?;
            out.insert(key, value);
            if out.len() > Self::MAX_KEYS {
                return Err(too_many_keys(field));
            }
        }
        Ok(Self(out))
    }

    /// The inheritance rule (SPEC §4.9): every key of `default`, overridden per key by
    /// `overrides` (`{a:1,b:2}` + `{b:9}` → `{a:1,b:9}`). The result is derived data and
    /// is not re-checked against the key limit (it can hold up to 100 keys).
    pub fn merge(default: &Metadata, overrides: &Metadata) -> Metadata {
        let mut out = default.0.clone();
        out.extend(overrides.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        Metadata(out)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// As a JSON object (`{}` when empty), in key order.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
    }
}

impl serde::Serialize for Metadata {
    /// As a JSON object (`{}` when empty), in key order.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

fn invalid(field: &str, template: &'static str) -> Problem {
    Problem::invalid_field("INVALID_METADATA", field, template)
}

fn limit_exceeded(field: &str, template: &'static str, limit: usize) -> Problem {
    Problem::invalid_field("METADATA_LIMIT_EXCEEDED", field, template).detail("limit", limit.to_string())
}

fn too_many_keys(field: &str) -> Problem {
    limit_exceeded(field, "{field} may hold at most {limit} keys.", Metadata::MAX_KEYS)
}

fn sensitive(field: &str) -> Problem {
    Problem::invalid_field(
        "METADATA_SENSITIVE_DATA",
        field,
        "{field} must not contain card numbers or other sensitive data.",
    )
}

/// Key length first (without echoing the key), then the card guard.
fn check_key(key: &str, field: &str, rules: MetadataRules) -> Result<(), Problem> {
    let n = key.chars().count();
    if n == 0 || n > Metadata::MAX_KEY_CHARS {
        return Err(limit_exceeded(field, "{field} keys must be 1 to {limit} characters.", Metadata::MAX_KEY_CHARS));
    }
    if rules.refuse_controls && key.chars().any(char::is_control) {
        return Err(invalid(field, "{field} keys must not contain control characters."));
    }
    if rules.card_guard && contains_card_number(key) {
        return Err(sensitive(field));
    }
    Ok(())
}

/// Value length, then the card guard. `key` has passed [`check_key`]; the value is never echoed.
fn check_value(key: &str, value: &str, field: &str, rules: MetadataRules) -> Result<(), Problem> {
    if value.chars().count() > Metadata::MAX_VALUE_CHARS {
        return Err(limit_exceeded(
            field,
            "{field} values must be at most {limit} characters.",
            Metadata::MAX_VALUE_CHARS,
        )
        .detail("key", key));
    }
    if rules.refuse_controls && has_refused_control(value) {
        return Err(invalid(field, "{field} values must not contain control characters.").detail("key", key));
    }
    if rules.card_guard && contains_card_number(value) {
        return Err(sensitive(field).detail("key", key));
    }
    Ok(())
}

/// Whether `text` contains something that looks like a card number.
///
/// The text is cut into runs of ASCII digits in which consecutive digits are separated
/// by at most one space or dash (`4242 4242-4242 4242`); any other character, or two
/// separators in a row, ends a run. The digit groups of a run (split at its separators)
/// are examined in every contiguous span: a span of 13–19 digits that passes the Luhn
/// check is a card number. A single group longer than 19 digits is not examined
/// (nothing tells where a card number inside it would start).
pub fn contains_card_number(text: &str) -> bool {
    let mut groups: Vec<&str> = Vec::new();
    let mut start: Option<usize> = None; // start of the current digit group
    let mut after_separator = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            if start.is_none() {
                start = Some(i);
            }
            after_separator = false;
        } else {
            if let Some(s) = start.take() {
                groups.push(&text[s..i]);
            }
            let separator = matches!(b, b' ' | b'-');
            if separator && !groups.is_empty() && !after_separator {
                after_separator = true;
            } else {
                if run_has_card(&groups) {
                    return true;
                }
                groups.clear();
                after_separator = false;
            }
        }
    }
    if let Some(s) = start {
        groups.push(&text[s..]);
    }
    run_has_card(&groups)
}

fn run_has_card(groups: &[&str]) -> bool {
    let mut digits = String::new();
    for i in 0..groups.len() {
        digits.clear();
        for group in &groups[i..] {
            digits.push_str(group);
            if digits.len() > 19 {
                break;
            }
            if digits.len() >= 13 && luhn_valid(&digits) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn detail<'a>(p: &'a Problem, key: &str) -> Option<&'a str> {
        p.details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn control_characters_are_refused_from_clients_but_stored_data_is_read_back() {
        for value in [json!({ "k\u{1b}": "v" }), json!({ "k": "\u{0}" }), json!({ "k": "a\u{85}" })] {
            let p = Metadata::parse(&value, "metadata").unwrap_err();
            assert_eq!(p.code, "INVALID_METADATA", "{value}");
            assert_eq!(
                Metadata::parse_with(&value, "metadata", MetadataRules::NO_CARD_GUARD).unwrap_err().code,
                p.code
            );
            assert!(Metadata::parse_with(&value, "metadata", MetadataRules::STORED).is_ok(), "{value}");
        }
        let m = Metadata::parse(&json!({ "note": "two\nlines\r\n\tindented" }), "metadata").unwrap();
        assert_eq!(m.get("note"), Some("two\nlines\r\n\tindented"));
    }

    #[test]
    fn objects_of_strings() {
        let m = Metadata::parse(&json!({ "someInternalRef2": "another-internal-ref", "a": "" }), "metadata").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("someInternalRef2"), Some("another-internal-ref"));
        assert_eq!(m.get("a"), Some(""));
        assert_eq!(m.get("A"), None);
        assert_eq!(serde_json::to_value(&m).unwrap(), json!({ "a": "", "someInternalRef2": "another-internal-ref" }));
        assert_eq!(m.to_json(), json!({ "a": "", "someInternalRef2": "another-internal-ref" }));
    }

    #[test]
    fn sorted_by_key() {
        let m = Metadata::parse(&json!({ "b": "2", "a": "1", "C": "3" }), "metadata").unwrap();
        assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["C", "a", "b"]);
    }

    #[test]
    fn empty_forms() {
        for v in [json!([]), json!(null), json!({})] {
            assert!(Metadata::parse(&v, "metadata").unwrap().is_empty(), "{v}");
        }
        assert!(Metadata::parse_opt(None, "metadata").unwrap().is_empty());
        assert_eq!(serde_json::to_string(&Metadata::new()).unwrap(), "{}");
    }

    #[test]
    fn other_shapes_are_invalid() {
        for v in [
            json!(["a"]),
            json!("a=b"),
            json!(1),
            json!(true),
            json!({ "a": 1 }),
            json!({ "a": null }),
            json!({ "a": { "b": "c" } }),
            json!({ "a": ["b"] }),
        ] {
            let p = Metadata::parse(&v, "metadata").unwrap_err();
            assert_eq!(p.code, "INVALID_METADATA", "{v}");
            assert_eq!(detail(&p, "field"), Some("metadata"));
        }
        assert_eq!(detail(&Metadata::parse(&json!({ "k": 1 }), "metadata").unwrap_err(), "key"), Some("k"));
    }

    #[test]
    fn limits() {
        let max: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(Metadata::parse(&Value::Object(max.clone()), "metadata").unwrap().len(), 50);
        let mut over = max;
        over.insert("k50".into(), json!("v"));
        let p = Metadata::parse(&Value::Object(over), "metadata").unwrap_err();
        assert_eq!(
            (p.code.as_ref(), detail(&p, "limit"), detail(&p, "field")),
            ("METADATA_LIMIT_EXCEEDED", Some("50"), Some("metadata"))
        );

        assert!(Metadata::parse(&json!({ "k".repeat(40): "v" }), "metadata").is_ok());
        assert!(Metadata::parse(&json!({ "é".repeat(40): "v" }), "metadata").is_ok());
        let p = Metadata::parse(&json!({ "k".repeat(41): "v" }), "metadata").unwrap_err();
        assert_eq!((p.code.as_ref(), detail(&p, "limit")), ("METADATA_LIMIT_EXCEEDED", Some("40")));
        assert_eq!(detail(&p, "key"), None);
        let p = Metadata::parse(&json!({ "": "v" }), "metadata").unwrap_err();
        assert_eq!((p.code.as_ref(), detail(&p, "limit")), ("METADATA_LIMIT_EXCEEDED", Some("40")));

        assert!(Metadata::parse(&json!({ "k": "v".repeat(500) }), "metadata").is_ok());
        assert!(Metadata::parse(&json!({ "k": "€".repeat(500) }), "metadata").is_ok());
        let p = Metadata::parse(&json!({ "k": "v".repeat(501) }), "customerDefaults.C01.metadata").unwrap_err();
        assert_eq!(p.code, "METADATA_LIMIT_EXCEEDED");
        assert_eq!(detail(&p, "limit"), Some("500"));
        assert_eq!(detail(&p, "key"), Some("k"));
        assert_eq!(detail(&p, "field"), Some("customerDefaults.C01.metadata"));
        assert_eq!(p.render(&[]), "[customerDefaults.C01.metadata] values must be at most [500] characters.");
    }

    #[test]
    fn card_numbers_are_refused_without_echo() {
        for value in [
            "4242424242424242",
            "card 4242 4242 4242 4242 exp 12/30",
            "4242-4242-4242-4242",
            "pan:378282246310005;",
            "5555 5555 5555 4444",
            "Policy 12345678 4242 4242 4242 4242",
            "x6011111111111117y",
        ] {
            let p = Metadata::parse(&json!({ "note": value }), "metadata").unwrap_err();
            assert_eq!(p.code, "METADATA_SENSITIVE_DATA", "{value}");
            assert_eq!(detail(&p, "key"), Some("note"));
            let shown = format!("{p:?} {}", p.render(&[]));
            assert!(
                !shown.contains("4242")
                    && !shown.contains("8282")
                    && !shown.contains("5555")
                    && !shown.contains("1111"),
                "{shown}"
            );
        }
        let p = Metadata::parse(&json!({ "4242424242424242": "x" }), "metadata").unwrap_err();
        assert_eq!(p.code, "METADATA_SENSITIVE_DATA");
        assert!(!format!("{p:?}").contains("4242"));
        // The guard can be turned off.
        assert!(
            Metadata::parse_with(&json!({ "n": "4242424242424242" }), "metadata", MetadataRules::NO_CARD_GUARD).is_ok()
        );
    }

    #[test]
    fn ordinary_numbers_pass_the_guard() {
        for value in [
            "4242424242424241",       // fails Luhn
            "424242424242",           // 12 digits
            "42424242424242424242",   // 20 digits in one group
            "4242  4242  4242  4242", // double separators end the run
            "4242/4242/4242/4242",    // other separators end the run
            "+44 20 7946 0958",       // a phone number
            "2020-12-31",
            "POL-000123-2024",
            "another-internal-ref",
            "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        ] {
            assert!(!contains_card_number(value), "{value}");
            assert!(Metadata::parse(&json!({ "k": value }), "metadata").is_ok(), "{value}");
        }
    }

    #[test]
    fn merge_per_key_override_wins() {
        let a = Metadata::parse(&json!({ "a": "1", "b": "2" }), "metadata").unwrap();
        let b = Metadata::parse(&json!({ "b": "9" }), "metadata").unwrap();
        assert_eq!(Metadata::merge(&a, &b).to_json(), json!({ "a": "1", "b": "9" }));
        assert_eq!(Metadata::merge(&a, &Metadata::new()), a);
        assert_eq!(Metadata::merge(&Metadata::new(), &b), b);
    }

    #[test]
    fn from_pairs_checks_like_parse() {
        let m = Metadata::from_pairs(
            [("a".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())],
            "metadata",
            MetadataRules::STRICT,
        )
        .unwrap();
        assert_eq!(m.get("a"), Some("2"));
        let p =
            Metadata::from_pairs((0..51).map(|i| (format!("k{i}"), String::new())), "metadata", MetadataRules::STRICT)
                .unwrap_err();
        assert_eq!(p.code, "METADATA_LIMIT_EXCEEDED");
        let p = Metadata::from_pairs(
            [("k".to_string(), "4242424242424242".to_string())],
            "metadata",
            MetadataRules::STRICT,
        )
        .unwrap_err();
        assert_eq!(p.code, "METADATA_SENSITIVE_DATA");
    }

    fn luhn_complete(body: &str) -> String {
        (0..10u8).map(|d| format!("{body}{d}")).find(|n| luhn_valid(n)).unwrap()
    }

    proptest! {
        #[test]
        fn any_card_number_in_text_is_caught(
            body in "[1-9][0-9]{11,17}",
            prefix in "[a-zA-Z :=]{0,10}",
            suffix in "[a-zA-Z ]{0,10}",
            sep in prop::sample::select(vec!["", " ", "-"]),
        ) {
            let card = luhn_complete(&body);
            let grouped: Vec<String> = card.as_bytes().chunks(4).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
            let text = format!("{prefix}{}{suffix}", grouped.join(sep));
            prop_assert!(contains_card_number(&text), "{}", text);
        }

        #[test]
        fn merge_keeps_every_key_and_prefers_overrides(
            a in prop::collection::btree_map("[a-d]{1,2}", "[a-z]{0,3}", 0..8),
            b in prop::collection::btree_map("[a-d]{1,2}", "[a-z]{0,3}", 0..8),
        ) {
            let ma = Metadata::from_pairs(a.clone(), "m", MetadataRules::STRICT).unwrap();
            let mb = Metadata::from_pairs(b.clone(), "m", MetadataRules::STRICT).unwrap();
            let merged = Metadata::merge(&ma, &mb);
            for (k, v) in &a {
                prop_assert_eq!(merged.get(k), Some(b.get(k).unwrap_or(v).as_str()));
            }
            for (k, v) in &b {
                prop_assert_eq!(merged.get(k), Some(v.as_str()));
            }
            prop_assert!(merged.iter().all(|(k, _)| a.contains_key(k) || b.contains_key(k)));
        }

        #[test]
        fn parse_never_panics(v in "[ -~]{0,60}") {
            let _ = Metadata::parse(&json!({ "k": v.clone() }), "metadata");
            let _ = Metadata::parse(&json!({ v: "x" }), "metadata");
        }
    }
}
