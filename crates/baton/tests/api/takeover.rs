//! What a node holds is taken over within seconds when it dies, and never while it
//! lives: an idempotency key whose request still runs, an attempt waiting for its PSP, a
//! webhook delivery waiting for its receiver. Two nodes share one database; the doomed
//! one's clock stops when it "dies", so its heartbeat stops moving, which is all the
//! others can see of a crash. Time is the test's manual clock, moved rather than waited
//! for. (`tests/api/crash.rs` kills a real process.)

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use baton::node::RunningNode;
use baton_connectors::{
    AppDescriptor, CallContext, Connector, ConnectorError, Connectors, Outcome, PaymentRequest, SyncRequest,
};
use baton_engine::{Clock, ManualClock};
use common::{Options, Payments, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Notify;

const VISA: &str = "4242424242424242";
/// Longer than a node may be silent before it is taken for dead.
const SILENCE_OF_THE_DEAD: Duration = Duration::from_secs(6);
/// Shorter than that.
const SILENCE_OF_THE_LIVING: Duration = Duration::from_secs(4);

/// A node's clock: the test's clock until the node dies, then standing still.
struct DyingClock {
    shared: Arc<ManualClock>,
    /// 0 while alive.
    died_at: AtomicI64,
}

impl DyingClock {
    fn die(&self) {
        self.died_at.store(self.shared.now_ms(), Ordering::SeqCst);
    }
}

impl Clock for DyingClock {
    fn now_ms(&self) -> i64 {
        match self.died_at.load(Ordering::SeqCst) {
            0 => self.shared.now_ms(),
            at => at,
        }
    }
}

/// A card PSP keeping its charges by idempotency key, as real PSPs do; with `hang` it
/// charges and answers only once released (or never). Its sync answers from the same
/// ledger.
#[derive(Clone, Default)]
struct LedgerPsp {
    charges: Arc<Mutex<BTreeMap<String, i64>>>,
    charged: Arc<Notify>,
    hang: bool,
    release: Arc<Notify>,
    /// Told when a hanging call is dropped before it was released.
    cut_off: Arc<Notify>,
}

/// Tells `cut_off` when dropped while still armed.
struct CutOff(Option<Arc<Notify>>);

impl Drop for CutOff {
    fn drop(&mut self) {
        if let Some(cut_off) = self.0.take() {
            cut_off.notify_one();
        }
    }
}

#[async_trait]
impl Connector for LedgerPsp {
    fn descriptor(&self) -> &'static AppDescriptor {
        &baton_connectors::sandbox_card::DESCRIPTOR
    }

    async fn debit(&self, _ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        self.charges.lock().unwrap().entry(request.idempotency_key.to_string()).or_insert(request.amount_minor);
        if self.hang {
            let mut armed = CutOff(Some(self.cut_off.clone()));
            self.charged.notify_one();
            self.release.notified().await;
            armed.0 = None;
        }
        Ok(Outcome::Succeeded { provider_reference: format!("ledger_{}", request.idempotency_key), result: None })
    }

    async fn sync(&self, _ctx: &CallContext<'_>, request: &SyncRequest<'_>) -> Result<Outcome, ConnectorError> {
        let key = request.payment.idempotency_key;
        Ok(match self.charges.lock().unwrap().get(key) {
            Some(_) => Outcome::Succeeded { provider_reference: format!("ledger_{key}"), result: None },
            None => Outcome::Failed {
                decline: baton_domain::Decline::new(baton_domain::DeclineCategory::Technical),
                provider_reference: None,
            },
        })
    }
}

/// A survivor (the test app's node, whose PSP answers) and a doomed node on the same
/// database, whose PSP charges and never answers and whose clock stops when it dies.
struct Cluster {
    fx: Payments,
    psp: LedgerPsp,
    doomed: RunningNode,
    dying: Arc<DyingClock>,
}

