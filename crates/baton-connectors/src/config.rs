//! App configuration schemas and their validation (SPEC §4.5).
//!
//! Rules, shared by every app:
//! - the input must be a JSON object, else one `400 INVALID_CONFIGURATION`;
//! - names match case-insensitively (.NET-style clients); the output uses the schema's
//!   canonical names; unknown fields are ignored and dropped;
//! - `null`, `""` (after trimming) and an empty settings list count as absent;
//! - a missing required field → `CONFIGURATION_FIELD_REQUIRED`, a wrong type or an
//!   out-of-range value → `INVALID_CONFIGURATION_FIELD`, a bad code →
//!   `INVALID_CURRENCY` / `INVALID_COUNTRY`, a repeated (currency, country) pair →
//!   `DUPLICATE_MERCHANT_ACCOUNT_SETTING`; each problem carries `field` = the JSON path
//!   with canonical names (`settings[1].merchantAccountId`), one problem per bad field,
//!   all reported together;
//! - absent optional fields take their default if they have one (settings lists
//!   default to `[]`), else are left out;
//! - the schema's extra `check` runs only once every field is valid;
//! - secret fields are split into [`ValidConfig::secrets`]; everything else is
//!   [`ValidConfig::public`].

use std::collections::HashMap;
use std::fmt;

use baton_domain::{Country, Currency, Problem};
use serde_json::{Map, Value};

/// What a masked secret looks like on output. Sending it back in a configuration update
/// keeps the stored secret (see [`ConfigSchema::validate`]).
pub const MASK: &str = "********";

/// The longest string any configuration field accepts, in characters.
pub const MAX_STRING_CHARS: usize = 4096;

/// The type of one configuration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string, trimmed, at most [`MAX_STRING_CHARS`].
    String,
    /// A whole number (JSON number or numeric string) in `min..=max`.
    Integer { min: i64, max: i64 },
    /// `true`/`false` (or those words as strings).
    Boolean,
    /// Merchant account settings: `[{currency*, countries[], merchantAccountId*, description}]`
    /// (see [`MerchantAccountSetting`]).
    Settings,
}

/// The value an absent optional field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    Integer(i64),
    Boolean(bool),
    String(&'static str),
}

impl DefaultValue {
    pub fn to_value(self) -> Value {
        match self {
            DefaultValue::Integer(i) => Value::from(i),
            DefaultValue::Boolean(b) => Value::Bool(b),
            DefaultValue::String(s) => Value::from(s),
        }
    }
}

/// One field of an app's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigField {
    /// Canonical (camelCase) name, used on output and in problem paths.
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Stored encrypted and masked on output.
    pub secret: bool,
    pub description: &'static str,
    pub default: Option<DefaultValue>,
}

/// An app's configuration schema.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSchema {
    pub fields: &'static [ConfigField],
    /// Extra app-specific checks on the canonical, merged (public + secrets) configuration;
    /// run only when every field is valid.
    pub check: Option<fn(&Value) -> Vec<Problem>>,
}

/// A validated configuration, split for storage: the engine encrypts `secrets` at rest and
/// shows them masked ([`ValidConfig::masked`]). Both are JSON objects with canonical names.
#[derive(Clone, PartialEq)]
pub struct ValidConfig {
    pub public: Value,
    pub secrets: Value,
}

impl ValidConfig {
    /// The whole configuration, as a connector uses it.
    pub fn merged(&self) -> Value {
        merge(&self.public, &self.secrets)
    }

    /// The configuration as shown to clients: secrets replaced by [`MASK`].
    pub fn masked(&self) -> Value {
        mask(&self.public, &self.secrets)
    }
}

impl fmt::Debug for ValidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidConfig")
            .field("public", &self.public)
            .field("secrets", &mask(&Value::Null, &self.secrets))
            .finish()
    }
}

