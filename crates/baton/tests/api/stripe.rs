//! The STRIPE app end to end through Baton's API:
//! - against `localstripe` (PyPI), a stateful fake Stripe started on a loopback port;
//! - against a small local mock serving answers recorded from Stripe's published API
//!   reference, for what localstripe does not reproduce (declines with `decline_code`,
//!   `api_error` answers, an answer lost after Stripe charged or refunded).

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET_KEY: &str = "sk_test_baton_stripe";
const VISA: &str = "4242424242424242";
const MASTERCARD: &str = "5555555555554444";
/// localstripe declines charges to this card (with `card_declined`, no `decline_code`).
const LOCALSTRIPE_DECLINE: &str = "4000000000000341";
/// localstripe (as Stripe) asks for 3-D Secure on this card.
const LOCALSTRIPE_3DS: &str = "4000000000003220";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/stripe/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server: enough for Stripe's form posts, with full control of the answer
// (including none at all).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn form(&self) -> Vec<(String, String)> {
        url_decode_form(&String::from_utf8_lossy(&self.body))
    }

    fn field(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn url_decode_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// What the mock does with one request.
enum Answer {
    Json(u16, Value),
    /// Reads the request, then closes the connection without a word: the answer is lost.
    Hangup,
}

type Handler = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request { method, path, headers, body })
}

async fn write_answer(socket: &mut TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body).await;
    let _ = socket.shutdown().await;
}

/// A mock Stripe: every request is recorded, then answered by `handler`.
struct MockStripe {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl MockStripe {
    async fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Self {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let handler = handler.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else { return };
                    seen.lock().unwrap().push(request.clone());
                    match handler(&request) {
                        Answer::Json(status, body) => {
                            let headers = [("Content-Type".to_string(), "application/json".to_string())];
                            write_answer(&mut socket, status, &headers, body.to_string().as_bytes()).await;
                        }
                        Answer::Hangup => drop(socket),
                    }
                });
            }
        });
        Self { base, requests }
    }

    fn calls(&self, method: &str, path: &str) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| r.method == method && r.path == path).cloned().collect()
    }
}

// ---------------------------------------------------------------------------------------------
// localstripe
// ---------------------------------------------------------------------------------------------

/// A `localstripe --from-scratch` process on a free loopback port, in its own temp dir;
/// killed on drop.
struct LocalStripe {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl LocalStripe {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(python_program("localstripe", "localstripe"))
            .args(["--port", &port.to_string(), "--from-scratch"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "localstripe could not be started ({e}). The Stripe integration tests need it: \
                     on PATH, or installed by the tests with pip (python3 and the package index must be reachable)."
                )
            });
        let mut server = Self { child, port, _dir: dir };
        // Ready when the port accepts connections; fails fast if the process exits.
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("localstripe exited before listening: {status}");
            }
            assert!(std::time::Instant::now() < deadline, "localstripe did not listen on port {port}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        server
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In front of localstripe: records every call and adds the test CVC that localstripe
/// insists on when a card payment method is created (real Stripe takes a card without
/// one, and Baton's vault never stores CVCs).
async fn localstripe_shim(upstream: String) -> MockStripe {
    let upstream = Arc::new(upstream);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (seen, upstream, http) = (seen.clone(), upstream.clone(), http.clone());
            tokio::spawn(async move {
                let Some(mut request) = read_request(&mut socket).await else { return };
                seen.lock().unwrap().push(request.clone());
                if request.path == "/v1/payment_methods" && request.field("card[cvc]").is_none() {
                    request.body.extend_from_slice(b"&card%5Bcvc%5D=123");
                }
                let method = Method::from_bytes(request.method.as_bytes()).unwrap();
                let mut call = http.request(method, format!("{upstream}{}", request.path));
                for name in ["authorization", "content-type", "idempotency-key"] {
                    if let Some(v) = request.header(name) {
                        call = call.header(name, v);
                    }
                }
                let response = call.body(request.body.clone()).send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap();
                let headers = [("Content-Type".to_string(), "application/json".to_string())];
                write_answer(&mut socket, status, &headers, &body).await;
            });
        }
    });
    MockStripe { base, requests }
}

// ---------------------------------------------------------------------------------------------
// Baton
// ---------------------------------------------------------------------------------------------

struct Fx {
    app: TestApp,
    tenant: String,
    /// The tenant's key, for a fresh token after the clock has moved on.
    key: KeyPair,
    token: String,
    scheme: String,
}

