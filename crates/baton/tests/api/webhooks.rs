//! Webhooks (SPEC §5.1): endpoints, delivery of executed instructions' events to a real
//! HTTP receiver started by the test, Standard Webhooks signatures checked by Baton's
//! code and by the independent `standardwebhooks` Python package, rotation, retries
//! across a receiver outage, disabling, production URL rules, ping, redelivery.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use baton_domain::Environment;
use baton_engine::webhooks::signing;
use common::{Options, TestApp};
use serde_json::{json, Value};

const CUSTOMER: &str = "cust-1";
/// What a card payment announces besides `instruction.updated` (sent after each status
/// change) and `financial_instrument.created`.
const PAYMENT_EVENTS: &[&str] = &["instruction.processing", "instruction.settled"];

// -- the receiver -----------------------------------------------------------------------------

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Captured {
    headers: HashMap<String, String>,
    body: String,
    answered: u16,
}

impl Captured {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn event_type(&self) -> String {
        self.json()["eventType"].as_str().unwrap_or("").to_string()
    }

    /// Checks the signature with Baton's own verifier.
    fn signed_with(&self, secret: &str) -> bool {
        let ts: i64 = self.header("webhook-timestamp").parse().unwrap_or(0);
        signing::verify(secret, self.header("webhook-id"), ts, self.body.as_bytes(), self.header("webhook-signature"))
    }
}

/// An HTTP server on 127.0.0.1 recording every request, answering `status`.
struct Receiver {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    captured: Arc<Mutex<Vec<Captured>>>,
    arrived: Arc<tokio::sync::Notify>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = Receiver {
            addr: listener.local_addr().unwrap(),
            status: Arc::new(AtomicU16::new(200)),
            captured: Arc::default(),
            arrived: Arc::default(),
            stop: None,
            server: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (status, captured, arrived) = (self.status.clone(), self.captured.clone(), self.arrived.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (status, captured, arrived) = (status.clone(), captured.clone(), arrived.clone());
            async move {
                let answered = status.load(Ordering::SeqCst);
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = String::from_utf8_lossy(&body).into_owned();
                captured.lock().unwrap().push(Captured { headers, body, answered });
                arrived.notify_waiters();
                (StatusCode::from_u16(answered).unwrap(), "received")
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.server = Some(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        }));
    }

    /// Stops listening: connections are refused until [`Self::restart`].
    async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("the port is free again");
        self.serve(listener);
    }

    /// Waits (event-driven, with a generous bound) until `n` requests have arrived.
    async fn wait_for(&self, n: usize) {
        let wait = async {
            loop {
                let notified = self.arrived.notified();
                if self.captured.lock().unwrap().len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait).await.expect("deliveries arrive");
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn captured(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }

    /// The requests answered with 2xx.
    fn delivered(&self) -> Vec<Captured> {
        self.captured().into_iter().filter(|c| (200..300).contains(&c.answered)).collect()
    }
}

/// The Python interpreter with the `standardwebhooks` package: `python3` if it has it
/// (`.ci/run` installs it), else the tests' virtual environment, where it is installed once.
fn verifier_python() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let system = std::process::Command::new("python3")
                .args(["-c", "import standardwebhooks"])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if system {
                "python3".into()
            } else {
                common::python_venv(&["standardwebhooks"]).join("bin").join("python")
            }
        })
        .clone()
}

/// Verifies a captured delivery with the `standardwebhooks` package from PyPI.
fn python_verifies(secret: &str, c: &Captured) -> Result<(), String> {
    const SCRIPT: &str = r#"
import json, sys
try:
    from standardwebhooks import Webhook
except ImportError:
    sys.exit(3)
d = json.load(sys.stdin)
try:
    Webhook(d["secret"]).verify(d["body"], d["headers"])
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(1)
"#;
    use std::io::Write;
    let mut child = std::process::Command::new(verifier_python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed to run the independent webhook verifier");
    let input = json!({ "secret": secret, "body": c.body, "headers": c.headers });
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(3) => panic!(
            "the independent verifier is missing: install the standardwebhooks package (pip install standardwebhooks)"
        ),
        _ => Err(String::from_utf8_lossy(&out.stdout).trim().to_string()),
    }
}

// -- fixture ------------------------------------------------------------------------------------

/// A tenant with SANDBOX_CARD installed, a published collect scheme, and a tenant-admin token.
struct Fx {
    app: TestApp,
    key: common::KeyPair,
    /// A tenant-admin token, renewed whenever the clock moves.
    current: Mutex<String>,
    tenant: String,
    scheme: String,
}

impl Fx {
    async fn new() -> Self {
        Self::with(Options::default()).await
    }

