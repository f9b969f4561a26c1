//! `baton-bench`: a closed-loop HTTP load generator for Baton's API.
//!
//! Each scenario runs `--concurrency` workers. A worker owns one keep-alive
//! connection and sends requests back to back: first for `--warmup` seconds
//! (not recorded), then for `--duration` seconds. A request counts when it
//! completes inside the measured window; any transport error or non-2xx status is
//! a failure and is reported as such. Requests go to loopback addresses only.
//!
//! Scenarios:
//! - `healthz`: `GET /healthz` (no authentication, no database);
//! - `account`: `GET /v1/account` with `Authorization: Bearer <token>`, the token
//!   issued once before the run;
//! - `token`: `POST /identity/v1/hmac/management`, each request freshly HMAC-signed
//!   (SPEC §2) with a unique nonce and the current epoch;
//! - `options`: collect scheme options of a published three-rule scheme;
//! - `orders`: `POST /v1/order-management`, each a new order (unique `orderRef`) with one
//!   customer default and 12 monthly DEBIT instructions;
//! - `instrument-store`: `POST /v1/customer-vault/{customerRef}/financial-instruments`
//!   (a bank account), one customer per worker;
//! - `instrument-read`: `GET …/financial-instruments/{id}` of an instrument stored in setup;
//! - `checkout-page`: `GET /checkout/session/{id}`, the hosted checkout's payment page of a
//!   session opened in setup for an unpaid instruction.
//!
//! The scenarios that need a tenant set one up first, through the API.
//!
//! With `--server-pid` it also samples CPU time from Linux's `/proc` over the
//! measured window: the whole machine, the server process and this generator,
//! which shares the machine with the server.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Method, Url};
use serde_json::{json, Value};

/// Slowest acceptable single request; slower ones fail.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct failure descriptions kept per worker (the counts stay exact).
const MAX_FAILURE_KINDS: usize = 16;
/// Linux's USER_HZ, the unit of CPU times in `/proc` (100 on every mainstream architecture).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Healthz,
    Account,
    Token,
    /// GET /v1/schemes/collect/{id}/options of a published three-rule scheme (set up through the API)
    Options,
    /// POST /v1/order-management: a new order with one customer default and 12 monthly DEBIT instructions
    Orders,
    /// POST /v1/customer-vault/{customerRef}/financial-instruments (a bank account), one customer per worker
    InstrumentStore,
    /// GET /v1/customer-vault/{customerRef}/financial-instruments/{id} of an instrument stored in setup
    InstrumentRead,
    /// A collection end to end: POST /v1/order-management (one DEBIT instruction paid with a
    /// stored card) then POST …/execute through SANDBOX_CARD (needs a server accepting raw
    /// card data for the set-up). The rate counts collections; latencies are the execute
    /// request alone (Baton's overhead per execution, the sandbox PSP answering at once)
    Collect,
    /// GET /checkout/session/{id}: the hosted checkout's payment page of an open session (an
    /// unpaid instruction under the collect scheme), rendered from the session, the
    /// instruction, the scheme's offer and the tenant's theme; no token, no write
    CheckoutPage,
    /// healthz, account, options, orders, instrument-store, instrument-read and token, in that order
    All,
}

