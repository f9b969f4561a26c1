//! Theme templates (SPEC §4.11): the white-label document that styles a tenant's
//! hosted checkout and pay-by-link e-mails.
//!
//! The document is validated in full before it is saved (every problem reported with
//! its field), its stylesheet sanitised and minified (`css.rs`), and input field style
//! values held to the same rules, so what the checkout page embeds can neither load
//! anything from elsewhere nor run anything. Besides SPEC's fields it carries two
//! extensions: `allowedOrigins`, the https origins allowed to embed the checkout in a
//! frame, and `brandColor`, used by the messages and the pay-by-link pages.

pub mod css;

use baton_domain::{Environment, Problem};
use baton_store::{DocumentKind, TenantDocument};
use serde::{Deserialize, Serialize};

use crate::error::internal;
use crate::{Engine, EngineResult};

/// The card fields a style may address (`.css` is accepted for `.cvv`, as in the docs).
pub const STYLE_NAMES: &[&str] = &["input", ".number", ".cvv", ".expiration-month", ".expiration-year"];
/// The properties an input field style may set.
pub const STYLE_KEYS: &[&str] = &[
    "color",
    "font",
    "font-family",
    "font-size",
    "font-size-adjust",
    "font-stretch",
    "font-style",
    "font-variant",
    "font-variant-alternates",
    "font-variant-caps",
    "font-variant-east-asian",
    "font-variant-ligatures",
    "font-variant-numeric",
    "font-weight",
    "line-height",
    "outline",
    "opacity",
    "text-shadow",
    "transition",
    "-moz-osx-font-smoothing",
    "-moz-transition",
    "-webkit-font-smoothing",
    "-webkit-transition",
];
/// The largest stylesheet accepted, in bytes.
pub const MAX_STYLESHEET_BYTES: usize = 64 * 1024;
/// The most origins a tenant may allow to embed its checkout.
pub const MAX_ALLOWED_ORIGINS: usize = 20;
/// The brand colour when the tenant sets none (passes WCAG AA on white).
pub const DEFAULT_BRAND_COLOR: &str = "#0b5cad";
const MAX_STYLE_VALUE: usize = 200;

/// `PUT /v1/whitelabel/theme-template`, as parsed by the HTTP layer. Absent fields
/// take their defaults: the document replaces the saved one whole.
#[derive(Debug, Clone, Default)]
pub struct ThemeInput {
    pub style_sheet: Option<String>,
    pub input_field_styles: Option<Vec<InputFieldStyleInput>>,
    pub cc_data_collection_options: Option<CcOptionsInput>,
    pub allowed_origins: Option<Vec<String>>,
    pub brand_color: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct InputFieldStyleInput {
    pub style_name: Option<String>,
    pub styles: Option<Vec<StyleInput>>,
}

#[derive(Debug, Clone, Default)]
pub struct StyleInput {
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CcOptionsInput {
    pub cardholder_name: Option<bool>,
    pub billing_address: Option<bool>,
}

/// One style of a card field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleEntry {
    pub key: String,
    pub value: String,
}

/// The styles of one card field (`styleName` ∈ [`STYLE_NAMES`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputFieldStyle {
    pub style_name: String,
    pub styles: Vec<StyleEntry>,
}

/// Which optional card details the checkout collects (number, expiry and CVC always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CcDataCollectionOptions {
    pub cardholder_name: bool,
    /// First and last name, company, street, locality, region, postcode, country.
    pub billing_address: bool,
}

impl Default for CcDataCollectionOptions {
    fn default() -> Self {
        Self { cardholder_name: true, billing_address: false }
    }
}

/// A tenant's theme as saved (sanitised) or, when none is, the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutTheme {
    /// Sanitised and minified; empty by default.
    pub style_sheet: String,
    pub input_field_styles: Vec<InputFieldStyle>,
    pub cc_data_collection_options: CcDataCollectionOptions,
    /// Origins (`https://shop.example`) that may embed the checkout in a frame.
    pub allowed_origins: Vec<String>,
    /// `#rrggbb`.
    pub brand_color: String,
    /// When it was saved; `None` for the defaults.
    #[serde(skip)]
    pub updated_at: Option<i64>,
}

