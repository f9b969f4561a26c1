//! How pay-by-link messages leave Baton: e-mail through an SMTP server (lettre, on
//! tokio with rustls) and SMS through a generic HTTP gateway (a JSON request built
//! from a template with `{{to}}` and `{{message}}` placeholders and an optional
//! authentication header, so most providers need no code).
//!
//! The deployment configures both (`[delivery.email]`, `[delivery.sms]`); a tenant may
//! override either with its own (`PUT /v1/whitelabel/delivery-settings`), whose secrets
//! are sealed under the master key and never shown again. Hosts a tenant names are
//! held to the same address rules as webhook endpoints (no internal addresses in
//! production), checked when saved and again before each send.

use std::sync::Arc;
use std::time::Duration;

use baton_domain::Problem;
use baton_store::{DocumentKind, TenantDocument};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::messages::EmailContent;
use crate::error::internal;
use crate::webhooks::safety::{CheckedResolver, UrlPolicy};
use crate::{Engine, EngineResult};

/// What secrets are shown as.
pub const MASK: &str = "********";
/// How long one SMTP session or gateway request may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the master key binds a tenant's delivery secrets to.
pub(crate) fn settings_aad(tenant_id: &str) -> Vec<u8> {
    format!("delivery-settings:{tenant_id}").into_bytes()
}

/// The deployment's message delivery (`[delivery]`); either part may be missing.
#[derive(Debug, Clone, Default)]
pub struct DeliveryConfig {
    pub email: Option<SmtpConfig>,
    pub sms: Option<SmsGatewayConfig>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl SmtpTls {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Some(SmtpTls::None),
            "starttls" | "start-tls" | "start_tls" => Some(SmtpTls::Starttls),
            "tls" | "smtps" | "ssl" => Some(SmtpTls::Tls),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }

    /// The usual port of the mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// An SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender: `payments@example.com` or `Acme Payments <payments@example.com>`.
    /// Without a display name, the merchant's name is shown.
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .finish()
    }
}

impl SmtpConfig {
    /// Every problem of the settings, with fields under `prefix` (`email.host`).
    pub fn problems(&self, prefix: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        let field = |name: &str| format!("{prefix}{name}");
        let host_ok = !self.host.is_empty()
            && self.host.len() <= 253
            && self.host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            problems.push(Problem::invalid_field(
                "INVALID_DELIVERY_SETTINGS",
                field("host"),
                "{field} must be a host name or address.",
            ));
        }
        if self.port == 0 {
            problems.push(Problem::invalid_field(
                "INVALID_DELIVERY_SETTINGS",
                field("port"),
                "{field} must be 1 to 65535.",
            ));
        }
        if self.from.parse::<Mailbox>().is_err() {
            problems.push(Problem::invalid_field(
                "INVALID_DELIVERY_SETTINGS",
                field("from"),
                "{field} must be an e-mail address, optionally with a name: Name <address@example.com>.",
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            problems.push(Problem::invalid_field(
                "INVALID_DELIVERY_SETTINGS",
                field("username"),
                "{field} is required with a password.",
            ));
        }
        problems
    }
}

/// The HTTP method of an SMS gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SmsMethod {
    #[default]
    Post,
    Put,
}

impl SmsMethod {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "POST" => Some(SmsMethod::Post),
            "PUT" => Some(SmsMethod::Put),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SmsMethod::Post => "POST",
            SmsMethod::Put => "PUT",
        }
    }
}

/// A generic HTTP SMS gateway: `method url` with a JSON body made from `body`, in
/// which every `{{to}}` and `{{message}}` inside a string is replaced by the number
/// (E.164) and the text, and an optional authentication header.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsGatewayConfig {
    pub url: String,
    pub method: SmsMethod,
    /// The JSON body template, e.g. `{"to":"{{to}}","text":"{{message}}","from":"Acme"}`.
    pub body: String,
    /// e.g. `Authorization`.
    pub auth_header: Option<String>,
    /// e.g. `Bearer …` (a secret).
    pub auth_value: Option<String>,
}