#[derive(Debug, Parser)]
#[command(name = "baton-bench", version, about = "Closed-loop load generator for Baton's HTTP API (loopback only)")]
struct Args {
    /// Base URL of the Baton server; must be a loopback address
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: Url,
    /// Public key of an account API key (for the account and token scenarios)
    #[arg(long, env = "BATON_BENCH_PUBLIC_KEY")]
    public_key: Option<String>,
    /// Private key (base64) of that API key
    #[arg(long, env = "BATON_BENCH_PRIVATE_KEY", hide_env_values = true)]
    private_key: Option<String>,
    /// Concurrent workers, each with its own keep-alive connection
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Measured seconds per scenario
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unrecorded seconds before each scenario's measurement
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// What to measure
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Worker threads of the generator's runtime [default: number of CPUs]
    #[arg(long)]
    threads: Option<usize>,
    /// Process id of the server: report its CPU use over each measured window
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, threads)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failures) => {
            eprintln!("WARNING: {failures} request(s) failed; the figures above are not a clean run");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen scenarios and prints the report; returns the number of failed requests.
async fn run(args: Args, threads: usize) -> anyhow::Result<u64> {
    check_loopback(&args.base_url)?;
    let valid = |secs: f64, min: f64| secs.is_finite() && secs >= min;
    if !valid(args.duration, 0.001) || !valid(args.warmup, 0.0) {
        bail!("--duration must be positive and --warmup not negative");
    }
    let scenarios = match args.scenario {
        Scenario::All => vec![
            Scenario::Healthz,
            Scenario::Account,
            Scenario::Options,
            Scenario::Orders,
            Scenario::InstrumentStore,
            Scenario::InstrumentRead,
            Scenario::Token,
        ],
        one => vec![one],
    };
    let mut reports = Vec::new();
    for scenario in scenarios {
        let load = Arc::new(prepare(scenario, &args).await?);
        let report = measure(&load, &args).await?;
        eprintln!("{}", report.summary_line());
        reports.push(report);
    }
    let failures = reports.iter().map(|r| r.failures).sum();
    if args.json {
        let out = json!({
            "tool": "baton-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "baseUrl": args.base_url.as_str(),
            "concurrency": args.concurrency,
            "durationSecs": args.duration,
            "warmupSecs": args.warmup,
            "generatorThreads": threads,
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "failures": failures,
            "scenarios": reports.iter().map(Report::to_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&reports, &args, threads);
    }
    Ok(failures)
}

fn check_loopback(url: &Url) -> anyhow::Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--base-url must be an http:// or https:// URL");
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("--base-url must point at a loopback address (127.0.0.0/8, ::1 or localhost)");
    }
    Ok(())
}

/// One scenario, ready to send.
struct Load {
    name: &'static str,
    method: Method,
    /// For the report; `{worker}` where the path differs per worker.
    path: String,
    /// One URL, or one per worker (`urls[worker % len]`).
    urls: Vec<Url>,
    kind: LoadKind,
    body: Option<BodyTemplate>,
    /// A second request made after the first succeeds, to this path with the same
    /// per-request reference in place of the placeholder; its latency is recorded.
    then: Option<BodyTemplate>,
}

impl Load {
    fn url(&self, worker: u32) -> &Url {
        &self.urls[worker as usize % self.urls.len()]
    }
}

/// A JSON body serialised once, split where a per-request reference goes: a request's
/// body is the parts joined by `{run prefix}-{worker}-{sequence}`, which is valid in
/// any Baton ref (letters, digits, `.` `_` `:` `-`) and needs no JSON escaping.
struct BodyTemplate {
    parts: Vec<String>,
    prefix: String,
    len: usize,
}

impl BodyTemplate {
    /// Stands for the per-request reference inside a template's strings.
    const PLACEHOLDER: &'static str = "@@REF@@";

    fn new(body: &Value) -> anyhow::Result<Self> {
        let text = serde_json::to_string(body)?;
        let parts: Vec<String> = text.split(Self::PLACEHOLDER).map(str::to_string).collect();
        let len = parts.iter().map(String::len).sum();
        Ok(Self { parts, prefix: uuid::Uuid::new_v4().simple().to_string()[..10].to_string(), len })
    }

    fn render(&self, worker: u32, sequence: u64) -> String {
        let reference = format!("{}-{worker}-{sequence}", self.prefix);
        let mut out = String::with_capacity(self.len + (self.parts.len() - 1) * reference.len());
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push_str(&reference);
            }
            out.push_str(part);
        }
        out
    }
}

enum LoadKind {
    Plain,
    Bearer(HeaderValue),
    Hmac(Arc<Credentials>),
}

struct Credentials {
    public_key: String,
    private_key: String,
    /// Random per run, so nonces never repeat across runs against one database.
    nonce_prefix: String,
}

