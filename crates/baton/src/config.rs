//! Configuration, layered: built-in defaults < `baton.toml` < `BATON_*` environment
//! variables < command-line flags. Secrets are never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use baton_domain::Environment;
use baton_engine::pay_by_link::delivery::{DeliveryConfig, SmsGatewayConfig, SmsMethod, SmtpConfig, SmtpTls};
use clap::Args;
use ipnet::IpNet;
use serde::Deserialize;

/// Flags shared by every command that opens the database.
#[derive(Debug, Clone, Args, Default)]
pub struct StoreArgs {
    /// Directory for the SQLite database, the dev master key and the initial key file
    /// [default: ./baton-data]
    #[arg(long, env = "BATON_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); without it Baton uses SQLite in the data dir
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Base64 of 32 random bytes: the master key that encrypts secrets at rest
    #[arg(long, env = "BATON_MASTER_KEY", value_name = "BASE64", hide_env_values = true)]
    pub master_key: Option<String>,
    /// File holding the master key (base64), instead of --master-key
    #[arg(long, env = "BATON_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Largest PostgreSQL connection pool per node [default: 16]
    #[arg(long, env = "BATON_DATABASE_MAX_CONNECTIONS", value_name = "N")]
    pub database_max_connections: Option<u32>,
    /// Configuration file [default: ./baton.toml if it exists]
    #[arg(long, env = "BATON_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// sandbox or production: the one environment this deployment serves [default: sandbox]
    #[arg(long, env = "BATON_ENVIRONMENT", value_name = "ENV")]
    pub environment: Option<String>,
}

/// Flags of `baton serve`.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "BATON_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain: serve HTTPS directly (with --tls-key)
    #[arg(long, env = "BATON_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "BATON_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Comma-separated proxy addresses or CIDRs whose X-Forwarded-For is trusted [default: none]
    #[arg(long, env = "BATON_TRUSTED_PROXIES", value_name = "CIDRS", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<IpNet>>,
    /// Requests per second per API key; 0 turns rate limiting off [default: 100]
    #[arg(long, env = "BATON_RATE_LIMIT_PER_SECOND", value_name = "N")]
    pub rate_limit_per_second: Option<u32>,
    /// Burst allowed above the per-second rate [default: same as the rate]
    #[arg(long, env = "BATON_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,
    /// Access token lifetime in seconds [default: 3600]
    #[arg(long, env = "BATON_TOKEN_TTL_SECONDS", value_name = "SECS")]
    pub token_ttl_seconds: Option<u64>,
    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "BATON_BODY_LIMIT_BYTES", value_name = "BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// Seconds to let in-flight requests finish on SIGINT/SIGTERM [default: 30]
    #[arg(long, env = "BATON_SHUTDOWN_GRACE_SECONDS", value_name = "SECS")]
    pub shutdown_grace_seconds: Option<u64>,
    /// Accept raw card numbers on the customer vault API (PCI DSS scope!) [default: false]
    #[arg(long, env = "BATON_VAULT_ACCEPT_RAW_CARD_DATA", value_name = "BOOL", num_args = 0..=1,
        default_missing_value = "true")]
    pub vault_accept_raw_card_data: Option<bool>,
    /// Milliseconds between rounds of background work (late instructions, due
    /// collections, PSP status syncs); 0 runs no worker on this node [default: 1000]
    #[arg(long, env = "BATON_WORKER_INTERVAL_MS", value_name = "MS")]
    pub worker_interval_ms: Option<u64>,
    /// Milliseconds a PSP call may take before its outcome counts as unknown (the
    /// attempt is then synced, never charged again) [default: 30000]
    #[arg(long, env = "BATON_CONNECTOR_TIMEOUT_MS", value_name = "MS")]
    pub connector_timeout_ms: Option<u64>,
    /// Comma-separated host names, addresses or CIDRs that webhook endpoints may reach
    /// even where the environment forbids it (private networks in production) [default: none]
    #[arg(long, env = "BATON_WEBHOOKS_ALLOWED_HOSTS", value_name = "HOSTS", value_delimiter = ',')]
    pub webhooks_allowed_hosts: Option<Vec<String>>,
    /// Base URL customers reach this deployment at; pay-by-links are {URL}/pay/{id}
    /// [default: the listen address]
    #[arg(long, env = "BATON_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Flags of the deployment's pay-by-link message delivery (`[delivery]`).