/// `public` with every key of `secrets` added (secrets win on a clash, which validation never produces).
pub fn merge(public: &Value, secrets: &Value) -> Value {
    let mut out = public.as_object().cloned().unwrap_or_default();
    if let Some(secrets) = secrets.as_object() {
        out.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Value::Object(out)
}

/// `public` with every non-null key of `secrets` added as [`MASK`]: what clients see.
pub fn mask(public: &Value, secrets: &Value) -> Value {
    let mut out = public.as_object().cloned().unwrap_or_default();
    if let Some(secrets) = secrets.as_object() {
        for (k, v) in secrets {
            if !v.is_null() {
                out.insert(k.clone(), Value::from(MASK));
            }
        }
    }
    Value::Object(out)
}

impl ConfigSchema {
    /// A schema with no fields: any object is valid and becomes `{}`.
    pub const EMPTY: ConfigSchema = ConfigSchema { fields: &[], check: None };

    /// The field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&'static ConfigField> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name.trim()))
    }

    pub fn has_secrets(&self) -> bool {
        self.fields.iter().any(|f| f.secret)
    }

    /// Validates `input` (rules in the module docs). With `previous_secrets` (an update),
    /// a secret field whose value is exactly [`MASK`] keeps its previous value; without
    /// one, or when there is no previous value, the mask counts as absent.
    pub fn validate(&self, input: &Value, previous_secrets: Option<&Value>) -> Result<ValidConfig, Vec<Problem>> {
        let Some(obj) = input.as_object() else {
            return Err(vec![
                Problem::bad_request("INVALID_CONFIGURATION").message("The configuration must be a JSON object.")
            ]);
        };
        let mut problems = Vec::new();
        let mut public = Map::new();
        let mut secrets = Map::new();
        for field in self.fields {
            let raw = match lookup(obj, field.name) {
                Lookup::Ambiguous => {
                    problems.push(ambiguous(field.name.to_string()));
                    continue;
                }
                Lookup::Absent => None,
                Lookup::One(v) => Some(v),
            };
            let value = match raw {
                None => None,
                Some(raw) => match field.kind {
                    FieldKind::Settings => {
                        let before = problems.len();
                        let settings = validate_settings(field.name, raw, &mut problems);
                        if problems.len() > before {
                            continue;
                        }
                        settings
                    }
                    kind => match scalar(kind, field.name, raw) {
                        Ok(v) => v,
                        Err(p) => {
                            problems.push(p);
                            continue;
                        }
                    },
                },
            };
            let value = match value {
                Some(Value::String(s)) if field.secret && s == MASK => {
                    previous_secrets.and_then(|p| get_ci(p, field.name)).filter(|v| !v.is_null()).cloned()
                }
                other => other,
            };
            let value = match value {
                Some(v) => v,
                None if field.required => {
                    problems.push(Problem::invalid_field(
                        "CONFIGURATION_FIELD_REQUIRED",
                        field.name,
                        "{field} is required.",
                    ));
                    continue;
                }
                None => match (field.default, field.kind) {
                    (Some(d), _) => d.to_value(),
                    (None, FieldKind::Settings) => Value::Array(Vec::new()),
                    (None, _) => continue,
                },
            };
            if field.secret {
                secrets.insert(field.name.to_string(), value);
            } else {
                public.insert(field.name.to_string(), value);
            }
        }
        let valid = ValidConfig { public: Value::Object(public), secrets: Value::Object(secrets) };
        if problems.is_empty() {
            if let Some(check) = self.check {
                problems = check(&valid.merged());
            }
        }
        if problems.is_empty() {
            Ok(valid)
        } else {
            Err(problems)
        }
    }
}

enum Lookup<'a> {
    Absent,
    One(&'a Value),
    Ambiguous,
}

/// Finds `name` case-insensitively; `null` counts as absent.
fn lookup<'a>(obj: &'a Map<String, Value>, name: &str) -> Lookup<'a> {
    let mut found = obj.iter().filter(|(k, v)| k.trim().eq_ignore_ascii_case(name) && !v.is_null()).map(|(_, v)| v);
    match (found.next(), found.next()) {
        (None, _) => Lookup::Absent,
        (Some(v), None) => Lookup::One(v),
        (Some(_), Some(_)) => Lookup::Ambiguous,
    }
}