    async fn with(options: Options) -> Self {
        let app = TestApp::spawn_with(Options { accept_raw_card_data: true, ..options }).await;
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, "Webhook tenant").await;
        let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
        let token = app.token(&key).await;
        let reply =
            app.send(reqwest::Method::POST, "/v1/marketplace/apps/SANDBOX_CARD/install", Some(&token), &[], None).await;
        reply.assert_status(200);
        let rules = json!([{ "priority": 1, "currencies": [], "countries": [],
            "apps": [{ "appId": "SANDBOX_CARD", "priority": 1 }] }]);
        let reply = app
            .post("/v1/schemes/collect", &token, &json!({ "name": "Premiums", "code": "PREM", "rules": rules }))
            .await;
        let scheme = reply.assert_status(201).clone();
        let scheme_id = scheme["schemeId"].as_str().unwrap().to_string();
        let draft = scheme["drafts"][0]["draftId"].as_str().unwrap();
        app.post(&format!("/v1/schemes/collect/{scheme_id}/drafts/{draft}/publish"), &token, &json!({}))
            .await
            .assert_status(200);
        Self { app, key, current: Mutex::new(token), tenant, scheme: scheme_id }
    }

    fn token(&self) -> String {
        self.current.lock().unwrap().clone()
    }

    /// Creates an endpoint; returns (id, secret).
    async fn endpoint(&self, url: &str, events: &[&str]) -> (String, String) {
        let reply =
            self.app.post("/v1/notifications/webhooks", &self.token(), &json!({ "url": url, "events": events })).await;
        let body = reply.assert_status(201);
        (body["webhookId"].as_str().unwrap().to_string(), body["secret"].as_str().unwrap().to_string())
    }

    /// Stores a card, creates order `order_ref` with one instruction `i1`, and executes it.
    async fn pay(&self, order_ref: &str, card: &str) -> Value {
        let reply = self
            .app
            .post(
                &format!("/v1/customer-vault/{CUSTOMER}/financial-instruments"),
                &self.token(),
                &json!({ "type": "CARD", "details": { "cardNumber": card, "expiryMonth": 12, "expiryYear": 2030 } }),
            )
            .await;
        let fi = reply.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string();
        let body = json!({ "orderRef": order_ref, "metadata": { "policy": format!("P-{order_ref}") },
            "instructions": [{ "instructionRef": "i1", "customerRef": CUSTOMER, "direction": "DEBIT",
            "amount": "49.90", "currency": "EUR", "country": "DE", "schemeId": self.scheme,
            "financialInstrumentId": fi, "metadata": { "installment": "1" } }] });
        self.app.post("/v1/order-management", &self.token(), &body).await.assert_status(202);
        let path = format!("/v1/order-management/{order_ref}/instruction/i1/execute");
        self.app.post(&path, &self.token(), &json!({})).await.body
    }

    async fn deliveries(&self, webhook_id: &str, query: &str) -> Vec<Value> {
        let reply =
            self.app.get(&format!("/v1/notifications/webhooks/{webhook_id}/deliveries{query}"), &self.token()).await;
        reply.assert_status(200).as_array().unwrap().clone()
    }

    /// Moves the clock (and takes a token that is valid at the new time).
    async fn advance(&self, by: Duration) {
        self.app.clock.advance(by);
        let token = self.app.token(&self.key).await;
        *self.current.lock().unwrap() = token;
    }
}

const HOUR: Duration = Duration::from_secs(3600);

// -- endpoints ----------------------------------------------------------------------------------

#[tokio::test]
async fn endpoints_are_created_listed_updated_and_deleted() {
    let fx = Fx::new().await;
    let reply = fx
        .app
        .post(
            "/v1/notifications/webhooks",
            &fx.token(),
            &json!({ "url": "http://localhost:9/hook", "events": ["instruction.settled", "instruction.failed"],
                     "description": "Back office" }),
        )
        .await;
    let created = reply.assert_status(201).clone();
    let id = created["webhookId"].as_str().unwrap().to_string();
    assert_eq!(reply.header("location"), Some(format!("/v1/notifications/webhooks/{id}").as_str()));
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.decode(&secret[6..]).unwrap();
    assert_eq!(key.len(), 32, "base64 of 32 random bytes");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["events"], json!(["instruction.settled", "instruction.failed"]));

    // The secret is shown once: never in reads.
    let got = fx.app.get(&format!("/v1/notifications/webhooks/{id}"), &fx.token()).await;
    assert!(got.assert_status(200).get("secret").is_none());
    assert!(!got.text.contains(secret));
    let list = fx.app.get("/v1/notifications/webhooks", &fx.token()).await;
    assert_eq!(list.assert_status(200).as_array().unwrap().len(), 1);
    assert!(!list.text.contains(secret));

    // Several endpoints per tenant, each with its own filter; the legacy alias works too.
    let reply = fx
        .app
        .post(
            "/management/v1/notifications/webhooks",
            &fx.token(),
            &json!({ "url": "http://localhost:9/b", "events": ["*"] }),
        )
        .await;
    reply.assert_status(201);
    assert_eq!(fx.app.get("/v1/notifications/webhooks", &fx.token()).await.body.as_array().unwrap().len(), 2);

    let updated = fx
        .app
        .put(
            &format!("/v1/notifications/webhooks/{id}"),
            &fx.token(),
            &json!({ "url": "http://localhost:9/new", "events": ["*"], "enabled": false }),
        )
        .await;
    let body = updated.assert_status(200);
    assert_eq!((body["url"].as_str(), body["enabled"].as_bool()), (Some("http://localhost:9/new"), Some(false)));
    assert_eq!(body["description"], Value::Null);

    // Another tenant sees nothing of it.
    let admin = fx.app.admin_token().await;
    let other = fx.app.create_tenant(&admin, "Other tenant").await;
    let other_key = fx.app.create_tenant_key(&admin, &other, &["tenant-admin"]).await;
    let other_token = fx.app.token(&other_key).await;
    fx.app.get(&format!("/v1/notifications/webhooks/{id}"), &other_token).await.assert_error(404, "WEBHOOK_NOT_FOUND");
    fx.app
        .delete(&format!("/v1/notifications/webhooks/{id}"), &other_token)
        .await
        .assert_error(404, "WEBHOOK_NOT_FOUND");
    assert!(fx.app.get("/v1/notifications/webhooks", &other_token).await.body.as_array().unwrap().is_empty());

    let deleted = fx.app.delete(&format!("/v1/notifications/webhooks/{id}"), &fx.token()).await;
    assert_eq!(deleted.status.as_u16(), 204);
    fx.app.get(&format!("/v1/notifications/webhooks/{id}"), &fx.token()).await.assert_error(404, "WEBHOOK_NOT_FOUND");
}