impl Fx {
    /// A node with raw card data accepted, STRIPE installed and configured against
    /// `api_base`, and a published collect scheme routing everything to STRIPE.
    async fn new(api_base: &str) -> Self {
        let app = TestApp::spawn_with(Options { accept_raw_card_data: true, ..Options::default() }).await;
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, "Stripe tenant").await;
        let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
        let token = app.token(&key).await;
        let reply = app.send(Method::POST, "/v1/marketplace/apps/STRIPE/install", Some(&token), &[], None).await;
        reply.assert_status(200);
        let config = json!({ "secretKey": SECRET_KEY, "webhookSecret": "whsec_baton_test", "apiBaseUrl": api_base });
        let reply = app.post("/v1/apps/installed/STRIPE/configuration", &token, &config).await;
        let shown = reply.assert_status(200);
        assert_eq!(shown["secretKey"], "********");
        assert!(!reply.text.contains(SECRET_KEY));
        let scheme = json!({ "name": "Stripe cards", "rules": [{ "apps": [{ "appId": "STRIPE" }] }] });
        let reply = app.post("/v1/schemes/collect", &token, &scheme).await;
        let body = reply.assert_status(201).clone();
        let scheme = body["schemeId"].as_str().unwrap().to_string();
        let draft = body["drafts"][0]["draftId"].as_str().unwrap();
        let path = format!("/v1/schemes/collect/{scheme}/drafts/{draft}/publish");
        app.post(&path, &token, &json!({})).await.assert_status(200);
        Self { app, tenant, key, token, scheme }
    }

    /// A stored card for `customer` and an order `order_ref` with one DEBIT instruction `I1` of €10 on it.
    async fn order(&self, order_ref: &str, customer: &str, number: &str) {
        let card = json!({ "type": "CARD", "details": {
            "cardNumber": number, "expiryMonth": 12, "expiryYear": 2034, "cardholderName": "Jane Doe" } });
        let path = format!("/v1/customer-vault/{customer}/financial-instruments");
        let reply = self.app.post(&path, &self.token, &card).await;
        let fi = reply.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string();
        let instruction =
            with(instruction("I1", customer, "DEBIT"), json!({ "schemeId": self.scheme, "financialInstrumentId": fi }));
        let order = json!({ "orderRef": order_ref, "instructions": [instruction] });
        self.app.post("/v1/order-management", &self.token, &order).await.assert_status(202);
    }

    async fn execute(&self, order_ref: &str) -> Reply {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/execute");
        self.app.post(&path, &self.token, &json!({})).await
    }

    async fn instruction(&self, order_ref: &str) -> Value {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1");
        self.app.get(&path, &self.token).await.assert_status(200).clone()
    }

    async fn transactions(&self, order_ref: &str) -> Vec<Value> {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/transactions");
        self.app.get(&path, &self.token).await.assert_status(200).as_array().unwrap().clone()
    }

    /// Asks for a refund of `order_ref`'s instruction `I1`.
    async fn refund(&self, order_ref: &str, body: Value) -> Reply {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/refunds");
        self.app.post(&path, &self.token, &body).await
    }

    /// The refund `refund_ref` of `order_ref`'s instruction `I1`, as the API shows it.
    async fn refund_view(&self, order_ref: &str, refund_ref: &str) -> Value {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/refunds/{refund_ref}");
        self.app.get(&path, &self.token).await.assert_status(200).clone()
    }

    /// The tenant's `refund.*` events, oldest first.
    async fn refund_events(&self) -> Vec<String> {
        let events = self.app.engine().outbox_events(&self.tenant).await.unwrap();
        events.iter().map(|e| e.event.event_type.as_str().to_string()).filter(|t| t.starts_with("refund.")).collect()
    }
}

fn assert_no_card_number(reply: &Reply, number: &str) {
    assert!(!reply.text.contains(number), "the card number leaked: {}", reply.text);
}

