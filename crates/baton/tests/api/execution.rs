//! Executing instructions through the sandbox PSPs: routing, outcomes and their decline
//! codes, asynchronous bank settlement, the scheduler, concurrency and crash recovery.

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use baton_connectors::{
    AppDescriptor, CallContext, Connector, ConnectorError, Connectors, Outcome, PaymentRequest, SyncRequest,
};
use common::{Options, Reply, TestApp};
use serde_json::{json, Value};
use tokio::sync::Notify;

const CUSTOMER: &str = "cust-1";

/// A node whose tenant has SANDBOX_CARD and SANDBOX_BANK installed and a published
/// collect scheme routing cards to the first and mandates to the second.
struct Fx {
    app: TestApp,
    token: String,
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
        let tenant = app.create_tenant(&admin, "Execution tenant").await;
        let key = app
            .create_tenant_key(
                &admin,
                &tenant,
                &["tenant-admin", "tenant-transaction-write", "tenant-transaction-read"],
            )
            .await;
        let token = app.token(&key).await;
        for id in ["SANDBOX_CARD", "SANDBOX_BANK"] {
            let reply = app
                .send(reqwest::Method::POST, &format!("/v1/marketplace/apps/{id}/install"), Some(&token), &[], None)
                .await;
            reply.assert_status(200);
        }
        let rules = json!([{ "priority": 1, "currencies": [], "countries": [],
            "apps": [{ "appId": "SANDBOX_CARD", "priority": 1 }, { "appId": "SANDBOX_BANK", "priority": 2 }] }]);
        let reply = app
            .post("/v1/schemes/collect", &token, &json!({ "name": "Premiums", "code": "PREM", "rules": rules }))
            .await;
        let scheme = reply.assert_status(201).clone();
        let scheme_id = scheme["schemeId"].as_str().unwrap().to_string();
        let draft = scheme["drafts"][0]["draftId"].as_str().unwrap();
        app.post(&format!("/v1/schemes/collect/{scheme_id}/drafts/{draft}/publish"), &token, &json!({}))
            .await
            .assert_status(200);
        Self { app, token, tenant, scheme: scheme_id }
    }

    async fn instrument(&self, body: Value) -> String {
        let reply =
            self.app.post(&format!("/v1/customer-vault/{CUSTOMER}/financial-instruments"), &self.token, &body).await;
        reply.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string()
    }

    async fn card(&self, number: &str) -> String {
        self.instrument(json!({ "type": "CARD", "details": {
            "cardNumber": number, "expiryMonth": 12, "expiryYear": 2030, "cardholderName": "Jane Doe" } }))
            .await
    }

    async fn mandate(&self, iban: &str) -> String {
        self.instrument(json!({ "type": "DIRECT_DEBIT_MANDATE", "details": {
            "mandateReference": "MANDATE-1", "accountHolderName": "Jane Doe", "iban": iban,
            "signedDate": "2026-01-15", "scheme": "SEPA" } }))
            .await
    }

    /// An order `order_ref` with one DEBIT instruction `i1` of 49.90 EUR.
    async fn order(&self, order_ref: &str, instrument: Option<&str>, settled_by: Option<&str>) {
        let mut instruction = json!({ "instructionRef": "i1", "customerRef": CUSTOMER, "direction": "DEBIT",
            "amount": "49.90", "currency": "EUR", "country": "DE", "schemeId": self.scheme });
        if let Some(fi) = instrument {
            instruction["financialInstrumentId"] = json!(fi);
        }
        if let Some(date) = settled_by {
            instruction["settledByDate"] = json!(date);
        }
        let body = json!({ "orderRef": order_ref, "instructions": [instruction] });
        self.app.post("/v1/order-management", &self.token, &body).await.assert_status(202);
    }

    async fn execute(&self, order_ref: &str) -> Reply {
        let path = format!("/v1/order-management/{order_ref}/instruction/i1/execute");
        self.app.post(&path, &self.token, &json!({})).await
    }

    async fn instruction(&self, order_ref: &str) -> Value {
        let reply = self.app.get(&format!("/v1/order-management/{order_ref}/instruction/i1"), &self.token).await;
        reply.assert_status(200).clone()
    }

    async fn transactions(&self, order_ref: &str) -> Vec<Value> {
        let reply =
            self.app.get(&format!("/v1/order-management/{order_ref}/instruction/i1/transactions"), &self.token).await;
        reply.assert_status(200).as_array().unwrap().clone()
    }

    async fn instrument_state(&self, fi: &str) -> String {
        let path = format!("/v1/customer-vault/{CUSTOMER}/financial-instruments/{fi}");
        self.app.get(&path, &self.token).await.assert_status(200)["state"].as_str().unwrap().to_string()
    }

    /// The `instruction.*` status events in the outbox for the tenant, oldest first:
    /// without the `instruction.created` announcing each new instruction and the
    /// `instruction.updated` that follows each status change.
    async fn events(&self) -> Vec<String> {
        let all = self.all_events().await;
        all.into_iter()
            .filter(|e| e.starts_with("instruction.") && e != "instruction.updated" && e != "instruction.created")
            .collect()
    }

    /// Every event type in the outbox for the tenant, oldest first.
    async fn all_events(&self) -> Vec<String> {
        let events = self.app.engine().outbox_events(&self.tenant).await.unwrap();
        events.iter().map(|e| e.event.event_type.as_str().to_string()).collect()
    }
}