impl Default for CheckoutTheme {
    fn default() -> Self {
        Self {
            style_sheet: String::new(),
            input_field_styles: Vec::new(),
            cc_data_collection_options: CcDataCollectionOptions::default(),
            allowed_origins: Vec::new(),
            brand_color: DEFAULT_BRAND_COLOR.into(),
            updated_at: None,
        }
    }
}

impl CheckoutTheme {
    /// The input field styles as CSS rules under `scope` (e.g. `#card-form`): `input`
    /// styles every card field, `.number`, `.cvv`, `.expiration-month` and
    /// `.expiration-year` one each (the last two also a single `.expiration` field).
    /// Values are sanitised, so this is safe to embed.
    pub fn input_field_css(&self, scope: &str) -> String {
        let mut out = String::new();
        for field in &self.input_field_styles {
            if field.styles.is_empty() {
                continue;
            }
            let selector = match field.style_name.as_str() {
                "input" => format!("{scope} input"),
                // A page may ask for the expiry in one field (`.expiration`) or two.
                name @ (".expiration-month" | ".expiration-year") => {
                    format!("{scope} input{name},{scope} input.expiration")
                }
                name => format!("{scope} input{name}"),
            };
            out.push_str(&selector);
            out.push('{');
            let declarations: Vec<String> = field.styles.iter().map(|s| format!("{}:{}", s.key, s.value)).collect();
            out.push_str(&declarations.join(";"));
            out.push('}');
        }
        out
    }
}

/// `#abc` or `#aabbcc` (any case), as `#aabbcc`.
fn parse_color(text: &str) -> Option<String> {
    let hex = text.trim().strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let full = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 => hex.to_string(),
        _ => return None,
    };
    Some(format!("#{}", full.to_ascii_lowercase()))
}

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// An origin that may embed the checkout: `https://host[:port]`, nothing more (in
/// the sandbox also `http://` for loopback hosts, for local development).
pub fn parse_origin(raw: &str, environment: Environment) -> Option<String> {
    let raw = raw.trim();
    if raw.len() > 255 {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    let host = url.host()?;
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => environment == Environment::Sandbox && is_loopback_host(&host),
        _ => false,
    };
    let bare = url.username().is_empty()
        && url.password().is_none()
        && matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && !raw.trim_end_matches('/').contains('*');
    (scheme_ok && bare).then(|| url.origin().ascii_serialization())
}

fn invalid(code: &'static str, field: String, message: &'static str) -> Problem {
    Problem::invalid_field(code, field, message)
}