#[tokio::test]
async fn localstripe_collects_a_stored_card_and_reports_declines() {
    let stripe = LocalStripe::start().await;
    let shim = localstripe_shim(stripe.base()).await;
    let fx = Fx::new(&shim.base).await;

    // A Visa card: a PaymentMethod, then a confirmed PaymentIntent → SETTLED.
    fx.order("O1", "C1", VISA).await;
    let reply = fx.execute("O1").await;
    assert_eq!(reply.assert_status(200)["status"], "SETTLED", "{}", reply.text);
    assert_no_card_number(&reply, VISA);
    let txs = fx.transactions("O1").await;
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["appId"], "STRIPE");
    assert_eq!(txs[0]["status"], "SETTLED");
    assert_eq!(txs[0]["paymentMethod"], "VISA");
    let pi = txs[0]["providerReference"].as_str().unwrap().to_string();
    assert!(pi.starts_with("pi_"), "{pi}");
    assert_eq!(fx.instruction("O1").await["status"], "SETTLED");

    // What Stripe saw: one payment method, one intent with the attempt's idempotency key.
    let methods = shim.calls("POST", "/v1/payment_methods");
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].field("card[number]").as_deref(), Some(VISA));
    assert_eq!(methods[0].header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()));
    let intents = shim.calls("POST", "/v1/payment_intents");
    assert_eq!(intents.len(), 1);
    let key = intents[0].header("idempotency-key").expect("an Idempotency-Key");
    assert!(key.contains(txs[0]["transactionId"].as_str().unwrap()), "{key}");
    assert_eq!(intents[0].field("amount").as_deref(), Some("1000"));
    assert_eq!(intents[0].field("currency").as_deref(), Some("eur"));
    assert_eq!(intents[0].field("off_session").as_deref(), Some("true"));
    assert_eq!(intents[0].field("confirm").as_deref(), Some("true"));
    assert_eq!(intents[0].field("metadata[baton_attempt]").as_deref(), txs[0]["transactionId"].as_str());
    let pm = intents[0].field("payment_method").unwrap();
    assert!(pm.starts_with("pm_"), "{pm}");

    // Stripe has it as succeeded.
    let stored = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/{pi}", stripe.base()))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!((stored["status"].as_str(), stored["amount"].as_i64()), (Some("succeeded"), Some(1000)));

    // The payment method is cached on the instrument: a second order on the same card
    // creates no new payment method.
    let fi_path = "/v1/customer-vault/C1/financial-instruments";
    let fis = fx.app.get(fi_path, &fx.token).await.assert_status(200).clone();
    let fi = fis[0]["financialInstrumentId"].as_str().unwrap();
    let instruction =
        with(instruction("I1", "C1", "DEBIT"), json!({ "schemeId": fx.scheme, "financialInstrumentId": fi }));
    fx.app
        .post("/v1/order-management", &fx.token, &json!({ "orderRef": "O2", "instructions": [instruction] }))
        .await
        .assert_status(202);
    assert_eq!(fx.execute("O2").await.assert_status(200)["status"], "SETTLED");
    assert_eq!(shim.calls("POST", "/v1/payment_methods").len(), 1);
    let intents = shim.calls("POST", "/v1/payment_intents");
    assert_eq!(intents.len(), 2);
    assert_eq!(intents[1].field("payment_method"), Some(pm));
    assert_ne!(intents[0].header("idempotency-key"), intents[1].header("idempotency-key"));

    // A Mastercard too.
    fx.order("O3", "C2", MASTERCARD).await;
    assert_eq!(fx.execute("O3").await.assert_status(200)["status"], "SETTLED");

    // A card localstripe declines: 402, FAILED, Stripe's code kept.
    fx.order("O4", "C3", LOCALSTRIPE_DECLINE).await;
    let reply = fx.execute("O4").await;
    reply.assert_error(402, "PAYMENT_DECLINED");
    assert_no_card_number(&reply, LOCALSTRIPE_DECLINE);
    assert_eq!(fx.instruction("O4").await["status"], "FAILED");
    let txs = fx.transactions("O4").await;
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["status"], "FAILED");
    assert_eq!(txs[0]["declineCategory"], "HARD_DECLINE");
    assert_eq!(txs[0]["pspCode"], "card_declined");
    assert_eq!(txs[0]["pspMessage"], "Your card was declined.");

    // A card that needs 3-D Secure cannot be charged merchant-initiated.
    fx.order("O5", "C4", LOCALSTRIPE_3DS).await;
    let reply = fx.execute("O5").await;
    reply.assert_error(402, "AUTHENTICATION_REQUIRED");
    let txs = fx.transactions("O5").await;
    assert_eq!(txs[0]["declineCategory"], "AUTHENTICATION_REQUIRED");
    assert!(txs[0]["providerReference"].as_str().unwrap().starts_with("pi_"));
}

/// Stripe's answer to a payment intent search, finding `found`.
fn search_result(found: Vec<Value>) -> Answer {
    Answer::Json(
        200,
        json!({ "object": "search_result", "url": "/v1/payment_intents/search", "has_more": false,
        "next_page": null, "data": found }),
    )
}

const SEARCH: &str = "/v1/payment_intents/search";

/// Answers a payment method for any card, `intent` for payment intents, and searches
/// with nothing found.
fn recorded(intent: impl Fn(&Request, usize) -> Answer + Send + Sync + 'static) -> impl Fn(&Request) -> Answer {
    let count = Arc::new(Mutex::new(0usize));
    move |request: &Request| match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v1/payment_methods") => Answer::Json(200, fixture("payment_method.json")),
        ("POST", "/v1/payment_intents") => {
            let mut n = count.lock().unwrap();
            *n += 1;
            intent(request, *n)
        }
        ("GET", path) if path.starts_with(SEARCH) => search_result(Vec::new()),
        _ => Answer::Json(
            404,
            json!({ "error": { "type": "invalid_request_error", "message": "Unrecognized request URL" } }),
        ),
    }
}