fn today(app: &TestApp) -> String {
    let now = time::OffsetDateTime::from_unix_timestamp(app.now_ms() / 1000).unwrap();
    baton_domain::dates::format_date(now.date())
}

fn days_from_today(app: &TestApp, days: i64) -> String {
    let now = time::OffsetDateTime::from_unix_timestamp(app.now_ms() / 1000 + days * 86_400).unwrap();
    baton_domain::dates::format_date(now.date())
}

#[tokio::test]
async fn a_card_payment_settles_and_is_recorded_and_announced() {
    let fx = Fx::new().await;
    let fi = fx.card("4242424242424242").await;
    fx.order("o-1", Some(&fi), None).await;
    assert_eq!(fx.instruction("o-1").await["status"], "READY");

    let reply = fx.execute("o-1").await;
    assert_eq!(reply.assert_status(200)["status"], "SETTLED");
    assert_eq!(fx.instruction("o-1").await["status"], "SETTLED", "polling reflects it at once");

    let attempts = fx.transactions("o-1").await;
    assert_eq!(attempts.len(), 1);
    let t = &attempts[0];
    assert_eq!(
        (t["appId"].as_str(), t["status"].as_str(), t["operation"].as_str()),
        (Some("SANDBOX_CARD"), Some("SETTLED"), Some("DEBIT"))
    );
    assert_eq!((t["transactionType"].as_str(), t["paymentMethod"].as_str()), (Some("MIT"), Some("VISA")));
    assert_eq!(t["amount"], json!(49.9));
    assert!(t["providerReference"].as_str().unwrap().starts_with("sbx_ch_"));
    assert_eq!(
        fx.all_events().await,
        [
            "financial_instrument.created",
            "instruction.created",
            "instruction.processing",
            "instruction.updated",
            "instruction.settled",
            "instruction.updated"
        ]
    );
    let mut events = fx.app.engine().outbox_events(&fx.tenant).await.unwrap();
    let updated = events.pop().unwrap();
    let settled = events.pop().unwrap();
    assert_eq!(updated.event.data, settled.event.data, "the same data under both types");
    let data: Value = serde_json::from_str(&settled.event.data).unwrap();
    assert_eq!(data["order"]["orderRef"], "o-1");
    assert_eq!(data["instruction"]["status"], "SETTLED");
    assert_eq!(data["scheme"]["code"], "PREM");
    assert_eq!(data["transaction"]["status"], "SETTLED");

    // Settled is final: no second execution, no second charge.
    fx.execute("o-1").await.assert_error(400, "INSTRUCTION_NOT_EXECUTABLE");
    assert_eq!(fx.transactions("o-1").await.len(), 1);
    // The card's token for the app is cached on the instrument (used by the next payment).
    let metrics = fx.app.client.get(fx.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("baton_connector_call_duration_seconds_count{app_id=\"SANDBOX_CARD\"}"), "{metrics}");
}