#[derive(Debug, Clone, Args, Default)]
pub struct DeliveryArgs {
    /// SMTP server for pay-by-link e-mails [default: none, e-mail delivery refused]
    #[arg(long, env = "BATON_SMTP_HOST", value_name = "HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 25, 587 or 465 by --smtp-tls]
    #[arg(long, env = "BATON_SMTP_PORT", value_name = "PORT")]
    pub smtp_port: Option<u16>,
    /// none, starttls or tls [default: starttls]
    #[arg(long, env = "BATON_SMTP_TLS", value_name = "MODE")]
    pub smtp_tls: Option<String>,
    /// SMTP user name
    #[arg(long, env = "BATON_SMTP_USERNAME", value_name = "USER")]
    pub smtp_username: Option<String>,
    /// SMTP password
    #[arg(long, env = "BATON_SMTP_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Sender of pay-by-link e-mails: address, or Name <address>
    #[arg(long, env = "BATON_SMTP_FROM", value_name = "MAILBOX")]
    pub smtp_from: Option<String>,
    /// SMS gateway URL for pay-by-link texts [default: none, SMS delivery refused]
    #[arg(long, env = "BATON_SMS_URL", value_name = "URL")]
    pub sms_url: Option<String>,
    /// POST or PUT [default: POST]
    #[arg(long, env = "BATON_SMS_METHOD", value_name = "METHOD")]
    pub sms_method: Option<String>,
    /// JSON body template with {{to}} and {{message}} [default: {"to":"{{to}}","message":"{{message}}"}]
    #[arg(long, env = "BATON_SMS_BODY", value_name = "JSON")]
    pub sms_body: Option<String>,
    /// Header that authenticates Baton at the gateway (e.g. Authorization)
    #[arg(long, env = "BATON_SMS_AUTH_HEADER", value_name = "NAME")]
    pub sms_auth_header: Option<String>,
    /// Value of that header (e.g. "Bearer …")
    #[arg(long, env = "BATON_SMS_AUTH_VALUE", value_name = "VALUE", hide_env_values = true)]
    pub sms_auth_value: Option<String>,
}

/// `baton.toml`: every setting optional, grouped by topic.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    environment: Option<String>,
    master_key_file: Option<PathBuf>,
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    rate_limit: FileRateLimit,
    #[serde(default)]
    http: FileHttp,
    #[serde(default)]
    tokens: FileTokens,
    #[serde(default)]
    vault: FileVault,
    #[serde(default)]
    worker: FileWorker,
    #[serde(default)]
    execution: FileExecution,
    #[serde(default)]
    webhooks: FileWebhooks,
    public_url: Option<String>,
    #[serde(default)]
    delivery: FileDelivery,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDelivery {
    #[serde(default)]
    email: FileEmail,
    #[serde(default)]
    sms: FileSms,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEmail {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
    from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSms {
    url: Option<String>,
    method: Option<String>,
    body: Option<String>,
    auth_header: Option<String>,
    auth_value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebhooks {
    allowed_hosts: Option<Vec<String>>,
    rotation_overlap_seconds: Option<u64>,
    poll_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorker {
    interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileExecution {
    connector_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRateLimit {
    per_second: Option<u32>,
    burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    body_limit_bytes: Option<usize>,
    trusted_proxies: Option<Vec<IpNet>>,
    shutdown_grace_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTokens {
    ttl_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVault {
    accept_raw_card_data: Option<bool>,
}

/// Where the data lives.
#[derive(Clone)]
pub enum Database {
    Sqlite { path: PathBuf },
    Postgres { url: String, max_connections: u32 },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            // The URL may carry a password.
            Database::Postgres { max_connections, .. } => write!(f, "postgres (pool {max_connections})"),
        }
    }
}

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    Inline(String),
    File(PathBuf),
    /// SQLite development mode: `<data-dir>/master.key`, generated if missing.
    DevFile(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Inline(_) => f.write_str("inline([redacted])"),
            MasterKeySource::File(p) => write!(f, "file({})", p.display()),
            MasterKeySource::DevFile(p) => write!(f, "dev-file({})", p.display()),
        }
    }
}

/// Settings of commands that open the database.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database: Database,
    pub master_key: MasterKeySource,
    pub environment: Environment,
}

/// Settings of `baton serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub store: StoreConfig,
    pub listen: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub token_ttl: Duration,
    pub body_limit: usize,
    pub shutdown_grace: Duration,
    /// Whether the customer vault API accepts raw card numbers (`vault.accept_raw_card_data`).
    pub accept_raw_card_data: bool,
    /// Time between worker rounds; `None`: this node runs no worker (API only).
    pub worker_interval: Option<Duration>,
    /// How long a PSP call may take.
    pub connector_timeout: Duration,
    /// Webhook settings (`[webhooks]`).
    pub webhooks: WebhookSettings,
    /// `public_url` (no trailing slash); `None`: derived from the address listened on.
    pub public_url: Option<String>,
    /// `[delivery]`: SMTP server and SMS gateway of pay-by-link messages.
    pub delivery: DeliveryConfig,
}

/// The default SMS body: a JSON object with the number and the text.
pub const DEFAULT_SMS_BODY: &str = r#"{"to":"{{to}}","message":"{{message}}"}"#;

/// `public_url`: an absolute http(s) URL without query or fragment, trailing `/` dropped.
fn parse_public_url(text: &str) -> anyhow::Result<String> {
    let url = text.trim().trim_end_matches('/');
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or_default();
        !host.is_empty() && !host.contains('@')
    }) && !url.chars().any(|c| c.is_whitespace() || c == '?' || c == '#');
    if !ok {
        bail!("public_url must be an absolute http(s) URL without query or fragment, such as https://pay.example.com");
    }
    Ok(url.to_string())
}