#[tokio::test]
async fn a_decline_with_a_decline_code_keeps_stripes_words() {
    let mock = MockStripe::start(recorded(|_, _| Answer::Json(402, fixture("error_insufficient_funds.json")))).await;
    let fx = Fx::new(&mock.base).await;
    fx.order("O1", "C1", VISA).await;
    let reply = fx.execute("O1").await;
    reply.assert_error(402, "INSUFFICIENT_FUNDS");
    assert_eq!(reply.body["errors"][0]["metadata"]["pspCode"], "insufficient_funds", "{}", reply.text);
    let txs = fx.transactions("O1").await;
    assert_eq!(txs.len(), 1, "an issuer's decline is not retried elsewhere");
    assert_eq!(txs[0]["status"], "FAILED");
    assert_eq!(txs[0]["declineCategory"], "INSUFFICIENT_FUNDS");
    assert_eq!(txs[0]["pspCode"], "insufficient_funds");
    assert_eq!(txs[0]["pspMessage"], "Your card has insufficient funds.");
    assert_eq!(txs[0]["providerReference"], "pi_3QfixtureDeclined");
    assert_eq!(mock.calls("POST", "/v1/payment_intents").len(), 1, "a 402 is not retried");
}

#[tokio::test]
async fn a_stripe_500_is_retried_with_the_same_idempotency_key() {
    let mock = MockStripe::start(recorded(|_, n| {
        if n == 1 {
            Answer::Json(500, fixture("error_api_error.json"))
        } else {
            Answer::Json(200, fixture("payment_intent_succeeded.json"))
        }
    }))
    .await;
    let fx = Fx::new(&mock.base).await;
    fx.order("O1", "C1", VISA).await;
    let reply = fx.execute("O1").await;
    assert_eq!(reply.assert_status(200)["status"], "SETTLED", "{}", reply.text);
    let calls = mock.calls("POST", "/v1/payment_intents");
    assert_eq!(calls.len(), 2);
    let keys: Vec<_> = calls.iter().map(|c| c.header("idempotency-key").unwrap().to_string()).collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(calls[0].body, calls[1].body);
    let txs = fx.transactions("O1").await;
    assert_eq!(txs.len(), 1, "one attempt, however many HTTP tries");
    assert_eq!(txs[0]["providerReference"], "pi_3QfixtureSucceeded");
}

/// A 5xx that outlasts the retries is indeterminate (Stripe may have charged, its
/// answer says nothing): the payment stays PROCESSING, no other app of the rule is
/// tried, and the sync finds the payment intent by the attempt's metadata.
#[tokio::test]
async fn a_stripe_5xx_is_resolved_by_searching_for_the_payment_never_failed_over() {
    let charged: Arc<Mutex<Option<String>>> = Arc::default();
    let stripe = charged.clone();
    let mock = MockStripe::start(move |request: &Request| match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v1/payment_methods") => Answer::Json(200, fixture("payment_method.json")),
        ("POST", "/v1/payment_intents") => {
            // Stripe charges, then fails to say so.
            *stripe.lock().unwrap() = request.field("metadata[baton_attempt]");
            Answer::Json(500, fixture("error_api_error.json"))
        }
        ("GET", path) if path.starts_with(SEARCH) => {
            let attempt = stripe.lock().unwrap().clone();
            let found = attempt.map(|attempt| {
                let mut intent = fixture("payment_intent_succeeded.json");
                intent["metadata"] = json!({ "baton_attempt": attempt });
                intent
            });
            search_result(found.into_iter().collect())
        }
        _ => Answer::Json(404, json!({ "error": { "type": "invalid_request_error" } })),
    })
    .await;
    let two = two_psps(&mock.base).await;
    two.order("O1", "C1", VISA).await;
    let reply = two.execute("O1").await;
    assert_eq!(reply.assert_status(202)["status"], "PROCESSING", "{}", reply.text);
    let txs = two.transactions("O1").await;
    let attempts: Vec<_> = txs.iter().map(|t| (t["appId"].as_str(), t["status"].as_str())).collect();
    assert_eq!(attempts, [(Some("STRIPE"), Some("PENDING"))], "the next app is not tried");
    let posts = mock.calls("POST", "/v1/payment_intents");
    assert_eq!(posts.len(), 3, "bounded retries");
    assert!(posts.iter().all(|c| c.header("idempotency-key") == posts[0].header("idempotency-key")));

    // The sync asks Stripe's search for the attempt's payment intent: it was made.
    two.app.clock.advance(Duration::from_secs(11));
    assert_eq!(two.app.tick().await.jobs_run, 1);
    assert_eq!(two.instruction("O1").await["status"], "SETTLED");
    let txs = two.transactions("O1").await;
    assert_eq!(txs.len(), 1);
    assert_eq!(
        (txs[0]["status"].as_str(), txs[0]["providerReference"].as_str()),
        (Some("SETTLED"), Some("pi_3QfixtureSucceeded"))
    );
    let searches: Vec<Request> =
        mock.requests.lock().unwrap().iter().filter(|r| r.path.starts_with(SEARCH)).cloned().collect();
    assert_eq!(searches.len(), 1);
    let attempt = txs[0]["transactionId"].as_str().unwrap();
    assert!(
        searches[0].path.ends_with(&format!("metadata%5B%27baton_attempt%27%5D%3A%27{attempt}%27")),
        "{}",
        searches[0].path
    );
    assert_eq!(mock.calls("POST", "/v1/payment_intents").len(), 3, "nothing is posted again");
}