#[tokio::test]
async fn declines_fail_the_instruction_with_their_codes() {
    let fx = Fx::new().await;
    let cases = [
        ("4000000000000002", "PAYMENT_DECLINED", "HARD_DECLINE"),
        ("4000000000009995", "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS"),
        ("4000000000000119", "PSP_UNAVAILABLE", "TECHNICAL"),
        ("4000000000003220", "AUTHENTICATION_REQUIRED", "AUTHENTICATION_REQUIRED"),
    ];
    for (i, (number, code, category)) in cases.iter().enumerate() {
        let order = format!("o-{i}");
        let fi = fx.card(number).await;
        fx.order(&order, Some(&fi), None).await;
        let reply = fx.execute(&order).await;
        reply.assert_error(402, code);
        assert_eq!(fx.instruction(&order).await["status"], "FAILED", "{number}");
        let attempts = fx.transactions(&order).await;
        assert_eq!(attempts.len(), 1, "no other app takes cards, so no failover");
        assert_eq!(attempts[0]["status"], "FAILED");
        assert_eq!(attempts[0]["errorCode"], *code);
        assert_eq!(attempts[0]["declineCategory"], *category);
        assert!(attempts[0]["pspCode"].is_string(), "the PSP's own code is kept");
        fx.execute(&order).await.assert_error(400, "INSTRUCTION_NOT_EXECUTABLE");
    }
    assert!(fx.events().await.iter().filter(|e| *e == "instruction.failed").count() == cases.len());
}

#[tokio::test]
async fn what_cannot_be_executed_is_refused_and_changes_nothing() {
    let fx = Fx::new().await;
    // No instrument: INCOMPLETE.
    fx.order("o-incomplete", None, None).await;
    fx.execute("o-incomplete").await.assert_error(400, "INSTRUCTION_NOT_EXECUTABLE");
    fx.execute("o-missing").await.assert_error(404, "ORDER_NOT_FOUND");
    let path = "/v1/order-management/o-incomplete/instruction/nope/execute";
    fx.app.post(path, &fx.token, &json!({})).await.assert_error(404, "INSTRUCTION_NOT_FOUND");

    // A phone number is no means of payment for any app of the rule.
    let phone = fx.instrument(json!({ "type": "MOBILE_PHONE", "details": { "phoneNumber": "+4915123456789" } })).await;
    fx.order("o-phone", Some(&phone), None).await;
    fx.execute("o-phone").await.assert_error(400, "NO_APP_FOR_PAYMENT_METHOD");
    assert_eq!(fx.instruction("o-phone").await["status"], "READY");
    assert!(fx.transactions("o-phone").await.is_empty());

    // The instrument was deactivated after the instruction became READY.
    let fi = fx.card("4242424242424242").await;
    fx.order("o-inactive", Some(&fi), None).await;
    let state = json!({ "state": "INACTIVE", "reason": "CUSTOMER_REQUEST" });
    let path = format!("/v1/customer-vault/{CUSTOMER}/financial-instruments/{fi}/state");
    fx.app.put(&path, &fx.token, &state).await.assert_status(200);
    let reply = fx.execute("o-inactive").await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    assert!(fx.transactions("o-inactive").await.is_empty());
    assert!(fx.events().await.is_empty(), "refusals announce nothing");
    // The deactivation was announced.
    assert!(fx.all_events().await.contains(&"financial_instrument.state_changed".to_string()));
}

#[tokio::test]
async fn an_instruction_is_never_executed_twice_at_once() {
    let fx = Fx::new().await;
    let fi = fx.card("4242424242424242").await;
    fx.order("o-race", Some(&fi), None).await;
    let url = fx.app.url("/v1/order-management/o-race/instruction/i1/execute");
    let handles: Vec<_> = (0..6)
        .map(|_| tokio::spawn(fx.app.client.post(url.clone()).bearer_auth(&fx.token).json(&json!({})).send()))
        .collect();
    let mut replies = Vec::new();
    for h in handles {
        replies.push(common::read(h.await.unwrap().unwrap()).await);
    }
    let settled = replies.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!(settled, 1, "{:?}", replies.iter().map(|r| r.text.clone()).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| r.status.as_u16() != 200) {
        assert!(["INSTRUCTION_NOT_EXECUTABLE", "CONCURRENT_MODIFICATION"].contains(&r.code()), "{}", r.text);
    }
    assert_eq!(fx.transactions("o-race").await.len(), 1);
}

