//! Test harness: real nodes, started through `baton::node::start` (the path
//! `baton serve` takes), on port 0, against a fresh database — a temporary SQLite
//! file, or a fresh PostgreSQL database when `BATON_TEST_DATABASE_URL` is set.
#![allow(dead_code)]

pub mod browser;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use baton::config::{Database, MasterKeySource, ServeConfig, StoreConfig};
use baton::node::RunningNode;
use baton_domain::Environment;
use baton_engine::ManualClock;
use baton_store::testing::PgTestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An API key pair as issued at creation.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub public_key: String,
    pub private_key: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The first error code of an error envelope.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["errorCode"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts status and error code together, printing the body on mismatch.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status.as_u16(), self.code()), (status, code), "body: {}", self.text);
        assert_envelope(&self.body);
    }

    /// Every error of the envelope as (errorCode, metadata.field).
    pub fn codes(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
                        (text(&e["errorCode"]), text(&e["metadata"]["field"]))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        &self.body
    }
}

/// Checks the shape of the error envelope (SPEC §1).
#[track_caller]
pub fn assert_envelope(body: &Value) {
    assert!(body["timestamp"].is_i64(), "timestamp: {body}");
    let outer = body["correlationId"].as_str().expect("correlationId");
    assert!(!outer.is_empty());
    let errors = body["errors"].as_array().expect("errors");
    assert!(!errors.is_empty());
    for e in errors {
        assert!(e["errorCode"].as_str().is_some_and(|c| !c.is_empty()), "{e}");
        assert!(e["message"].is_string() && e["messageTemplate"].is_string(), "{e}");
        assert!(e["metadata"]["correlationId"].is_string(), "{e}");
    }
}

/// Settings a test may change before its node starts.
pub struct Options {
    pub rate_limit_per_second: u32,
    pub environment: Environment,
    pub token_ttl: Duration,
    pub body_limit: usize,
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `vault.accept_raw_card_data`.
    pub accept_raw_card_data: bool,
    /// Background worker rounds; off by default so that tests drive them with
    /// [`TestApp::tick`] under the manual clock.
    pub worker_interval: Option<Duration>,
    /// The PSPs the node calls (the standard connectors unless a test scripts one).
    pub connectors: baton_connectors::Connectors,
    /// How long a PSP call may take.
    pub connector_timeout: Duration,
    /// `webhooks.allowed_hosts`.
    pub webhook_allowed_hosts: Vec<String>,
    /// `public_url`; `None`: the node's own address.
    pub public_url: Option<String>,
    /// `[delivery]`: the deployment's SMTP server and SMS gateway.
    pub delivery: baton_engine::pay_by_link::delivery::DeliveryConfig,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate_limit_per_second: 0,
            environment: Environment::Sandbox,
            token_ttl: Duration::from_secs(3600),
            body_limit: 1024 * 1024,
            tls: None,
            accept_raw_card_data: false,
            worker_interval: None,
            connectors: baton_connectors::Connectors::standard(),
            connector_timeout: Duration::from_secs(30),
            webhook_allowed_hosts: Vec::new(),
            public_url: None,
            delivery: Default::default(),
        }
    }
}