/// Stripe down for good: the payment stays unknown while Stripe's search could still be
/// behind; once it surely is not and still shows no payment intent (and the repeated
/// call still fails), the attempt is failed: nothing was charged. No other app is tried.
#[tokio::test]
async fn stripe_down_for_good_fails_the_payment_only_once_search_shows_none() {
    let mock = MockStripe::start(recorded(|_, _| Answer::Json(500, fixture("error_api_error.json")))).await;
    let two = two_psps(&mock.base).await;
    two.order("O1", "C1", VISA).await;
    assert_eq!(two.execute("O1").await.assert_status(202)["status"], "PROCESSING");

    two.app.clock.advance(Duration::from_secs(11));
    let report = two.app.tick().await;
    assert_eq!((report.jobs_run, report.jobs_failed), (0, 1), "still unknown: tried again later");
    assert_eq!(two.instruction("O1").await["status"], "PROCESSING");

    two.app.clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(two.app.tick().await.jobs_run, 1);
    let two = Fx { token: two.app.token(&two.key).await, ..two };
    assert_eq!(two.instruction("O1").await["status"], "FAILED");
    let txs = two.transactions("O1").await;
    assert_eq!(txs.len(), 1, "one attempt, at STRIPE only");
    assert_eq!(
        (txs[0]["status"].as_str(), txs[0]["declineCategory"].as_str(), txs[0]["pspCode"].as_str()),
        (Some("FAILED"), Some("TECHNICAL"), Some("api_error"))
    );
    let posts = mock.calls("POST", "/v1/payment_intents");
    assert!(posts.len() > 3, "each sync repeats the call");
    assert!(posts.iter().all(|c| c.header("idempotency-key") == posts[0].header("idempotency-key")), "with one key");
}

/// Stripe's idempotency: the first answer for a key is replayed for every later request with it.
#[tokio::test]
async fn a_lost_answer_is_synced_with_the_same_key_and_never_charged_twice() {
    let charges: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    let stripe = charges.clone();
    let mock = MockStripe::start(recorded(move |request, n| {
        let key = request.header("idempotency-key").unwrap().to_string();
        let mut charges = stripe.lock().unwrap();
        let known = charges.contains_key(&key);
        let intent = charges.entry(key).or_insert_with(|| fixture("payment_intent_succeeded.json")).clone();
        if n == 1 {
            assert!(!known);
            // Charged, but the answer never arrives.
            Answer::Hangup
        } else {
            Answer::Json(200, intent)
        }
    }))
    .await;
    let fx = Fx::new(&mock.base).await;
    fx.order("O1", "C1", VISA).await;
    let reply = fx.execute("O1").await;
    assert_eq!(reply.assert_status(202)["status"], "PROCESSING", "{}", reply.text);
    let txs = fx.transactions("O1").await;
    assert_eq!((txs.len(), txs[0]["status"].as_str()), (1, Some("PENDING")));
    assert_eq!(mock.calls("POST", "/v1/payment_intents").len(), 1, "an unknown outcome is not retried blindly");

    // Before the sync delay nothing happens; after it, a worker round asks Stripe again.
    fx.app.tick().await;
    assert_eq!(fx.instruction("O1").await["status"], "PROCESSING");
    fx.app.clock.advance(Duration::from_secs(11));
    fx.app.tick().await;
    assert_eq!(fx.instruction("O1").await["status"], "SETTLED");
    let txs = fx.transactions("O1").await;
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["status"], "SETTLED");
    assert_eq!(txs[0]["providerReference"], "pi_3QfixtureSucceeded");
    let calls = mock.calls("POST", "/v1/payment_intents");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].header("idempotency-key"), calls[1].header("idempotency-key"));
    assert_eq!(calls[0].body, calls[1].body, "the repeat is the same request");
    assert_eq!(charges.lock().unwrap().len(), 1, "one charge at Stripe");
}

/// A node whose collect scheme has one rule with STRIPE (at `api_base`) first and
/// SANDBOX_CARD second.
async fn two_psps(api_base: &str) -> Fx {
    let fx = Fx::new(api_base).await;
    let reply =
        fx.app.send(Method::POST, "/v1/marketplace/apps/SANDBOX_CARD/install", Some(&fx.token), &[], None).await;
    reply.assert_status(200);
    let rules = json!([{ "apps": [{ "appId": "STRIPE", "priority": 1 }, { "appId": "SANDBOX_CARD", "priority": 2 }] }]);
    let body = fx.app.post("/v1/schemes/collect", &fx.token, &json!({ "name": "Two PSPs", "rules": rules })).await;
    let body = body.assert_status(201).clone();
    let scheme = body["schemeId"].as_str().unwrap().to_string();
    let draft = body["drafts"][0]["draftId"].as_str().unwrap();
    let path = format!("/v1/schemes/collect/{scheme}/drafts/{draft}/publish");
    fx.app.post(&path, &fx.token, &json!({})).await.assert_status(200);
    Fx { scheme, ..fx }
}