impl Cluster {
    async fn new() -> Self {
        let psp = LedgerPsp::default();
        let mut answering = Connectors::standard();
        answering.insert(Arc::new(psp.clone()));
        let fx =
            Payments::with_options(Options { connectors: answering, accept_raw_card_data: true, ..Options::default() })
                .await;
        let dying = Arc::new(DyingClock { shared: fx.app.clock.clone(), died_at: AtomicI64::new(0) });
        let mut hanging = Connectors::standard();
        hanging.insert(Arc::new(LedgerPsp { hang: true, ..psp.clone() }));
        let doomed = baton::node::start_with(fx.app.config.clone(), dying.clone(), hanging).await.unwrap();
        Self { fx, psp, doomed, dying }
    }

    fn advance(&self, by: Duration) {
        self.fx.app.clock.advance(by);
    }

    /// `POST …/execute` of order `order_ref` on the node at `addr`, with `key` if given.
    fn execute_on(
        &self,
        addr: std::net::SocketAddr,
        order_ref: &str,
        key: Option<&str>,
    ) -> impl std::future::Future<Output = Reply> + Send + 'static {
        let url = format!("http://{addr}/v1/order-management/{order_ref}/instruction/I1/execute");
        let mut request = self.fx.app.client.post(url).bearer_auth(&self.fx.token).json(&json!({}));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move { common::read(request.send().await.expect("request sent")).await }
    }

    /// The survivor's execute.
    async fn execute(&self, order_ref: &str, key: &str) -> Reply {
        self.execute_on(self.fx.app.addr, order_ref, Some(key)).await
    }

    async fn instruction(&self, order_ref: &str) -> Value {
        let reply = self.fx.app.get(&format!("/v1/order-management/{order_ref}/instruction/I1"), &self.fx.token).await;
        reply.assert_status(200).clone()
    }

    async fn attempts(&self, order_ref: &str) -> Vec<Value> {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/transactions");
        self.fx.app.get(&path, &self.fx.token).await.assert_status(200).as_array().unwrap().clone()
    }

    /// Sends an execution to the doomed node, which charges at the PSP and then hangs.
    async fn execute_on_doomed(&self, order_ref: &str, key: Option<&str>) -> tokio::task::JoinHandle<Reply> {
        let charged = self.psp.charged.notified();
        let hung = tokio::spawn(self.execute_on(self.doomed.addr, order_ref, key));
        charged.await;
        hung
    }
}