fn get_ci<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value.as_object().map(|o| lookup(o, name)) {
        Some(Lookup::One(v)) => Some(v),
        _ => None,
    }
}

fn invalid(field: String, template: &'static str) -> Problem {
    Problem::invalid_field("INVALID_CONFIGURATION_FIELD", field, template)
}

fn ambiguous(field: String) -> Problem {
    invalid(field, "{field} is given more than once, in different letter cases.")
}

fn required(field: String) -> Problem {
    Problem::invalid_field("CONFIGURATION_FIELD_REQUIRED", field, "{field} is required.")
}

/// A string, integer or boolean field: `Ok(None)` when it counts as absent.
fn scalar(kind: FieldKind, path: &str, raw: &Value) -> Result<Option<Value>, Problem> {
    match kind {
        FieldKind::String => string(path, raw).map(|s| s.map(Value::String)),
        FieldKind::Integer { min, max } => {
            let out_of_range = || {
                invalid(path.to_string(), "{field} must be a whole number from {min} to {max}.")
                    .detail("min", min.to_string())
                    .detail("max", max.to_string())
            };
            let n = match raw {
                Value::Number(n) => n.as_i64().ok_or_else(out_of_range)?,
                Value::String(s) if s.trim().is_empty() => return Ok(None),
                Value::String(s) => s.trim().parse::<i64>().map_err(|_| out_of_range())?,
                _ => return Err(out_of_range()),
            };
            if (min..=max).contains(&n) {
                Ok(Some(Value::from(n)))
            } else {
                Err(out_of_range())
            }
        }
        FieldKind::Boolean => match raw {
            Value::Bool(b) => Ok(Some(Value::Bool(*b))),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
            _ => Err(invalid(path.to_string(), "{field} must be true or false.")),
        },
        FieldKind::Settings => unreachable!("settings are validated by validate_settings"),
    }
}

/// A trimmed string; `Ok(None)` when blank.
fn string(path: &str, raw: &Value) -> Result<Option<String>, Problem> {
    let Value::String(s) = raw else {
        return Err(invalid(path.to_string(), "{field} must be a string."));
    };
    let s = s.trim();
    if s.is_empty() {
        Ok(None)
    } else if s.chars().count() > MAX_STRING_CHARS {
        Err(invalid(path.to_string(), "{field} must be at most {limit} characters long.")
            .detail("limit", MAX_STRING_CHARS.to_string()))
    } else {
        Ok(Some(s.to_string()))
    }
}

