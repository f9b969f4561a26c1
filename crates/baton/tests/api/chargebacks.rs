//! Chargebacks (SPEC §5.3): created from the PSP's notifications (the sandbox card's
//! scripted FRAUD dispute), read, contested and accepted through the API; a FRAUD
//! chargeback deactivates the instrument.

use crate::common;

use std::time::Duration;

use common::Payments;
use serde_json::{json, Value};

const FRAUD_CARD: &str = "4000000000000259";

/// `GET /v1/chargebacks` when there is nothing to list.
fn empty_page() -> Value {
    json!({ "items": [], "nextCursor": null })
}

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
    assert_eq!(p.app.get("/v1/chargebacks", &p.token).await.assert_status(200), &empty_page());
    p.app.clock.advance(Duration::from_secs(1));
    p.app.tick().await;

    let read = p.token_with(&["tenant-transaction-read"]).await;
    let list = p.app.get("/v1/chargebacks", &read).await;
    let items = list.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(list.body["nextCursor"], Value::Null);
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
    assert_eq!(p.app.get("/v1/chargebacks", &read).await.assert_status(200)["items"].as_array().unwrap().len(), 1);
    assert_eq!(chargeback_events(&p).await, ["chargeback.opened"]);

    // Filters.
    for (query, n) in [("status=OPEN", 1), ("status=WON", 0), ("reason=FRAUD", 1), ("reason=QUALITY", 0)] {
        let reply = p.app.get(&format!("/v1/chargebacks?{query}"), &read).await;
        assert_eq!(reply.assert_status(200)["items"].as_array().unwrap().len(), n, "{query}");
    }
    let today = p.app.get("/v1/chargebacks?from=1970-01-01&to=2999-12-31", &read).await;
    assert_eq!(today.assert_status(200)["items"].as_array().unwrap().len(), 1);
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
    let list = p.app.get("/v1/chargebacks", &p.token).await.assert_status(200)["items"].clone();
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
    assert_eq!(p.app.get("/v1/chargebacks", &p.token).await.assert_status(200), &empty_page());
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
    let list = p.app.get("/v1/chargebacks", &p.token).await.assert_status(200)["items"].clone();
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

// The chargeback listing, page by page ----------------------------------------------------

/// Forces a `reason` chargeback on `order_ref`/I1 (settled) with `token`; returns it.
async fn force(app: &common::TestApp, token: &str, order_ref: &str, reason: &str) -> Value {
    let body = json!({ "orderRef": order_ref, "instructionRef": "I1", "reason": reason });
    app.post("/v1/sandbox/chargebacks", token, &body).await.assert_status(201).clone()
}

/// Every chargeback of the tenant in one page (fewer than 200 here).
async fn everything(app: &common::TestApp, token: &str) -> Vec<Value> {
    let page = app.get("/v1/chargebacks?limit=200", token).await.assert_status(200).clone();
    assert_eq!(page["nextCursor"], Value::Null);
    page["items"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|c| c["chargebackId"].as_str().unwrap().to_string()).collect()
}