fn nonblank(a: &Option<String>, b: &Option<String>) -> Option<String> {
    a.clone().or(b.clone()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl DeliveryArgs {
    fn resolve_with(&self, file: &FileDelivery) -> anyhow::Result<DeliveryConfig> {
        let problems = |list: Vec<baton_domain::Problem>, section: &str| -> anyhow::Result<()> {
            if list.is_empty() {
                return Ok(());
            }
            let text: Vec<String> = list
                .iter()
                .map(|p| {
                    let field = p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.as_str()).unwrap_or("");
                    p.template.replace("{field}", field)
                })
                .collect();
            bail!("[{section}]: {}", text.join("; "))
        };
        let (e, f) = (self, &file.email);
        let email = match nonblank(&e.smtp_host, &f.host) {
            None => None,
            Some(host) => {
                let tls = match nonblank(&e.smtp_tls, &f.tls) {
                    None => SmtpTls::default(),
                    Some(t) => SmtpTls::parse(&t)
                        .ok_or_else(|| anyhow::anyhow!("[delivery.email] tls must be none, starttls or tls"))?,
                };
                let Some(from) = nonblank(&e.smtp_from, &f.from) else {
                    bail!("[delivery.email] needs a sender: from (BATON_SMTP_FROM)");
                };
                let config = SmtpConfig {
                    host,
                    port: e.smtp_port.or(f.port).unwrap_or(tls.default_port()),
                    tls,
                    username: nonblank(&e.smtp_username, &f.username),
                    password: e.smtp_password.clone().or(f.password.clone()).filter(|p| !p.is_empty()),
                    from,
                };
                problems(config.problems(""), "delivery.email")?;
                Some(config)
            }
        };
        let s = &file.sms;
        let sms = match nonblank(&e.sms_url, &s.url) {
            None => None,
            Some(url) => {
                let method = match nonblank(&e.sms_method, &s.method) {
                    None => SmsMethod::default(),
                    Some(m) => SmsMethod::parse(&m)
                        .ok_or_else(|| anyhow::anyhow!("[delivery.sms] method must be POST or PUT"))?,
                };
                let config = SmsGatewayConfig {
                    url,
                    method,
                    body: nonblank(&e.sms_body, &s.body).unwrap_or_else(|| DEFAULT_SMS_BODY.to_string()),
                    auth_header: nonblank(&e.sms_auth_header, &s.auth_header),
                    auth_value: e.sms_auth_value.clone().or(s.auth_value.clone()).filter(|v| !v.is_empty()),
                };
                problems(config.problems(""), "delivery.sms")?;
                Some(config)
            }
        };
        Ok(DeliveryConfig { email, sms })
    }
}

/// `[webhooks]`: the address allow-list and the secret rotation overlap.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Host names, addresses or CIDRs endpoints may reach whatever the environment's rules.
    pub allowed_hosts: Vec<String>,
    /// How long the previous secret keeps signing after a rotation.
    pub rotation_overlap: Duration,
    /// How often a worker node looks for events to deliver.
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            rotation_overlap: Duration::from_secs(24 * 3600),
            poll_interval: Duration::from_millis(100),
        }
    }
}