/// When STRIPE cannot be reached at all (nothing was sent, so nothing was charged) the
/// next app of the rule takes the payment, each app at most once.
#[tokio::test]
async fn an_unreachable_psp_fails_over_to_the_next_app_of_the_rule() {
    // A port nothing listens on: every connection is refused before a request is sent.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let two = two_psps(&format!("http://127.0.0.1:{closed}")).await;

    two.order("O1", "C1", VISA).await;
    let reply = two.execute("O1").await;
    assert_eq!(reply.assert_status(200)["status"], "SETTLED", "{}", reply.text);
    let txs = two.transactions("O1").await;
    let apps: Vec<_> = txs.iter().map(|t| (t["appId"].as_str().unwrap(), t["status"].as_str().unwrap())).collect();
    assert_eq!(apps, [("STRIPE", "FAILED"), ("SANDBOX_CARD", "SETTLED")]);
    assert_eq!((txs[0]["attempt"].as_i64(), txs[1]["attempt"].as_i64()), (Some(1), Some(2)));
    assert_eq!(txs[0]["declineCategory"], "TECHNICAL");

    // The sandbox's technical error is tried on no further app: SANDBOX_CARD is the last.
    two.order("O2", "C2", "4000000000000119").await;
    two.execute("O2").await.assert_error(402, "PSP_UNAVAILABLE");
    assert_eq!(two.transactions("O2").await.len(), 2, "each app once, never the same app twice");
}

/// An issuer's decline at the first app ends the payment: the next app is not tried.
#[tokio::test]
async fn a_decline_is_never_failed_over() {
    let mock = MockStripe::start(recorded(|_, _| Answer::Json(402, fixture("error_insufficient_funds.json")))).await;
    let two = two_psps(&mock.base).await;
    two.order("O1", "C1", VISA).await;
    two.execute("O1").await.assert_error(402, "INSUFFICIENT_FUNDS");
    let txs = two.transactions("O1").await;
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["appId"], "STRIPE");
}

// ---------------------------------------------------------------------------------------------
// Refunds whose answer is lost or indeterminate
// ---------------------------------------------------------------------------------------------

const REFUNDS: &str = "/v1/refunds";

/// Stripe's list of a payment intent's refunds: the recorded refund, with Baton's
/// `metadata[baton_refund]` for each id in `made` (none: an empty list).
fn refund_list(made: Option<String>) -> Answer {
    let mut list = fixture("refund_list.json");
    match made {
        Some(refund_id) => list["data"][0]["metadata"] = json!({ "baton_refund": refund_id }),
        None => list["data"] = json!([]),
    }
    Answer::Json(200, list)
}

/// A Stripe that takes every payment and answers refunds with `create` (`POST
/// /v1/refunds`) and `read` (any `GET /v1/refunds…`: the list, or one refund).
fn stripe_with_refunds(
    create: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    read: impl Fn(&Request) -> Answer + Send + Sync + 'static,
) -> impl Fn(&Request) -> Answer {
    let payments = recorded(|_, _| Answer::Json(200, fixture("payment_intent_succeeded.json")));
    move |request: &Request| match (request.method.as_str(), request.path.as_str()) {
        ("POST", REFUNDS) => create(request),
        ("GET", path) if path.starts_with(REFUNDS) => read(request),
        _ => payments(request),
    }
}

/// The `GET /v1/refunds…` calls the mock saw.
fn refund_reads(mock: &MockStripe) -> Vec<Request> {
    mock.requests.lock().unwrap().iter().filter(|r| r.method == "GET" && r.path.starts_with(REFUNDS)).cloned().collect()
}

/// A node with STRIPE at `mock`, and order `O1` settled there (€10.00).
async fn settled_at(mock: &MockStripe) -> Fx {
    let fx = Fx::new(&mock.base).await;
    fx.order("O1", "C1", VISA).await;
    let reply = fx.execute("O1").await;
    assert_eq!(reply.assert_status(200)["status"], "SETTLED", "{}", reply.text);
    fx
}

fn one_key(calls: &[Request]) -> bool {
    calls.iter().all(|c| {
        c.header("idempotency-key").is_some() && c.header("idempotency-key") == calls[0].header("idempotency-key")
    })
}