/// The ids of `items` newest first, ties by id: the listing's order, computed here.
fn newest_first(items: &[Value]) -> Vec<String> {
    let mut keyed: Vec<(std::cmp::Reverse<String>, String)> = items
        .iter()
        .map(|c| {
            let at = c["createdAt"].as_str().unwrap().to_string();
            (std::cmp::Reverse(at), c["chargebackId"].as_str().unwrap().to_string())
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// Walks `GET /v1/chargebacks?{query}` `limit` at a time, calling `between` after each
/// page but the last; returns the ids seen, in order. Every page but the last is full
/// and only the last has no `nextCursor`.
async fn walk(
    app: &common::TestApp,
    token: &str,
    query: &str,
    limit: usize,
    mut between: impl AsyncFnMut(usize),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 1.. {
        let path = match &cursor {
            Some(c) => format!("/v1/chargebacks?{query}&limit={limit}&cursor={c}"),
            None => format!("/v1/chargebacks?{query}&limit={limit}"),
        };
        let reply = app.get(&path, token).await;
        let page = reply.assert_status(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{path}: {}", reply.text);
        seen.extend(ids(items));
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "{path}: a page before the last one is full");
                cursor = Some(next.to_string());
            }
            None => break,
        }
        between(round).await;
        assert!(round < 100, "the walk ends");
    }
    seen
}

#[tokio::test]
async fn pages_cover_every_chargeback_once_newest_first_while_new_ones_arrive() {
    let p = Payments::new().await;
    for order in ["O1", "O2", "O3"] {
        p.settled(order, "4242424242424242", "20.00").await;
    }
    let reasons = ["QUALITY", "CLERICAL", "TECHNICAL"];
    for k in 0..8 {
        // Some a millisecond apart, some as close as the clock allows.
        if k % 3 == 0 {
            p.app.clock.advance(Duration::from_millis(1));
        }
        force(&p.app, &p.token, &format!("O{}", k % 3 + 1), reasons[k % 3]).await;
    }
    let read = p.token_with(&["tenant-transaction-read"]).await;
    let originals = everything(&p.app, &read).await;
    assert_eq!(originals.len(), 8);
    let expected = newest_first(&originals);
    assert_eq!(ids(&originals), expected, "newest first, ties by id");
    let oldest = expected.last().unwrap().clone();

    // Pages of 3 while new chargebacks arrive and an old one moves on: every chargeback
    // that existed is seen exactly once and in order; the new ones are newer than the
    // position, so this walk does not reach them.
    let mut new_ids = Vec::new();
    let seen = walk(&p.app, &read, "", 3, async |round| {
        p.app.clock.advance(Duration::from_millis(1));
        let c = force(&p.app, &p.token, "O2", "QUALITY").await;
        new_ids.push(c["chargebackId"].as_str().unwrap().to_string());
        if round == 1 {
            let accept = format!("/v1/chargebacks/{oldest}/accept");
            p.app.post(&accept, &p.token, &json!({})).await.assert_status(200);
        }
    })
    .await;
    assert_eq!(seen, expected);
    assert_eq!(new_ids.len(), 2);

    // A new walk starts with them, newest first; the accepted one keeps its place.
    let now = everything(&p.app, &read).await;
    let seen = walk(&p.app, &read, "", 4, async |_| {}).await;
    let mut all = vec![new_ids[1].clone(), new_ids[0].clone()];
    all.extend(expected.iter().cloned());
    assert_eq!(seen, all);
    assert_eq!(ids(&now), all);
    assert_eq!(now.last().unwrap()["status"], "ACCEPTED");
    // Pages of 5 end exactly on the last one (nextCursor null there).
    assert_eq!(walk(&p.app, &read, "", 5, async |_| {}).await, all);
    let items_of = |order: &str| -> Vec<Value> { now.iter().filter(|c| c["orderRef"] == order).cloned().collect() };

    // One instruction's chargebacks stay a bare array, newest first, with its refs.
    let by_instruction = p.app.get("/v1/order-management/O2/instruction/I1/chargebacks", &read).await;
    assert_eq!(by_instruction.assert_status(200), &json!(items_of("O2")));
    assert_eq!(items_of("O2").len(), 5);
    assert!(now.iter().all(|c| c["instructionRef"] == "I1"));

    // The default page is 50, the largest 200.
    for _ in 0..43 {
        force(&p.app, &p.token, "O3", "TECHNICAL").await;
    }
    let first = p.app.get("/v1/chargebacks", &read).await.assert_status(200).clone();
    assert_eq!(first["items"].as_array().unwrap().len(), 50);
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest = p.app.get(&format!("/v1/chargebacks?cursor={cursor}"), &read).await.assert_status(200).clone();
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    assert_eq!(rest["nextCursor"], Value::Null);
    assert_eq!(everything(&p.app, &read).await.len(), 53);
}

#[tokio::test]
async fn filters_hold_on_every_page() {
    let mut p = Payments::new().await;
    p.settled("O1", "4242424242424242", "20.00").await;
    p.settled("O2", "4242424242424242", "30.00").await;
    let mut made = Vec::new();
    for (order, reason) in
        [("O1", "QUALITY"), ("O2", "CLERICAL"), ("O1", "CLERICAL"), ("O2", "QUALITY"), ("O1", "QUALITY")]
    {
        made.push(force(&p.app, &p.token, order, reason).await);
    }
    // The next day (new tokens: the old ones have expired).
    p.app.clock.advance(Duration::from_secs(86_400));
    p.token = p.token_with(&["tenant-admin"]).await;
    for (order, reason) in [("O2", "QUALITY"), ("O1", "TECHNICAL"), ("O2", "QUALITY"), ("O1", "CLERICAL")] {
        made.push(force(&p.app, &p.token, order, reason).await);
    }
    for c in [&made[1], &made[3], &made[6]] {
        let accept = format!("/v1/chargebacks/{}/accept", c["chargebackId"].as_str().unwrap());
        p.app.post(&accept, &p.token, &json!({})).await.assert_status(200);
    }
    let read = p.token_with(&["tenant-transaction-read"]).await;
    let all = everything(&p.app, &read).await;
    assert_eq!(all.len(), 9);
    let day = |c: &Value| c["createdAt"].as_str().unwrap()[..10].to_string();
    let (first_day, second_day) = (day(&made[0]), day(&made[8]));
    assert!(first_day < second_day);

    // Each query with the chargebacks it keeps.
    type Keep<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let cases: Vec<(String, Keep)> = vec![
        ("reason=QUALITY".into(), Box::new(|c| c["reason"] == "QUALITY")),
        ("status=ACCEPTED".into(), Box::new(|c| c["status"] == "ACCEPTED")),
        ("status=OPEN&reason=CLERICAL".into(), Box::new(|c| c["status"] == "OPEN" && c["reason"] == "CLERICAL")),
        (format!("from={second_day}"), Box::new(|c| day(c) == second_day)),
        (format!("to={first_day}"), Box::new(|c| day(c) == first_day)),
        (
            format!("from={first_day}&to={first_day}&reason=QUALITY"),
            Box::new(|c| day(c) == first_day && c["reason"] == "QUALITY"),
        ),
        (format!("from={second_day}&status=OPEN"), Box::new(|c| day(c) == second_day && c["status"] == "OPEN")),
        ("reason=FRAUD".into(), Box::new(|_| false)),
    ];
    for (query, keep) in cases {
        let expected: Vec<Value> = all.iter().filter(|c| keep(c)).cloned().collect();
        for limit in [1, 2] {
            let seen = walk(&p.app, &read, &query, limit, async |_| {}).await;
            assert_eq!(seen, ids(&expected), "{query}, limit {limit}");
        }
    }
    // The filtered pages carry the same chargebacks as the unfiltered listing.
    let page = p.app.get("/v1/chargebacks?reason=QUALITY&limit=2", &read).await.assert_status(200).clone();
    let quality: Vec<Value> = all.iter().filter(|c| c["reason"] == "QUALITY").cloned().collect();
    assert_eq!(page["items"], json!(quality[..2]));
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_refused_and_changes_nothing() {
    let p = Payments::new().await;
    p.settled("O1", "4242424242424242", "20.00").await;
    p.settled("O2", "4242424242424242", "20.00").await;
    force(&p.app, &p.token, "O1", "QUALITY").await;
    force(&p.app, &p.token, "O2", "CLERICAL").await;
    let read = p.token_with(&["tenant-transaction-read"]).await;
    let before = everything(&p.app, &read).await;
    let events_before = p.app.engine().outbox_events(&p.tenant).await.unwrap().len();
    let page = |path: String| {
        let (app, token) = (&p.app, read.clone());
        async move { app.get(&path, &token).await.assert_status(200).clone() }
    };
    let order_cursor = page("/v1/order-management?limit=1".into()).await["nextCursor"].as_str().unwrap().to_string();
    let instruction_cursor = page("/v1/instructions?limit=1".into()).await["nextCursor"].as_str().unwrap().to_string();
    let chargeback_cursor = page("/v1/chargebacks?limit=1".into()).await["nextCursor"].as_str().unwrap().to_string();
    let forged = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("c:abc:0190")
    };

    let cases = [
        ("limit=0".to_string(), "INVALID_LIMIT", "limit"),
        ("limit=201".to_string(), "INVALID_LIMIT", "limit"),
        ("limit=-1".to_string(), "INVALID_LIMIT", "limit"),
        ("limit=ten".to_string(), "INVALID_LIMIT", "limit"),
        ("limit=1000&status=OPEN".to_string(), "INVALID_LIMIT", "limit"),
        ("cursor=not-a-cursor!".to_string(), "INVALID_CURSOR", "cursor"),
        ("cursor=bm9wZQ".to_string(), "INVALID_CURSOR", "cursor"),
        ("cursor=%25%25".to_string(), "INVALID_CURSOR", "cursor"),
        (format!("cursor={forged}"), "INVALID_CURSOR", "cursor"),
        (format!("cursor={order_cursor}"), "INVALID_CURSOR", "cursor"),
        (format!("cursor={instruction_cursor}&limit=1"), "INVALID_CURSOR", "cursor"),
        ("status=NOPE".to_string(), "INVALID_CHARGEBACK_STATUS", "status"),
        ("reason=BORED".to_string(), "INVALID_CHARGEBACK_REASON", "reason"),
        ("to=2021-02-30".to_string(), "INVALID_DATE", "to"),
    ];
    for (query, code, field) in cases {
        let reply = p.app.get(&format!("/v1/chargebacks?{query}"), &read).await;
        reply.assert_error(400, code);
        assert_eq!(reply.codes(), [(code.to_string(), field.to_string())], "{query}: {}", reply.text);
    }
    // Every problem is reported at once.
    let reply = p.app.get("/v1/chargebacks?status=X&from=yesterday&limit=0&cursor=zz", &read).await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    let all: std::collections::BTreeSet<_> = reply.codes().into_iter().collect();
    let expected: std::collections::BTreeSet<_> = [
        ("INVALID_CHARGEBACK_STATUS", "status"),
        ("INVALID_DATE", "from"),
        ("INVALID_LIMIT", "limit"),
        ("INVALID_CURSOR", "cursor"),
    ]
    .iter()
    .map(|(c, f)| (c.to_string(), f.to_string()))
    .collect();
    assert_eq!(all, expected);
    // The chargeback listing's cursor is refused by the other listings.
    for path in ["/v1/instructions", "/v1/order-management"] {
        let reply = p.app.get(&format!("{path}?cursor={chargeback_cursor}"), &read).await;
        reply.assert_error(400, "INVALID_CURSOR");
    }

    // Nothing changed; blank values are no limit and no cursor.
    assert_eq!(everything(&p.app, &read).await, before);
    assert_eq!(p.app.engine().outbox_events(&p.tenant).await.unwrap().len(), events_before);
    let blank = page("/v1/chargebacks?limit=&cursor=&status=&reason=".into()).await;
    assert_eq!(blank, json!({ "items": before, "nextCursor": null }));
}

/// Settles `order_ref`/I1 for a tenant of `app` set up by `Payments::tenant_on`.
async fn settled_as(app: &common::TestApp, token: &str, scheme: &str, order_ref: &str) {
    let card = json!({ "type": "CARD", "details": {
        "cardNumber": "4242424242424242", "expiryMonth": 12, "expiryYear": 2040, "cardholderName": "Jane Doe" } });
    let fi = app.post("/v1/customer-vault/C1/financial-instruments", token, &card).await;
    let fi = fi.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string();
    let order = json!({ "orderRef": order_ref, "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "financialInstrumentId": fi,
        "schemeId": scheme, "amount": "15.00", "currency": "EUR", "country": "DE" }] });
    app.post("/v1/order-management", token, &order).await.assert_status(202);
    let execute = format!("/v1/order-management/{order_ref}/instruction/I1/execute");
    assert_eq!(app.post(&execute, token, &json!({})).await.assert_status(200)["status"], "SETTLED");
}