#[tokio::test]
async fn bank_collections_settle_or_fail_after_the_delay() {
    let fx = Fx::new().await;
    let cases = [
        ("o-settles", "DE89370400440532013000", "SETTLED", None),
        ("o-funds", "GB82WEST12345698765432", "FAILED", Some("INSUFFICIENT_FUNDS")),
        ("o-cancelled", "NL91ABNA0417164300", "FAILED", Some("MANDATE_CANCELLED")),
    ];
    let mut instruments = Vec::new();
    for (order, iban, _, _) in &cases {
        let fi = fx.mandate(iban).await;
        fx.order(order, Some(&fi), None).await;
        let reply = fx.execute(order).await;
        assert_eq!(reply.assert_status(202)["status"], "PROCESSING");
        let attempts = fx.transactions(order).await;
        assert_eq!(
            (attempts[0]["appId"].as_str(), attempts[0]["status"].as_str()),
            (Some("SANDBOX_BANK"), Some("PROCESSING"))
        );
        assert_eq!(attempts[0]["paymentMethod"], "DIRECT_DEBIT");
        instruments.push(fi);
    }
    // Before the settlement delay nothing changes.
    fx.app.tick().await;
    for (order, ..) in &cases {
        assert_eq!(fx.instruction(order).await["status"], "PROCESSING");
    }
    fx.app.clock.advance(Duration::from_secs(3));
    let report = fx.app.tick().await;
    assert_eq!(report.jobs_run, 3);
    for ((order, _, status, code), fi) in cases.iter().zip(&instruments) {
        assert_eq!(fx.instruction(order).await["status"], *status, "{order}");
        let attempts = fx.transactions(order).await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["errorCode"].as_str(), *code);
        let expected_state = if *code == Some("MANDATE_CANCELLED") { "INACTIVE" } else { "ACTIVE" };
        assert_eq!(fx.instrument_state(fi).await, expected_state, "{order}");
    }
    // Jobs are done: another round does nothing.
    fx.app.clock.advance(Duration::from_secs(60));
    assert_eq!(fx.app.tick().await.jobs_run, 0);
    // Each mandate was announced as registered; the cancelled one's deactivation too.
    let events = fx.all_events().await;
    assert_eq!(events.iter().filter(|e| *e == "mandate.registered").count(), 3);
    assert_eq!(events.iter().filter(|e| *e == "financial_instrument.state_changed").count(), 1);
}

#[tokio::test]
async fn a_single_use_instrument_is_locked_by_its_payment() {
    let fx = Fx::new().await;
    let fi = fx
        .instrument(json!({ "type": "CARD", "singleUse": true, "details": {
            "cardNumber": "5555555555554444", "expiryMonth": 12, "expiryYear": 2030 } }))
        .await;
    fx.order("o-once", Some(&fi), None).await;
    fx.execute("o-once").await.assert_status(200);
    assert_eq!(fx.transactions("o-once").await[0]["paymentMethod"], "MASTERCARD");
    assert_eq!(fx.instrument_state(&fi).await, "LOCKED");
    assert_eq!(
        fx.all_events().await,
        [
            "financial_instrument.created",
            "instruction.created",
            "instruction.processing",
            "instruction.updated",
            "instruction.settled",
            "instruction.updated",
            "financial_instrument.state_changed"
        ]
    );
    // Events carry display data only.
    for e in fx.app.engine().outbox_events(&fx.tenant).await.unwrap() {
        assert!(!e.event.data.contains("5555555555554444"), "{}", e.event.data);
    }
    let created = &fx.app.engine().outbox_events(&fx.tenant).await.unwrap()[0];
    let data: Value = serde_json::from_str(&created.event.data).unwrap();
    assert_eq!(data["financialInstrument"]["display"]["last4"], "4444");
}

