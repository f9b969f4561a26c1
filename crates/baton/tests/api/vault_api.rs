//! The customer vault's financial-instrument API (SPEC §5.4) end to end: creation of
//! each type with display data only, validation without echoing secrets, reads,
//! state changes with history, isolation, roles, erasure, and a scan of the raw
//! database for plaintext card numbers and IBANs. On SQLite by default, on
//! PostgreSQL when `BATON_TEST_DATABASE_URL` is set.

use crate::common;

use std::sync::Arc;

use baton::config::Database;
use common::{Options, TestApp};
use serde_json::{json, Value};

const VISA: &str = "4111111111111111";
const MASTERCARD: &str = "5555555555554444";
const IBAN_DE: &str = "DE89370400440532013000";
const IBAN_NL: &str = "NL91ABNA0417164300";

/// A tenant with keys for writing, reading and administering it.
struct Fixture {
    app: TestApp,
    tenant: String,
    write: String,
    read: String,
    admin: String,
}

async fn fixture(accept_raw_card_data: bool) -> Fixture {
    let app = TestApp::spawn_with(Options { accept_raw_card_data, ..Options::default() }).await;
    let account = app.admin_token().await;
    let tenant = app.create_tenant(&account, "Vault API tenant").await;
    let mut tokens = Vec::new();
    for role in ["tenant-transaction-write", "tenant-transaction-read", "tenant-admin"] {
        let key = app.create_tenant_key(&account, &tenant, &[role]).await;
        tokens.push(app.token(&key).await);
    }
    let [write, read, admin] = <[String; 3]>::try_from(tokens).unwrap();
    Fixture { app, tenant, write, read, admin }
}

fn fis(customer: &str) -> String {
    format!("/v1/customer-vault/{customer}/financial-instruments")
}

fn card(number: &str) -> Value {
    json!({ "type": "CARD", "details": {
        "cardNumber": number, "expiryMonth": 12, "expiryYear": 2030, "cardholderName": "Jane Doe", "cvv": "737"
    } })
}

fn bank(iban: &str) -> Value {
    json!({ "type": "BANK_ACCOUNT", "details": { "accountHolderName": "Jane Doe", "iban": iban } })
}

fn engine(app: &TestApp) -> Arc<baton_engine::Engine> {
    app.node.as_ref().expect("a running node").engine.clone()
}