#[tokio::test]
async fn bad_endpoints_are_refused_with_specific_codes_and_change_nothing() {
    let fx = Fx::new().await;
    let cases = [
        (json!({ "url": "not a url", "events": ["*"] }), "INVALID_URL"),
        (json!({ "url": "ftp://example.com/x", "events": ["*"] }), "INVALID_URL"),
        (json!({ "events": ["*"] }), "INVALID_URL"),
        (json!({ "url": "http://localhost:9/x" }), "EVENTS_REQUIRED"),
        (json!({ "url": "http://localhost:9/x", "events": [] }), "EVENTS_REQUIRED"),
        (json!({ "url": "http://localhost:9/x", "events": ["instruction.exploded"] }), "UNKNOWN_EVENT_TYPE"),
        (json!({ "url": "http://localhost:9/x", "events": ["tenant.approval_requested"] }), "EVENT_TYPE_NOT_AVAILABLE"),
        (
            json!({ "url": "http://localhost:9/x", "events": ["*"], "description": "x".repeat(501) }),
            "DESCRIPTION_TOO_LONG",
        ),
        (json!({ "url": "http://169.254.169.254/latest", "events": ["*"] }), "URL_NOT_ALLOWED"),
        (
            json!({ "url": "http://localhost:9/x", "events": ["*"], "description": "a\u{1b}[2J" }),
            "CONTROL_CHARACTER_NOT_ALLOWED",
        ),
        (
            json!({ "url": "http://localhost:9/x", "events": ["*"], "description": "a\u{0}" }),
            "CONTROL_CHARACTER_NOT_ALLOWED",
        ),
    ];
    for (body, code) in cases {
        let reply = fx.app.post("/v1/notifications/webhooks", &fx.token(), &body).await;
        reply.assert_error(400, code);
    }
    // Every problem at once, each with its field.
    let reply = fx
        .app
        .post("/v1/notifications/webhooks", &fx.token(), &json!({ "url": "nope", "events": ["*", "bogus"] }))
        .await;
    assert_eq!(
        reply.codes(),
        [("INVALID_URL".to_string(), "url".to_string()), ("UNKNOWN_EVENT_TYPE".to_string(), "events[1]".to_string())]
    );
    assert!(fx.app.get("/v1/notifications/webhooks", &fx.token()).await.body.as_array().unwrap().is_empty());

    // An update with bad input leaves the endpoint as it was.
    let (id, _) = fx.endpoint("http://localhost:9/x", &["*"]).await;
    let path = format!("/v1/notifications/webhooks/{id}");
    fx.app.put(&path, &fx.token(), &json!({ "url": "nope", "events": ["*"] })).await.assert_error(400, "INVALID_URL");
    assert_eq!(fx.app.get(&path, &fx.token()).await.body["url"], "http://localhost:9/x");
}

#[tokio::test]
async fn account_endpoints_take_account_events() {
    let fx = Fx::new().await;
    let admin = fx.app.admin_token().await;
    let receiver = Receiver::start().await;
    let reply = fx
        .app
        .post("/v1/account/notifications/webhooks", &admin, &json!({ "url": receiver.url(), "events": ["*"] }))
        .await;
    let created = reply.assert_status(201).clone();
    let id = created["webhookId"].as_str().unwrap();
    assert!(created.get("tenantId").is_none());
    // Tenant events are not offered to account endpoints.
    let reply = fx
        .app
        .post(
            "/v1/account/notifications/webhooks",
            &admin,
            &json!({ "url": receiver.url(), "events": ["instruction.settled"] }),
        )
        .await;
    reply.assert_error(400, "EVENT_TYPE_NOT_AVAILABLE");
    let list = fx.app.get("/v1/account/notifications/webhooks", &admin).await;
    assert_eq!(list.assert_status(200).as_array().unwrap().len(), 1);
    // The tenant's own listing does not include it.
    assert!(fx.app.get("/v1/notifications/webhooks", &fx.token()).await.body.as_array().unwrap().is_empty());
    fx.app.get(&format!("/v1/notifications/webhooks/{id}"), &fx.token()).await.assert_error(404, "WEBHOOK_NOT_FOUND");

    // A tenant payment is not sent to the account endpoint; a ping is.
    fx.pay("o-1", "4242424242424242").await;
    fx.app.post(&format!("/v1/account/notifications/webhooks/{id}/test"), &admin, &json!({})).await.assert_status(202);
    fx.app.tick().await;
    let got: Vec<String> = receiver.captured().iter().map(Captured::event_type).collect();
    assert_eq!(got, ["ping"]);
    assert_eq!(receiver.captured()[0].json()["tenantId"], Value::Null);
}