#[tokio::test]
async fn the_scheduler_collects_on_the_date_and_marks_missed_payments_once() {
    let fx = Fx::new().await;
    let card = fx.card("4242424242424242").await;
    let today = today(&fx.app);
    let tomorrow = days_from_today(&fx.app, 1);
    let yesterday = days_from_today(&fx.app, -1);
    fx.order("o-due", Some(&card), Some(&today)).await;
    fx.order("o-later", Some(&card), Some(&tomorrow)).await;
    fx.order("o-past", None, Some(&yesterday)).await;
    fx.order("o-overdue", Some(&card), Some(&yesterday)).await;

    let report = fx.app.tick().await;
    assert_eq!((report.collected, report.marked_late), (1, 2), "an overdue instruction is late, not collected");
    assert_eq!(fx.instruction("o-due").await["status"], "SETTLED");
    assert_eq!(fx.transactions("o-due").await[0]["transactionType"], "MIT");
    assert_eq!(fx.instruction("o-later").await["status"], "READY");
    assert_eq!(fx.instruction("o-past").await["status"], "LATE");

    let report = fx.app.tick().await;
    assert_eq!((report.collected, report.marked_late), (0, 0), "each happens once");
    let missed = fx.events().await.iter().filter(|e| *e == "instruction.missed").count();
    assert_eq!(missed, 2);
    // A LATE instruction takes no more updates, but can still be paid.
    assert_eq!(fx.execute("o-overdue").await.assert_status(200)["status"], "SETTLED");
    let path = "/v1/order-management/o-past/instruction/i1";
    let update = json!({ "instructionRef": "i1", "customerRef": CUSTOMER, "direction": "DEBIT", "amount": "49.90",
        "currency": "EUR", "country": "DE", "schemeId": fx.scheme, "financialInstrumentId": card });
    fx.app.put(path, &fx.token, &update).await.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
}

#[tokio::test]
async fn two_nodes_never_collect_the_same_instruction_twice() {
    let fx = Fx::new().await;
    let card = fx.card("4242424242424242").await;
    let today = today(&fx.app);
    for i in 0..8 {
        fx.order(&format!("o-{i}"), Some(&card), Some(&today)).await;
    }
    let peer = fx.app.spawn_peer().await;
    let (a, b) = tokio::join!(fx.app.engine().worker_tick(), peer.engine.worker_tick());
    assert_eq!(a.unwrap().collected + b.unwrap().collected, 8);
    for i in 0..8 {
        assert_eq!(fx.transactions(&format!("o-{i}")).await.len(), 1);
    }
    peer.shutdown().await.unwrap();
}

// -- crash safety ------------------------------------------------------------------------------

/// A card PSP that charges (records the charge by idempotency key, as real PSPs do) and
/// then never answers: the node calling it is as good as dead. Its status sync answers
/// from the same ledger.
#[derive(Clone, Default)]
struct LedgerPsp {
    charges: Arc<Mutex<BTreeMap<String, i64>>>,
    charged: Arc<Notify>,
    hang: bool,
}

impl LedgerPsp {
    fn charge(&self, request: &PaymentRequest<'_>) -> Outcome {
        let mut charges = self.charges.lock().unwrap();
        charges.entry(request.idempotency_key.to_string()).or_insert(request.amount_minor);
        Outcome::Succeeded { provider_reference: format!("ledger_{}", request.idempotency_key), result: None }
    }
}

