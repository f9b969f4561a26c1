//! A real crash: `baton serve` is killed with SIGKILL in the middle of a run of card
//! collections (each an order and its execution, both sent with an `Idempotency-Key`),
//! and started again on the same address 1.2 s later. Afterwards:
//!
//! - every idempotent request the crash interrupted is answered (2xx, replayed or run
//!   once) within [`deadline`] of the restart, retried with the same key;
//! - every instruction that existed at the crash has its `instruction.settled` delivered
//!   within the deadline, and every instruction's events arrive in order;
//! - every instruction was charged exactly once (one attempt, settled).
//!
//! PostgreSQL when `BATON_TEST_DATABASE_URL` is set, else SQLite (one node either way).
//! `BATON_CRASH_DEADLINE_SECS` widens the deadline (to measure a slower recovery); the
//! measured times are printed (`--nocapture`).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_store::testing::PgTestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_baton");
const COLLECTIONS: usize = 300;
const CLIENTS: usize = 8;
/// The process is killed once this many collections are done.
const KILL_AFTER: usize = COLLECTIONS / 2;
/// How long the process stays dead (as a supervisor would restart it).
const DOWN_FOR: Duration = Duration::from_millis(1200);
/// How long the webhook receiver takes to answer, so deliveries are in flight at the kill.
const RECEIVER_DELAY: Duration = Duration::from_millis(100);
/// How long the whole run may take at most, whatever happens.
const RUN_LIMIT: Duration = Duration::from_secs(120);
const VISA: &str = "4242424242424242";