// -- delivery -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_settled_payment_is_delivered_signed_and_verifiable_independently() {
    let fx = Fx::new().await;
    let receiver = Receiver::start().await;
    let (id, secret) = fx.endpoint(&receiver.url(), PAYMENT_EVENTS).await;
    let (settled_only, _) = fx.endpoint(&receiver.url(), &["instruction.settled"]).await;

    let paid = fx.pay("o-1", "4242424242424242").await;
    assert_eq!(paid["status"], "SETTLED");
    assert!(receiver.captured().is_empty(), "delivery is the worker's job, not the request's");
    let report = fx.app.tick().await;
    // Of the six events (the instrument, the new instruction, two status changes and an
    // `instruction.updated` after each) only the two status changes, which endpoints
    // subscribe to, are left to the fan-out: the others were written dispatched.
    assert_eq!(report.webhooks.events_dispatched, 2);
    assert_eq!(fx.app.engine().outbox_events(&fx.tenant).await.unwrap().len(), 6);
    assert_eq!((report.webhooks.deliveries_created, report.webhooks.delivered), (3, 3));

    let got = receiver.captured();
    let to_all: Vec<&Captured> = got.iter().filter(|c| c.signed_with(&secret)).collect();
    assert_eq!(
        to_all.iter().map(|c| c.event_type()).collect::<Vec<_>>(),
        ["instruction.processing", "instruction.settled"]
    );
    let settled = to_all[1];
    assert_eq!(settled.header("content-type"), "application/json");
    let body = settled.json();
    assert_eq!(settled.header("webhook-id"), body["eventId"].as_str().unwrap(), "webhook-id is the event id");
    let ts: i64 = settled.header("webhook-timestamp").parse().unwrap();
    assert!((ts - fx.app.now_ms() / 1000).abs() <= 5);
    assert!(settled.header("webhook-signature").starts_with("v1,"));
    assert_eq!(settled.header("webhook-signature").split(' ').count(), 1);
    // The body (SPEC §5.1).
    assert_eq!(body["eventType"], "instruction.settled");
    assert_eq!(body["tenantId"], fx.tenant.as_str());
    assert_eq!(body["accountId"], fx.app.account_id.as_str());
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["data"]["order"]["orderRef"], "o-1");
    assert_eq!(body["data"]["order"]["metadata"]["policy"], "P-o-1");
    assert_eq!(body["data"]["instruction"]["metadata"]["installment"], "1");
    assert_eq!(body["data"]["instruction"]["status"], "SETTLED");
    assert_eq!(body["data"]["scheme"]["schemeId"], fx.scheme.as_str());
    assert_eq!(body["data"]["scheme"]["code"], "PREM");
    assert!(body["data"]["scheme"]["draftId"].is_string());
    assert_eq!(body["data"]["transaction"]["status"], "SETTLED");

    // Verified by the independent implementation, and a tampered body is refused by it.
    for c in &to_all {
        python_verifies(&secret, c).unwrap();
    }
    let mut tampered = settled.clone();
    tampered.body = tampered.body.replace("SETTLED", "FAILED");
    assert!(python_verifies(&secret, &tampered).is_err());
    assert!(python_verifies(&signing::new_secret(), settled).is_err(), "another secret does not verify");

    // The filtered endpoint got only the settled event; nothing is sent twice.
    let filtered = fx.deliveries(&settled_only, "").await;
    assert_eq!(filtered.iter().map(|d| d["eventType"].as_str().unwrap()).collect::<Vec<_>>(), ["instruction.settled"]);
    assert_eq!(fx.app.tick().await.webhooks, Default::default());
    assert_eq!(receiver.captured().len(), 3);

    // Deliveries are listed with their attempts.
    let listed = fx.deliveries(&id, "").await;
    assert_eq!(listed.len(), 2);
    let d = &listed[0];
    assert_eq!((d["eventType"].as_str(), d["status"].as_str()), (Some("instruction.settled"), Some("SUCCEEDED")));
    assert_eq!(d["eventId"], body["eventId"]);
    assert_eq!(d["attempts"][0]["statusCode"], 200);
    assert_eq!(d["attempts"][0]["response"], "received");
    assert!(d["deliveredAt"].is_string());

    let metrics = fx.app.client.get(fx.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("baton_webhook_attempts_total{outcome=\"succeeded\"} 3"), "{metrics}");
    assert!(metrics.contains("baton_webhook_queue_depth 0"), "{metrics}");
    assert!(metrics.contains("baton_webhook_delivery_latency_seconds_count 3"), "{metrics}");
}

#[tokio::test]
async fn a_receiver_that_fails_then_goes_down_then_comes_back_gets_every_event_in_order() {
    let fx = Fx::new().await;
    let mut receiver = Receiver::start().await;
    let (id, secret) = fx.endpoint(&receiver.url(), PAYMENT_EVENTS).await;
    receiver.answer(500);
    fx.pay("o-1", "4242424242424242").await;
    fx.pay("o-2", "4242424242424242").await;
    let first = fx.app.tick().await;
    assert_eq!(first.webhooks.failed, 2, "one attempt per instruction: the later events wait behind the first");
    let waiting = fx.deliveries(&id, "?status=PENDING").await;
    assert_eq!(waiting.len(), 2);
    assert!(waiting.iter().all(|d| d["eventType"] == "instruction.settled"));
    let failed = fx.deliveries(&id, "?status=FAILED").await;
    assert_eq!(failed[0]["attempts"][0]["statusCode"], 500);
    assert!(failed[0]["nextAttemptAt"].is_string());
    // Not due yet: nothing is sent.
    assert_eq!(fx.app.tick().await.webhooks.failed, 0);

    // The receiver goes down: connections are refused.
    receiver.shut_down().await;
    for _ in 0..3 {
        fx.advance(HOUR).await;
        let tick = fx.app.tick().await;
        assert_eq!(tick.webhooks.delivered, 0);
    }
    let refused = fx.deliveries(&id, "?status=FAILED").await;
    let last = refused[0]["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["statusCode"], Value::Null);
    assert!(last["error"].as_str().unwrap().contains("connect"), "{last}");

    // Back up: everything arrives, in order per instruction, signed.
    receiver.restart().await;
    receiver.answer(200);
    for _ in 0..4 {
        fx.advance(HOUR).await;
        fx.app.tick().await;
    }
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), 4, "every event, once it got through");
    for order in ["o-1", "o-2"] {
        let types: Vec<String> = delivered
            .iter()
            .filter(|c| c.json()["data"]["order"]["orderRef"] == order)
            .map(Captured::event_type)
            .collect();
        assert_eq!(types, ["instruction.processing", "instruction.settled"], "{order}");
    }
    assert!(receiver.captured().iter().all(|c| c.signed_with(&secret)));
    // Every retry carried the same id and the same bytes as the first try.
    let first_try = &receiver.captured()[0];
    let again = delivered.iter().find(|c| c.header("webhook-id") == first_try.header("webhook-id")).unwrap();
    assert_eq!(again.body, first_try.body);
    assert!(fx.deliveries(&id, "").await.iter().all(|d| d["status"] == "SUCCEEDED"));
    let metrics = fx.app.client.get(fx.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("baton_webhook_attempts_total{outcome=\"http_error\"} 2"), "{metrics}");
    assert!(metrics.contains("baton_webhook_attempts_total{outcome=\"network_error\"}"), "{metrics}");
}