/// Validates a settings list, pushing its problems; `None` when the list is empty.
fn validate_settings(name: &str, raw: &Value, problems: &mut Vec<Problem>) -> Option<Value> {
    let Value::Array(entries) = raw else {
        problems.push(invalid(name.to_string(), "{field} must be a list of merchant account settings."));
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    // (currency, country or None for "no countries") → index of the first setting with it.
    let mut seen: HashMap<(Currency, Option<Country>), usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("{name}[{i}]");
        let Some(obj) = entry.as_object() else {
            problems.push(invalid(path, "{field} must be an object."));
            continue;
        };
        let before = problems.len();
        let text = |sub: &str, problems: &mut Vec<Problem>| -> Option<String> {
            let sub_path = format!("{path}.{sub}");
            match lookup(obj, sub) {
                Lookup::Absent => None,
                Lookup::Ambiguous => {
                    problems.push(ambiguous(sub_path));
                    None
                }
                Lookup::One(v) => string(&sub_path, v).unwrap_or_else(|p| {
                    problems.push(p);
                    None
                }),
            }
        };

        let currency = match text("currency", problems) {
            Some(c) => match Currency::parse(&c, &format!("{path}.currency")) {
                Ok(c) => Some(c),
                Err(p) => {
                    problems.push(p);
                    None
                }
            },
            None => {
                if problems.len() == before {
                    problems.push(required(format!("{path}.currency")));
                }
                None
            }
        };

        let mut countries: Vec<Country> = Vec::new();
        match lookup(obj, "countries") {
            Lookup::Absent => {}
            Lookup::Ambiguous => problems.push(ambiguous(format!("{path}.countries"))),
            Lookup::One(Value::Array(items)) => {
                for (j, item) in items.iter().enumerate() {
                    let item_path = format!("{path}.countries[{j}]");
                    match item {
                        Value::Null => {}
                        Value::String(s) if s.trim().is_empty() => {}
                        Value::String(s) => match Country::parse(s, &item_path) {
                            Ok(c) if !countries.contains(&c) => countries.push(c),
                            Ok(_) => {}
                            Err(p) => problems.push(p),
                        },
                        _ => problems.push(invalid(item_path, "{field} must be a country code.")),
                    }
                }
            }
            Lookup::One(_) => {
                problems.push(invalid(format!("{path}.countries"), "{field} must be a list of country codes."))
            }
        }

        let before_account = problems.len();
        let merchant_account_id = text("merchantAccountId", problems);
        if merchant_account_id.is_none() && problems.len() == before_account {
            problems.push(required(format!("{path}.merchantAccountId")));
        }
        let description = text("description", problems);

        if problems.len() > before {
            continue;
        }
        let currency = currency.expect("no problems means a currency");
        let pairs: Vec<Option<Country>> =
            if countries.is_empty() { vec![None] } else { countries.iter().copied().map(Some).collect() };
        if let Some((pair, first)) = pairs.iter().find_map(|p| seen.get(&(currency, *p)).map(|first| (*p, *first))) {
            let problem = match pair {
                Some(country) => Problem::invalid_field(
                    "DUPLICATE_MERCHANT_ACCOUNT_SETTING",
                    path,
                    "{field} repeats the currency {currency} and country {country} of {duplicateOf}.",
                )
                .detail("country", country.as_str()),
                None => Problem::invalid_field(
                    "DUPLICATE_MERCHANT_ACCOUNT_SETTING",
                    path,
                    "{field} repeats the currency {currency} without countries of {duplicateOf}.",
                ),
            };
            problems
                .push(problem.detail("currency", currency.as_str()).detail("duplicateOf", format!("{name}[{first}]")));
            continue;
        }
        for p in pairs {
            seen.insert((currency, p), i);
        }
        let mut setting = Map::new();
        setting.insert("currency".into(), Value::from(currency.as_str()));
        setting.insert("countries".into(), countries.iter().map(|c| Value::from(c.as_str())).collect());
        setting.insert("merchantAccountId".into(), Value::from(merchant_account_id.expect("checked above")));
        if let Some(d) = description {
            setting.insert("description".into(), Value::from(d));
        }
        out.push(Value::Object(setting));
    }
    if entries.is_empty() {
        None
    } else {
        Some(Value::Array(out))
    }
}

/// One merchant account setting of a validated configuration (Braintree-style routing:
/// SPEC §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantAccountSetting {
    pub currency: Currency,
    /// Empty means every country.
    pub countries: Vec<Country>,
    pub merchant_account_id: String,
    pub description: Option<String>,
}

impl MerchantAccountSetting {
    /// Reads the `settings` of a validated configuration (canonical names); malformed
    /// entries, which validation never produces, are skipped.
    pub fn from_config(config: &Value) -> Vec<Self> {
        let Some(entries) = get_ci(config, "settings").and_then(Value::as_array) else {
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|e| {
                Some(Self {
                    currency: get_ci(e, "currency")?.as_str()?.parse().ok()?,
                    countries: get_ci(e, "countries")
                        .and_then(Value::as_array)
                        .map(|cs| cs.iter().filter_map(|c| c.as_str()?.parse().ok()).collect())
                        .unwrap_or_default(),
                    merchant_account_id: get_ci(e, "merchantAccountId")?.as_str()?.to_string(),
                    description: get_ci(e, "description").and_then(Value::as_str).map(str::to_string),
                })
            })
            .collect()
    }