/// One running node plus a client and the initial admin key.
pub struct TestApp {
    pub base: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub account_id: String,
    pub admin: KeyPair,
    pub clock: Arc<ManualClock>,
    pub config: ServeConfig,
    pub node: Option<RunningNode>,
    pub data_dir: tempfile::TempDir,
    /// Kept alive so the PostgreSQL test database outlives the nodes.
    pub pg: Option<Arc<PgTestDatabase>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        // `BATON_TEST_LOG=debug` (any filter) shows the nodes' logs when a test fails;
        // otherwise what a node logs goes to its test's capture, if it has one.
        if let Ok(filter) = std::env::var("BATON_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        } else {
            LogCapture::install();
        }
        let data_dir = tempfile::tempdir().expect("temp dir");
        let pg = PgTestDatabase::create().await.map(Arc::new);
        let database = match &pg {
            Some(db) => Database::Postgres { url: db.url.clone(), max_connections: 8 },
            None => Database::Sqlite { path: data_dir.path().join("baton.db") },
        };
        let (_, master_key) = baton_vault::MasterKey::generate();
        let config = ServeConfig {
            store: StoreConfig {
                data_dir: data_dir.path().to_path_buf(),
                database,
                master_key: MasterKeySource::Inline(master_key),
                environment: options.environment,
            },
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: options.tls.clone(),
            trusted_proxies: Vec::new(),
            rate_limit_per_second: options.rate_limit_per_second,
            rate_limit_burst: options.rate_limit_per_second,
            token_ttl: options.token_ttl,
            body_limit: options.body_limit,
            shutdown_grace: Duration::from_secs(5),
            accept_raw_card_data: options.accept_raw_card_data,
            worker_interval: options.worker_interval,
            connector_timeout: options.connector_timeout,
            webhooks: baton::config::WebhookSettings {
                allowed_hosts: options.webhook_allowed_hosts.clone(),
                ..Default::default()
            },
            public_url: options.public_url.clone(),
            delivery: options.delivery.clone(),
        };
        let clock = Arc::new(ManualClock::default());
        let node =
            baton::node::start_with(config.clone(), clock.clone(), options.connectors).await.expect("node starts");
        let creds = node.initial_credentials.clone().expect("a fresh database is initialised on first start");
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        Self {
            base: format!("{scheme}://{}", node.addr),
            addr: node.addr,
            client: reqwest::Client::new(),
            account_id: creds.account_id,
            admin: KeyPair { public_key: creds.public_key, private_key: creds.private_key },
            clock,
            config,
            node: Some(node),
            data_dir,
            pg,
        }
    }

    /// Another node on the same database (as in a multi-node deployment).
    pub async fn spawn_peer(&self) -> RunningNode {
        baton::node::start(self.config.clone(), self.clock.clone()).await.expect("peer starts")
    }

    /// The running node's engine.
    pub fn engine(&self) -> &baton_engine::Engine {
        &self.node.as_ref().expect("the node runs").engine
    }

    /// One round of background work now (see `Engine::worker_tick`).
    pub async fn tick(&self) -> baton_engine::execution::worker::TickReport {
        self.engine().worker_tick().await.expect("worker round")
    }

    /// Another node on the same database calling PSPs through `connectors`.
    pub async fn spawn_peer_with(&self, connectors: baton_connectors::Connectors) -> RunningNode {
        baton::node::start_with(self.config.clone(), self.clock.clone(), connectors).await.expect("peer starts")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An `Authorization: Hmac …` value for `body`, with a fresh nonce and the test clock's epoch.
    pub fn hmac(&self, key: &KeyPair, body: &[u8]) -> String {
        let epoch = (self.now_ms() / 1000).to_string();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        baton_domain::hmac_signature::authorization_header(&key.public_key, &key.private_key, &nonce, &epoch, body)
            .unwrap()
    }

    pub fn now_ms(&self) -> i64 {
        use baton_engine::Clock;
        self.clock.now_ms()
    }

    /// Posts to the token endpoint with the given Authorization value.
    pub async fn token_request(&self, authorization: &str, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("authorization", authorization)];
        all.extend_from_slice(headers);
        self.send(Method::POST, "/identity/v1/hmac/management", None, &all, None).await
    }

    /// A bearer token for the key.
    pub async fn token(&self, key: &KeyPair) -> String {
        let reply = self.token_request(&self.hmac(key, b""), &[]).await;
        reply.assert_status(200)["accessToken"].as_str().expect("accessToken").to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.token(&self.admin.clone()).await
    }

    /// Sends a request; `token` as a bearer token, `json` as the body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        json: Option<&Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = json {
            req = req.json(body);
        }
        read(req.send().await.expect("request sent")).await
    }

    /// Posts raw bytes with the given headers (for bodies that are not well-formed JSON).
    pub async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Reply {
        let mut req = self.client.post(self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), &[], None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(token), &[], Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(token), &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), &[], None).await
    }

    /// Creates an ACTIVE tenant (or pending, if the account requires approval).
    pub async fn create_tenant(&self, token: &str, name: &str) -> String {
        let reply = self.post("/v1/account/tenants", token, &json!({ "name": name, "country": "GB" })).await;
        reply.assert_status(201)["tenantId"].as_str().unwrap().to_string()
    }

    /// Creates an account key with the roles.
    pub async fn create_account_key(&self, token: &str, roles: &[&str]) -> KeyPair {
        let reply = self.post("/v1/account/keys", token, &json!({ "roles": roles })).await;
        key_pair(reply.assert_status(201))
    }

    /// Creates a key for the tenant with the roles (using an account token).
    pub async fn create_tenant_key(&self, token: &str, tenant_id: &str, roles: &[&str]) -> KeyPair {
        let reply = self.post(&format!("/v1/tenant/{tenant_id}/keys"), token, &json!({ "roles": roles })).await;
        key_pair(reply.assert_status(201))
    }

    /// Runs SQL against the node's database (for arranging states the API cannot reach yet).
    pub async fn execute_sql(&self, sql: &str) {
        match &self.config.store.database {
            Database::Sqlite { path } => {
                use sqlx::{ConnectOptions, Connection};
                let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            Database::Postgres { url, .. } => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

pub fn key_pair(body: &Value) -> KeyPair {
    KeyPair {
        public_key: body["publicKey"].as_str().expect("publicKey").to_string(),
        private_key: body["privateKey"].as_str().expect("privateKey").to_string(),
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

/// `base` with the fields of `extra` set (added or replaced).
pub fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().expect("extra is an object") {
        base[k] = v.clone();
    }
    base
}

/// A minimal instruction body (10.00 EUR, DE) for order tests.
pub fn instruction(instruction_ref: &str, customer: &str, direction: &str) -> Value {
    json!({ "instructionRef": instruction_ref, "customerRef": customer, "direction": direction,
            "amount": "10.00", "currency": "EUR", "country": "DE" })
}

/// A tenant ready to move money: `SANDBOX_CARD` installed and configured (with the
/// `apiKey` [`Payments::API_KEY`], which also signs its notifications) and a collect
/// scheme whose published draft routes everything to it. Raw card data is accepted.
pub struct Payments {
    pub app: TestApp,
    pub tenant: String,
    /// `tenant-admin`.
    pub token: String,
    pub scheme: String,
}

impl Payments {
    pub const API_KEY: &'static str = "sk_sandbox_test_secret";

    pub async fn new() -> Self {
        Self::with_options(Options { accept_raw_card_data: true, ..Options::default() }).await
    }

    pub async fn with_options(options: Options) -> Self {
        let app = TestApp::spawn_with(options).await;
        let (tenant, token, scheme) = Self::tenant_on(&app, "Payments tenant").await;
        Self { app, tenant, token, scheme }
    }

    /// Sets up a tenant named `name` on `app` as [`Payments`] does; returns its id, a
    /// `tenant-admin` token and the collect scheme's id.
    pub async fn tenant_on(app: &TestApp, name: &str) -> (String, String, String) {
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, name).await;
        let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
        let token = app.token(&key).await;
        let reply =
            app.send(reqwest::Method::POST, "/v1/marketplace/apps/SANDBOX_CARD/install", Some(&token), &[], None).await;
        reply.assert_status(200);
        let config = json!({ "merchantName": "Acme", "apiKey": Self::API_KEY });
        app.post("/v1/apps/installed/SANDBOX_CARD/configuration", &token, &config).await.assert_status(200);
        let body = json!({ "name": "Cards", "rules": [{ "apps": [{ "appId": "SANDBOX_CARD", "priority": 1 }] }] });
        let scheme = app.post("/v1/schemes/collect", &token, &body).await;
        let scheme = scheme.assert_status(201).clone();
        let scheme_id = scheme["schemeId"].as_str().unwrap().to_string();
        let draft = scheme["drafts"][0]["draftId"].as_str().unwrap();
        let path = format!("/v1/schemes/collect/{scheme_id}/drafts/{draft}/publish");
        app.post(&path, &token, &json!({})).await.assert_status(200);
        (tenant, token, scheme_id)
    }

    /// A token for a new key of the tenant holding `roles`.
    pub async fn token_with(&self, roles: &[&str]) -> String {
        let admin = self.app.admin_token().await;
        let key = self.app.create_tenant_key(&admin, &self.tenant, roles).await;
        self.app.token(&key).await
    }

    /// Stores a card for `customer` and returns its id.
    pub async fn card(&self, customer: &str, number: &str) -> String {
        let body = json!({ "type": "CARD", "details": {
            "cardNumber": number, "expiryMonth": 12, "expiryYear": 2040, "cardholderName": "Jane Doe" } });
        let reply =
            self.app.post(&format!("/v1/customer-vault/{customer}/financial-instruments"), &self.token, &body).await;
        reply.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string()
    }

    /// Creates order `order_ref` with one READY DEBIT instruction `I1` of `amount` EUR
    /// paid with a new card `number`; returns the instrument id.
    pub async fn order(&self, order_ref: &str, number: &str, amount: &str) -> String {
        let fi = self.card("C1", number).await;
        let order = json!({ "orderRef": order_ref, "instructions": [{
            "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "financialInstrumentId": fi,
            "schemeId": self.scheme, "amount": amount, "currency": "EUR", "country": "DE" }] });
        self.app.post("/v1/order-management", &self.token, &order).await.assert_status(202);
        fi
    }

    /// `POST …/instruction/I1/execute`.
    pub async fn execute(&self, order_ref: &str) -> Reply {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/execute");
        self.app.post(&path, &self.token, &json!({})).await
    }

    /// An order whose instruction `I1` has been executed and settled.
    pub async fn settled(&self, order_ref: &str, number: &str, amount: &str) -> String {
        let fi = self.order(order_ref, number, amount).await;
        let reply = self.execute(order_ref).await;
        assert_eq!(reply.assert_status(200)["status"], "SETTLED", "{}", reply.text);
        fi
    }
}

/// A Python program the tests run (a fake PSP, an independent verifier): the one on
/// `PATH` if there is one, else installed once with pip into a virtual environment
/// under the target directory, so `cargo test` needs no set-up beyond `python3`.
#[allow(dead_code)]
pub fn python_program(package: &str, program: &str) -> std::path::PathBuf {
    if let Ok(path) = which(program) {
        return path;
    }
    let venv = python_venv(&[package]);
    venv.join("bin").join(program)
}

/// The Python interpreter of the tests' virtual environment, with `packages` installed.
#[allow(dead_code)]
pub fn python_venv(packages: &[&str]) -> std::path::PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-test-tools");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let status = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
        assert!(status.is_ok_and(|s| s.success()), "python3 -m venv {} failed; the tests need python3", venv.display());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !std::process::Command::new(&python)
                .args(["-m", "pip", "show", "-q", p])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        let status =
            std::process::Command::new(&python).args(["-m", "pip", "install", "--quiet"]).args(&missing).status();
        assert!(status.is_ok_and(|s| s.success()), "pip install {missing:?} failed");
    }
    venv
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).ok_or(())
}