#[tokio::test]
async fn one_failing_endpoint_does_not_hold_up_another() {
    let fx = Fx::new().await;
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.answer(503);
    fx.endpoint(&bad.url(), PAYMENT_EVENTS).await;
    fx.endpoint(&good.url(), PAYMENT_EVENTS).await;
    fx.pay("o-1", "4242424242424242").await;
    fx.app.tick().await;
    assert_eq!(good.delivered().len(), 2);
    assert_eq!(bad.captured().len(), 1);
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_window_is_disabled_and_announced() {
    let fx = Fx::new().await;
    let admin = fx.app.admin_token().await;
    let account_receiver = Receiver::start().await;
    let reply = fx
        .app
        .post(
            "/v1/account/notifications/webhooks",
            &admin,
            &json!({ "url": account_receiver.url(), "events": ["webhook_endpoint.disabled"] }),
        )
        .await;
    reply.assert_status(201);
    let dead = Receiver::start().await;
    dead.answer(500);
    let (id, _) = fx.endpoint(&dead.url(), PAYMENT_EVENTS).await;
    fx.pay("o-1", "4242424242424242").await;
    fx.app.tick().await;
    let path = format!("/v1/notifications/webhooks/{id}");
    assert!(fx.app.get(&path, &fx.token()).await.body["failingSince"].is_string());

    // Retried for 72 hours (the longest wait between tries is 6 h, with jitter).
    let mut hours = 0;
    while hours < 64 {
        fx.advance(8 * HOUR).await;
        hours += 8;
        fx.app.tick().await;
        assert_eq!(fx.app.get(&path, &fx.token()).await.body["enabled"], true, "still retrying after {hours} h");
    }
    for _ in 0..3 {
        fx.advance(8 * HOUR).await;
        fx.app.tick().await;
    }
    let endpoint = fx.app.get(&path, &fx.token()).await.body;
    assert_eq!((endpoint["enabled"].as_bool(), endpoint["disabledReason"].as_str()), (Some(false), Some("FAILING")));
    let attempts = dead.captured().len();
    assert!((10..=25).contains(&attempts), "exponential backoff, then given up: {attempts} attempts");
    let deliveries = fx.deliveries(&id, "").await;
    let processing = deliveries.iter().find(|d| d["eventType"] == "instruction.processing").unwrap();
    assert_eq!(processing["status"], "DEAD");
    let settled = deliveries.iter().find(|d| d["eventType"] == "instruction.settled").unwrap();
    assert_eq!(settled["status"], "PENDING", "kept, not sent to a disabled endpoint");

    // The account hears about it.
    fx.app.tick().await;
    let got = account_receiver.delivered();
    assert_eq!(got.iter().map(Captured::event_type).collect::<Vec<_>>(), ["webhook_endpoint.disabled"]);
    let data = &got[0].json()["data"];
    assert_eq!(data["webhook"]["webhookId"], id.as_str());
    assert_eq!(data["reason"], "FAILING");
    // Nothing more goes to the disabled endpoint.
    fx.advance(8 * HOUR).await;
    fx.app.tick().await;
    assert_eq!(dead.captured().len(), attempts);

    // Enabled again by its owner, it resumes with what was left.
    dead.answer(200);
    let reply = fx.app.put(&path, &fx.token(), &json!({ "url": dead.url(), "events": ["*"], "enabled": true })).await;
    assert_eq!(reply.assert_status(200)["disabledReason"], Value::Null);
    fx.app.tick().await;
    assert_eq!(dead.delivered().iter().map(Captured::event_type).collect::<Vec<_>>(), ["instruction.settled"]);
}

// -- signatures and secrets -----------------------------------------------------------------------

#[tokio::test]
async fn a_rotated_secret_signs_next_to_the_old_one_during_the_overlap() {
    let fx = Fx::new().await;
    let receiver = Receiver::start().await;
    let (id, old) = fx.endpoint(&receiver.url(), &["*"]).await;
    let reply = fx.app.post(&format!("/v1/notifications/webhooks/{id}/rotate-secret"), &fx.token(), &json!({})).await;
    let body = reply.assert_status(200).clone();
    let new = body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(body["previousSecretExpiresAt"].is_string());

    fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await.assert_status(202);
    fx.app.tick().await;
    let ping = receiver.captured().pop().unwrap();
    assert_eq!(ping.header("webhook-signature").split(' ').count(), 2, "both signatures, space-separated");
    python_verifies(&new, &ping).unwrap();
    python_verifies(&old, &ping).unwrap();
    assert!(ping.signed_with(&new) && ping.signed_with(&old));

    // After the overlap (24 h by default) only the new secret signs.
    fx.advance(25 * HOUR).await;
    fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await.assert_status(202);
    fx.app.tick().await;
    let ping = receiver.captured().pop().unwrap();
    assert_eq!(ping.header("webhook-signature").split(' ').count(), 1);
    assert!(ping.signed_with(&new));
    assert!(!ping.signed_with(&old));

    // A rotation with no overlap retires the current secret at once.
    let reply = fx
        .app
        .post(&format!("/v1/notifications/webhooks/{id}/rotate-secret"), &fx.token(), &json!({ "overlapSeconds": 0 }))
        .await;
    let newest = reply.assert_status(200)["secret"].as_str().unwrap().to_string();
    fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await.assert_status(202);
    fx.app.tick().await;
    let ping = receiver.captured().pop().unwrap();
    assert!(ping.signed_with(&newest) && !ping.signed_with(&new));
}

#[tokio::test]
async fn secrets_are_stored_sealed() {
    let fx = Fx::new().await;
    let (_, secret) = fx.endpoint("http://localhost:9/x", &["*"]).await;
    let stored = fx.app.data_dir.path().join("baton.db");
    if stored.exists() {
        let bytes = std::fs::read(&stored).unwrap();
        let needle = secret.as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the secret is not in the database file");
        let key = &secret.as_bytes()[6..];
        assert!(!bytes.windows(key.len()).any(|w| w == key));
    }
}

// -- ping, redelivery, listing --------------------------------------------------------------------

#[tokio::test]
async fn ping_redeliver_and_delivery_search() {
    let fx = Fx::new().await;
    let receiver = Receiver::start().await;
    let (id, secret) = fx.endpoint(&receiver.url(), &["instruction.settled"]).await;
    let reply = fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await;
    let queued = reply.assert_status(202).clone();
    assert_eq!((queued["eventType"].as_str(), queued["status"].as_str()), (Some("ping"), Some("PENDING")));
    fx.app.tick().await;
    let ping = receiver.captured().pop().unwrap();
    assert_eq!(ping.event_type(), "ping");
    assert_eq!(ping.json()["data"]["webhookId"], id.as_str());
    python_verifies(&secret, &ping).unwrap();

    fx.pay("o-1", "4242424242424242").await;
    fx.app.tick().await;
    let settled = receiver.captured().pop().unwrap();

    // Search by event type, status and time.
    assert_eq!(fx.deliveries(&id, "").await.len(), 2);
    let pings = fx.deliveries(&id, "?eventType=ping").await;
    assert_eq!(pings.len(), 1);
    assert_eq!(fx.deliveries(&id, "?eventType=instruction.settled&status=SUCCEEDED").await.len(), 1);
    assert!(fx.deliveries(&id, "?status=DEAD").await.is_empty());
    assert!(fx.deliveries(&id, "?from=2999-01-01").await.is_empty());
    assert_eq!(fx.deliveries(&id, "?to=2999-01-01T00:00:00Z&limit=1").await.len(), 1);
    let path = format!("/v1/notifications/webhooks/{id}/deliveries");
    fx.app.get(&format!("{path}?status=LOST"), &fx.token()).await.assert_error(400, "INVALID_STATUS");
    fx.app.get(&format!("{path}?eventType=nope"), &fx.token()).await.assert_error(400, "UNKNOWN_EVENT_TYPE");
    fx.app.get(&format!("{path}?from=yesterday"), &fx.token()).await.assert_error(400, "INVALID_DATE");

    // Redelivery: the same id and the same bytes, at the next round.
    let delivery_id =
        fx.deliveries(&id, "?eventType=instruction.settled").await[0]["deliveryId"].as_str().unwrap().to_string();
    let reply = fx
        .app
        .post(&format!("/v1/notifications/webhooks/deliveries/{delivery_id}/redeliver"), &fx.token(), &json!({}))
        .await;
    reply.assert_status(202);
    fx.app.tick().await;
    let again = receiver.captured().pop().unwrap();
    assert_eq!(again.header("webhook-id"), settled.header("webhook-id"));
    assert_eq!(again.body, settled.body);
    python_verifies(&secret, &again).unwrap();
    let listed = fx.deliveries(&id, "?eventType=instruction.settled").await;
    assert_eq!(listed[0]["attempts"].as_array().unwrap().len(), 2);

    // Someone else's or an unknown delivery is not found.
    let unknown = uuid::Uuid::new_v4();
    fx.app
        .post(&format!("/v1/notifications/webhooks/deliveries/{unknown}/redeliver"), &fx.token(), &json!({}))
        .await
        .assert_error(404, "DELIVERY_NOT_FOUND");
    let admin = fx.app.admin_token().await;
    let other = fx.app.create_tenant(&admin, "Other tenant").await;
    let other_token = fx.app.token(&fx.app.create_tenant_key(&admin, &other, &["tenant-admin"]).await).await;
    fx.app
        .post(&format!("/v1/notifications/webhooks/deliveries/{delivery_id}/redeliver"), &other_token, &json!({}))
        .await
        .assert_error(404, "DELIVERY_NOT_FOUND");
    fx.app.get(&path, &other_token).await.assert_error(404, "WEBHOOK_NOT_FOUND");
}

#[tokio::test]
async fn the_event_catalog_lists_every_type_with_an_example() {
    let fx = Fx::new().await;
    let reply = fx.app.get("/v1/notifications/event-types", &fx.token()).await;
    let list = reply.assert_status(200).as_array().unwrap().clone();
    let types: Vec<&str> = list.iter().map(|t| t["eventType"].as_str().unwrap()).collect();
    for expected in ["instruction.settled", "instruction.missed", "refund.settled", "chargeback.opened", "ping"] {
        assert!(types.contains(&expected), "{expected}");
    }
    assert_eq!(types.len(), baton_domain::EventType::ALL.len());
    let approval = list.iter().find(|t| t["eventType"] == "tenant.approval_requested").unwrap();
    assert_eq!(approval["scope"], "ACCOUNT");
    let settled = list.iter().find(|t| t["eventType"] == "instruction.settled").unwrap();
    assert_eq!(settled["scope"], "TENANT");
    for key in ["eventId", "eventType", "createdAt", "accountId", "tenantId", "data"] {
        assert!(settled["example"].get(key).is_some(), "{key}");
    }
    assert!(settled["example"]["data"]["order"]["metadata"].is_object());
    let admin = fx.app.admin_token().await;
    fx.app.get("/v1/notifications/event-types", &admin).await.assert_status(200);
    let doc = fx.app.client.get(fx.app.url("/v1/openapi.json")).send().await.unwrap().text().await.unwrap();
    assert!(doc.contains("/v1/notifications/event-types") && doc.contains("EventTypeDto"));
}

// -- safety -----------------------------------------------------------------------------------------

#[tokio::test]
async fn production_endpoints_must_be_https_and_public() {
    let fx = Fx::with(Options { environment: Environment::Production, ..Default::default() }).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.7/hook",
        "https://192.168.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
    ] {
        let reply =
            fx.app.post("/v1/notifications/webhooks", &fx.token(), &json!({ "url": url, "events": ["*"] })).await;
        reply.assert_error(400, "URL_NOT_ALLOWED");
    }
    // A public address is taken; if its host is later pointed at an internal address the
    // delivery is refused when connecting, and nothing is sent.
    let (id, _) = fx.endpoint("https://93.184.216.34/hook", &["*"]).await;
    let receiver = Receiver::start().await;
    let url = format!("https://localhost:{}/hook", receiver.addr.port());
    fx.app.execute_sql(&format!("UPDATE webhook_endpoints SET url = '{url}' WHERE endpoint_id = '{id}'")).await;
    fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await.assert_status(202);
    fx.app.tick().await;
    assert!(receiver.captured().is_empty());
    let ping = &fx.deliveries(&id, "?eventType=ping").await[0];
    assert!(ping["attempts"][0]["error"].as_str().unwrap().contains("may not reach"), "{ping}");
    let metrics = fx.app.client.get(fx.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("baton_webhook_attempts_total{outcome=\"blocked\"} 1"), "{metrics}");
}