    /// The setting for a payment: the one listing `country` for `currency`, else the one for
    /// `currency` with no countries, else `None` (the engine's `402 NO_MERCHANT_ACCOUNT`).
    pub fn select(settings: &[Self], currency: Currency, country: Country) -> Option<&Self> {
        settings
            .iter()
            .find(|s| s.currency == currency && s.countries.contains(&country))
            .or_else(|| settings.iter().find(|s| s.currency == currency && s.countries.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SCHEMA: ConfigSchema = ConfigSchema {
        fields: &[
            ConfigField {
                name: "settings",
                kind: FieldKind::Settings,
                required: true,
                secret: false,
                description: "",
                default: None,
            },
            ConfigField {
                name: "live",
                kind: FieldKind::Boolean,
                required: false,
                secret: false,
                description: "",
                default: Some(DefaultValue::Boolean(false)),
            },
            ConfigField {
                name: "privateKey",
                kind: FieldKind::String,
                required: true,
                secret: true,
                description: "",
                default: None,
            },
        ],
        check: None,
    };

    fn fields(problems: &[Problem]) -> Vec<(String, String)> {
        problems
            .iter()
            .map(|p| {
                let f = p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.clone()).unwrap_or_default();
                (p.code.to_string(), f)
            })
            .collect()
    }

    #[test]
    fn required_settings_need_an_entry_and_required_secrets_a_value() {
        let problems = SCHEMA.validate(&json!({"settings": [], "privateKey": MASK}), None).unwrap_err();
        assert_eq!(
            fields(&problems),
            [
                ("CONFIGURATION_FIELD_REQUIRED".to_string(), "settings".to_string()),
                ("CONFIGURATION_FIELD_REQUIRED".to_string(), "privateKey".to_string()),
            ]
        );
        let previous = json!({"privateKey": "kept"});
        let valid = SCHEMA
            .validate(
                &json!({"settings": [{"currency": "CHF", "merchantAccountId": "m"}], "privateKey": MASK}),
                Some(&previous),
            )
            .unwrap();
        assert_eq!(valid.secrets, json!({"privateKey": "kept"}));
        assert_eq!(valid.public["live"], false);
    }

    #[test]
    fn booleans_accept_words() {
        let base = |live: Value| json!({"settings": [{"currency": "CHF", "merchantAccountId": "m"}], "privateKey": "k", "live": live});
        assert_eq!(SCHEMA.validate(&base(json!(true)), None).unwrap().public["live"], true);
        assert_eq!(SCHEMA.validate(&base(json!("TRUE")), None).unwrap().public["live"], true);
        assert_eq!(SCHEMA.validate(&base(json!(" false ")), None).unwrap().public["live"], false);
        assert_eq!(SCHEMA.validate(&base(json!("")), None).unwrap().public["live"], false);
        let problems = SCHEMA.validate(&base(json!(1)), None).unwrap_err();
        assert_eq!(fields(&problems), [("INVALID_CONFIGURATION_FIELD".to_string(), "live".to_string())]);
    }

    #[test]
    fn merge_and_mask() {
        let public = json!({"a": 1});
        let secrets = json!({"s": "x", "n": null});
        assert_eq!(merge(&public, &secrets), json!({"a": 1, "s": "x", "n": null}));
        assert_eq!(mask(&public, &secrets), json!({"a": 1, "s": MASK}));
        assert_eq!(ConfigSchema::EMPTY.validate(&json!({"x": 1}), None).unwrap().public, json!({}));
    }

    #[test]
    fn selection_prefers_the_country() {
        let s = |currency, countries: Vec<Country>, id: &str| MerchantAccountSetting {
            currency,
            countries,
            merchant_account_id: id.into(),
            description: None,
        };
        let settings = vec![s(Currency::EUR, vec![], "any"), s(Currency::EUR, vec![Country::FR], "fr")];
        let pick =
            |cur, cty| MerchantAccountSetting::select(&settings, cur, cty).map(|s| s.merchant_account_id.as_str());
        assert_eq!(pick(Currency::EUR, Country::FR), Some("fr"));
        assert_eq!(pick(Currency::EUR, Country::DE), Some("any"));
        assert_eq!(pick(Currency::USD, Country::US), None);
    }
}