impl std::fmt::Debug for SmsGatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsGatewayConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("body", &self.body)
            .field("auth_header", &self.auth_header)
            .field("auth_value", &self.auth_value.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Replaces the placeholders in every string of a JSON template.
fn fill_template(value: &mut Value, to: &str, message: &str) {
    match value {
        Value::String(s) => *s = s.replace("{{to}}", to).replace("{{message}}", message),
        Value::Array(items) => items.iter_mut().for_each(|v| fill_template(v, to, message)),
        Value::Object(map) => map.values_mut().for_each(|v| fill_template(v, to, message)),
        _ => {}
    }
}

impl SmsGatewayConfig {
    /// Every problem of the settings, with fields under `prefix` (`sms.url`).
    pub fn problems(&self, prefix: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        let field = |name: &str| format!("{prefix}{name}");
        let url_ok = url::Url::parse(&self.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
        if !url_ok {
            problems.push(Problem::invalid_field(
                "INVALID_DELIVERY_SETTINGS",
                field("url"),
                "{field} must be an absolute http(s) URL.",
            ));
        }
        match serde_json::from_str::<Value>(&self.body) {
            Ok(v) if v.is_object() && self.body.contains("{{to}}") && self.body.contains("{{message}}") => {}
            _ => problems.push(Problem::invalid_field(
                "INVALID_DELIVERY_SETTINGS",
                field("body"),
                "{field} must be a JSON object whose strings use {{to}} and {{message}}.",
            )),
        }
        if let Some(name) = &self.auth_header {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push(Problem::invalid_field(
                    "INVALID_DELIVERY_SETTINGS",
                    field("authHeader"),
                    "{field} must be an HTTP header name.",
                ));
            }
        }
        if let Some(v) = &self.auth_value {
            if reqwest::header::HeaderValue::from_str(v).is_err() {
                problems.push(Problem::invalid_field(
                    "INVALID_DELIVERY_SETTINGS",
                    field("authValue"),
                    "{field} must be a valid HTTP header value.",
                ));
            }
        }
        if self.auth_value.is_some() != self.auth_header.is_some() {
            problems.push(Problem::invalid_field(
                "INVALID_DELIVERY_SETTINGS",
                field("authHeader"),
                "{field} and authValue go together.",
            ));
        }
        problems
    }

    /// The request body for one message.
    pub fn render(&self, to: &str, message: &str) -> Result<Value, String> {
        let mut body: Value = serde_json::from_str(&self.body).map_err(|e| format!("SMS body template: {e}"))?;
        fill_template(&mut body, to, message);
        Ok(body)
    }
}

/// A failed send: permanent ones are not retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    Permanent(String),
    Transient(String),
}

impl SendError {
    pub(crate) fn message(&self) -> &str {
        match self {
            SendError::Permanent(m) | SendError::Transient(m) => m,
        }
    }
}

/// Where a channel's settings come from, for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsSource {
    Tenant,
    Deployment,
    None,
}

impl SettingsSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SettingsSource::Tenant => "TENANT",
            SettingsSource::Deployment => "DEPLOYMENT",
            SettingsSource::None => "NONE",
        }
    }
}

/// A channel's settings in force for a tenant, and whether the tenant supplied them.
#[derive(Debug, Clone)]
pub(crate) struct InForce<T> {
    pub settings: T,
    pub tenant_supplied: bool,
}

/// The channels in force for a tenant.
#[derive(Debug, Clone, Default)]
pub(crate) struct Channels {
    pub email: Option<InForce<SmtpConfig>>,
    pub sms: Option<InForce<SmsGatewayConfig>>,
}

// Stored form of a tenant's settings ------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSettings {
    email: Option<StoredEmail>,
    sms: Option<StoredSms>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEmail {
    host: String,
    port: u16,
    tls: SmtpTls,
    username: Option<String>,
    from: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSms {
    url: String,
    method: SmsMethod,
    body: String,
    auth_header: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSecrets {
    email_password: Option<String>,
    sms_auth_value: Option<String>,
}

// The tenant settings API -------------------------------------------------------------

/// `PUT /v1/whitelabel/delivery-settings`: a section left out (or `null`) means the
/// deployment's settings apply to that channel.
#[derive(Debug, Clone, Default)]
pub struct DeliverySettingsInput {
    pub email: Option<EmailSettingsInput>,
    pub sms: Option<SmsSettingsInput>,
}

#[derive(Clone, Default)]
pub struct EmailSettingsInput {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub username: Option<String>,
    /// [`MASK`] keeps the stored password.
    pub password: Option<String>,
    pub from: Option<String>,
}

impl std::fmt::Debug for EmailSettingsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettingsInput").field("host", &self.host).finish_non_exhaustive()
    }
}