/// Link-local and metadata addresses, spelt every way an IPv6 address can carry them.
const METADATA_URLS: &[&str] = &[
    "https://169.254.169.254/latest/meta-data",
    "https://169.254.170.2/v2/credentials",
    "https://169.254.169.253/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::]/",
    "https://[2001:0:4136:e378:8000:63bf:5601:5601]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[fe80::a9fe:a9fe]/",
];

#[tokio::test]
async fn link_local_and_metadata_addresses_are_refused_in_every_environment_however_spelt() {
    for environment in [Environment::Sandbox, Environment::Production] {
        let fx = Fx::with(Options { environment, ..Default::default() }).await;
        for url in METADATA_URLS {
            let reply =
                fx.app.post("/v1/notifications/webhooks", &fx.token(), &json!({ "url": url, "events": ["*"] })).await;
            reply.assert_error(400, "URL_NOT_ALLOWED");
        }
        let list = fx.app.get("/v1/notifications/webhooks", &fx.token()).await;
        assert_eq!(list.assert_status(200).as_array().map(Vec::len), Some(0), "nothing saved: {}", list.text);
    }
}

#[tokio::test]
async fn production_refuses_internal_ipv4_behind_ipv6_prefixes() {
    let fx = Fx::with(Options { environment: Environment::Production, ..Default::default() }).await;
    for url in [
        "https://[::7f00:1]/hook",
        "https://[2002:7f00:1::]/hook",
        "https://[2002:c0a8:101::]/hook",
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
        "https://[::ffff:10.0.0.1]/hook",
    ] {
        let reply =
            fx.app.post("/v1/notifications/webhooks", &fx.token(), &json!({ "url": url, "events": ["*"] })).await;
        reply.assert_error(400, "URL_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn a_stored_mapped_metadata_address_is_refused_when_delivering() {
    let fx = Fx::new().await;
    let (id, _) = fx.endpoint("http://localhost:9/hook", &["*"]).await;
    let url = "http://[::ffff:a9fe:a9fe]/latest/meta-data";
    fx.app.execute_sql(&format!("UPDATE webhook_endpoints SET url = '{url}' WHERE endpoint_id = '{id}'")).await;
    fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await.assert_status(202);
    fx.app.tick().await;
    let ping = &fx.deliveries(&id, "?eventType=ping").await[0];
    assert_eq!(ping["attempts"][0]["error"], "the endpoint's address is not one webhooks may reach", "{ping}");
    assert_eq!(ping["status"], "DEAD", "a refused address is not retried: {ping}");
}

#[tokio::test]
async fn the_operator_allow_list_admits_internal_receivers_in_production() {
    let options = Options {
        environment: Environment::Production,
        webhook_allowed_hosts: vec!["127.0.0.0/8".into()],
        ..Default::default()
    };
    let fx = Fx::with(options).await;
    let reply = fx
        .app
        .post(
            "/v1/notifications/webhooks",
            &fx.token(),
            &json!({ "url": "https://127.0.0.1:8443/hook", "events": ["*"] }),
        )
        .await;
    reply.assert_status(201);
    // https is still required.
    let reply = fx
        .app
        .post(
            "/v1/notifications/webhooks",
            &fx.token(),
            &json!({ "url": "http://127.0.0.1:8443/hook", "events": ["*"] }),
        )
        .await;
    reply.assert_error(400, "URL_NOT_ALLOWED");
    let reply = fx
        .app
        .post("/v1/notifications/webhooks", &fx.token(), &json!({ "url": "https://10.0.0.1/hook", "events": ["*"] }))
        .await;
    reply.assert_error(400, "URL_NOT_ALLOWED");
}

#[tokio::test]
async fn redirects_are_not_followed_and_huge_answers_are_cut() {
    let fx = Fx::new().await;
    // A receiver that redirects, and one that answers 2 MB.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(Vec::<String>::new()));
    let h = hits.clone();
    let app = axum::Router::new()
        .route(
            "/redirect",
            axum::routing::post(move || {
                let h = h.clone();
                async move {
                    h.lock().unwrap().push("redirect".into());
                    (StatusCode::TEMPORARY_REDIRECT, [("location", "/target")], "")
                }
            }),
        )
        .route(
            "/target",
            axum::routing::post({
                let h = hits.clone();
                move || {
                    let h = h.clone();
                    async move {
                        h.lock().unwrap().push("target".into());
                        "ok"
                    }
                }
            }),
        )
        .route("/huge", axum::routing::post(|| async { "x".repeat(2 * 1024 * 1024) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (redirecting, _) = fx.endpoint(&format!("http://{addr}/redirect"), &["*"]).await;
    let (huge, _) = fx.endpoint(&format!("http://{addr}/huge"), &["*"]).await;
    for id in [&redirecting, &huge] {
        fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await.assert_status(202);
    }
    fx.app.tick().await;
    assert_eq!(*hits.lock().unwrap(), ["redirect"], "the redirect is not followed");
    let d = &fx.deliveries(&redirecting, "").await[0];
    assert_eq!((d["status"].as_str(), d["attempts"][0]["statusCode"].as_i64()), (Some("DEAD"), Some(307)));
    let d = &fx.deliveries(&huge, "").await[0];
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["attempts"][0]["response"].as_str().unwrap().len(), baton_engine::webhooks::RESPONSE_KEPT);
}

#[tokio::test]
async fn webhook_secrets_follow_a_master_key_rotation() {
    let mut fx = Fx::new().await;
    let receiver = Receiver::start().await;
    let (id, old) = fx.endpoint(&receiver.url(), &["*"]).await;
    let reply = fx.app.post(&format!("/v1/notifications/webhooks/{id}/rotate-secret"), &fx.token(), &json!({})).await;
    let new = reply.assert_status(200)["secret"].as_str().unwrap().to_string();

    let (new_key, new_text) = baton_vault::MasterKey::generate();
    let report = fx.app.engine().rotate_master_key(&new_key, 10).await.unwrap();
    assert!(report.complete);
    // Admin key, tenant key, signing key, and the endpoint's current and previous secrets.
    assert_eq!(report.resealed, 5, "{report:?}");
    fx.app.node.take().unwrap().shutdown().await.unwrap();
    let mut config = fx.app.config.clone();
    config.store.master_key = baton::config::MasterKeySource::Inline(new_text);
    let node = baton::node::start(config.clone(), fx.app.clock.clone()).await.unwrap();
    fx.app.base = format!("http://{}", node.addr);
    fx.app.config = config;
    fx.app.node = Some(node);

    fx.advance(Duration::from_secs(1)).await;
    fx.app.post(&format!("/v1/notifications/webhooks/{id}/test"), &fx.token(), &json!({})).await.assert_status(202);
    fx.app.tick().await;
    let ping = receiver.delivered().pop().expect("delivered after the rotation");
    python_verifies(&new, &ping).unwrap();
    python_verifies(&old, &ping).unwrap();
}

#[tokio::test]
async fn a_node_dying_between_sending_and_recording_causes_one_redelivery_with_the_same_id() {
    let fx = Fx::new().await;
    let receiver = Receiver::start().await;
    let (id, secret) = fx.endpoint(&receiver.url(), &["instruction.settled"]).await;
    fx.pay("o-1", "4242424242424242").await;
    fx.app.tick().await;
    let first = receiver.delivered().pop().unwrap();
    // As if the node had sent it and died before recording: still claimed by it, not done.
    let leased_until = fx.app.now_ms() + 300_000;
    fx.app
        .execute_sql(&format!(
            "UPDATE webhook_deliveries SET status = 'PENDING', attempts = 0, delivered_at = NULL, \
             locked_until = {leased_until} WHERE endpoint_id = '{id}'"
        ))
        .await;
    fx.app.tick().await;
    assert_eq!(receiver.captured().len(), 1, "the dead node's lease still holds it");
    fx.advance(Duration::from_secs(301)).await;
    fx.app.tick().await;
    let all = receiver.delivered();
    assert_eq!(all.len(), 2, "sent again once the lease lapsed");
    assert_eq!(all[1].header("webhook-id"), first.header("webhook-id"), "the receiver can de-duplicate");
    assert_eq!(all[1].body, first.body);
    assert!(all[1].signed_with(&secret));
    assert_eq!(fx.deliveries(&id, "").await[0]["status"], "SUCCEEDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_node_delivers_on_its_own() {
    let fx = Fx::with(Options { worker_interval: Some(Duration::from_secs(3600)), ..Default::default() }).await;
    let receiver = Receiver::start().await;
    let (_, secret) = fx.endpoint(&receiver.url(), PAYMENT_EVENTS).await;
    fx.pay("o-1", "4242424242424242").await;
    receiver.wait_for(2).await;
    let got = receiver.captured();
    assert_eq!(
        got.iter().map(Captured::event_type).collect::<Vec<_>>(),
        ["instruction.processing", "instruction.settled"]
    );
    for c in &got {
        python_verifies(&secret, c).unwrap();
    }
}

#[tokio::test]
async fn a_tenant_awaiting_approval_is_announced_to_account_endpoints() {
    let fx = Fx::new().await;
    let admin = fx.app.admin_token().await;
    let receiver = Receiver::start().await;
    let body = json!({ "url": receiver.url(), "events": ["tenant.approval_requested"] });
    fx.app.post("/v1/account/notifications/webhooks", &admin, &body).await.assert_status(201);
    // Approval needs someone holding the approval role.
    fx.app.create_account_key(&admin, &["account-tenant-approval"]).await;
    let approval = json!({ "billingContactFirstName": "Ada", "billingContactLastName": "Lovelace",
        "tenantCreationRequiresApproval": true });
    fx.app.put("/v1/account", &admin, &approval).await.assert_status(200);
    let pending = fx.app.create_tenant(&admin, "Waiting tenant").await;
    fx.app.tick().await;
    let got = receiver.captured();
    assert_eq!(got.iter().map(Captured::event_type).collect::<Vec<_>>(), ["tenant.approval_requested"]);
    let event = got[0].json();
    assert_eq!(event["data"]["tenant"]["tenantId"], pending.as_str());
    assert_eq!(event["data"]["tenant"]["status"], "PENDING_APPROVAL");
    assert_eq!(event["accountId"], fx.app.account_id.as_str());
}
