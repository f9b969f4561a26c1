//! Chargebacks (SPEC §5.3): created from the PSP's notifications (the sandbox card's
//! scripted FRAUD dispute), read, contested and accepted through the API; a FRAUD
//! chargeback deactivates the instrument.

mod common;

use std::time::Duration;

use common::Payments;
use serde_json::{json, Value};

const FRAUD_CARD: &str = "4000000000000259";

async fn chargeback_events(p: &Payments) -> Vec<String> {
    let events = p.app.engine().outbox_events(&p.tenant).await.unwrap();
    events.iter().map(|e| e.event.event_type.as_str().to_string()).filter(|t| t.starts_with("chargeback.")).collect()
}

/// Executes a fraud-card order and lets the sandbox's dispute arrive; returns the FI id.
async fn disputed(p: &Payments, order_ref: &str) -> String {
    let fi = p.settled(order_ref, FRAUD_CARD, "25.00").await;
    p.app.clock.advance(Duration::from_secs(3));
    p.app.tick().await;
    fi
}

#[tokio::test]
async fn a_fraud_chargeback_arrives_after_the_payment_and_deactivates_the_card() {
    let p = Payments::new().await;
    let fi = p.settled("O1", FRAUD_CARD, "25.00").await;
    // Not before its time.
    p.app.clock.advance(Duration::from_secs(2));
    p.app.tick().await;
    assert_eq!(p.app.get("/v1/chargebacks", &p.token).await.assert_status(200), &json!([]));
    p.app.clock.advance(Duration::from_secs(1));
    p.app.tick().await;

    let read = p.token_with(&["tenant-transaction-read"]).await;
    let list = p.app.get("/v1/chargebacks", &read).await;
    let items = list.assert_status(200).as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", list.text);
    let c = &items[0];
    assert_eq!(c["orderRef"], "O1");
    assert_eq!(c["instructionRef"], "I1");
    assert_eq!(c["amount"], json!(25));
    assert_eq!(c["currency"], "EUR");
    assert_eq!(c["reason"], "FRAUD");
    assert_eq!(c["providerReasonCode"], "10.4");
    assert_eq!(c["status"], "OPEN");
    assert!(c["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = c["chargebackId"].as_str().unwrap();
    assert_eq!(p.app.get(&format!("/v1/chargebacks/{id}"), &read).await.assert_status(200), c);
    let by_instruction = p.app.get("/v1/order-management/O1/instruction/I1/chargebacks", &read).await;
    assert_eq!(by_instruction.assert_status(200), &json!([c]));

    // The card is INACTIVE for suspected fraud.
    let fi_path = format!("/v1/customer-vault/C1/financial-instruments/{fi}");
    let instrument = p.app.get(&fi_path, &p.token).await;
    assert_eq!(instrument.assert_status(200)["state"], "INACTIVE");
    assert_eq!(instrument.body["stateReason"], "FRAUD_SUSPECTED");

    // Further rounds change nothing.
    p.app.clock.advance(Duration::from_secs(60));
    p.app.tick().await;
    assert_eq!(p.app.get("/v1/chargebacks", &read).await.assert_status(200).as_array().unwrap().len(), 1);
    assert_eq!(chargeback_events(&p).await, ["chargeback.opened"]);

    // Filters.
    for (query, n) in [("status=OPEN", 1), ("status=WON", 0), ("reason=FRAUD", 1), ("reason=QUALITY", 0)] {
        let reply = p.app.get(&format!("/v1/chargebacks?{query}"), &read).await;
        assert_eq!(reply.assert_status(200).as_array().unwrap().len(), n, "{query}");
    }
    let today = p.app.get("/v1/chargebacks?from=1970-01-01&to=2999-12-31", &read).await;
    assert_eq!(today.assert_status(200).as_array().unwrap().len(), 1);
    p.app.get("/v1/chargebacks?status=NOPE", &read).await.assert_error(400, "INVALID_CHARGEBACK_STATUS");
    p.app.get("/v1/chargebacks?from=yesterday", &read).await.assert_error(400, "INVALID_DATE");
    let unknown = format!("/v1/chargebacks/{}", uuid::Uuid::new_v4());
    p.app.get(&unknown, &read).await.assert_error(404, "CHARGEBACK_NOT_FOUND");
}

#[tokio::test]
async fn evidence_contests_and_acceptance_closes_an_open_chargeback() {
    let p = Payments::new().await;
    disputed(&p, "O1").await;
    disputed(&p, "O2").await;
    let list = p.app.get("/v1/chargebacks", &p.token).await.assert_status(200).clone();
    let id_of = |order: &str| -> String {
        list.as_array().unwrap().iter().find(|c| c["orderRef"] == order).unwrap()["chargebackId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (first, second) = (id_of("O1"), id_of("O2"));

    // Evidence needs a text or a document; documents are base64.
    let evidence = |body: Value| {
        let path = format!("/v1/chargebacks/{first}/evidence");
        let app = &p.app;
        let token = p.token.clone();
        async move { app.post(&path, &token, &body).await }
    };
    evidence(json!({})).await.assert_error(400, "EVIDENCE_REQUIRED");
    evidence(json!({ "documents": [{ "fileName": "a.pdf", "contentBase64": "%%%" }] }))
        .await
        .assert_error(400, "INVALID_EVIDENCE_DOCUMENT");
    let read = p.token_with(&["tenant-transaction-read"]).await;
    let forbidden = p.app.post(&format!("/v1/chargebacks/{first}/evidence"), &read, &json!({ "text": "x" })).await;
    assert_eq!(forbidden.status, 403);

    let ok = evidence(json!({ "text": "Delivered, signed for.",
        "documents": [{ "fileName": "receipt.pdf", "contentBase64": "JVBERi0xLjQK" }] }))
    .await;
    assert_eq!(ok.assert_status(202)["status"], "EVIDENCE_SUBMITTED");
    evidence(json!({ "text": "again" })).await.assert_error(400, "CHARGEBACK_NOT_OPEN");
    let accept_first = p.app.post(&format!("/v1/chargebacks/{first}/accept"), &p.token, &json!({})).await;
    accept_first.assert_error(400, "CHARGEBACK_NOT_OPEN");

    let accepted = p.app.post(&format!("/v1/chargebacks/{second}/accept"), &p.token, &json!({})).await;
    assert_eq!(accepted.assert_status(200)["status"], "ACCEPTED");
    let again = p.app.post(&format!("/v1/chargebacks/{second}/accept"), &p.token, &json!({})).await;
    again.assert_error(400, "CHARGEBACK_NOT_OPEN");

    assert_eq!(
        chargeback_events(&p).await,
        ["chargeback.opened", "chargeback.opened", "chargeback.updated", "chargeback.closed"]
    );
}

/// Signs `body` as the sandbox PSP does (`Baton-Sandbox-Signature`, see `sandbox_card`).
fn sandbox_signature(secret: &str, t: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[tokio::test]
async fn psp_notifications_are_verified_and_applied_idempotently() {
    let p = Payments::new().await;
    p.settled("O1", "4242424242424242", "40.00").await;
    let transactions = p.app.get("/v1/order-management/O1/instruction/I1/transactions", &p.token).await;
    let payment_reference = transactions.assert_status(200)[0]["providerReference"].as_str().unwrap().to_string();
    let path = format!("/v1/psp-events/{}/SANDBOX_CARD", p.tenant);
    let now = p.app.now_ms() / 1000;
    let notice = |status: &str| {
        json!({ "type": "chargeback", "paymentReference": payment_reference, "disputeReference": "dp_1",
            "amountMinor": 4000, "currency": "EUR", "reason": "QUALITY", "providerReasonCode": "13.3",
            "status": status })
        .to_string()
    };
    let post = |body: String, signature: Option<String>| {
        let app = &p.app;
        let path = path.clone();
        async move {
            let mut headers = vec![("content-type", "application/json".to_string())];
            if let Some(s) = signature {
                headers.push(("baton-sandbox-signature", s));
            }
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_raw(&path, &headers, body).await
        }
    };
    let secret = Payments::API_KEY;

    // Forged: no signature, a wrong key, a tampered body, a stale timestamp.
    let body = notice("OPEN");
    post(body.clone(), None).await.assert_error(401, "PSP_SIGNATURE_INVALID");
    post(body.clone(), Some(sandbox_signature("wrong", now, body.as_bytes())))
        .await
        .assert_error(401, "PSP_SIGNATURE_INVALID");
    let signed_other = sandbox_signature(secret, now, notice("WON").as_bytes());
    post(body.clone(), Some(signed_other)).await.assert_error(401, "PSP_SIGNATURE_INVALID");
    post(body.clone(), Some(sandbox_signature(secret, now - 301, body.as_bytes())))
        .await
        .assert_error(401, "PSP_SIGNATURE_INVALID");
    assert_eq!(p.app.get("/v1/chargebacks", &p.token).await.assert_status(200), &json!([]));
    // Unknown tenants and apps not installed.
    let unknown = format!("/v1/psp-events/{}/SANDBOX_CARD", uuid::Uuid::new_v4());
    let headers = [("baton-sandbox-signature", "t=1,v1=00")];
    p.app.post_raw(&unknown, &headers, body.clone()).await.assert_error(404, "APP_NOT_INSTALLED");
    let bank = format!("/v1/psp-events/{}/SANDBOX_BANK", p.tenant);
    p.app.post_raw(&bank, &headers, body.clone()).await.assert_error(404, "APP_NOT_INSTALLED");
    // Verified but unreadable.
    let junk = "{\"type\": \"chargeback\"}".to_string();
    post(junk.clone(), Some(sandbox_signature(secret, now, junk.as_bytes())))
        .await
        .assert_error(400, "PSP_EVENT_MALFORMED");

    // Valid: opened once, however often it is sent; then closed.
    for _ in 0..2 {
        let reply = post(body.clone(), Some(sandbox_signature(secret, now, body.as_bytes()))).await;
        assert_eq!(reply.assert_status(200), &json!({ "received": 1 }));
    }
    let list = p.app.get("/v1/chargebacks", &p.token).await.assert_status(200).clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["reason"], "QUALITY");
    assert_eq!(list[0]["status"], "OPEN");
    let won = notice("WON");
    post(won.clone(), Some(sandbox_signature(secret, now, won.as_bytes()))).await.assert_status(200);
    // A closed dispute does not reopen.
    post(body.clone(), Some(sandbox_signature(secret, now, body.as_bytes()))).await.assert_status(200);
    let id = list[0]["chargebackId"].as_str().unwrap();
    assert_eq!(p.app.get(&format!("/v1/chargebacks/{id}"), &p.token).await.assert_status(200)["status"], "WON");
    assert_eq!(chargeback_events(&p).await, ["chargeback.opened", "chargeback.closed"]);
    // A QUALITY dispute leaves the card ACTIVE.
    let fis = p.app.get("/v1/customer-vault/C1/financial-instruments", &p.token).await;
    assert_eq!(fis.assert_status(200)[0]["state"], "ACTIVE");
}

#[tokio::test]
async fn without_an_api_key_no_sandbox_notification_is_verifiable() {
    let p = Payments::new().await;
    p.app
        .post("/v1/apps/installed/SANDBOX_CARD/configuration", &p.token, &json!({ "merchantName": "Acme" }))
        .await
        .assert_status(200);
    let path = format!("/v1/psp-events/{}/SANDBOX_CARD", p.tenant);
    let body = json!({ "type": "other" }).to_string();
    let now = p.app.now_ms() / 1000;
    for secret in ["", Payments::API_KEY] {
        let signature = sandbox_signature(secret, now, body.as_bytes());
        let reply = p.app.post_raw(&path, &[("baton-sandbox-signature", signature.as_str())], body.clone()).await;
        reply.assert_error(401, "PSP_SIGNATURE_INVALID");
    }
}

#[tokio::test]
async fn the_sandbox_forces_a_chargeback_on_a_settled_instruction() {
    let p = Payments::new().await;
    p.order("O0", "4242424242424242", "10.00").await;
    let force = |order: &str, reason: Option<&str>| {
        let body = json!({ "orderRef": order, "instructionRef": "I1", "reason": reason });
        let app = &p.app;
        let token = p.token.clone();
        async move { app.post("/v1/sandbox/chargebacks", &token, &body).await }
    };
    force("O0", Some("FRAUD")).await.assert_error(400, "INSTRUCTION_NOT_SETTLED");
    let fi = p.settled("O1", "4242424242424242", "12.34").await;
    force("O1", None).await.assert_error(400, "CHARGEBACK_REASON_REQUIRED");
    force("O1", Some("BORED")).await.assert_error(400, "INVALID_CHARGEBACK_REASON");
    force("NOPE", Some("FRAUD")).await.assert_error(404, "ORDER_NOT_FOUND");
    let read = p.token_with(&["tenant-transaction-read"]).await;
    let body = json!({ "orderRef": "O1", "instructionRef": "I1", "reason": "FRAUD" });
    assert_eq!(p.app.post("/v1/sandbox/chargebacks", &read, &body).await.status, 403);

    let reply = force("O1", Some("FRAUD")).await;
    let c = reply.assert_status(201).clone();
    assert_eq!(
        (c["reason"].as_str(), c["status"].as_str(), &c["amount"]),
        (Some("FRAUD"), Some("OPEN"), &json!(12.34))
    );
    let location = format!("/v1/chargebacks/{}", c["chargebackId"].as_str().unwrap());
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(p.app.get(&location, &read).await.assert_status(200), &c);
    let instrument = p.app.get(&format!("/v1/customer-vault/C1/financial-instruments/{fi}"), &read).await;
    assert_eq!(instrument.assert_status(200)["state"], "INACTIVE");
}

/// Adds SANDBOX_BANK with its own collect scheme and a PROCESSING mandate collection
/// `order_ref`/I1.
async fn bank_collection(p: &Payments, scheme: &str, order_ref: &str) {
    let mandate = json!({ "type": "DIRECT_DEBIT_MANDATE", "details": { "mandateReference": format!("MD-{order_ref}"),
        "accountHolderName": "Jane Doe", "iban": "DE89370400440532013000", "signedDate": "2024-01-15",
        "scheme": "SEPA" } });
    let fi = p.app.post("/v1/customer-vault/C2/financial-instruments", &p.token, &mandate).await;
    let fi = fi.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string();
    let order = json!({ "orderRef": order_ref, "instructions": [{
        "instructionRef": "I1", "customerRef": "C2", "direction": "DEBIT", "financialInstrumentId": fi,
        "schemeId": scheme, "amount": "30.00", "currency": "EUR", "country": "DE" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
    let reply = p.execute(order_ref).await;
    assert_eq!(reply.assert_status(202)["status"], "PROCESSING", "{}", reply.text);
}

#[tokio::test]
async fn the_sandbox_settles_or_fails_a_bank_collection_now() {
    let p = Payments::new().await;
    let bearer = format!("Bearer {}", p.token);
    let install = p.app.post_raw("/v1/marketplace/apps/SANDBOX_BANK/install", &[("authorization", &bearer)], "").await;
    install.assert_status(200);
    let body = json!({ "name": "Bank", "rules": [{ "apps": [{ "appId": "SANDBOX_BANK" }] }] });
    let scheme = p.app.post("/v1/schemes/collect", &p.token, &body).await.assert_status(201).clone();
    let scheme_id = scheme["schemeId"].as_str().unwrap();
    let publish =
        format!("/v1/schemes/collect/{scheme_id}/drafts/{}/publish", scheme["drafts"][0]["draftId"].as_str().unwrap());
    p.app.post(&publish, &p.token, &json!({})).await.assert_status(200);

    bank_collection(&p, scheme_id, "B1").await;
    bank_collection(&p, scheme_id, "B2").await;
    let act = |what: &str, order: &str| {
        let path = format!("/v1/sandbox/bank-collections/{what}");
        let body = json!({ "orderRef": order, "instructionRef": "I1" });
        let app = &p.app;
        let token = p.token.clone();
        async move { app.post(&path, &token, &body).await }
    };
    assert_eq!(act("settle", "B1").await.assert_status(200)["status"], "SETTLED");
    assert_eq!(act("fail", "B2").await.assert_status(200)["status"], "FAILED");
    // Nothing is pending any more; card payments are not bank collections.
    act("settle", "B1").await.assert_error(400, "NO_PENDING_BANK_COLLECTION");
    p.settled("O1", "4242424242424242", "5.00").await;
    act("fail", "O1").await.assert_error(400, "NO_PENDING_BANK_COLLECTION");
    let transactions = p.app.get("/v1/order-management/B2/instruction/I1/transactions", &p.token).await;
    assert_eq!(transactions.assert_status(200)[0]["status"], "FAILED");
    // The bank's own scheduled settlement later changes nothing.
    p.app.clock.advance(Duration::from_secs(60));
    p.app.tick().await;
    let b2 = p.app.get("/v1/order-management/B2/instruction/I1", &p.token).await;
    assert_eq!(b2.assert_status(200)["status"], "FAILED");
}

#[tokio::test]
async fn simulators_do_not_exist_outside_sandbox_deployments() {
    let options = common::Options {
        environment: baton_domain::Environment::Production,
        accept_raw_card_data: true,
        ..common::Options::default()
    };
    let app = common::TestApp::spawn_with(options).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Production tenant").await;
    let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
    let token = app.token(&key).await;
    let body = json!({ "orderRef": "O1", "instructionRef": "I1", "reason": "FRAUD" });
    for path in ["/v1/sandbox/chargebacks", "/v1/sandbox/bank-collections/settle", "/v1/sandbox/bank-collections/fail"]
    {
        app.post(path, &token, &body).await.assert_error(404, "ROUTE_NOT_FOUND");
    }
}