/// Stripe refunds, then answers 500 (to every try): indeterminate, so the refund is
/// `PENDING`, not `FAILED`. Its sync finds the refund among the payment intent's refunds
/// by Baton's metadata and records it `SETTLED`, posting nothing again.
#[tokio::test]
async fn a_refund_answered_with_a_5xx_is_looked_up_and_settled_never_failed() {
    let made: Arc<Mutex<Option<String>>> = Arc::default();
    let (stripe, listed) = (made.clone(), made.clone());
    let mock = MockStripe::start(stripe_with_refunds(
        move |request| {
            *stripe.lock().unwrap() = request.field("metadata[baton_refund]");
            Answer::Json(500, fixture("error_api_error.json"))
        },
        move |_| refund_list(listed.lock().unwrap().clone()),
    ))
    .await;
    let fx = settled_at(&mock).await;

    let reply = fx.refund("O1", json!({ "refundRef": "R1", "reason": "CUSTOMER_CHANGED_MIND" })).await;
    let body = reply.assert_status(202);
    assert_eq!(body["status"], "PENDING", "{}", reply.text);
    assert_eq!(body["providerReference"], Value::Null);
    assert_eq!(reply.header("location"), Some("/v1/order-management/O1/instruction/I1/refunds/R1"));
    assert_eq!(fx.refund_view("O1", "R1").await["status"], "PENDING");
    assert_eq!(fx.refund_events().await, ["refund.created"], "no refund.failed");
    let posts = mock.calls("POST", REFUNDS);
    assert_eq!(posts.len(), 3, "one call, retried by the client");
    assert!(one_key(&posts), "with one idempotency key");
    assert!(refund_reads(&mock).is_empty());

    // The sync lists the payment intent's refunds: it was made.
    fx.app.clock.advance(Duration::from_secs(11));
    assert_eq!(fx.app.tick().await.jobs_run, 1);
    let refund = fx.refund_view("O1", "R1").await;
    assert_eq!(
        (refund["status"].as_str(), refund["providerReference"].as_str()),
        (Some("SETTLED"), Some("re_3QfixtureRefund"))
    );
    assert_eq!(fx.refund_events().await, ["refund.created", "refund.settled"]);
    let reads = refund_reads(&mock);
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].path, "/v1/refunds?payment_intent=pi_3QfixtureSucceeded&limit=100");
    assert_eq!(mock.calls("POST", REFUNDS).len(), 3, "nothing is posted again");
    // Done: no job is left.
    fx.app.clock.advance(Duration::from_secs(3600));
    assert_eq!(fx.app.tick().await.jobs_run, 0);
    assert_eq!(refund_reads(&mock).len(), 1);
}

/// Stripe down for refunds: every create answers 500 (Stripe replays the saved 500 for
/// the key) and the list shows none. The refund stays `PENDING` while an earlier call
/// could still be running; once every call is surely over and a list read after a
/// repeat still shows none, it is `FAILED` (Stripe made no refund) and the amount may
/// be refunded again.
#[tokio::test]
async fn a_refund_stripe_never_made_fails_and_the_amount_is_refundable_again() {
    let recovered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stripe = recovered.clone();
    let mock = MockStripe::start(stripe_with_refunds(
        move |request| {
            if stripe.load(std::sync::atomic::Ordering::SeqCst) {
                let mut refund = fixture("refund_succeeded.json");
                refund["id"] = json!("re_3QfixtureSecond");
                refund["metadata"] = json!({ "baton_refund": request.field("metadata[baton_refund]") });
                Answer::Json(200, refund)
            } else {
                Answer::Json(500, fixture("error_api_error.json"))
            }
        },
        |_| refund_list(None),
    ))
    .await;
    let fx = settled_at(&mock).await;
    let reply = fx.refund("O1", json!({ "refundRef": "R1", "reason": "OTHER" })).await;
    assert_eq!(reply.assert_status(202)["status"], "PENDING", "{}", reply.text);

    // The first sync: no refund listed, the repeat fails again, a second list shows none;
    // but a call may still be running at Stripe, so it stays unknown and the job backs off.
    fx.app.clock.advance(Duration::from_secs(11));
    let report = fx.app.tick().await;
    assert_eq!((report.jobs_run, report.jobs_failed), (0, 1), "still unknown: tried again later");
    assert_eq!(fx.refund_view("O1", "R1").await["status"], "PENDING");
    assert_eq!(fx.refund_events().await, ["refund.created"]);
    assert_eq!(refund_reads(&mock).len(), 2, "listed before and after the repeat");
    let posts = mock.calls("POST", REFUNDS);
    assert_eq!(posts.len(), 6, "the call repeated once (retried by the client)");
    assert!(one_key(&posts), "with the same idempotency key");
    assert_eq!(posts[0].body, posts[3].body, "the repeat is the same request");

    // Later, with every call surely over: none was made.
    fx.app.clock.advance(Duration::from_secs(600));
    assert_eq!(fx.app.tick().await.jobs_run, 1);
    let refund = fx.refund_view("O1", "R1").await;
    assert_eq!(refund["status"], "FAILED", "{refund}");
    assert_eq!(
        (refund["errorCode"].as_str(), refund["pspCode"].as_str(), refund["providerReference"].as_str()),
        (Some("PSP_UNAVAILABLE"), Some("api_error"), None)
    );
    assert!(refund["pspMessage"].as_str().unwrap().starts_with("Stripe made no refund"), "{refund}");
    assert_eq!(fx.refund_events().await, ["refund.created", "refund.failed"]);
    let posts = mock.calls("POST", REFUNDS);
    assert!(one_key(&posts));

    // The settled amount is refundable again, in full.
    recovered.store(true, std::sync::atomic::Ordering::SeqCst);
    let again = fx.refund("O1", json!({ "refundRef": "R2", "reason": "OTHER" })).await;
    let body = again.assert_status(202);
    assert_eq!(
        (body["status"].as_str(), body["amount"].as_f64(), body["providerReference"].as_str()),
        (Some("SETTLED"), Some(10.0), Some("re_3QfixtureSecond")),
        "{}",
        again.text
    );
    let last = mock.calls("POST", REFUNDS).pop().unwrap();
    assert_ne!(last.header("idempotency-key"), posts[0].header("idempotency-key"), "a new refund, a new key");
    assert_eq!(fx.refund_events().await, ["refund.created", "refund.failed", "refund.created", "refund.settled"]);
}