/// Validates and sanitises a document; every problem at once.
pub fn validate_theme(input: ThemeInput, environment: Environment) -> Result<CheckoutTheme, Vec<Problem>> {
    let mut problems = Vec::new();
    let style_sheet = match input.style_sheet {
        None => String::new(),
        Some(text) if text.len() > MAX_STYLESHEET_BYTES => {
            problems.push(
                invalid("STYLESHEET_TOO_LARGE", "styleSheet".into(), "{field} is larger than {limit} bytes.")
                    .detail("limit", MAX_STYLESHEET_BYTES.to_string()),
            );
            String::new()
        }
        Some(text) => css::sanitize_stylesheet(&text).css,
    };

    let mut input_field_styles: Vec<InputFieldStyle> = Vec::new();
    for (i, field) in input.input_field_styles.unwrap_or_default().into_iter().enumerate() {
        let name_field = format!("inputFieldStyles[{i}].styleName");
        let name = field.style_name.as_deref().map(str::trim).unwrap_or_default().to_ascii_lowercase();
        let name = if name == ".css" { ".cvv".to_string() } else { name };
        if !STYLE_NAMES.contains(&name.as_str()) {
            problems.push(
                invalid(
                    "INVALID_STYLE_NAME",
                    name_field,
                    "{field} must be one of input, .number, .cvv, .expiration-month, .expiration-year.",
                )
                .detail("value", field.style_name.unwrap_or_default().chars().take(40).collect::<String>()),
            );
            continue;
        }
        let mut styles = Vec::new();
        for (j, style) in field.styles.unwrap_or_default().into_iter().enumerate() {
            let key = style.key.as_deref().map(str::trim).unwrap_or_default().to_ascii_lowercase();
            if !STYLE_KEYS.contains(&key.as_str()) {
                problems.push(
                    invalid(
                        "INVALID_STYLE_KEY",
                        format!("inputFieldStyles[{i}].styles[{j}].key"),
                        "{field} is not a style a card field may set.",
                    )
                    .detail("value", style.key.unwrap_or_default().chars().take(40).collect::<String>()),
                );
                continue;
            }
            let raw = style.value.unwrap_or_default();
            match (raw.len() <= MAX_STYLE_VALUE).then(|| css::sanitize_value(&raw)).flatten() {
                Some(value) => styles.push(StyleEntry { key, value }),
                None => problems.push(invalid(
                    "INVALID_STYLE_VALUE",
                    format!("inputFieldStyles[{i}].styles[{j}].value"),
                    "{field} must be a plain CSS value (no ;, blocks, url() or script) of at most 200 characters.",
                )),
            }
        }
        match input_field_styles.iter_mut().find(|f| f.style_name == name) {
            // The same field twice: later styles win, as they would in CSS.
            Some(existing) => existing.styles.extend(styles),
            None => input_field_styles.push(InputFieldStyle { style_name: name, styles }),
        }
    }

    let options = input.cc_data_collection_options.unwrap_or_default();
    let defaults = CcDataCollectionOptions::default();
    let cc_data_collection_options = CcDataCollectionOptions {
        cardholder_name: options.cardholder_name.unwrap_or(defaults.cardholder_name),
        billing_address: options.billing_address.unwrap_or(defaults.billing_address),
    };

    let origins = input.allowed_origins.unwrap_or_default();
    let mut allowed_origins: Vec<String> = Vec::new();
    if origins.len() > MAX_ALLOWED_ORIGINS {
        problems.push(
            invalid("TOO_MANY_ALLOWED_ORIGINS", "allowedOrigins".into(), "{field} may list at most {limit} origins.")
                .detail("limit", MAX_ALLOWED_ORIGINS.to_string()),
        );
    } else {
        for (i, raw) in origins.iter().enumerate() {
            match parse_origin(raw, environment) {
                Some(o) if !allowed_origins.contains(&o) => allowed_origins.push(o),
                Some(_) => {}
                None => problems.push(invalid(
                    "INVALID_ALLOWED_ORIGIN",
                    format!("allowedOrigins[{i}]"),
                    "{field} must be an https origin such as https://shop.example (no path, query or wildcard).",
                )),
            }
        }
    }

    let brand_color = match input.brand_color.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => DEFAULT_BRAND_COLOR.to_string(),
        Some(text) => parse_color(text).unwrap_or_else(|| {
            problems.push(invalid(
                "INVALID_BRAND_COLOR",
                "brandColor".into(),
                "{field} must be a hexadecimal colour: #rrggbb or #rgb.",
            ));
            String::new()
        }),
    };

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CheckoutTheme {
        style_sheet,
        input_field_styles,
        cc_data_collection_options,
        allowed_origins,
        brand_color,
        updated_at: None,
    })
}

impl Engine {
    /// The tenant's theme for the checkout page and the messages: as saved, or the
    /// defaults when none is.
    pub async fn checkout_theme(&self, tenant_id: &str) -> EngineResult<CheckoutTheme> {
        let Some(doc) = self.store.tenant_document(DocumentKind::ThemeTemplate, tenant_id).await? else {
            return Ok(CheckoutTheme::default());
        };
        let mut theme: CheckoutTheme = serde_json::from_str(&doc.document)
            .map_err(|e| internal(format!("theme template of tenant {tenant_id}: {e}")))?;
        theme.updated_at = Some(doc.updated_at);
        Ok(theme)
    }