/// How soon after the restart everything the crash interrupted must be recovered.
fn deadline() -> Duration {
    let secs = std::env::var("BATON_CRASH_DEADLINE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    Duration::from_secs(secs)
}

// -- the process ---------------------------------------------------------------------------------

/// Where the node keeps its data.
struct Deployment {
    dir: tempfile::TempDir,
    master_key: String,
    /// `None`: SQLite in `dir`.
    postgres: Option<PgTestDatabase>,
}

impl Deployment {
    async fn new() -> Self {
        let (_, master_key) = baton_vault::MasterKey::generate();
        Self { dir: tempfile::tempdir().unwrap(), master_key, postgres: PgTestDatabase::create().await }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--data-dir", self.dir.path().join("data").to_str().unwrap()])
            .env_remove("DATABASE_URL")
            .env("BATON_MASTER_KEY", &self.master_key)
            .env("BATON_LOG_FORMAT", "json")
            .env("BATON_LOG", "info");
        if let Some(db) = &self.postgres {
            command.env("DATABASE_URL", &db.url);
        }
        command
    }

    /// `baton init --demo --json`: the demo tenant's keys and collect scheme.
    fn init_demo(&self) -> Value {
        let out = self.command(&["init", "--demo", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["tenant"].clone()
    }

    /// Starts `baton serve` on `listen` and waits until it says it listens.
    async fn serve(&self, listen: &str) -> Node {
        let mut child = self
            .command(&["serve", "--listen", listen])
            .env("BATON_VAULT_ACCEPT_RAW_CARD_DATA", "true")
            .env("BATON_RATE_LIMIT_PER_SECOND", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (listening, addr) = tokio::sync::oneshot::channel();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = log.clone();
        // Reads the log to its end (the process never blocks on a full pipe), keeping its tail.
        std::thread::spawn(move || {
            let mut listening = Some(listening);
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "baton is listening" {
                        if let Some(tx) = listening.take() {
                            let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                        }
                    }
                }
                let mut kept = kept.lock().unwrap();
                kept.push_back(line);
                if kept.len() > 200 {
                    kept.pop_front();
                }
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(60), addr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("baton serve did not start: {:?}", log.lock().unwrap()));
        Node { child, addr, log }
    }
}

/// A running `baton serve`.
struct Node {
    child: Child,
    addr: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Node {
    /// `kill -9`: no shutdown, no flushing, connections cut.
    fn kill9(&mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-9", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{status:?}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// -- the database, read directly ------------------------------------------------------------------

/// Runs a query returning rows of two texts, on whichever backend the deployment uses.
async fn rows(deployment: &Deployment, sql: &str) -> Vec<(String, String)> {
    use sqlx::Connection;
    match &deployment.postgres {
        Some(db) => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query_as::<_, (String, String)>(sql).fetch_all(&mut c).await.unwrap();
            c.close().await.unwrap();
            rows
        }
        None => {
            use sqlx::ConnectOptions;
            let path = deployment.dir.path().join("data").join("baton.db");
            let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
            let rows = sqlx::query_as::<_, (String, String)>(sql).fetch_all(&mut c).await.unwrap();
            c.close().await.unwrap();
            rows
        }
    }
}

/// Every instruction's status, by order ref.
async fn instruction_statuses(deployment: &Deployment) -> BTreeMap<String, String> {
    let sql = "SELECT o.order_ref, i.status FROM instructions i JOIN orders o ON o.order_id = i.order_id";
    rows(deployment, sql).await.into_iter().collect()
}

// -- the merchant's webhook endpoint --------------------------------------------------------------

/// One delivery as received.
struct Received {
    at: Instant,
    order_ref: String,
    event_type: String,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = self.received.clone();
        let handler = move |body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let at = Instant::now();
                let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                let order_ref = event["data"]["order"]["orderRef"].as_str().unwrap_or_default().to_string();
                let event_type = event["eventType"].as_str().unwrap_or_default().to_string();
                received.lock().unwrap().push(Received { at, order_ref, event_type });
                tokio::time::sleep(RECEIVER_DELAY).await;
                StatusCode::OK
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/hook")
    }

    /// When each order's `instruction.settled` first arrived.
    fn settled_at(&self) -> BTreeMap<String, Instant> {
        let mut first = BTreeMap::new();
        for r in self.received.lock().unwrap().iter().filter(|r| r.event_type == "instruction.settled") {
            first.entry(r.order_ref.clone()).or_insert(r.at);
        }
        first
    }
}

// -- the merchant's clients -----------------------------------------------------------------------

/// What became of one idempotent request.
#[derive(Debug)]
struct Answered {
    /// `POST {path} (key {key})`.
    request: String,
    /// Tries that failed (connection refused or cut, 5xx, 409 while the key is held).
    failed_tries: usize,
    answered_at: Instant,
    /// The final answer: 2xx, or a refusal (kept, so that the run goes on and is measured).
    status: StatusCode,
    body: String,
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// Posts `body` with `key` until it is answered (retrying as a client following the
    /// usual advice does: same key, short pause, while the node is down, answers 5xx or
    /// says the key is still held).
    async fn post_until_answered(&self, path: &str, key: &str, body: &Value, give_up: Instant) -> Answered {
        let request = format!("POST {path} (key {key})");
        let mut failed_tries = 0;
        loop {
            assert!(Instant::now() < give_up, "{request} still unanswered after {failed_tries} tries");
            let sent = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header("idempotency-key", key)
                .json(body)
                .send()
                .await;
            // An error: the node is down, or died with the request in flight.
            if let Ok(r) = sent {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                let held = status == StatusCode::CONFLICT && body.contains("IDEMPOTENCY_REQUEST_IN_PROGRESS");
                if !status.is_server_error() && !held {
                    return Answered { request, failed_tries, answered_at: Instant::now(), status, body };
                }
            }
            failed_tries += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The two requests of collection `n`, each with its own key.
async fn collect(client: &Client, n: usize, instrument: &str, scheme: &str, give_up: Instant) -> [Answered; 2] {
    let order_ref = format!("crash-{n}");
    let order = json!({ "orderRef": order_ref, "instructions": [{
        "instructionRef": "I1", "customerRef": format!("C{}", n % CLIENTS), "direction": "DEBIT",
        "financialInstrumentId": instrument, "schemeId": scheme,
        "amount": format!("{}.{:02}", 10 + n, n % 100), "currency": "EUR", "country": "DE" }] });
    let created = client.post_until_answered("/v1/order-management", &format!("order-{n}"), &order, give_up).await;
    let path = format!("/v1/order-management/{order_ref}/instruction/I1/execute");
    let executed = client.post_until_answered(&path, &format!("execute-{n}"), &json!({}), give_up).await;
    [created, executed]
}

async fn token(http: &reqwest::Client, base: &str, tenant: &Value) -> String {
    let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let authorization = baton_domain::hmac_signature::authorization_header(
        tenant["publicKey"].as_str().unwrap(),
        tenant["privateKey"].as_str().unwrap(),
        &nonce,
        &epoch,
        b"",
    )
    .unwrap();
    let reply = http.post(format!("{base}/identity/v1/hmac/management")).header("authorization", authorization);
    let body: Value = reply.send().await.unwrap().json().await.unwrap();
    body["accessToken"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_string()
}

async fn created(client: &Client, path: &str, body: &Value, field: &str) -> String {
    let reply = client.http.post(format!("{}{path}", client.base)).bearer_auth(&client.token).json(body);
    let reply = reply.send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED, "{path}");
    let body: Value = reply.json().await.unwrap();
    body[field].as_str().unwrap().to_string()
}

// -- the test --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_recovers_within_seconds_of_its_restart() {
    let started = Instant::now();
    let give_up = started + RUN_LIMIT + deadline();
    let deployment = Deployment::new().await;
    let backend = if deployment.postgres.is_some() { "PostgreSQL" } else { "SQLite" };
    let tenant = deployment.init_demo();
    let scheme = tenant["collectSchemeId"].as_str().unwrap().to_string();
    let mut node = deployment.serve("127.0.0.1:0").await;
    let base = format!("http://{}", node.addr);

    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let client = Client { token: token(&http, &base, &tenant).await, http, base };
    let receiver = Receiver::default();
    let hook = receiver.start().await;
    let events = json!({ "url": hook, "events": ["instruction.processing", "instruction.settled"] });
    created(&client, "/v1/notifications/webhooks", &events, "webhookId").await;
    let mut instruments = Vec::new();
    for c in 0..CLIENTS {
        let card = json!({ "type": "CARD", "details": {
            "cardNumber": VISA, "expiryMonth": 12, "expiryYear": 2040, "cardholderName": "Jane Doe" } });
        let path = format!("/v1/customer-vault/C{c}/financial-instruments");
        instruments.push(created(&client, &path, &card, "financialInstrumentId").await);
    }

    // Eight clients, each collecting its share one after the other.
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for (c, instrument) in instruments.iter().enumerate() {
        let (client, done, instrument, scheme) = (client.clone(), done.clone(), instrument.clone(), scheme.clone());
        clients.spawn(async move {
            let mut answers = Vec::new();
            for n in (c..COLLECTIONS).step_by(CLIENTS) {
                answers.extend(collect(&client, n, &instrument, &scheme, give_up).await);
                done.fetch_add(1, Ordering::SeqCst);
            }
            answers
        });
    }

    // Half-way: kill -9, and start again on the same address.
    while done.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(Instant::now() < give_up, "the run stalled before the crash");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill9();
    let killed = Instant::now();
    let at_kill = instruction_statuses(&deployment).await;
    tokio::time::sleep(DOWN_FOR.saturating_sub(killed.elapsed())).await;
    let addr = node.addr.clone();
    drop(node);
    let restarted = Instant::now();
    let node = deployment.serve(&addr).await;

    let mut answers = Vec::new();
    while let Some(joined) = clients.join_next().await {
        answers.extend(joined.unwrap());
    }
    let interrupted: Vec<&Answered> = answers.iter().filter(|a| a.failed_tries > 0).collect();
    assert!(!interrupted.is_empty(), "the crash interrupted no request");
    let retries_answered = interrupted.iter().map(|a| a.answered_at.saturating_duration_since(restarted)).max();
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| !a.status.is_success())
        .map(|a| format!("{} answered {}: {}", a.request, a.status, a.body))
        .collect();

    // Every instruction settles and is announced; those of the crash within the deadline.
    let settled_at = loop {
        let settled_at = receiver.settled_at();
        if settled_at.len() == COLLECTIONS {
            break settled_at;
        }
        assert!(
            Instant::now() < give_up,
            "{} of {COLLECTIONS} instruction.settled delivered; log: {:?}",
            settled_at.len(),
            node.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let events_delivered = at_kill
        .keys()
        .map(|order_ref| settled_at[order_ref].saturating_duration_since(restarted))
        .max()
        .unwrap_or_default();
    let in_flight: Vec<String> =
        at_kill.iter().filter(|(_, s)| *s != "SETTLED").map(|(r, s)| format!("{r} {s}")).collect();
    eprintln!(
        "{backend}: killed after {KILL_AFTER} collections ({} instructions, {} not settled at the kill: {in_flight:?}); \
         {} requests interrupted, {} answered with a refusal; after the restart, the last interrupted request was \
         answered in {:.1} s and the last instruction.settled of the instructions existing at the kill arrived in \
         {:.1} s",
        at_kill.len(),
        in_flight.len(),
        interrupted.len(),
        refused.len(),
        retries_answered.unwrap_or_default().as_secs_f64(),
        events_delivered.as_secs_f64(),
    );
    assert!(refused.is_empty(), "every idempotent request is answered 2xx: {refused:#?}");
    assert!(retries_answered.unwrap_or_default() <= deadline(), "an interrupted request took {retries_answered:?}");
    assert!(events_delivered <= deadline(), "instruction.settled of the crash delivered after {events_delivered:?}");

    // Charged once: one order per ref, one attempt per instruction, settled.
    let statuses = instruction_statuses(&deployment).await;
    assert_eq!(statuses.len(), COLLECTIONS);
    assert!(statuses.values().all(|s| s == "SETTLED"), "{statuses:?}");
    let attempts =
        rows(&deployment, "SELECT o.order_ref, t.status FROM transactions t JOIN orders o ON o.order_id = t.order_id")
            .await;
    assert_eq!(attempts.len(), COLLECTIONS, "one attempt per instruction");
    assert!(attempts.iter().all(|(_, s)| s == "SETTLED"), "{attempts:?}");

    // In order per instruction: no `processing` after the first `settled` (at least once
    // means a repeat may come, never an earlier event after a later one).
    let received = receiver.received.lock().unwrap();
    let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in received.iter() {
        seen.entry(r.order_ref.as_str()).or_default().push(r.event_type.as_str());
    }
    for (order_ref, types) in &seen {
        let first_settled = types.iter().position(|t| *t == "instruction.settled").unwrap();
        assert!(types[..first_settled].contains(&"instruction.processing"), "{order_ref}: {types:?}");
        assert!(!types[first_settled..].contains(&"instruction.processing"), "{order_ref}: {types:?}");
    }
    assert_eq!(seen.len(), COLLECTIONS);
}