fn load_file(explicit: Option<&Path>) -> anyhow::Result<FileConfig> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let default = PathBuf::from("baton.toml");
            if !default.exists() {
                return Ok(FileConfig::default());
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

impl StoreArgs {
    fn resolve_with(&self, file: &FileConfig) -> anyhow::Result<StoreConfig> {
        let data_dir = self.data_dir.clone().or(file.data_dir.clone()).unwrap_or_else(|| PathBuf::from("baton-data"));
        let environment: Environment = match self.environment.as_deref().or(file.environment.as_deref()) {
            Some(e) => e.parse().map_err(anyhow::Error::msg)?,
            None => Environment::Sandbox,
        };
        let url = self.database_url.clone().or(file.database_url.clone()).filter(|u| !u.trim().is_empty());
        let database = match url {
            None => Database::Sqlite { path: data_dir.join("baton.db") },
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Database::Postgres {
                url: u,
                max_connections: self.database_max_connections.or(file.database.max_connections).unwrap_or(16),
            },
            Some(u) if u.starts_with("sqlite:") => Database::Sqlite {
                path: PathBuf::from(u.trim_start_matches("sqlite://").trim_start_matches("sqlite:")),
            },
            Some(_) => bail!("the database URL must start with postgres:// or sqlite:"),
        };
        let master_key = match (&self.master_key, self.master_key_file.clone().or(file.master_key_file.clone())) {
            (Some(k), _) if !k.trim().is_empty() => MasterKeySource::Inline(k.clone()),
            (_, Some(path)) => MasterKeySource::File(path),
            _ => match database {
                Database::Sqlite { .. } => MasterKeySource::DevFile(data_dir.join("master.key")),
                Database::Postgres { .. } => bail!(
                    "PostgreSQL deployments need a master key: set BATON_MASTER_KEY (base64 of 32 bytes) or BATON_MASTER_KEY_FILE"
                ),
            },
        };
        Ok(StoreConfig { data_dir, database, master_key, environment })
    }

    pub fn resolve(&self) -> anyhow::Result<StoreConfig> {
        self.resolve_with(&load_file(self.config.as_deref())?)
    }
}

impl ServeArgs {
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        self.resolve_with_file(&load_file(self.store.config.as_deref())?)
    }

    fn resolve_with_file(&self, file: &FileConfig) -> anyhow::Result<ServeConfig> {
        let store = self.store.resolve_with(file)?;
        let tls = match (self.tls_cert.clone().or(file.tls.cert.clone()), self.tls_key.clone().or(file.tls.key.clone()))
        {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("TLS needs both a certificate and a key"),
        };
        let per_second = self.rate_limit_per_second.or(file.rate_limit.per_second).unwrap_or(100);
        Ok(ServeConfig {
            store,
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            tls,
            trusted_proxies: self.trusted_proxies.clone().or(file.http.trusted_proxies.clone()).unwrap_or_default(),
            rate_limit_per_second: per_second,
            rate_limit_burst: self.rate_limit_burst.or(file.rate_limit.burst).unwrap_or(per_second),
            token_ttl: Duration::from_secs(
                self.token_ttl_seconds.or(file.tokens.ttl_seconds).unwrap_or(3600).clamp(60, 86_400),
            ),
            body_limit: self.body_limit_bytes.or(file.http.body_limit_bytes).unwrap_or(1024 * 1024),
            shutdown_grace: Duration::from_secs(
                self.shutdown_grace_seconds.or(file.http.shutdown_grace_seconds).unwrap_or(30),
            ),
            accept_raw_card_data: self.vault_accept_raw_card_data.or(file.vault.accept_raw_card_data).unwrap_or(false),
            worker_interval: match self.worker_interval_ms.or(file.worker.interval_ms).unwrap_or(1000) {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            connector_timeout: Duration::from_millis(
                self.connector_timeout_ms.or(file.execution.connector_timeout_ms).unwrap_or(30_000).clamp(100, 300_000),
            ),
            webhooks: WebhookSettings {
                allowed_hosts: self
                    .webhooks_allowed_hosts
                    .clone()
                    .or(file.webhooks.allowed_hosts.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect(),
                rotation_overlap: Duration::from_secs(
                    file.webhooks.rotation_overlap_seconds.unwrap_or(24 * 3600).min(7 * 86_400),
                ),
                poll_interval: Duration::from_millis(file.webhooks.poll_interval_ms.unwrap_or(100).clamp(10, 60_000)),
            },
            public_url: nonblank(&self.public_url, &file.public_url).map(|u| parse_public_url(&u)).transpose()?,
            delivery: self.delivery.resolve_with(&file.delivery)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_apply_and_flags_win() {
        let file: FileConfig = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nenvironment = \"production\"\n[rate_limit]\nper_second = 7\n[http]\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let args = ServeArgs { rate_limit_per_second: Some(0), ..Default::default() };
        let store = args.store.resolve_with(&file).unwrap();
        assert_eq!(store.environment, Environment::Production);
        assert!(matches!(store.master_key, MasterKeySource::DevFile(_)));
        assert!(toml::from_str::<FileConfig>("unknown = 1").is_err());
    }

    #[test]
    fn raw_card_data_is_refused_unless_enabled() {
        let none = FileConfig::default();
        assert!(!ServeArgs::default().resolve_with_file(&none).unwrap().accept_raw_card_data);
        let file: FileConfig = toml::from_str("[vault]\naccept_raw_card_data = true\n").unwrap();
        assert!(ServeArgs::default().resolve_with_file(&file).unwrap().accept_raw_card_data);
        let args = ServeArgs { vault_accept_raw_card_data: Some(false), ..Default::default() };
        assert!(!args.resolve_with_file(&file).unwrap().accept_raw_card_data, "flags win");
    }

    #[test]
    fn webhook_allow_list_comes_from_the_file_or_the_flag() {
        let file: FileConfig =
            toml::from_str("[webhooks]\nallowed_hosts = [\"10.0.0.0/8\", \"hooks.internal\"]\n").unwrap();
        let config = ServeArgs::default().resolve_with_file(&file).unwrap();
        assert_eq!(config.webhooks.allowed_hosts, ["10.0.0.0/8", "hooks.internal"]);
        assert_eq!(config.webhooks.rotation_overlap, Duration::from_secs(86_400));
        let args = ServeArgs { webhooks_allowed_hosts: Some(vec!["127.0.0.1".into()]), ..Default::default() };
        assert_eq!(args.resolve_with_file(&file).unwrap().webhooks.allowed_hosts, ["127.0.0.1"]);
    }

    #[test]
    fn public_url_and_delivery_come_from_the_file_or_the_environment() {
        let file: FileConfig = toml::from_str(
            "public_url = \"https://pay.example.com/\"\n[delivery.email]\nhost = \"smtp.example.com\"\n\
             from = \"Acme <pay@example.com>\"\npassword = \"s3cret\"\nusername = \"acme\"\n\
             [delivery.sms]\nurl = \"https://sms.example.com/send\"\nauth_header = \"Authorization\"\n\
             auth_value = \"Bearer t\"\n",
        )
        .unwrap();
        let config = ServeArgs::default().resolve_with_file(&file).unwrap();
        assert_eq!(config.public_url.as_deref(), Some("https://pay.example.com"));
        let email = config.delivery.email.clone().unwrap();
        assert_eq!((email.port, email.tls), (587, SmtpTls::Starttls));
        assert!(!format!("{config:?}").contains("s3cret"), "secrets never print");
        assert_eq!(config.delivery.sms.unwrap().body, DEFAULT_SMS_BODY);
        let args = ServeArgs {
            public_url: Some("http://127.0.0.1:9000".into()),
            delivery: DeliveryArgs { smtp_port: Some(2525), smtp_tls: Some("none".into()), ..Default::default() },
            ..Default::default()
        };
        let config = args.resolve_with_file(&file).unwrap();
        assert_eq!(config.public_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(config.delivery.email.unwrap().port, 2525);

        let none = ServeArgs::default().resolve_with_file(&FileConfig::default()).unwrap();
        assert!(none.public_url.is_none() && none.delivery.email.is_none() && none.delivery.sms.is_none());
        for bad in [
            "public_url = \"pay.example.com\"",
            "public_url = \"https://pay.example.com/?x=1\"",
            "[delivery.email]\nhost = \"smtp.example.com\"",
            "[delivery.email]\nhost = \"smtp.example.com\"\nfrom = \"not an address\"",
            "[delivery.sms]\nurl = \"https://sms.example.com\"\nbody = \"{}\"",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(ServeArgs::default().resolve_with_file(&file).is_err(), "{bad}");
        }
    }

    #[test]
    fn postgres_requires_a_master_key() {
        let args = StoreArgs { database_url: Some("postgres://localhost/baton".into()), ..Default::default() };
        assert!(args.resolve_with(&FileConfig::default()).is_err());
        let args = StoreArgs { master_key: Some("x".into()), ..args };
        assert!(matches!(
            args.resolve_with(&FileConfig::default()).unwrap().database,
            Database::Postgres { max_connections: 16, .. }
        ));
    }
}