    /// `PUT /v1/whitelabel/theme-template`: validates, sanitises and saves the document.
    pub async fn save_theme_template(&self, tenant_id: &str, input: ThemeInput) -> EngineResult<CheckoutTheme> {
        let mut theme = validate_theme(input, self.environment())?;
        let now = self.now_ms();
        let document = serde_json::to_string(&theme).map_err(|e| internal(e.to_string()))?;
        let doc = TenantDocument { tenant_id: tenant_id.to_string(), document, secrets_sealed: None, updated_at: now };
        self.store.save_tenant_document(DocumentKind::ThemeTemplate, &doc).await?;
        theme.updated_at = Some(now);
        Ok(theme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(name: &str, key: &str, value: &str) -> InputFieldStyleInput {
        InputFieldStyleInput {
            style_name: Some(name.into()),
            styles: Some(vec![StyleInput { key: Some(key.into()), value: Some(value.into()) }]),
        }
    }

    fn codes(r: Result<CheckoutTheme, Vec<Problem>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|p| p.code.to_string()).collect()
    }

    #[test]
    fn documents_are_validated_and_normalised() {
        let input = ThemeInput {
            style_sheet: Some("@import url(https://evil.example/a.css);\n.title { color: #123 }".into()),
            input_field_styles: Some(vec![style(".CSS", "Font-Size", " 16px "), style("input", "color", "#333")]),
            cc_data_collection_options: Some(CcOptionsInput { cardholder_name: None, billing_address: Some(true) }),
            allowed_origins: Some(vec!["https://Shop.Example/".into(), "https://shop.example".into()]),
            brand_color: Some("#0AF".into()),
        };
        let theme = validate_theme(input, Environment::Production).unwrap();
        assert_eq!(theme.style_sheet, ".title{color:#123}");
        assert_eq!(theme.input_field_styles[0].style_name, ".cvv");
        assert_eq!(theme.input_field_styles[0].styles[0], StyleEntry { key: "font-size".into(), value: "16px".into() });
        assert_eq!(
            theme.cc_data_collection_options,
            CcDataCollectionOptions { cardholder_name: true, billing_address: true }
        );
        assert_eq!(theme.allowed_origins, ["https://shop.example"]);
        assert_eq!(theme.brand_color, "#00aaff");
        assert_eq!(theme.input_field_css(".card"), ".card input.cvv{font-size:16px}.card input{color:#333}");
    }

    #[test]
    fn bad_documents_name_every_problem() {
        let input = ThemeInput {
            input_field_styles: Some(vec![
                style(".name", "color", "red"),
                style("input", "background", "red"),
                style("input", "color", "red; background:url(https://evil.example)"),
            ]),
            allowed_origins: Some(vec!["http://shop.example".into(), "https://*.example".into(), "https://a/b".into()]),
            brand_color: Some("blue".into()),
            ..Default::default()
        };
        assert_eq!(
            codes(validate_theme(input, Environment::Production)),
            [
                "INVALID_STYLE_NAME",
                "INVALID_STYLE_KEY",
                "INVALID_STYLE_VALUE",
                "INVALID_ALLOWED_ORIGIN",
                "INVALID_ALLOWED_ORIGIN",
                "INVALID_ALLOWED_ORIGIN",
                "INVALID_BRAND_COLOR"
            ]
        );
        let big = ThemeInput { style_sheet: Some("a".repeat(MAX_STYLESHEET_BYTES + 1)), ..Default::default() };
        assert_eq!(codes(validate_theme(big, Environment::Sandbox)), ["STYLESHEET_TOO_LARGE"]);
    }

    #[test]
    fn loopback_http_origins_only_in_the_sandbox() {
        assert_eq!(
            parse_origin("http://127.0.0.1:5173", Environment::Sandbox).as_deref(),
            Some("http://127.0.0.1:5173")
        );
        assert_eq!(
            parse_origin("http://localhost:8000/", Environment::Sandbox).as_deref(),
            Some("http://localhost:8000")
        );
        assert_eq!(parse_origin("http://127.0.0.1:5173", Environment::Production), None);
        assert_eq!(parse_origin("http://shop.example", Environment::Sandbox), None);
        assert_eq!(
            parse_origin("https://shop.example:443", Environment::Production).as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(parse_origin("https://user@shop.example", Environment::Production), None);
        assert_eq!(parse_origin("https://shop.example?x=1", Environment::Production), None);
        assert_eq!(parse_origin("javascript:alert(1)", Environment::Sandbox), None);
    }

    #[test]
    fn defaults() {
        let theme = CheckoutTheme::default();
        assert_eq!(theme.brand_color, DEFAULT_BRAND_COLOR);
        assert!(theme.cc_data_collection_options.cardholder_name && !theme.cc_data_collection_options.billing_address);
        assert!(theme.allowed_origins.is_empty() && theme.style_sheet.is_empty());
    }
}