/// When the list of refunds cannot be read either, nothing is known: the refund stays
/// `PENDING`, however old, and nothing is posted again.
#[tokio::test]
async fn a_refund_whose_list_cannot_be_read_stays_pending_and_is_never_posted_again() {
    let mock = MockStripe::start(stripe_with_refunds(
        |_| Answer::Json(500, fixture("error_api_error.json")),
        |_| Answer::Json(500, fixture("error_api_error.json")),
    ))
    .await;
    let fx = settled_at(&mock).await;
    let reply = fx.refund("O1", json!({ "refundRef": "R1", "reason": "OTHER" })).await;
    assert_eq!(reply.assert_status(202)["status"], "PENDING", "{}", reply.text);
    assert_eq!(mock.calls("POST", REFUNDS).len(), 3);

    fx.app.clock.advance(Duration::from_secs(11));
    let report = fx.app.tick().await;
    assert_eq!((report.jobs_run, report.jobs_failed), (0, 1));
    // Long after any call is over, still nothing is known.
    fx.app.clock.advance(Duration::from_secs(3600));
    let report = fx.app.tick().await;
    assert_eq!((report.jobs_run, report.jobs_failed), (0, 1));
    let fx = Fx { token: fx.app.token(&fx.key).await, ..fx };
    let refund = fx.refund_view("O1", "R1").await;
    assert_eq!(refund["status"], "PENDING", "{refund}");
    assert_eq!(fx.refund_events().await, ["refund.created"]);
    assert_eq!(refund_reads(&mock).len(), 2, "one list per sync");
    assert_eq!(mock.calls("POST", REFUNDS).len(), 3, "nothing is posted again");
    // The merchant cannot refund the amount again meanwhile.
    let again = fx.refund("O1", json!({ "refundRef": "R2", "reason": "OTHER" })).await;
    again.assert_error(400, "REFUND_EXCEEDS_REMAINING");
}

/// A refund Stripe is still making (`pending`) is read back by its id until it is done,
/// never asked for again.
#[tokio::test]
async fn a_pending_refund_is_read_back_by_its_id() {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stripe = done.clone();
    let mock = MockStripe::start(stripe_with_refunds(
        |_| {
            let mut refund = fixture("refund_succeeded.json");
            refund["status"] = json!("pending");
            Answer::Json(200, refund)
        },
        move |_| {
            let mut refund = fixture("refund_succeeded.json");
            if !stripe.load(std::sync::atomic::Ordering::SeqCst) {
                refund["status"] = json!("pending");
            }
            Answer::Json(200, refund)
        },
    ))
    .await;
    let fx = settled_at(&mock).await;
    let reply = fx.refund("O1", json!({ "refundRef": "R1", "reason": "OTHER" })).await;
    let body = reply.assert_status(202);
    assert_eq!(
        (body["status"].as_str(), body["providerReference"].as_str()),
        (Some("PROCESSING"), Some("re_3QfixtureRefund")),
        "{}",
        reply.text
    );

    fx.app.clock.advance(Duration::from_secs(31));
    assert_eq!(fx.app.tick().await.jobs_run, 1);
    assert_eq!(fx.refund_view("O1", "R1").await["status"], "PROCESSING");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    fx.app.clock.advance(Duration::from_secs(31));
    assert_eq!(fx.app.tick().await.jobs_run, 1);
    assert_eq!(fx.refund_view("O1", "R1").await["status"], "SETTLED");
    assert_eq!(fx.refund_events().await, ["refund.created", "refund.settled"]);
    let reads: Vec<String> = refund_reads(&mock).into_iter().map(|r| r.path).collect();
    assert_eq!(reads, ["/v1/refunds/re_3QfixtureRefund", "/v1/refunds/re_3QfixtureRefund"]);
    assert_eq!(mock.calls("POST", REFUNDS).len(), 1, "asked for once");
}