#[tokio::test]
async fn a_retry_takes_an_idempotency_key_over_within_seconds_of_its_nodes_death_and_never_before() {
    let c = Cluster::new().await;
    c.fx.order("o-1", VISA, "10.00").await;
    let first = c.execute_on_doomed("o-1", Some("key-1")).await;

    // While its node lives the request is its own, however long it runs.
    c.execute("o-1", "key-1").await.assert_error(409, "IDEMPOTENCY_REQUEST_IN_PROGRESS");
    c.advance(Duration::from_secs(600));
    c.doomed.engine.heartbeat().await.unwrap();
    c.execute("o-1", "key-1").await.assert_error(409, "IDEMPOTENCY_REQUEST_IN_PROGRESS");

    // The node dies. Seconds later a retry takes the key over, and answers with the
    // execution the cut-off try started instead of refusing to execute it again.
    c.dying.die();
    c.advance(SILENCE_OF_THE_LIVING);
    c.execute("o-1", "key-1").await.assert_error(409, "IDEMPOTENCY_REQUEST_IN_PROGRESS");
    c.advance(SILENCE_OF_THE_DEAD - SILENCE_OF_THE_LIVING);
    let retry = c.execute("o-1", "key-1").await;
    assert_eq!(retry.assert_status(202)["status"], "PROCESSING");
    assert_eq!(retry.header("idempotent-replayed"), None);

    // The attempt the dead node left is synced at once, not charged again.
    let report = c.fx.app.tick().await;
    assert_eq!((report.stale_attempts, report.jobs_run), (1, 1));
    assert_eq!(c.instruction("o-1").await["status"], "SETTLED");
    assert_eq!(c.attempts("o-1").await.len(), 1);
    assert_eq!(c.psp.charges.lock().unwrap().len(), 1, "charged once");
    // From now on the key replays the retry's answer.
    let again = c.execute("o-1", "key-1").await;
    assert_eq!((again.status.as_u16(), again.header("idempotent-replayed")), (202, Some("true")));
    first.abort();
    c.doomed.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idempotent_request_runs_to_its_end_when_its_client_hangs_up() {
    let c = Cluster::new().await;
    c.fx.order("o-1", VISA, "10.00").await;
    let client = c.execute_on_doomed("o-1", Some("key-1")).await;
    // The client gives up while the PSP is still being called.
    let cut_off = c.psp.cut_off.notified();
    client.abort();
    let cut = tokio::time::timeout(Duration::from_millis(300), cut_off).await.is_ok();
    assert!(!cut, "the request was cut off with its connection");
    // It goes on to its end and stores its answer, which the client's retry then gets.
    c.psp.release.notify_one();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let reply = c.execute_on(c.doomed.addr, "o-1", Some("key-1")).await;
        if reply.code() != "IDEMPOTENCY_REQUEST_IN_PROGRESS" || std::time::Instant::now() > deadline {
            break reply;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(reply.assert_status(200)["status"], "SETTLED");
    assert_eq!(reply.header("idempotent-replayed"), Some("true"));
    assert_eq!(c.psp.charges.lock().unwrap().len(), 1, "charged once");
    c.doomed.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_order_created_by_a_try_cut_off_by_its_nodes_death_is_answered_by_the_retry() {
    let c = Cluster::new().await;
    let fi = c.fx.card("C1", VISA).await;
    let order = json!({ "orderRef": "o-1", "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "financialInstrumentId": fi,
        "schemeId": c.fx.scheme, "amount": "10.00", "currency": "EUR", "country": "DE" }] });
    let key = [("idempotency-key", "order-key")];
    // As if the doomed node had created the order and died before storing its answer:
    // the claim is its own, unfinished, and the order exists.
    let created = c.fx.app.send(Method::POST, "/v1/order-management", Some(&c.fx.token), &key, Some(&order)).await;
    created.assert_status(202);
    let node = c.doomed.engine.node_id().to_string();
    c.fx.app
        .execute_sql(&format!(
            "UPDATE idempotency_keys SET completed = FALSE, response_status = NULL, response_headers = NULL, \
             response_body = NULL, node_id = '{node}' WHERE idempotency_key = 'order-key'"
        ))
        .await;
    let retry = || c.fx.app.send(Method::POST, "/v1/order-management", Some(&c.fx.token), &key, Some(&order));
    retry().await.assert_error(409, "IDEMPOTENCY_REQUEST_IN_PROGRESS");

    c.dying.die();
    c.advance(SILENCE_OF_THE_DEAD);
    let answered = retry().await;
    let body = answered.assert_status(202);
    assert_eq!(body["orderRef"], "o-1");
    assert_eq!(body["instructions"][0]["instructionRef"], "I1");
    assert_eq!(answered.header("location"), created.header("location"));
    assert_eq!(retry().await.header("idempotent-replayed"), Some("true"));
    c.doomed.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_attempt_left_by_a_dead_node_is_synced_within_seconds_and_a_live_nodes_is_left_alone() {
    let c = Cluster::new().await;
    c.fx.order("o-1", VISA, "10.00").await;
    let hung = c.execute_on_doomed("o-1", None).await;
    assert_eq!(c.instruction("o-1").await["status"], "PROCESSING");

    // The node lives and waits for its PSP: nobody else asks what became of the attempt.
    c.advance(Duration::from_secs(30));
    c.doomed.engine.heartbeat().await.unwrap();
    assert_eq!(c.fx.app.tick().await.stale_attempts, 0);

    // It dies: seconds later the survivor syncs the attempt, which settles, charged once.
    c.dying.die();
    c.advance(SILENCE_OF_THE_LIVING);
    assert_eq!(c.fx.app.tick().await.stale_attempts, 0);
    c.advance(SILENCE_OF_THE_DEAD - SILENCE_OF_THE_LIVING);
    let report = c.fx.app.tick().await;
    assert_eq!((report.stale_attempts, report.jobs_run), (1, 1));
    assert_eq!(c.instruction("o-1").await["status"], "SETTLED");
    assert_eq!(c.attempts("o-1").await.len(), 1);
    assert_eq!(c.psp.charges.lock().unwrap().len(), 1, "charged once");
    hung.abort();
    c.doomed.shutdown().await.unwrap();
}

/// A webhook receiver that holds the first delivery until released.
#[derive(Clone, Default)]
struct SlowReceiver {
    received: Arc<Mutex<Vec<(String, String)>>>,
    holding: Arc<AtomicBool>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
}

impl SlowReceiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let this = self.clone();
        let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let this = this.clone();
            async move {
                let event: Value = serde_json::from_slice(&body).unwrap();
                let id = headers.get("webhook-id").unwrap().to_str().unwrap().to_string();
                this.received.lock().unwrap().push((event["eventType"].as_str().unwrap().to_string(), id));
                this.arrived.notify_one();
                if !this.holding.swap(true, Ordering::SeqCst) {
                    this.release.notified().await;
                }
                "ok"
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/hook")
    }

    fn received(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_dead_nodes_webhook_delivery_goes_out_within_seconds_and_a_live_nodes_is_never_sent_twice() {
    let c = Cluster::new().await;
    let receiver = SlowReceiver::default();
    let url = receiver.start().await;
    let events = json!({ "url": url, "events": ["instruction.processing", "instruction.settled"] });
    let endpoint = c.fx.app.post("/v1/notifications/webhooks", &c.fx.token, &events).await;
    let endpoint = endpoint.assert_status(201)["webhookId"].as_str().unwrap().to_string();
    c.fx.settled("o-1", VISA, "10.00").await;

    // The doomed node sends `instruction.processing`; the receiver takes its time.
    let arrived = receiver.arrived.notified();
    let engine = c.doomed.engine.clone();
    let sending = tokio::spawn(async move { engine.deliver_webhooks().await.unwrap() });
    arrived.await;

    // Alive: however slow the receiver, the delivery is not sent again by the survivor,
    // and the settled event waits behind it.
    c.advance(Duration::from_secs(30));
    c.doomed.engine.heartbeat().await.unwrap();
    assert_eq!(c.fx.app.engine().deliver_webhooks().await.unwrap().delivered, 0);
    assert_eq!(receiver.received().len(), 1);

    // It dies with the send in flight: seconds later the survivor sends it again (same
    // webhook-id, so the receiver can de-duplicate), then the settled event.
    c.dying.die();
    c.advance(SILENCE_OF_THE_LIVING);
    assert_eq!(c.fx.app.engine().deliver_webhooks().await.unwrap().delivered, 0);
    c.advance(SILENCE_OF_THE_DEAD - SILENCE_OF_THE_LIVING);
    assert_eq!(c.fx.app.engine().deliver_webhooks().await.unwrap().delivered, 2);
    let got = receiver.received();
    let types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["instruction.processing", "instruction.processing", "instruction.settled"]);
    assert_eq!(got[0].1, got[1].1);

    // The dead node's send, answered late, changes nothing.
    receiver.release.notify_one();
    sending.await.unwrap();
    let deliveries = c.fx.app.get(&format!("/v1/notifications/webhooks/{endpoint}/deliveries"), &c.fx.token).await;
    let deliveries = deliveries.assert_status(200).as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d["status"] == "SUCCEEDED"), "{deliveries:?}");
    assert_eq!(receiver.received().len(), 3);
    c.doomed.shutdown().await.unwrap();
}