impl Credentials {
    fn from_args(args: &Args) -> anyhow::Result<Self> {
        let (Some(public_key), Some(private_key)) = (&args.public_key, &args.private_key) else {
            bail!("this scenario needs --public-key and --private-key (an account API key)");
        };
        Ok(Self {
            public_key: public_key.trim().to_string(),
            private_key: private_key.trim().to_string(),
            nonce_prefix: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// A fresh `Authorization: Hmac …` value for an empty body.
    fn sign(&self, worker: u32, sequence: u64) -> anyhow::Result<HeaderValue> {
        let nonce = format!("{}-{worker}-{sequence}", self.nonce_prefix);
        let epoch = SystemTime::now().duration_since(UNIX_EPOCH).context("clock before 1970")?.as_secs().to_string();
        let header = baton_domain::hmac_signature::authorization_header(
            &self.public_key,
            &self.private_key,
            &nonce,
            &epoch,
            b"",
        )
        .context("the private key is not base64")?;
        let mut value = HeaderValue::from_str(&header)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

const TOKEN_PATH: &str = "/identity/v1/hmac/management";

fn new_client() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

/// Builds a scenario's requests and checks one of each succeeds before measuring.
async fn prepare(scenario: Scenario, args: &Args) -> anyhow::Result<Load> {
    let client = new_client()?;
    let base = &args.base_url;
    let mut body = None;
    let mut then = None;
    let mut urls = Vec::new();
    let (name, method, path, kind) = match scenario {
        Scenario::Healthz => ("healthz", Method::GET, "/healthz".to_string(), LoadKind::Plain),
        Scenario::Account => {
            let credentials = Credentials::from_args(args)?;
            let token = issue_token(&client, base, &credentials).await?;
            ("account", Method::GET, "/v1/account".to_string(), LoadKind::Bearer(bearer(&token)?))
        }
        Scenario::Options => {
            let tenant = set_up_collect_scheme(&client, base, &Credentials::from_args(args)?).await?;
            let path = format!(
                "/v1/schemes/collect/{}/options?amount=200.00&currency=EUR&country=DE",
                tenant.collect_scheme_id
            );
            ("options", Method::GET, path, LoadKind::Bearer(bearer(&tenant.token)?))
        }
        Scenario::Orders => {
            let tenant = set_up_collect_scheme(&client, base, &Credentials::from_args(args)?).await?;
            body = Some(BodyTemplate::new(&order_body(&tenant.collect_scheme_id))?);
            ("orders", Method::POST, "/v1/order-management".to_string(), LoadKind::Bearer(bearer(&tenant.token)?))
        }
        Scenario::InstrumentStore => {
            let token = set_up_tenant(&client, base, &Credentials::from_args(args)?).await?;
            let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
            for worker in 0..args.concurrency {
                urls.push(base.join(&format!("/v1/customer-vault/bench-{run}-{worker}/financial-instruments"))?);
            }
            body = Some(BodyTemplate::new(&bank_account())?);
            let path = format!("/v1/customer-vault/bench-{run}-{{worker}}/financial-instruments");
            ("instrument-store", Method::POST, path, LoadKind::Bearer(bearer(&token)?))
        }
        Scenario::InstrumentRead => {
            let token = set_up_tenant(&client, base, &Credentials::from_args(args)?).await?;
            let customer = "bench-reader";
            let stored = post_json(
                &client,
                base.join(&format!("/v1/customer-vault/{customer}/financial-instruments"))?,
                &token,
                &bank_account(),
            )
            .await?;
            let id = stored["financialInstrumentId"].as_str().context("financial instrument id")?;
            let path = format!("/v1/customer-vault/{customer}/financial-instruments/{id}");
            ("instrument-read", Method::GET, path, LoadKind::Bearer(bearer(&token)?))
        }
        Scenario::Token => {
            ("token", Method::POST, TOKEN_PATH.to_string(), LoadKind::Hmac(Arc::new(Credentials::from_args(args)?)))
        }
        Scenario::Collect => {
            let tenant = set_up_collect_scheme(&client, base, &Credentials::from_args(args)?).await?;
            let card = json!({ "type": "CARD", "details": {
                "cardNumber": "4242424242424242", "expiryMonth": 12, "expiryYear": 2040, "cardholderName": "Bench" } });
            let url = base.join("/v1/customer-vault/bench-customer/financial-instruments")?;
            let stored = post_json(&client, url, &tenant.token, &card)
                .await
                .context("storing the card (start the server with BATON_VAULT_ACCEPT_RAW_CARD_DATA=true)")?;
            let fi = stored["financialInstrumentId"].as_str().context("financial instrument id")?;
            body = Some(BodyTemplate::new(&collection_body(&tenant.collect_scheme_id, fi))?);
            let execute = format!("/v1/order-management/{}/instruction/i1/execute", BodyTemplate::PLACEHOLDER);
            let mut execute = BodyTemplate::new(&Value::String(execute))?;
            // The same reference as the order's: the path names the order just created.
            execute.prefix = body.as_ref().map(|b: &BodyTemplate| b.prefix.clone()).unwrap_or_default();
            then = Some(execute);
            ("collect", Method::POST, "/v1/order-management".to_string(), LoadKind::Bearer(bearer(&tenant.token)?))
        }
        Scenario::CheckoutPage => {
            let tenant = set_up_collect_scheme(&client, base, &Credentials::from_args(args)?).await?;
            let order = json!({ "orderRef": "bench-checkout", "instructions": [{
                "instructionRef": "i1", "customerRef": "bench-customer", "direction": "DEBIT",
                "amount": "49.90", "currency": "EUR", "country": "DE", "schemeId": tenant.collect_scheme_id }] });
            post_json(&client, base.join("/v1/order-management")?, &tenant.token, &order).await?;
            let grant = json!({ "orderRef": "bench-checkout", "instructionRef": "i1", "expirySeconds": "3600" });
            let grant = post_json(&client, base.join("/v1/whitelabel-customer/grants")?, &tenant.token, &grant).await?;
            let token = grant["accessToken"].as_str().context("checkout access token")?;
            // Opening the token answers 303 to the session's page (followed here by hand).
            let no_redirects = Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build()?;
            let opened = no_redirects.get(base.join(&format!("/checkout?bearerToken={token}"))?).send().await?;
            let session = opened
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .context("opening the checkout token gave no session page")?
                .to_string();
            ("checkout-page", Method::GET, session, LoadKind::Plain)
        }
        Scenario::All => unreachable!("expanded by the caller"),
    };
    if urls.is_empty() {
        urls.push(base.join(&path)?);
    }
    let load = Load { name, method, path, urls, kind, body, then };
    match send(&client, &load, u32::MAX, 0).await {
        Outcome::Ok(_) => Ok(load),
        Outcome::Failed(why) => bail!("{name}: the first request failed: {why}"),
    }
}

fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// POSTs JSON with a bearer token and returns the JSON answer, failing on any non-2xx.
async fn post_json(client: &Client, url: Url, token: &str, body: &Value) -> anyhow::Result<Value> {
    let response = client.post(url.clone()).header(AUTHORIZATION, bearer(token)?).json(body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("POST {} answered {status}: {}", url.path(), truncate(&text, 300));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A tenant set up through the API, with a published collect scheme.
struct BenchTenant {
    /// Access token of a `tenant-admin` key.
    token: String,
    collect_scheme_id: String,
}

/// Through the API, as an operator would: a new tenant and a `tenant-admin` key of it.
/// Returns an access token of that key.
async fn set_up_tenant(client: &Client, base: &Url, account: &Credentials) -> anyhow::Result<String> {
    let account_token = issue_token(client, base, account).await?;
    let name = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let tenant = post_json(client, base.join("/v1/account/tenants")?, &account_token, &json!({ "name": name })).await?;
    let tenant_id = tenant["tenantId"].as_str().context("tenant id")?;
    let key_url = base.join(&format!("/v1/tenant/{tenant_id}/keys"))?;
    let key = post_json(client, key_url, &account_token, &json!({ "roles": ["tenant-admin"] })).await?;
    let tenant_key = Credentials {
        public_key: key["publicKey"].as_str().context("public key")?.to_string(),
        private_key: key["privateKey"].as_str().context("private key")?.to_string(),
        nonce_prefix: uuid::Uuid::new_v4().simple().to_string(),
    };
    issue_token(client, base, &tenant_key).await
}

/// A new tenant (see [`set_up_tenant`]) with the sandbox card app installed and a
/// published collect scheme with SPEC §4.6's three example rules.
async fn set_up_collect_scheme(client: &Client, base: &Url, account: &Credentials) -> anyhow::Result<BenchTenant> {
    let token = set_up_tenant(client, base, account).await?;
    post_json(client, base.join("/v1/marketplace/apps/SANDBOX_CARD/install")?, &token, &json!({})).await?;
    let cards = ["VISA", "MASTERCARD", "DISCOVER", "MAESTRO", "AMERICAN-EXPRESS"];
    let rules = json!([
        { "currencies": ["EUR"], "lowValueInclusive": 1, "highValueInclusive": 100,
          "apps": [{ "appId": "SANDBOX_CARD", "excludedPaymentMethods": ["PAYPAL"] }] },
        { "currencies": ["EUR"], "countries": ["DE", "FR"], "lowValueInclusive": 101,
          "apps": [{ "appId": "SANDBOX_CARD" }] },
        { "currencies": ["EUR"], "apps": [{ "appId": "SANDBOX_CARD", "excludedPaymentMethods": cards }] },
    ]);
    let scheme =
        post_json(client, base.join("/v1/schemes/collect")?, &token, &json!({ "name": "bench", "rules": rules }))
            .await?;
    let scheme_id = scheme["schemeId"].as_str().context("scheme id")?;
    let draft_id = scheme["drafts"][0]["draftId"].as_str().context("draft id")?;
    let publish = base.join(&format!("/v1/schemes/collect/{scheme_id}/drafts/{draft_id}/publish"))?;
    post_json(client, publish, &token, &json!({})).await?;
    Ok(BenchTenant { collect_scheme_id: scheme_id.to_string(), token })
}

/// An order of a yearly premium schedule: one customer with the collect scheme as their
/// default, and 12 DEBIT instructions of 49.90 EUR settled by the 1st of each month of
/// 2027. `orderRef` and the instruction refs carry the per-request reference.
fn order_body(collect_scheme_id: &str) -> Value {
    let customer = "bench-customer";
    let placeholder = BodyTemplate::PLACEHOLDER;
    let instructions: Vec<Value> = (1..=12)
        .map(|month| {
            json!({
                "instructionRef": format!("{placeholder}-m{month:02}"),
                "customerRef": customer,
                "direction": "DEBIT",
                "amount": "49.90",
                "currency": "EUR",
                "country": "DE",
                "settledByDate": format!("2027-{month:02}-01"),
            })
        })
        .collect();
    json!({
        "orderRef": placeholder,
        "customerDefaults": { customer: { "schemeId": collect_scheme_id } },
        "instructions": instructions,
    })
}

/// An order with one DEBIT instruction `i1` of 49.90 EUR paid with the stored card `fi`
/// under the collect scheme; `orderRef` is the per-request reference.
fn collection_body(collect_scheme_id: &str, fi: &str) -> Value {
    json!({
        "orderRef": BodyTemplate::PLACEHOLDER,
        "instructions": [{
            "instructionRef": "i1", "customerRef": "bench-customer", "direction": "DEBIT",
            "amount": "49.90", "currency": "EUR", "country": "DE",
            "schemeId": collect_scheme_id, "financialInstrumentId": fi,
        }],
    })
}

/// A bank account (raw card data is refused by default).
fn bank_account() -> Value {
    json!({
        "type": "BANK_ACCOUNT",
        "details": { "accountHolderName": "Erika Mustermann", "iban": "DE89370400440532013000" },
    })
}

async fn issue_token(client: &Client, base: &Url, credentials: &Credentials) -> anyhow::Result<String> {
    let response = client
        .post(base.join(TOKEN_PATH)?)
        .header(AUTHORIZATION, credentials.sign(u32::MAX, u64::MAX)?)
        .send()
        .await
        .context("requesting an access token")?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("token request answered {status}: {}", truncate(&body, 300));
    }
    let parsed: Value = serde_json::from_str(&body).context("token response is not JSON")?;
    parsed["accessToken"].as_str().map(str::to_string).context("token response has no accessToken")
}

enum Outcome {
    /// With the latency of the follow-up request, when the load has one.
    Ok(Option<Duration>),
    Failed(String),
}

/// Sends one request (and its follow-up, if the load has one) and reads the whole
/// response (so the connection is reused).
async fn send(client: &Client, load: &Load, worker: u32, sequence: u64) -> Outcome {
    let first = send_one(client, load, load.method.clone(), load.url(worker).clone(), worker, sequence, true).await;
    let (Outcome::Ok(_), Some(then)) = (&first, &load.then) else { return first };
    let path: String = serde_json::from_str(&then.render(worker, sequence)).unwrap_or_default();
    let Ok(url) = load.url(worker).join(&path) else { return Outcome::Failed(format!("bad follow-up path {path}")) };
    let started = Instant::now();
    match send_one(client, load, Method::POST, url, worker, sequence, false).await {
        Outcome::Ok(_) => Outcome::Ok(Some(started.elapsed())),
        failed => failed,
    }
}

async fn send_one(
    client: &Client,
    load: &Load,
    method: Method,
    url: Url,
    worker: u32,
    sequence: u64,
    with_body: bool,
) -> Outcome {
    let mut request = client.request(method, url);
    match &load.body {
        Some(template) if with_body => {
            request = request.header(CONTENT_TYPE, "application/json").body(template.render(worker, sequence));
        }
        _ if !with_body => request = request.header(CONTENT_TYPE, "application/json").body("{}"),
        _ => {}
    }
    match &load.kind {
        LoadKind::Plain => {}
        LoadKind::Bearer(value) => request = request.header(AUTHORIZATION, value.clone()),
        LoadKind::Hmac(credentials) => match credentials.sign(worker, sequence) {
            Ok(value) => request = request.header(AUTHORIZATION, value),
            Err(e) => return Outcome::Failed(format!("signing: {e:#}")),
        },
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("transport: {}", error_chain(&e))),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("reading body: {}", error_chain(&e))),
    };
    if status.is_success() {
        Outcome::Ok(None)
    } else {
        // Name the error code of Baton's envelope when there is one.
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["errorCode"].as_str().map(str::to_string))
            .unwrap_or_else(|| truncate(&String::from_utf8_lossy(&body), 120));
        Outcome::Failed(format!("HTTP {} {code}", status.as_u16()))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[derive(Default)]
struct WorkerStats {
    /// Latency of each successful request in the window, microseconds.
    latencies_us: Vec<u32>,
    failures: u64,
    failure_kinds: BTreeMap<String, u64>,
}

impl WorkerStats {
    fn fail(&mut self, why: String) {
        self.failures += 1;
        if self.failure_kinds.len() < MAX_FAILURE_KINDS || self.failure_kinds.contains_key(&why) {
            *self.failure_kinds.entry(why).or_default() += 1;
        } else {
            *self.failure_kinds.entry("(other)".into()).or_default() += 1;
        }
    }
}

/// One worker: requests back to back on its own connection until `end`.
async fn worker(load: Arc<Load>, client: Client, id: u32, start: Instant, end: Instant) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut sequence = 0u64;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        sequence += 1;
        let outcome = send(&client, &load, id, sequence).await;
        let done = Instant::now();
        // Only requests completing inside the window count (warm-up and stragglers do not).
        if done < start || done >= end {
            if let Outcome::Failed(_) = outcome {
                // Do not spin on a refused connection.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            continue;
        }
        match outcome {
            Outcome::Ok(follow_up) => {
                let us = follow_up.unwrap_or(done - sent).as_micros();
                stats.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Outcome::Failed(why) => {
                stats.fail(why);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stats
}

/// CPU-time counters from `/proc`, in seconds.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    /// All CPUs: (busy, total) jiffies converted to seconds.
    machine_busy: f64,
    machine_total: f64,
    generator: f64,
    server: Option<f64>,
}

fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SEC)
}

fn machine_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let v: Vec<f64> = line.split_whitespace().take(8).map(|f| f.parse().unwrap_or(0.0)).collect();
    if v.len() < 8 {
        return None;
    }
    let total: f64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some(((total - idle) / CLOCK_TICKS_PER_SEC, total / CLOCK_TICKS_PER_SEC))
}

fn sample_cpu(server_pid: Option<u32>) -> Option<CpuSample> {
    let (machine_busy, machine_total) = machine_cpu_seconds()?;
    Some(CpuSample {
        machine_busy,
        machine_total,
        generator: process_cpu_seconds("self")?,
        server: server_pid.and_then(|p| process_cpu_seconds(&p.to_string())),
    })
}

/// CPU use over the measured window, in percent of one core.
#[derive(Debug, Clone, Copy)]
struct CpuUse {
    machine_busy_pct: f64,
    machine_cores: f64,
    generator_pct: f64,
    server_pct: Option<f64>,
    /// Everything else on the machine (the database server, the kernel's softirq work, other programs).
    other_pct: Option<f64>,
    server_us_per_request: Option<f64>,
}

struct Report {
    name: &'static str,
    method: Method,
    path: String,
    concurrency: u32,
    window_secs: f64,
    /// Sorted latencies of successful requests, microseconds.
    latencies_us: Vec<u32>,
    failures: u64,
    failure_kinds: BTreeMap<String, u64>,
    cpu: Option<CpuUse>,
}

async fn measure(load: &Arc<Load>, args: &Args) -> anyhow::Result<Report> {
    let clients = (0..args.concurrency).map(|_| new_client()).collect::<anyhow::Result<Vec<_>>>()?;
    let begin = Instant::now();
    let start = begin + Duration::from_secs_f64(args.warmup);
    let end = start + Duration::from_secs_f64(args.duration);
    let handles: Vec<_> = (0..args.concurrency)
        .zip(clients)
        .map(|(id, c)| tokio::spawn(worker(load.clone(), c, id, start, end)))
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let before = sample_cpu(args.server_pid);
    let measured_from = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let after = sample_cpu(args.server_pid);
    let measured_secs = measured_from.elapsed().as_secs_f64();

    let mut latencies_us = Vec::new();
    let mut failures = 0;
    let mut failure_kinds = BTreeMap::new();
    for handle in handles {
        match handle.await {
            Ok(stats) => {
                latencies_us.extend_from_slice(&stats.latencies_us);
                failures += stats.failures;
                for (kind, n) in stats.failure_kinds {
                    *failure_kinds.entry(kind).or_default() += n;
                }
            }
            Err(e) => {
                failures += 1;
                *failure_kinds.entry(format!("worker crashed: {e}")).or_default() += 1;
            }
        }
    }
    latencies_us.sort_unstable();
    let window_secs = args.duration;
    let successes = latencies_us.len() as f64;
    let cpu = match (before, after) {
        (Some(b), Some(a)) if measured_secs > 0.0 => {
            let server = match (b.server, a.server) {
                (Some(x), Some(y)) => Some(y - x),
                _ => None,
            };
            let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
            let total = a.machine_total - b.machine_total;
            let machine_busy_pct =
                if total > 0.0 { 100.0 * cores * (a.machine_busy - b.machine_busy) / total } else { 0.0 };
            let generator_pct = 100.0 * (a.generator - b.generator) / measured_secs;
            let server_pct = server.map(|s| 100.0 * s / measured_secs);
            Some(CpuUse {
                machine_busy_pct,
                machine_cores: cores,
                generator_pct,
                server_pct,
                other_pct: server_pct.map(|s| (machine_busy_pct - s - generator_pct).max(0.0)),
                server_us_per_request: server.filter(|_| successes > 0.0).map(|s| 1e6 * s / successes),
            })
        }
        _ => None,
    };
    Ok(Report {
        name: load.name,
        method: load.method.clone(),
        path: load.path.clone(),
        concurrency: args.concurrency,
        window_secs,
        latencies_us,
        failures,
        failure_kinds,
        cpu,
    })
}

impl Report {
    fn successes(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    fn rate(&self) -> f64 {
        self.successes() as f64 / self.window_secs
    }

    /// Nearest-rank percentile, in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies_us.len() as f64).ceil() as usize;
        f64::from(self.latencies_us[rank.clamp(1, self.latencies_us.len()) - 1]) / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latencies_us.last().map_or(0.0, |&us| f64::from(us) / 1000.0)
    }

    fn mean_ms(&self) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.iter().map(|&us| u64::from(us)).sum::<u64>() as f64 / self.latencies_us.len() as f64 / 1000.0
    }

    fn summary_line(&self) -> String {
        format!(
            "{}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} failed",
            self.name,
            self.rate(),
            self.percentile_ms(50.0),
            self.percentile_ms(99.0),
            self.failures
        )
    }

    fn to_json(&self) -> Value {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let cpu = self.cpu.map(|c| {
            json!({
                "cores": c.machine_cores,
                "machineBusyPct": round(c.machine_busy_pct),
                "generatorPct": round(c.generator_pct),
                "serverPct": c.server_pct.map(round),
                "otherPct": c.other_pct.map(round),
                "serverMicrosPerRequest": c.server_us_per_request.map(round),
            })
        });
        json!({
            "scenario": self.name,
            "method": self.method.as_str(),
            "path": self.path,
            "concurrency": self.concurrency,
            "windowSecs": self.window_secs,
            "successes": self.successes(),
            "failures": self.failures,
            "failureKinds": self.failure_kinds,
            "ratePerSec": round(self.rate()),
            "latencyMs": {
                "p50": self.percentile_ms(50.0),
                "p90": self.percentile_ms(90.0),
                "p99": self.percentile_ms(99.0),
                "p999": self.percentile_ms(99.9),
                "max": self.max_ms(),
                "mean": round(self.mean_ms()),
            },
            "cpu": cpu,
        })
    }
}

fn print_table(reports: &[Report], args: &Args, threads: usize) {
    println!(
        "baton-bench {} against {}: {} connections, {} s measured after {} s warm-up, {} generator threads",
        env!("CARGO_PKG_VERSION"),
        args.base_url,
        args.concurrency,
        args.duration,
        args.warmup,
        threads
    );
    println!(
        "{:<16} {:<36} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "scenario",
        "request",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "ok",
        "failed",
        "cpu all",
        "server",
        "bench",
        "other",
        "srv us/rq"
    );
    for r in reports {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0}%"));
        println!(
            "{:<8} {:<36} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9}",
            r.name,
            format!("{} {}", r.method, r.path),
            r.rate(),
            r.percentile_ms(50.0),
            r.percentile_ms(90.0),
            r.percentile_ms(99.0),
            r.max_ms(),
            r.successes(),
            r.failures,
            pct(r.cpu.map(|c| c.machine_busy_pct)),
            pct(r.cpu.and_then(|c| c.server_pct)),
            pct(r.cpu.map(|c| c.generator_pct)),
            pct(r.cpu.and_then(|c| c.other_pct)),
            r.cpu.and_then(|c| c.server_us_per_request).map_or("-".to_string(), |x| format!("{x:.0}")),
        );
    }
    if let Some(c) = reports.iter().find_map(|r| r.cpu) {
        println!("cpu columns: percent of one core over the measured window, {} cores in all", c.machine_cores);
    }
    for r in reports.iter().filter(|r| r.failures > 0) {
        println!("FAILURES in {} ({} requests):", r.name, r.failures);
        for (kind, n) in &r.failure_kinds {
            println!("  {n:>8}  {kind}");
        }
        if r.failure_kinds.keys().any(|k| k.starts_with("HTTP 429")) {
            println!("  (429: per-key rate limiting is on; start the server with BATON_RATE_LIMIT_PER_SECOND=0)");
        }
    }
}