#[async_trait]
impl Connector for LedgerPsp {
    fn descriptor(&self) -> &'static AppDescriptor {
        &baton_connectors::sandbox_card::DESCRIPTOR
    }

    async fn debit(&self, _ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        let outcome = self.charge(request);
        if self.hang {
            self.charged.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(outcome)
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

#[tokio::test]
async fn a_node_dying_mid_call_leaves_exactly_one_charge_and_a_final_status() {
    let psp = LedgerPsp { hang: true, ..LedgerPsp::default() };
    let mut dying = Connectors::standard();
    dying.insert(Arc::new(psp.clone()));
    let fx = Fx::with(Options { connectors: dying, ..Options::default() }).await;
    let fi = fx.card("4242424242424242").await;
    fx.order("o-crash", Some(&fi), None).await;

    // The call reaches the PSP, which charges, and the node never hears back.
    let charged = psp.charged.notified();
    let path = fx.app.url("/v1/order-management/o-crash/instruction/i1/execute");
    let request = fx.app.client.post(path).bearer_auth(&fx.token).json(&json!({})).send();
    let hung = tokio::spawn(request);
    charged.await;
    hung.abort();
    assert_eq!(fx.instruction("o-crash").await["status"], "PROCESSING");
    assert_eq!(fx.transactions("o-crash").await[0]["status"], "PENDING");

    // Another node takes over; once the attempt is stale it is synced, not charged again.
    let survivor_psp = LedgerPsp { hang: false, ..psp.clone() };
    let mut healthy = Connectors::standard();
    healthy.insert(Arc::new(survivor_psp));
    let survivor = fx.app.spawn_peer_with(healthy).await;
    assert_eq!(survivor.engine.worker_tick().await.unwrap().stale_attempts, 0, "not stale yet");
    fx.app.clock.advance(Duration::from_secs(61));
    let report = survivor.engine.worker_tick().await.unwrap();
    assert_eq!((report.stale_attempts, report.jobs_run), (1, 1));

    assert_eq!(fx.instruction("o-crash").await["status"], "SETTLED");
    let attempts = fx.transactions("o-crash").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], "SETTLED");
    assert_eq!(psp.charges.lock().unwrap().len(), 1, "exactly one charge at the PSP");
    assert_eq!(fx.events().await, ["instruction.processing", "instruction.settled"]);
    survivor.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_attempt_that_never_reached_the_psp_fails_on_sync() {
    let psp = LedgerPsp { hang: true, ..LedgerPsp::default() };
    let fx = Fx::new().await;
    let fi = fx.card("4242424242424242").await;
    fx.order("o-lost", Some(&fi), None).await;
    // Simulate a crash between recording the attempt and calling the PSP: the attempt
    // is PENDING and the PSP knows nothing of it.
    let mut lost = Connectors::standard();
    let empty = LedgerPsp { hang: false, charges: Arc::default(), ..psp };
    lost.insert(Arc::new(empty.clone()));
    let peer = fx.app.spawn_peer_with(lost).await;
    fx.app
        .execute_sql(&format!(
            "INSERT INTO transactions (transaction_id, tenant_id, order_id, instruction_id, customer_ref, \
             financial_instrument_id, app_id, payment_method, operation, transaction_type, attempt, amount_minor, \
             currency, status, idempotency_key, created_at, updated_at) \
             SELECT 'tx-lost', tenant_id, order_id, instruction_id, customer_ref, '{fi}', 'SANDBOX_CARD', 'VISA', \
             'DEBIT', 'MIT', 1, amount_minor, currency, 'PENDING', 'baton-tx-lost', 0, 0 FROM instructions"
        ))
        .await;
    fx.app.execute_sql("UPDATE instructions SET status = 'PROCESSING'").await;
    let report = peer.engine.worker_tick().await.unwrap();
    assert_eq!(report.stale_attempts, 1);
    assert_eq!(fx.instruction("o-lost").await["status"], "FAILED");
    assert!(empty.charges.lock().unwrap().is_empty(), "nothing was charged");
    peer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_psp_that_does_not_answer_in_time_is_synced_not_charged_again() {
    let psp = LedgerPsp { hang: true, ..LedgerPsp::default() };
    let mut slow = Connectors::standard();
    slow.insert(Arc::new(psp.clone()));
    let options = Options { connectors: slow, connector_timeout: Duration::from_millis(200), ..Options::default() };
    let fx = Fx::with(options).await;
    let fi = fx.card("4242424242424242").await;
    fx.order("o-slow", Some(&fi), None).await;

    // The PSP charged but did not answer in time: the outcome is unknown, not a failure.
    let reply = fx.execute("o-slow").await;
    assert_eq!(reply.assert_status(202)["status"], "PROCESSING");
    assert_eq!(fx.transactions("o-slow").await[0]["status"], "PENDING");

    // The queued sync asks the PSP (same idempotency key) and settles it.
    fx.app.clock.advance(Duration::from_secs(11));
    let report = fx.app.tick().await;
    assert_eq!(report.jobs_run, 1);
    assert_eq!(fx.instruction("o-slow").await["status"], "SETTLED");
    assert_eq!(psp.charges.lock().unwrap().len(), 1, "one charge");
    let attempts = fx.transactions("o-slow").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], "SETTLED");
}