/// What one test's nodes log, captured while it lives, as JSON lines with the current
/// span, at every level. One subscriber serves the whole binary (installed on first
/// use): it writes an event only into the capture of the thread that logs it, and
/// drops events of threads without one. The tests' runtime runs on one thread and the
/// nodes a test starts run there, so tests side by side never see each other's lines.
/// (`BATON_TEST_LOG` installs a subscriber of its own: captures then fail loudly.)
pub struct LogCapture {
    buffer: Arc<std::sync::Mutex<Vec<u8>>>,
}

thread_local! {
    static THREAD_CAPTURE: std::cell::RefCell<Option<Arc<std::sync::Mutex<Vec<u8>>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Writes into the logging thread's capture, if it has one.
struct ThreadCapture;

impl std::io::Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        THREAD_CAPTURE.with(|c| {
            if let Some(buffer) = c.borrow().as_ref() {
                buffer.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub fn start() -> Self {
        assert!(Self::install(), "log capture needs the binary's first subscriber (unset BATON_TEST_LOG)");
        let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
        THREAD_CAPTURE.with(|c| *c.borrow_mut() = Some(buffer.clone()));
        Self { buffer }
    }

    /// Installs the binary's subscriber, once; whether it is the one in force. Every
    /// node start calls it first, so one subscriber is in force from the first line on.
    fn install() -> bool {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *INSTALLED.get_or_init(|| {
            // Judged per event (not per callsite, which would cache one thread's answer).
            let capturing =
                tracing_subscriber::filter::dynamic_filter_fn(|_, _| THREAD_CAPTURE.with(|c| c.borrow().is_some()));
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_ansi(false)
                .with_writer(|| ThreadCapture)
                .with_filter(capturing);
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).is_ok()
        })
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        THREAD_CAPTURE.with(|c| c.borrow_mut().take());
    }
}