#[tokio::test]
async fn each_tenant_pages_through_its_own_chargebacks_only() {
    let p = Payments::new().await;
    let (_, other, other_scheme) = Payments::tenant_on(&p.app, "Other tenant").await;
    p.settled("O1", "4242424242424242", "20.00").await;
    let first = force(&p.app, &p.token, "O1", "QUALITY").await;
    // Nothing of the first tenant, whatever the query.
    assert_eq!(p.app.get("/v1/chargebacks", &other).await.assert_status(200), &empty_page());
    assert_eq!(p.app.get("/v1/chargebacks?reason=QUALITY&limit=1", &other).await.assert_status(200), &empty_page());

    // The same refs in the other tenant, then more of the first's.
    settled_as(&p.app, &other, &other_scheme, "O1").await;
    p.app.clock.advance(Duration::from_millis(1));
    let theirs = force(&p.app, &other, "O1", "QUALITY").await;
    p.app.clock.advance(Duration::from_millis(1));
    for reason in ["CLERICAL", "QUALITY"] {
        force(&p.app, &p.token, "O1", reason).await;
    }
    let read = p.token_with(&["tenant-transaction-read"]).await;
    let mine = everything(&p.app, &read).await;
    assert_eq!(mine.len(), 3);
    assert_eq!(mine[2], first);
    assert_eq!(walk(&p.app, &read, "", 1, async |_| {}).await, ids(&mine));
    assert_eq!(walk(&p.app, &read, "reason=QUALITY", 1, async |_| {}).await, ids(&[mine[0].clone(), mine[2].clone()]));
    let only_theirs = std::slice::from_ref(&theirs);
    assert_eq!(everything(&p.app, &other).await, only_theirs);
    assert_eq!(walk(&p.app, &other, "reason=QUALITY", 1, async |_| {}).await, ids(only_theirs));

    // A cursor is only a position: with the first tenant's, the other sees its own
    // older chargeback and none of the first's.
    let my_cursor = p.app.get("/v1/chargebacks?limit=1", &read).await.assert_status(200)["nextCursor"].clone();
    let with_mine = p.app.get(&format!("/v1/chargebacks?cursor={}", my_cursor.as_str().unwrap()), &other).await;
    assert_eq!(with_mine.assert_status(200), &json!({ "items": [theirs], "nextCursor": null }));
    // Nor one by one.
    let one_of_mine = format!("/v1/chargebacks/{}", mine[0]["chargebackId"].as_str().unwrap());
    p.app.get(&one_of_mine, &other).await.assert_error(404, "CHARGEBACK_NOT_FOUND");
    let by_instruction = p.app.get("/v1/order-management/O1/instruction/I1/chargebacks", &other).await;
    assert_eq!(by_instruction.assert_status(200), &json!([theirs]));
    let by_instruction = p.app.get("/v1/order-management/O1/instruction/I1/chargebacks", &read).await;
    assert_eq!(by_instruction.assert_status(200), &json!(mine));
}

#[tokio::test]
async fn the_api_reference_describes_the_page() {
    let app = common::TestApp::spawn().await;
    let doc = app.send(reqwest::Method::GET, "/v1/openapi.json", None, &[], None).await;
    let doc = doc.assert_status(200);
    let list = &doc["paths"]["/v1/chargebacks"]["get"];
    let params: Vec<&str> =
        list["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["status", "reason", "from", "to", "limit", "cursor"]);
    let ok = &list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(ok, "#/components/schemas/ChargebackPageDto");
    let page = &doc["components"]["schemas"]["ChargebackPageDto"]["properties"];
    assert_eq!(page["items"]["items"]["$ref"], "#/components/schemas/ChargebackDto");
    assert!(page["nextCursor"].is_object());
    let bad = list["responses"]["400"]["description"].as_str().unwrap();
    assert!(bad.contains("INVALID_LIMIT (limit)") && bad.contains("INVALID_CURSOR (cursor)"), "{bad}");
    // One instruction's chargebacks stay a bare array.
    let path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/chargebacks";
    let by_instruction = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(by_instruction["type"], "array", "{by_instruction}");
}