#[tokio::test]
async fn voiding_an_instruction_is_announced() {
    let fx = Fx::new().await;
    fx.order("o-void", None, None).await;
    let reply = fx.app.delete("/v1/order-management/o-void/instruction/i1", &fx.token).await;
    assert_eq!(reply.assert_status(200)["status"], "VOID");
    assert_eq!(fx.events().await, ["instruction.voided"]);
    let events = fx.app.engine().outbox_events(&fx.tenant).await.unwrap();
    let voided = events.iter().find(|e| e.event.event_type.as_str() == "instruction.voided").unwrap();
    let data: Value = serde_json::from_str(&voided.event.data).unwrap();
    assert_eq!(
        (data["order"]["orderRef"].as_str(), data["instruction"]["status"].as_str()),
        (Some("o-void"), Some("VOID"))
    );
    // A second void changes nothing and announces nothing.
    fx.app.delete("/v1/order-management/o-void/instruction/i1", &fx.token).await;
    assert_eq!(fx.events().await, ["instruction.voided"]);
}

// -- what each node keeps of the routing configuration ----------------------------------------

/// A card PSP that settles every payment and remembers the API key each was made with.
#[derive(Clone, Default)]
struct KeyRecordingPsp {
    keys: Arc<Mutex<Vec<Option<String>>>>,
}

#[async_trait]
impl Connector for KeyRecordingPsp {
    fn descriptor(&self) -> &'static AppDescriptor {
        &baton_connectors::sandbox_card::DESCRIPTOR
    }

    async fn debit(&self, ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        self.keys.lock().unwrap().push(ctx.credentials.get("apiKey").map(str::to_string));
        Ok(Outcome::Succeeded { provider_reference: format!("rec_{}", request.attempt_id), result: None })
    }

    async fn sync(&self, _ctx: &CallContext<'_>, request: &SyncRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Outcome::Succeeded { provider_reference: format!("rec_{}", request.payment.attempt_id), result: None })
    }
}