/// Creates an instrument and returns its id.
async fn create(f: &Fixture, customer: &str, body: &Value) -> String {
    let reply = f.app.post(&fis(customer), &f.write, body).await;
    reply.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn raw_card_data_is_refused_by_default_and_nothing_is_stored() {
    let f = fixture(false).await;
    let reply = f.app.post(&fis("C1"), &f.write, &card(VISA)).await;
    reply.assert_error(400, "RAW_CARD_DATA_NOT_ACCEPTED");
    assert!(!reply.text.contains(VISA));
    let list = f.app.get(&fis("C1"), &f.read).await;
    assert_eq!(list.assert_status(200), &json!([]));
    // Other types are accepted.
    create(&f, "C1", &bank(IBAN_DE)).await;
}

#[tokio::test]
async fn every_type_is_created_with_display_data_only() {
    let f = fixture(true).await;
    let reply = f.app.post(&fis("C1"), &f.write, &card(VISA)).await;
    let body = reply.assert_status(201).clone();
    let id = body["financialInstrumentId"].as_str().unwrap();
    assert_eq!(reply.header("location"), Some(format!("{}/{id}", fis("C1")).as_str()));
    assert_eq!(body["customerRef"], "C1");
    assert_eq!(body["type"], "CARD");
    assert_eq!(body["appId"], Value::Null);
    assert_eq!(body["state"], "ACTIVE");
    assert_eq!(body["stateReason"], Value::Null);
    assert_eq!(body["display"], json!({ "brand": "VISA", "last4": "1111", "expiryMonth": 12, "expiryYear": 2030 }));
    assert_eq!(body["supports"], json!({ "debit": true, "credit": true }));
    assert_eq!(body["singleUse"], false);
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
    // The CVV as a value (ids and timestamps may well hold the digits 737).
    assert!(!reply.text.contains(VISA) && !reply.text.contains("\"737\"") && !reply.text.contains("Jane"));
    assert!(!reply.text.to_ascii_lowercase().contains("cvv"), "{}", reply.text);

    // The CVV is never stored: the sealed details hold no trace of it.
    let secrets = engine(&f.app).instrument_secrets(&f.tenant, "C1", id).await.unwrap().expect("live customer");
    assert_eq!(secrets.details["cardNumber"], VISA);
    assert!(!secrets.details.to_string().contains("\"737\""), "CVV ignored");
    assert!(!secrets.details.to_string().to_ascii_lowercase().contains("cvv"), "CVV ignored");

    let reply = f.app.post(&fis("C1"), &f.write, &bank(IBAN_DE)).await;
    assert_eq!(
        reply.assert_status(201)["display"],
        json!({ "last4": "3000", "maskedIban": "DE89 **** **** **** 3000", "country": "DE" })
    );
    assert!(!reply.text.contains(IBAN_DE));

    let uk = json!({ "type": "bank_account", "details": {
        "accountHolderName": "J Doe", "accountNumber": "12345678", "sortCode": "12-34-56" } });
    let reply = f.app.post(&fis("C1"), &f.write, &uk).await;
    assert_eq!(
        reply.assert_status(201)["display"],
        json!({ "last4": "5678", "maskedAccountNumber": "****5678", "sortCode": "12-34-56" })
    );

    let phone = json!({ "type": "MOBILE_PHONE", "details": { "phoneNumber": "+447700900123" },
        "singleUse": true, "supports": { "debit": false, "credit": true } });
    let reply = f.app.post(&fis("C1"), &f.write, &phone).await;
    let body = reply.assert_status(201);
    assert_eq!(body["display"], json!({ "maskedPhoneNumber": "+44*******123" }));
    assert_eq!(
        (body["singleUse"].clone(), body["supports"].clone()),
        (json!(true), json!({ "debit": false, "credit": true }))
    );
    assert!(!reply.text.contains("7700900123"));

    let mandate = json!({ "type": "DIRECT_DEBIT_MANDATE", "providerTokens": { "sandbox-bank": "tok_123" }, "details": {
        "mandateReference": "MD-0001", "accountHolderName": "Jane Doe", "iban": IBAN_NL,
        "signedDate": "2026-01-02", "scheme": "sepa" } });
    let reply = f.app.post(&fis("C1"), &f.write, &mandate).await;
    let body = reply.assert_status(201).clone();
    assert_eq!(
        body["display"],
        json!({ "last4": "4300", "maskedIban": "NL91 **** **** **** 4300", "country": "NL",
            "mandateReference": "MD-0001", "scheme": "SEPA", "signedDate": "2026-01-02" })
    );
    assert!(!reply.text.contains(IBAN_NL) && !reply.text.contains("tok_123"));
    let secrets = engine(&f.app)
        .instrument_secrets(&f.tenant, "C1", body["financialInstrumentId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secrets.provider_tokens.get("SANDBOX_BANK").map(String::as_str), Some("tok_123"));

    // REWARD instruments come from claims.
    let reply = f.app.post(&fis("C1"), &f.write, &json!({ "type": "REWARD", "details": {} })).await;
    reply.assert_error(400, "REWARD_INSTRUMENT_NOT_CREATABLE");
    f.app.post(&fis("C1"), &f.write, &json!({ "details": {} })).await.assert_error(400, "FIELD_REQUIRED");
    f.app
        .post(&fis("C1"), &f.write, &json!({ "type": "CHEQUE" }))
        .await
        .assert_error(400, "INVALID_FINANCIAL_INSTRUMENT_TYPE");
    f.app.post(&fis("bad%20ref"), &f.write, &bank(IBAN_DE)).await.assert_error(400, "INVALID_CUSTOMER_REF");

    assert_eq!(f.app.get(&fis("C1"), &f.read).await.assert_status(200).as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn invalid_details_are_refused_without_echo() {
    let f = fixture(true).await;
    let bad_luhn = "4111111111111112";
    let cases = [
        (card(bad_luhn), "INVALID_CARD_NUMBER", bad_luhn),
        (bank("DE89370400440532013001"), "INVALID_IBAN", "DE89370400440532013001"),
        (
            json!({ "type": "MOBILE_PHONE", "details": { "phoneNumber": "07700900999" } }),
            "INVALID_PHONE_NUMBER",
            "07700900999",
        ),
        (
            json!({ "type": "CARD", "details": { "cardNumber": MASTERCARD, "expiryMonth": 1, "expiryYear": 2020 } }),
            "CARD_EXPIRED",
            MASTERCARD,
        ),
    ];
    for (body, code, secret) in cases {
        let reply = f.app.post(&fis("C1"), &f.write, &body).await;
        reply.assert_error(400, code);
        assert!(!reply.text.contains(secret), "{code} echoed the value: {}", reply.text);
    }
    assert_eq!(f.app.get(&fis("C1"), &f.read).await.assert_status(200), &json!([]));
}

#[tokio::test]
async fn list_filter_get_and_state_changes_with_history() {
    let f = fixture(true).await;
    let a = create(&f, "C1", &card(VISA)).await;
    let b = create(&f, "C1", &bank(IBAN_DE)).await;
    let one = |id: &str| format!("{}/{id}", fis("C1"));
    let state = |id: &str| format!("{}/{id}/state", fis("C1"));

    let got = f.app.get(&one(&a), &f.read).await;
    let body = got.assert_status(200);
    assert_eq!(body["display"]["last4"], "1111");
    assert_eq!(body["stateHistory"].as_array().unwrap().len(), 1);
    assert_eq!(body["stateHistory"][0]["state"], "ACTIVE");
    // Ids match ignoring case.
    f.app.get(&one(&a.to_uppercase()), &f.read).await.assert_status(200);

    // Deactivation needs a reason; moves outside §0 are refused.
    f.app.put(&state(&a), &f.write, &json!({ "state": "INACTIVE" })).await.assert_error(400, "STATE_REASON_REQUIRED");
    f.app.put(&state(&a), &f.write, &json!({ "state": "ACTIVE" })).await.assert_error(400, "INVALID_STATE_TRANSITION");
    f.app.put(&state(&a), &f.write, &json!({ "state": "GONE" })).await.assert_error(400, "INVALID_STATE");
    // LOCKED is the system's to set (a single-use instrument consumed by a payment).
    f.app.put(&state(&a), &f.write, &json!({ "state": "LOCKED" })).await.assert_error(400, "INVALID_STATE_TRANSITION");
    assert_eq!(f.app.get(&one(&a), &f.read).await.assert_status(200)["state"], "ACTIVE");
    f.app.put(&state(&a), &f.write, &json!({})).await.assert_error(400, "FIELD_REQUIRED");
    let reply = f.app.put(&state(&a), &f.write, &json!({ "state": "inactive", "reason": "EXPIRED" })).await;
    let body = reply.assert_status(200);
    assert_eq!((body["state"].clone(), body["stateReason"].clone()), (json!("INACTIVE"), json!("EXPIRED")));

    let inactive = f.app.get(&format!("{}?state=INACTIVE", fis("C1")), &f.read).await;
    let list = inactive.assert_status(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["financialInstrumentId"], a.as_str());
    assert!(list[0].get("stateHistory").is_none(), "lists carry no history");
    let active = f.app.get(&format!("{}?state=active", fis("C1")), &f.read).await;
    assert_eq!(active.assert_status(200)[0]["financialInstrumentId"], b.as_str());
    f.app.get(&format!("{}?state=NOPE", fis("C1")), &f.read).await.assert_error(400, "INVALID_STATE");

    f.app.put(&state(&a), &f.write, &json!({ "state": "ACTIVE", "reason": "EXPIRED" })).await.assert_status(200);
    f.app
        .put(&state(&a), &f.write, &json!({ "state": "CLOSED", "reason": "CUSTOMER_REQUEST" }))
        .await
        .assert_status(200);
    f.app.put(&state(&a), &f.write, &json!({ "state": "ACTIVE" })).await.assert_error(400, "INVALID_STATE_TRANSITION");
    let got = f.app.get(&one(&a), &f.read).await;
    let history: Vec<(String, Value)> = got.assert_status(200)["stateHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["changedAt"].as_str().unwrap().ends_with('Z'));
            (e["state"].as_str().unwrap().to_string(), e["reason"].clone())
        })
        .collect();
    assert_eq!(
        history,
        [
            ("ACTIVE".to_string(), Value::Null),
            ("INACTIVE".to_string(), json!("EXPIRED")),
            ("ACTIVE".to_string(), Value::Null),
            ("CLOSED".to_string(), json!("CUSTOMER_REQUEST")),
        ]
    );

    let missing = format!("{}/{}", fis("C1"), uuid::Uuid::new_v4());
    f.app.get(&missing, &f.read).await.assert_error(404, "FINANCIAL_INSTRUMENT_NOT_FOUND");
    f.app
        .put(&format!("{missing}/state"), &f.write, &json!({ "state": "CLOSED" }))
        .await
        .assert_error(404, "FINANCIAL_INSTRUMENT_NOT_FOUND");
}

#[tokio::test]
async fn other_customers_and_tenants_see_nothing() {
    let f = fixture(true).await;
    let id = create(&f, "C1", &card(VISA)).await;
    // Another customer of the same tenant.
    f.app.get(&format!("{}/{id}", fis("C2")), &f.read).await.assert_error(404, "FINANCIAL_INSTRUMENT_NOT_FOUND");
    f.app
        .put(&format!("{}/{id}/state", fis("C2")), &f.write, &json!({ "state": "CLOSED" }))
        .await
        .assert_error(404, "FINANCIAL_INSTRUMENT_NOT_FOUND");
    assert_eq!(f.app.get(&fis("C2"), &f.read).await.assert_status(200), &json!([]));

    // Another tenant, same customer ref.
    let account = f.app.admin_token().await;
    let other = f.app.create_tenant(&account, "Other tenant").await;
    let key = f.app.create_tenant_key(&account, &other, &["tenant-admin"]).await;
    let token = f.app.token(&key).await;
    f.app.get(&format!("{}/{id}", fis("C1")), &token).await.assert_error(404, "FINANCIAL_INSTRUMENT_NOT_FOUND");
    f.app
        .put(&format!("{}/{id}/state", fis("C1")), &token, &json!({ "state": "CLOSED" }))
        .await
        .assert_error(404, "FINANCIAL_INSTRUMENT_NOT_FOUND");
    assert_eq!(f.app.get(&fis("C1"), &token).await.assert_status(200), &json!([]));
    // Erasing the other tenant's namesake leaves this one alone.
    f.app.delete("/v1/customer-vault/C1", &token).await.assert_status(202);
    let got = f.app.get(&format!("{}/{id}", fis("C1")), &f.read).await;
    assert_eq!(got.assert_status(200)["state"], "ACTIVE");
    assert!(engine(&f.app).instrument_secrets(&f.tenant, "C1", &id).await.unwrap().is_some());
}

#[tokio::test]
async fn roles_are_enforced() {
    let f = fixture(true).await;
    // A reader cannot write or erase; a writer cannot erase.
    let reply = f.app.post(&fis("C1"), &f.read, &bank(IBAN_DE)).await;
    assert_eq!(reply.status.as_u16(), 403, "{}", reply.text);
    let reply = f.app.delete("/v1/customer-vault/C1", &f.write).await;
    assert_eq!(reply.status.as_u16(), 403, "{}", reply.text);
    // The writer can read (write implies read); the admin can do everything.
    create(&f, "C1", &bank(IBAN_DE)).await;
    f.app.get(&fis("C1"), &f.write).await.assert_status(200);
    f.app.post(&fis("C1"), &f.admin, &bank(IBAN_NL)).await.assert_status(201);
    // An account token is not a tenant token.
    let account = f.app.admin_token().await;
    let reply = f.app.get(&fis("C1"), &account).await;
    assert!(matches!(reply.status.as_u16(), 400 | 403), "{}", reply.text);
}

#[tokio::test]
async fn erasure_closes_instruments_and_shreds_their_details() {
    let f = fixture(true).await;
    let a = create(&f, "C1", &card(VISA)).await;
    let b = create(&f, "C1", &bank(IBAN_DE)).await;
    let c = create(&f, "C1", &bank(IBAN_NL)).await;
    let keep = create(&f, "C2", &card(MASTERCARD)).await;
    f.app.put(&format!("{}/{c}/state", fis("C1")), &f.write, &json!({ "state": "CLOSED" })).await.assert_status(200);

    let reply = f.app.delete("/v1/customer-vault/C1", &f.admin).await;
    let erasure = reply.assert_status(202)["erasureId"].as_str().unwrap().to_string();
    assert!(!erasure.is_empty());

    for id in [&a, &b, &c] {
        let got = f.app.get(&format!("{}/{id}", fis("C1")), &f.read).await;
        let body = got.assert_status(200);
        assert_eq!(body["state"], "CLOSED");
        assert!(body["display"]["last4"].is_string(), "display data survives erasure");
    }
    let card_view = f.app.get(&format!("{}/{a}", fis("C1")), &f.read).await;
    let body = card_view.assert_status(200);
    assert_eq!(body["display"]["last4"], "1111");
    assert_eq!(body["stateReason"], "CUSTOMER_REQUEST");
    // The one already closed was not closed again.
    let closed = f.app.get(&format!("{}/{c}", fis("C1")), &f.read).await;
    assert_eq!(closed.assert_status(200)["stateHistory"].as_array().unwrap().len(), 2);

    // The details can no longer be decrypted (and reading them is no error).
    let engine = engine(&f.app);
    for id in [&a, &b, &c] {
        assert_eq!(engine.instrument_secrets(&f.tenant, "C1", id).await.unwrap(), None);
    }
    assert!(engine.instrument_secrets(&f.tenant, "C2", &keep).await.unwrap().is_some(), "other customers keep theirs");
    // No new instrument for a forgotten customer; a second erasure is harmless.
    f.app.post(&fis("C1"), &f.write, &bank(IBAN_DE)).await.assert_error(409, "CUSTOMER_ERASED");
    let again = f.app.delete("/v1/customer-vault/C1", &f.admin).await;
    assert_ne!(again.assert_status(202)["erasureId"].as_str().unwrap(), erasure);
    assert_eq!(f.app.get(&fis("C1"), &f.read).await.assert_status(200).as_array().unwrap().len(), 3);
    f.app.delete("/v1/customer-vault/bad%20ref", &f.admin).await.assert_error(400, "INVALID_CUSTOMER_REF");
}

/// Every byte of the database as the server holds it: the SQLite file and its WAL,
/// or a `pg_dump` of the PostgreSQL test database.
async fn database_bytes(app: &TestApp) -> Vec<u8> {
    match &app.config.store.database {
        Database::Sqlite { path } => {
            let mut bytes = std::fs::read(path).expect("database file");
            let wal = path.with_file_name(format!("{}-wal", path.file_name().unwrap().to_string_lossy()));
            if let Ok(more) = std::fs::read(&wal) {
                bytes.extend(more);
            }
            bytes
        }
        Database::Postgres { .. } => {
            let url = app.pg.as_ref().expect("the PostgreSQL test database").url.clone();
            let out = std::process::Command::new("pg_dump").arg("--dbname").arg(&url).output().expect("pg_dump runs");
            assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_plaintext_card_number_or_iban_reaches_the_database() {
    let f = fixture(true).await;
    let secrets = [VISA, MASTERCARD, IBAN_DE, IBAN_NL];
    for customer in ["C1", "C2"] {
        create(&f, customer, &card(VISA)).await;
        create(&f, customer, &card(MASTERCARD)).await;
        create(&f, customer, &bank(IBAN_DE)).await;
        let mandate = json!({ "type": "DIRECT_DEBIT_MANDATE", "details": {
            "mandateReference": "MD-0001", "accountHolderName": "Jane Doe", "iban": IBAN_NL,
            "signedDate": "2026-01-02", "scheme": "SEPA" } });
        create(&f, customer, &mandate).await;
    }
    let bytes = database_bytes(&f.app).await;
    assert!(contains(&bytes, "1111"), "the scan sees the data (display data is in clear)");
    for secret in secrets {
        assert!(!contains(&bytes, secret), "{secret} found in the database");
    }
    f.app.delete("/v1/customer-vault/C1", &f.admin).await.assert_status(202);
    let bytes = database_bytes(&f.app).await;
    for secret in secrets {
        assert!(!contains(&bytes, secret), "{secret} found in the database after erasure");
    }
}

#[tokio::test]
async fn erasure_waits_while_money_is_moving_for_the_customer() {
    let f = fixture(false).await;
    let fi = create(&f, "C9", &bank(IBAN_DE)).await;
    let order = json!({
        "orderRef": "POLICY-9",
        "instructions": [{ "instructionRef": "M1", "customerRef": "C9", "direction": "DEBIT",
            "financialInstrumentId": fi, "amount": "49.90", "currency": "EUR", "country": "DE" }]
    });
    f.app.post("/v1/order-management", &f.write, &order).await.assert_status(202);
    // Execution (a later capability) moves instructions to PROCESSING; arrange it directly.
    f.app.execute_sql("UPDATE instructions SET status = 'PROCESSING'").await;
    let reply = f.app.delete("/v1/customer-vault/C9", &f.admin).await;
    reply.assert_error(400, "CUSTOMER_HAS_PROCESSING_INSTRUCTIONS");
    // Nothing was erased: the instrument is still active and its customer key intact.
    assert_eq!(f.app.get(&format!("{}/{fi}", fis("C9")), &f.read).await.assert_status(200)["state"], "ACTIVE");
    assert!(engine(&f.app).customer_data_key(&f.tenant, "C9").await.is_ok());
    // Once the instruction has settled, the customer can be forgotten.
    f.app.execute_sql("UPDATE instructions SET status = 'SETTLED'").await;
    f.app.delete("/v1/customer-vault/C9", &f.admin).await.assert_status(202);
    assert_eq!(f.app.get(&format!("{}/{fi}", fis("C9")), &f.read).await.assert_status(200)["state"], "CLOSED");
}