#[derive(Clone, Default)]
pub struct SmsSettingsInput {
    pub url: Option<String>,
    pub method: Option<String>,
    /// A JSON object, or a string holding one.
    pub body: Option<Value>,
    pub auth_header: Option<String>,
    /// [`MASK`] keeps the stored value.
    pub auth_value: Option<String>,
}

impl std::fmt::Debug for SmsSettingsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettingsInput").field("url", &self.url).finish_non_exhaustive()
    }
}

/// A tenant's delivery settings as the API shows them: secrets as [`MASK`], and which
/// settings are in force for each channel.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettingsView {
    /// `{host, port, tls, username, password, from}` or `None`.
    pub email: Option<Value>,
    /// `{url, method, body, authHeader, authValue}` or `None`.
    pub sms: Option<Value>,
    pub email_source: SettingsSource,
    pub sms_source: SettingsSource,
}

fn text(input: &Option<String>) -> Option<String> {
    input.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A host the address rules refuse, reported on `field` with the rule's own code.
fn host_not_allowed(p: &Problem, field: &str) -> Problem {
    Problem::new(baton_domain::ProblemKind::BadRequest, p.code.clone())
        .message("{field} names a host that messages may not be sent to from this deployment: {reason}")
        .detail("field", field.to_string())
        .detail("reason", p.render(&[]))
}

fn required(problems: &mut Vec<Problem>, field: &str) {
    problems.push(Problem::invalid_field("INVALID_DELIVERY_SETTINGS", field.to_string(), "{field} is required."));
}

impl Engine {
    /// The tenant's stored settings and opened secrets, if any.
    async fn stored_delivery_settings(&self, tenant_id: &str) -> EngineResult<Option<(StoredSettings, StoredSecrets)>> {
        let Some(doc) = self.store.tenant_document(DocumentKind::DeliverySettings, tenant_id).await? else {
            return Ok(None);
        };
        let settings: StoredSettings = serde_json::from_str(&doc.document)
            .map_err(|e| internal(format!("delivery settings of tenant {tenant_id}: {e}")))?;
        let secrets = match &doc.secrets_sealed {
            None => StoredSecrets::default(),
            Some(sealed) => {
                let plain = self
                    .master_key
                    .open(sealed, &settings_aad(tenant_id))
                    .map_err(|e| internal(format!("the delivery secrets of tenant {tenant_id} do not open: {e}")))?;
                serde_json::from_slice(&plain)
                    .map_err(|e| internal(format!("delivery secrets of tenant {tenant_id}: {e}")))?
            }
        };
        Ok(Some((settings, secrets)))
    }

    /// The channels in force for a tenant: its own settings, else the deployment's.
    pub(crate) async fn delivery_channels(&self, tenant_id: &str) -> EngineResult<Channels> {
        let deployment = &self.config.delivery;
        let mut channels = Channels {
            email: deployment.email.clone().map(|settings| InForce { settings, tenant_supplied: false }),
            sms: deployment.sms.clone().map(|settings| InForce { settings, tenant_supplied: false }),
        };
        if let Some((stored, secrets)) = self.stored_delivery_settings(tenant_id).await? {
            if let Some(e) = stored.email {
                let settings = SmtpConfig {
                    host: e.host,
                    port: e.port,
                    tls: e.tls,
                    username: e.username,
                    password: secrets.email_password.clone(),
                    from: e.from,
                };
                channels.email = Some(InForce { settings, tenant_supplied: true });
            }
            if let Some(s) = stored.sms {
                let settings = SmsGatewayConfig {
                    url: s.url,
                    method: s.method,
                    body: s.body,
                    auth_header: s.auth_header,
                    auth_value: secrets.sms_auth_value.clone(),
                };
                channels.sms = Some(InForce { settings, tenant_supplied: true });
            }
        }
        Ok(channels)
    }

    /// `GET /v1/whitelabel/delivery-settings`.
    pub async fn delivery_settings(&self, tenant_id: &str) -> EngineResult<DeliverySettingsView> {
        let stored = self.stored_delivery_settings(tenant_id).await?;
        let (settings, secrets) = stored.unwrap_or_default();
        let mask = |secret: &Option<String>| secret.as_ref().map(|_| MASK);
        let email = settings.email.as_ref().map(|e| {
            serde_json::json!({"host": e.host, "port": e.port, "tls": e.tls.as_str(), "username": e.username,
                "password": mask(&secrets.email_password), "from": e.from})
        });
        let sms = settings.sms.as_ref().map(|s| {
            let body: Value = serde_json::from_str(&s.body).unwrap_or(Value::String(s.body.clone()));
            serde_json::json!({"url": s.url, "method": s.method.as_str(), "body": body, "authHeader": s.auth_header,
                "authValue": mask(&secrets.sms_auth_value)})
        });
        let source = |tenant: bool, deployment: bool| match (tenant, deployment) {
            (true, _) => SettingsSource::Tenant,
            (false, true) => SettingsSource::Deployment,
            _ => SettingsSource::None,
        };
        Ok(DeliverySettingsView {
            email_source: source(email.is_some(), self.config.delivery.email.is_some()),
            sms_source: source(sms.is_some(), self.config.delivery.sms.is_some()),
            email,
            sms,
        })
    }

    /// `PUT /v1/whitelabel/delivery-settings`: validates everything (and, for hosts,
    /// the address rules) before anything is written; secrets sent as [`MASK`] keep
    /// their stored value.
    pub async fn save_delivery_settings(
        &self,
        tenant_id: &str,
        input: DeliverySettingsInput,
    ) -> EngineResult<DeliverySettingsView> {
        let (_, old_secrets) = self.stored_delivery_settings(tenant_id).await?.unwrap_or_default();
        let mut problems = Vec::new();
        let mut stored = StoredSettings::default();
        let mut secrets = StoredSecrets::default();
        let policy = self.url_policy_for_delivery();

        if let Some(e) = &input.email {
            let tls = match text(&e.tls) {
                None => SmtpTls::default(),
                Some(t) => SmtpTls::parse(&t).unwrap_or_else(|| {
                    problems.push(Problem::invalid_field(
                        "INVALID_DELIVERY_SETTINGS",
                        "email.tls",
                        "{field} must be none, starttls or tls.",
                    ));
                    SmtpTls::default()
                }),
            };
            let port = match e.port {
                None => tls.default_port(),
                Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).unwrap_or_else(|| {
                    problems.push(Problem::invalid_field(
                        "INVALID_DELIVERY_SETTINGS",
                        "email.port",
                        "{field} must be 1 to 65535.",
                    ));
                    tls.default_port()
                }),
            };
            let host = text(&e.host).unwrap_or_default();
            let from = text(&e.from).unwrap_or_default();
            if host.is_empty() {
                required(&mut problems, "email.host");
            }
            if from.is_empty() {
                required(&mut problems, "email.from");
            }
            let password = match text(&e.password) {
                Some(p) if p == MASK => old_secrets.email_password.clone(),
                other => other,
            };
            let config = SmtpConfig { host, port, tls, username: text(&e.username), password, from };
            if !config.host.is_empty() && !config.from.is_empty() {
                problems.extend(config.problems("email."));
            }
            if problems.is_empty() {
                if let Err(p) = policy.check(&format!("https://{}:{}/", config.host, config.port)).await {
                    problems.push(host_not_allowed(&p, "email.host"));
                }
            }
            secrets.email_password = config.password.clone();
            stored.email = Some(StoredEmail {
                host: config.host,
                port: config.port,
                tls: config.tls,
                username: config.username,
                from: config.from,
            });
        }

        if let Some(s) = &input.sms {
            let method = match text(&s.method) {
                None => SmsMethod::default(),
                Some(m) => SmsMethod::parse(&m).unwrap_or_else(|| {
                    problems.push(Problem::invalid_field(
                        "INVALID_DELIVERY_SETTINGS",
                        "sms.method",
                        "{field} must be POST or PUT.",
                    ));
                    SmsMethod::default()
                }),
            };
            let body = match &s.body {
                None | Some(Value::Null) => {
                    required(&mut problems, "sms.body");
                    String::new()
                }
                Some(Value::String(t)) => t.clone(),
                Some(v) => v.to_string(),
            };
            let url = text(&s.url).unwrap_or_default();
            if url.is_empty() {
                required(&mut problems, "sms.url");
            }
            let auth_value = match text(&s.auth_value) {
                Some(v) if v == MASK => old_secrets.sms_auth_value.clone(),
                other => other,
            };
            let config = SmsGatewayConfig { url, method, body, auth_header: text(&s.auth_header), auth_value };
            if !config.url.is_empty() && !config.body.is_empty() {
                problems.extend(config.problems("sms."));
            }
            if problems.is_empty() {
                if let Err(p) = policy.check(&config.url).await {
                    problems.push(host_not_allowed(&p, "sms.url"));
                }
            }
            secrets.sms_auth_value = config.auth_value.clone();
            stored.sms = Some(StoredSms {
                url: config.url,
                method: config.method,
                body: config.body,
                auth_header: config.auth_header,
            });
        }
        if !problems.is_empty() {
            return Err(problems.into());
        }
        let document = serde_json::to_string(&stored).map_err(|e| internal(e.to_string()))?;
        let secrets_sealed = if secrets.email_password.is_some() || secrets.sms_auth_value.is_some() {
            let plain = serde_json::to_vec(&secrets).map_err(|e| internal(e.to_string()))?;
            Some(self.master_key.seal(&plain, &settings_aad(tenant_id)))
        } else {
            None
        };
        let doc =
            TenantDocument { tenant_id: tenant_id.to_string(), document, secrets_sealed, updated_at: self.now_ms() };
        self.store.save_tenant_document(DocumentKind::DeliverySettings, &doc).await?;
        self.delivery_settings(tenant_id).await
    }

    /// The address rules of tenant-supplied hosts: those of webhook endpoints.
    fn url_policy_for_delivery(&self) -> Arc<UrlPolicy> {
        self.webhook_policy()
    }

    /// The client of SMS gateways. A tenant's gateway is resolved through the address
    /// rules on every connection.
    fn sms_client(&self, tenant_supplied: bool) -> EngineResult<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("Baton/", env!("CARGO_PKG_VERSION")));
        if tenant_supplied {
            builder = builder.dns_resolver(Arc::new(CheckedResolver(self.url_policy_for_delivery())));
        }
        builder.build().map_err(|e| internal(format!("building the SMS client: {e}")))
    }

    /// Sends one e-mail; the sender's display name is the merchant's unless the
    /// settings give one.
    pub(crate) async fn send_email(
        &self,
        channel: &InForce<SmtpConfig>,
        merchant: &str,
        to: &str,
        content: &EmailContent,
    ) -> Result<(), SendError> {
        let config = &channel.settings;
        // A tenant's SMTP host is resolved here, judged, and the connection made to the
        // address judged, so a name re-pointed after the check reaches nothing else.
        let connect_to = if channel.tenant_supplied {
            let addrs =
                self.url_policy_for_delivery().resolve_allowed(&config.host, config.port).await.map_err(|e| {
                    match e.downcast_ref::<crate::webhooks::safety::Blocked>() {
                        Some(blocked) => SendError::Permanent(format!("the SMTP host is not allowed: {blocked}")),
                        None => SendError::Transient(format!("SMTP: resolving {}: {e}", config.host)),
                    }
                })?;
            addrs[0].ip().to_string()
        } else {
            config.host.clone()
        };
        let mut from: Mailbox =
            config.from.parse().map_err(|e| SendError::Permanent(format!("the sender address is invalid: {e}")))?;
        if from.name.is_none() {
            from.name = Some(merchant.chars().filter(|c| !c.is_control()).collect());
        }
        let to: Mailbox = to.parse().map_err(|e| SendError::Permanent(format!("the recipient is invalid: {e}")))?;
        let message = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(content.subject.clone())
            .multipart(MultiPart::alternative_plain_html(content.text.clone(), content.html.clone()))
            .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_string()).map_err(|e| SendError::Permanent(format!("TLS set-up: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&connect_to)
            .port(config.port)
            .timeout(Some(SEND_TIMEOUT));
        builder = match config.tls {
            SmtpTls::None => builder.tls(Tls::None),
            SmtpTls::Starttls => builder.tls(Tls::Required(tls(&config.host)?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls(&config.host)?)),
        };
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let transport = builder.build();
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => {
                Err(SendError::Permanent(format!("the SMTP server refused the message: {e}")))
            }
            Err(e) => Err(SendError::Transient(format!("SMTP: {e}"))),
        }
    }

    /// Sends one SMS through the gateway: 2xx is sent; 4xx other than 408/429 is a
    /// permanent refusal; anything else is retried.
    pub(crate) async fn send_sms(
        &self,
        channel: &InForce<SmsGatewayConfig>,
        to: &str,
        text: &str,
    ) -> Result<(), SendError> {
        let config = &channel.settings;
        if channel.tenant_supplied {
            // Literal addresses never reach the client's resolver: judge them here.
            let url = reqwest::Url::parse(&config.url)
                .map_err(|e| SendError::Permanent(format!("the SMS gateway URL is invalid: {e}")))?;
            if let Some(ip) = crate::webhooks::safety::literal_ip(&url) {
                if !self.url_policy_for_delivery().address_allowed(&crate::webhooks::safety::host_of(&url), ip) {
                    return Err(SendError::Permanent("the SMS gateway's address is not allowed".into()));
                }
            }
        }
        let client = self.sms_client(channel.tenant_supplied).map_err(|e| SendError::Transient(e.to_string()))?;
        let body = config.render(to, text).map_err(SendError::Permanent)?;
        let method = match config.method {
            SmsMethod::Post => reqwest::Method::POST,
            SmsMethod::Put => reqwest::Method::PUT,
        };
        let mut request = client.request(method, &config.url).json(&body);
        if let (Some(name), Some(value)) = (&config.auth_header, &config.auth_value) {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.map_err(|e| SendError::Transient(format!("SMS gateway: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let snippet: String = response.text().await.unwrap_or_default().chars().take(200).collect();
        let message = format!("the SMS gateway answered {}: {snippet}", status.as_u16());
        if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(SendError::Permanent(message))
        } else {
            Err(SendError::Transient(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(body: &str) -> SmsGatewayConfig {
        SmsGatewayConfig {
            url: "https://sms.example.com/send".into(),
            method: SmsMethod::Post,
            body: body.into(),
            auth_header: Some("Authorization".into()),
            auth_value: Some("Bearer secret".into()),
        }
    }

    #[test]
    fn sms_templates_fill_strings_only_and_stay_json() {
        let c = sms(r#"{"to":"{{to}}","text":"{{message}}","meta":{"list":["{{to}}"]},"n":1}"#);
        assert!(c.problems("sms.").is_empty());
        let body = c.render("+447700900123", "Pay \"now\"\n{{to}}").unwrap();
        assert_eq!(body["to"], "+447700900123");
        assert_eq!(body["text"], "Pay \"now\"\n{{to}}");
        assert_eq!(body["meta"]["list"][0], "+447700900123");
        assert_eq!(body["n"], 1);
        let codes = |c: SmsGatewayConfig| c.problems("sms.").into_iter().map(|p| p.code).collect::<Vec<_>>();
        assert_eq!(codes(sms("not json")), ["INVALID_DELIVERY_SETTINGS"]);
        assert_eq!(codes(sms(r#"{"to":"{{to}}"}"#)), ["INVALID_DELIVERY_SETTINGS"]);
        assert!(!format!("{:?}", sms("{}")).contains("secret"));
    }

    #[test]
    fn smtp_settings_are_checked() {
        let ok = SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: Some("u".into()),
            password: Some("p4ss".into()),
            from: "Acme <pay@example.com>".into(),
        };
        assert!(ok.problems("email.").is_empty());
        assert!(!format!("{ok:?}").contains("p4ss"));
        let bad = SmtpConfig { host: "smtp example".into(), from: "nobody".into(), username: None, ..ok };
        let fields: Vec<_> = bad
            .problems("email.")
            .into_iter()
            .map(|p| p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.clone()).unwrap_or_default())
            .collect();
        assert_eq!(fields, ["email.host", "email.from", "email.username"]);
        assert_eq!(SmtpTls::parse("STARTTLS"), Some(SmtpTls::Starttls));
        assert_eq!(SmtpTls::parse("smtps"), Some(SmtpTls::Tls));
        assert_eq!(SmtpTls::parse("maybe"), None);
    }
}