/// Sends a request to another node of the deployment.
async fn on_peer(
    app: &TestApp,
    peer: &baton::node::RunningNode,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> Reply {
    let request = app.client.request(method, format!("http://{}{path}", peer.addr)).bearer_auth(token).json(&body);
    common::read(request.send().await.expect("request sent")).await
}

#[tokio::test]
async fn every_node_routes_with_what_any_node_configured_or_published_last() {
    let psp = KeyRecordingPsp::default();
    let connectors = || {
        let mut c = Connectors::standard();
        c.insert(Arc::new(psp.clone()));
        c
    };
    let fx = Fx::with(Options { connectors: connectors(), ..Options::default() }).await;
    let peer = fx.app.spawn_peer_with(connectors()).await;
    let card = fx.card("4242424242424242").await;
    for order in ["o-1", "o-2", "o-3", "o-4", "o-5"] {
        fx.order(order, Some(&card), None).await;
    }
    let configuration = "/v1/apps/installed/SANDBOX_CARD/configuration";
    let key = |key: &str| json!({ "merchantName": "Acme", "apiKey": key });
    fx.app.post(configuration, &fx.token, &key("key-1")).await.assert_status(200);

    // This node reads the app's configuration and the published draft once and keeps them…
    fx.execute("o-1").await.assert_status(200);
    fx.execute("o-2").await.assert_status(200);
    // …until another node replaces the app's secret: the next payment here uses the new one.
    on_peer(&fx.app, &peer, reqwest::Method::POST, configuration, &fx.token, key("key-2")).await.assert_status(200);
    fx.execute("o-3").await.assert_status(200);
    let keys: Vec<Option<String>> = psp.keys.lock().unwrap().clone();
    assert_eq!(keys, [Some("key-1".into()), Some("key-1".into()), Some("key-2".into())]);

    // Another node publishes a draft whose only rule takes GBP: EUR no longer routes here.
    let drafts = format!("/v1/schemes/collect/{}/drafts", fx.scheme);
    let publish = |currencies: Value, code: &'static str| {
        let (app, peer, token, drafts) = (&fx.app, &peer, &fx.token, &drafts);
        async move {
            let rules = json!([{ "priority": 1, "currencies": currencies, "countries": [],
                "apps": [{ "appId": "SANDBOX_CARD", "priority": 1 }] }]);
            let body = json!({ "name": code, "code": code, "rules": rules });
            let reply = on_peer(app, peer, reqwest::Method::POST, drafts, token, body).await;
            let draft = reply.assert_status(201)["draftId"].as_str().unwrap().to_string();
            let path = format!("{drafts}/{draft}/publish");
            on_peer(app, peer, reqwest::Method::POST, &path, token, json!({})).await.assert_status(200);
            draft
        }
    };
    publish(json!(["GBP"]), "GBP-ONLY").await;
    fx.execute("o-4").await.assert_error(400, "NO_MATCHING_RULE");
    assert_eq!(fx.instruction("o-4").await["status"], "READY", "nothing was started");

    // Then one taking EUR again, under another code: the payment is routed (and announced) by it.
    let draft = publish(json!(["EUR"]), "EUR-AGAIN").await;
    fx.execute("o-4").await.assert_status(200);
    let events = fx.app.engine().outbox_events(&fx.tenant).await.unwrap();
    let settled = events.iter().rev().find(|e| e.event.event_type.as_str() == "instruction.settled").unwrap();
    let data: Value = serde_json::from_str(&settled.event.data).unwrap();
    assert_eq!(
        (data["scheme"]["draftId"].as_str(), data["scheme"]["code"].as_str()),
        (Some(&*draft), Some("EUR-AGAIN"))
    );

    // Another node deletes the scheme: nothing is routed with its last published draft.
    let scheme = format!("/v1/schemes/collect/{}", fx.scheme);
    on_peer(&fx.app, &peer, reqwest::Method::DELETE, &scheme, &fx.token, json!({})).await.assert_status(204);
    fx.execute("o-5").await.assert_error(404, "SCHEME_NOT_FOUND");
    assert_eq!(psp.keys.lock().unwrap().len(), 4, "four payments in all");
    peer.shutdown().await.unwrap();
}

/// An execution answers with the instruction as a fresh read shows it, values inherited
/// from the customer default included.
#[tokio::test]
async fn the_answer_of_an_execution_is_the_instruction_as_stored() {
    let fx = Fx::new().await;
    let card = fx.card("4242424242424242").await;
    let declined = fx.card("4000000000000002").await;
    for (order, fi) in [("o-ok", &card), ("o-declined", &declined)] {
        let body = json!({ "orderRef": order,
            "customerDefaults": [{ "customerRef": CUSTOMER, "financialInstrumentId": fi, "schemeId": fx.scheme,
                "metadata": { "policy": "P-1", "from": "default" } }],
            "instructions": [{ "instructionRef": "i1", "customerRef": CUSTOMER, "direction": "DEBIT",
                "amount": "49.90", "currency": "EUR", "country": "DE", "metadata": { "from": "instruction" } }] });
        fx.app.post("/v1/order-management", &fx.token, &body).await.assert_status(202);
    }
    let settled = fx.execute("o-ok").await;
    let answer = settled.assert_status(200).clone();
    assert_eq!(answer, fx.instruction("o-ok").await);
    assert_eq!(answer["financialInstrument"]["source"], "CUSTOMER_DEFAULT");
    assert_eq!(answer["metadata"], json!({ "policy": "P-1", "from": "instruction" }));

    let failed = fx.execute("o-declined").await;
    failed.assert_error(402, "PAYMENT_DECLINED");
    assert_eq!(fx.instruction("o-declined").await["status"], "FAILED");
}
