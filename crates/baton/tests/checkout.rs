//! Hosted checkout (SPEC §4.11): grants and checkout tokens, the hosted page and the
//! customer's payment, driven over HTTP as a browser without JavaScript would.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use baton_engine::checkout::TokenError;
use common::{Payments, Reply};
use serde_json::{json, Value};

const GRANTS: &str = "/v1/whitelabel-customer/grants";

/// An order `order_ref` with one DEBIT instruction `I1` of 49.90 EUR for customer C1,
/// under the tenant's collect scheme, without a financial instrument (INCOMPLETE).
async fn unpaid_order(p: &Payments, order_ref: &str) {
    let order = json!({ "orderRef": order_ref, "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "schemeId": p.scheme,
        "amount": "49.90", "currency": "EUR", "country": "DE" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
}

async fn grant(p: &Payments, body: &Value) -> Reply {
    p.app.post(GRANTS, &p.token, body).await
}

/// A checkout token for `order_ref`/I1.
async fn token_for(p: &Payments, order_ref: &str) -> String {
    let reply = grant(p, &json!({ "orderRef": order_ref, "instructionRef": "I1" })).await;
    reply.assert_status(201)["accessToken"].as_str().unwrap().to_string()
}

async fn instruction_status(p: &Payments, order_ref: &str) -> String {
    let reply = p.app.get(&format!("/v1/order-management/{order_ref}/instruction/I1"), &p.token).await;
    reply.assert_status(200)["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn grants_mint_sealed_expiring_tokens() {
    let p = Payments::new().await;
    unpaid_order(&p, "G-1").await;
    let before = p.app.now_ms();

    // Default lifetime: an hour; `expires` in Unix ms as a string, as for access tokens.
    let reply = grant(&p, &json!({ "orderRef": "G-1", "instructionRef": "I1" })).await;
    let body = reply.assert_status(201);
    let token = body["accessToken"].as_str().unwrap();
    let expires: i64 = body["expires"].as_str().unwrap().parse().unwrap();
    assert!((expires - (before + 3_600_000)).abs() < 5_000, "{expires} vs {before}");
    // Opaque: base64url of ciphertext, not a readable JWT.
    assert!(!token.contains('.') && !token.contains('='), "{token}");
    let raw = URL_SAFE_NO_PAD.decode(token).expect("base64url");
    assert!(!String::from_utf8_lossy(&raw).contains("G-1"));

    let claims = p.app.engine().open_checkout_token(token).expect("opens");
    assert_eq!((claims.order_ref.as_str(), claims.instruction_ref.as_str()), ("G-1", "I1"));
    assert_eq!((claims.amount, claims.currency.as_str(), claims.country.as_str()), (4990, "EUR", "DE"));
    assert_eq!(claims.tenant_id, p.tenant);
    assert_eq!(claims.scheme_id, p.scheme);
    assert_eq!(claims.exp * 1000, expires);
    assert_eq!(uuid::Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 4);

    // `expirySeconds` as a string (as the documented example sends it) or a number;
    // every token has its own id.
    let reply = grant(&p, &json!({ "orderRef": "G-1", "instructionRef": "I1", "expirySeconds": "6000" })).await;
    let other = reply.assert_status(201)["accessToken"].as_str().unwrap().to_string();
    let other_claims = p.app.engine().open_checkout_token(&other).unwrap();
    assert_ne!(other_claims.jti, claims.jti);
    assert!((other_claims.exp - (before / 1000 + 6000)).abs() < 5);
    let reply = grant(&p, &json!({ "OrderRef": "G-1", "InstructionRef": "I1", "ExpirySeconds": 60 })).await;
    let short = reply.assert_status(201)["accessToken"].as_str().unwrap().to_string();

    // Expired once the clock passes `exp`; tampered and garbage tokens never open.
    p.app.clock.advance(Duration::from_secs(61));
    assert!(matches!(p.app.engine().open_checkout_token(&short), Err(TokenError::Expired(_))));
    assert!(p.app.engine().open_checkout_token(token).is_ok());
    let mut tampered = raw.clone();
    tampered[20] ^= 0x80;
    let tampered = URL_SAFE_NO_PAD.encode(&tampered);
    assert_eq!(p.app.engine().open_checkout_token(&tampered), Err(TokenError::Invalid));
    for garbage in ["", "garbage", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", &token[..token.len() - 2]] {
        assert_eq!(p.app.engine().open_checkout_token(garbage), Err(TokenError::Invalid), "{garbage}");
    }
    // A token of another deployment (another master key) does not open here.
    let q = Payments::new().await;
    unpaid_order(&q, "G-1").await;
    let foreign = token_for(&q, "G-1").await;
    assert_eq!(p.app.engine().open_checkout_token(&foreign), Err(TokenError::Invalid));
}

#[tokio::test]
async fn grants_refuse_bad_input_and_unpayable_instructions() {
    let p = Payments::new().await;
    unpaid_order(&p, "B-1").await;

    // Bad fields, each with its own code and field.
    let reply = grant(&p, &json!({})).await;
    reply.assert_error(400, "FIELD_REQUIRED");
    assert_eq!(
        reply.codes(),
        [("FIELD_REQUIRED".into(), "orderRef".into()), ("FIELD_REQUIRED".into(), "instructionRef".into())]
    );
    for seconds in [json!(59), json!("2592001"), json!("soon"), json!(1.5), json!(-60)] {
        let body = json!({ "orderRef": "B-1", "instructionRef": "I1", "expirySeconds": seconds });
        let reply = grant(&p, &body).await;
        reply.assert_error(400, "INVALID_EXPIRY_SECONDS");
        assert_eq!(reply.codes()[0].1, "expirySeconds");
    }
    for (which, url) in [
        ("success", "http://shop.example/ok"),
        ("failed", "javascript:alert(1)"),
        ("cancelled", "/relative"),
        ("success", "https://user:secret@shop.example/"),
    ] {
        let body = json!({ "orderRef": "B-1", "instructionRef": "I1", "callbacks": { which: url } });
        let reply = grant(&p, &body).await;
        reply.assert_error(400, "INVALID_CALLBACK_URL");
        assert_eq!(reply.codes()[0].1, format!("callbacks.{which}"));
    }
    // https anywhere; plain http only to this machine, in the sandbox.
    let body = json!({ "orderRef": "B-1", "instructionRef": "I1", "callbacks": {
        "success": "https://shop.example/ok", "failed": "http://127.0.0.1:9/failed", "cancelled": "" } });
    let reply = grant(&p, &body).await;
    let token = reply.assert_status(201)["accessToken"].as_str().unwrap().to_string();
    let callbacks = p.app.engine().open_checkout_token(&token).unwrap().callbacks.unwrap();
    assert_eq!(callbacks.success.as_deref(), Some("https://shop.example/ok"));
    assert_eq!(callbacks.failed.as_deref(), Some("http://127.0.0.1:9/failed"));
    assert_eq!(callbacks.cancelled, None);

    // Unknown order or instruction.
    grant(&p, &json!({ "orderRef": "NOPE", "instructionRef": "I1" })).await.assert_error(404, "ORDER_NOT_FOUND");
    grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I9" })).await.assert_error(404, "INSTRUCTION_NOT_FOUND");

    // A payout (CREDIT) instruction is not paid by the customer.
    let body = json!({ "instructionRef": "I2", "customerRef": "C1", "direction": "CREDIT",
        "amount": "5.00", "currency": "EUR", "country": "DE" });
    p.app.post("/v1/order-management/B-1/instruction", &p.token, &body).await.assert_status(201);
    grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I2" })).await.assert_error(400, "NOT_A_DEBIT_INSTRUCTION");

    // A DEBIT instruction without a scheme cannot offer any method.
    let body = json!({ "instructionRef": "I3", "customerRef": "C1", "direction": "DEBIT",
        "amount": "5.00", "currency": "EUR", "country": "DE" });
    p.app.post("/v1/order-management/B-1/instruction", &p.token, &body).await.assert_status(201);
    grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I3" })).await.assert_error(400, "SCHEME_REQUIRED");

    // Settled, failed, void: no longer payable.
    p.settled("B-2", "4242424242424242", "10.00").await;
    let reply = grant(&p, &json!({ "orderRef": "B-2", "instructionRef": "I1" })).await;
    reply.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    assert_eq!(reply.body["errors"][0]["metadata"]["status"], "SETTLED");
    p.order("B-3", "4000000000000002", "10.00").await;
    p.execute("B-3").await.assert_error(402, "PAYMENT_DECLINED");
    grant(&p, &json!({ "orderRef": "B-3", "instructionRef": "I1" }))
        .await
        .assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    p.app.delete("/v1/order-management/B-1/instruction/I1", &p.token).await.assert_status(200);
    let reply = grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I1" })).await;
    reply.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    assert_eq!(reply.body["errors"][0]["metadata"]["status"], "VOID");

    // A LATE instruction can still be paid through the checkout.
    let order = json!({ "orderRef": "B-4", "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "schemeId": p.scheme,
        "amount": "10.00", "currency": "EUR", "country": "DE", "settledByDate": "2021-01-01" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
    p.app.tick().await;
    assert_eq!(instruction_status(&p, "B-4").await, "LATE");
    grant(&p, &json!({ "orderRef": "B-4", "instructionRef": "I1" })).await.assert_status(201);

    // Another tenant's order is not found; reading roles cannot mint tokens.
    let reader = p.token_with(&["tenant-transaction-read"]).await;
    let reply = p.app.post(GRANTS, &reader, &json!({ "orderRef": "B-4", "instructionRef": "I1" })).await;
    reply.assert_error(403, "ROLE_REQUIRED");
    let writer = p.token_with(&["tenant-transaction-write"]).await;
    p.app.post(GRANTS, &writer, &json!({ "orderRef": "B-4", "instructionRef": "I1" })).await.assert_status(201);
}
