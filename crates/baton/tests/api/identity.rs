//! HMAC-to-bearer authentication (SPEC §2) through the real HTTP API.

use crate::common;

use std::time::{Duration, Instant};

use baton_domain::hmac_signature::authorization_header;
use common::{KeyPair, Options, TestApp};
use reqwest::Method;
use serde_json::json;

fn header_at(key: &KeyPair, nonce: &str, epoch: &str, body: &[u8]) -> String {
    authorization_header(&key.public_key, &key.private_key, nonce, epoch, body).unwrap()
}

fn nonce() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn issues_a_token_that_authenticates_and_carries_the_environment() {
    let app = TestApp::spawn().await;
    let reply = app.token_request(&app.hmac(&app.admin, b""), &[]).await;
    let body = reply.assert_status(200);
    let token = body["accessToken"].as_str().unwrap();
    let expires: i64 = body["expires"].as_str().unwrap().parse().unwrap();
    // `expires` is the expiry in Unix milliseconds, one token lifetime ahead.
    let ahead = expires - app.now_ms();
    assert!((3_598_000..=3_601_000).contains(&ahead), "expires {ahead} ms ahead");
    let claims = decode_claims(token);
    assert_eq!(claims["aud"], "management-api");
    assert_eq!(claims["env"], "sandbox");
    assert_eq!(claims["account"], app.account_id.as_str());
    assert_eq!(claims["sid"], app.admin.public_key.as_str());
    assert_eq!(claims["role"], json!(["account-admin"]));
    assert!(claims["jti"].is_string() && claims["iat"].is_i64());
    let header = decode_part(token, 0);
    assert!(header["kid"].is_string(), "tokens name their signing key: {header}");
    app.get("/v1/account", token).await.assert_status(200);
}

fn decode_part(token: &str, i: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn decode_claims(token: &str) -> serde_json::Value {
    decode_part(token, 1)
}

#[tokio::test]
async fn accepts_every_documented_client_variant() {
    let app = TestApp::spawn().await;
    let epoch = (app.now_ms() / 1000).to_string();
    // Scheme word in any case, integer epoch.
    for word in ["Hmac", "HMAC", "hmac"] {
        let h = header_at(&app.admin, &nonce(), &epoch, b"").replacen("Hmac", word, 1);
        app.token_request(&h, &[]).await.assert_status(200);
    }
    // JS/Postman: fractional epoch reused as the nonce.
    let fractional = format!("{}.{:03}", app.now_ms() / 1000, app.now_ms() % 1000);
    app.token_request(&header_at(&app.admin, &fractional, &fractional, b""), &[]).await.assert_status(200);
    // Legacy aliases, and a signed non-empty body.
    for path in ["/identity/v1/hmac/collect", "/identity/v1/hmac/payout"] {
        let body = br#"{"hello":"world"}"#;
        let h = header_at(&app.admin, &nonce(), &epoch, body);
        app.post_raw(path, &[("authorization", &h), ("content-type", "application/json")], body.to_vec())
            .await
            .assert_status(200);
    }
    // An upper-case public key (as some GUID libraries print it) is the same key, and
    // its nonces are the same nonces.
    let upper = KeyPair { public_key: app.admin.public_key.to_uppercase(), private_key: app.admin.private_key.clone() };
    let n = nonce();
    app.token_request(&header_at(&upper, &n, &epoch, b""), &[]).await.assert_status(200);
    app.token_request(&header_at(&app.admin, &n, &epoch, b""), &[]).await.assert_error(401, "HMAC_NONCE_REUSED");
    // Context headers naming the key's own account are fine.
    let h = app.hmac(&app.admin, b"");
    app.token_request(&h, &[("x-account-id", &app.account_id.to_uppercase())]).await.assert_status(200);
}

#[tokio::test]
async fn refuses_bad_signatures_and_replays() {
    let app = TestApp::spawn().await;
    let epoch = (app.now_ms() / 1000).to_string();

    // Wrong private key.
    let wrong = KeyPair {
        public_key: app.admin.public_key.clone(),
        private_key: "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=".into(),
    };
    app.token_request(&header_at(&wrong, &nonce(), &epoch, b""), &[]).await.assert_error(401, "HMAC_SIGNATURE_INVALID");

    // A body other than the one signed (tampered in transit).
    let signed_for = header_at(&app.admin, &nonce(), &epoch, br#"{"a":1}"#);
    app.post_raw("/identity/v1/hmac/management", &[("authorization", &signed_for)], r#"{"a":2}"#)
        .await
        .assert_error(401, "HMAC_SIGNATURE_INVALID");

    // Unknown key, malformed header, missing header.
    let unknown = KeyPair { public_key: uuid::Uuid::new_v4().to_string(), private_key: app.admin.private_key.clone() };
    app.token_request(&header_at(&unknown, &nonce(), &epoch, b""), &[]).await.assert_error(401, "API_KEY_NOT_FOUND");
    app.token_request("Hmac only:three:parts", &[]).await.assert_error(401, "HMAC_MALFORMED");
    app.token_request("Basic dXNlcjpwYXNz", &[]).await.assert_error(401, "HMAC_MALFORMED");
    app.send(Method::POST, "/identity/v1/hmac/management", None, &[], None).await.assert_error(401, "HMAC_MALFORMED");

    // Stale and future epochs, just outside the 300 s window; just inside is fine.
    let now = app.now_ms() / 1000;
    for off in [-302i64, 302] {
        let h = header_at(&app.admin, &nonce(), &(now + off).to_string(), b"");
        app.token_request(&h, &[]).await.assert_error(401, "HMAC_TIMESTAMP_OUT_OF_RANGE");
    }
    app.token_request(&header_at(&app.admin, &nonce(), &(now - 290).to_string(), b""), &[]).await.assert_status(200);

    // The same nonce twice: refused the second time, even with a fresh signature.
    let n = nonce();
    app.token_request(&header_at(&app.admin, &n, &epoch, b""), &[]).await.assert_status(200);
    app.token_request(&header_at(&app.admin, &n, &epoch, b""), &[]).await.assert_error(401, "HMAC_NONCE_REUSED");
    let later = (now + 1).to_string();
    app.token_request(&header_at(&app.admin, &n, &later, b""), &[]).await.assert_error(401, "HMAC_NONCE_REUSED");
}

#[tokio::test]
async fn replayed_nonce_is_refused_by_another_node() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let h = app.hmac(&app.admin, b"");
    app.token_request(&h, &[]).await.assert_status(200);
    let reply = app
        .client
        .post(format!("http://{}/identity/v1/hmac/management", peer.addr))
        .header("authorization", h)
        .send()
        .await
        .unwrap();
    common::read(reply).await.assert_error(401, "HMAC_NONCE_REUSED");
    peer.shutdown().await.unwrap();
}

#[tokio::test]
async fn context_headers_must_match_the_key() {
    let app = TestApp::spawn().await;
    let h = app.hmac(&app.admin, b"");
    app.token_request(&h, &[("x-account-id", "someone-else")]).await.assert_error(403, "ACCOUNT_ID_MISMATCH");
    let h = app.hmac(&app.admin, b"");
    app.token_request(&h, &[("x-tenant-id", "a-tenant")]).await.assert_error(403, "TENANT_ID_MISMATCH");
}

#[tokio::test]
async fn bearer_tokens_must_be_valid_unexpired_and_unrevoked() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    app.send(Method::GET, "/v1/account", None, &[], None).await.assert_error(401, "TOKEN_MISSING");
    app.get("/v1/account", "not-a-jwt").await.assert_error(401, "TOKEN_INVALID");
    // A signature that does not match.
    let mut forged = token.clone();
    forged.push('x');
    app.get("/v1/account", &forged).await.assert_error(401, "TOKEN_INVALID");
    // Claims edited without re-signing.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = decode_claims(&token);
    claims["role"] = json!(["account-admin", "platform-admin"]);
    use base64::Engine as _;
    let edited = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    app.get("/v1/account", &format!("{}.{}.{}", parts[0], edited, parts[2])).await.assert_error(401, "TOKEN_INVALID");

    // Expiry: one token lifetime later the token is refused.
    app.clock.advance(Duration::from_secs(3601));
    app.get("/v1/account", &token).await.assert_error(401, "TOKEN_EXPIRED");
}

#[tokio::test]
async fn a_production_node_refuses_sandbox_tokens() {
    let sandbox = TestApp::spawn().await;
    let token = sandbox.admin_token().await;
    let production =
        TestApp::spawn_with(Options { environment: baton_domain::Environment::Production, ..Options::default() }).await;
    // Even a structurally valid token from another deployment fails on signature or environment.
    production.get("/v1/account", &token).await.assert_error(401, "TOKEN_INVALID");
    let prod_token = production.admin_token().await;
    assert_eq!(decode_claims(&prod_token)["env"], "production");
}

#[tokio::test]
async fn deleting_a_key_revokes_its_tokens_on_every_node_within_a_second() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let key = app.create_account_key(&admin, &["account-tenant-read"]).await;
    let token = app.token(&key).await;
    let peer = app.spawn_peer().await;
    let on_peer =
        |t: &str| app.client.get(format!("http://{}/v1/account", peer.addr)).bearer_auth(t.to_string()).send();
    assert_eq!(on_peer(&token).await.unwrap().status(), 200);

    app.delete(&format!("/v1/account/keys/{}", key.public_key), &admin).await.assert_status(204);
    // The deleting node refuses at once.
    app.get("/v1/account", &token).await.assert_error(401, "TOKEN_REVOKED");
    // The other node within one second.
    let deleted_at = Instant::now();
    loop {
        let reply = common::read(on_peer(&token).await.unwrap()).await;
        if reply.status == 401 {
            reply.assert_error(401, "TOKEN_REVOKED");
            break;
        }
        assert!(deleted_at.elapsed() < Duration::from_secs(1), "peer still accepts a revoked token after 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And no new token can be had for the deleted key.
    app.token_request(&app.hmac(&key, b""), &[]).await.assert_error(401, "API_KEY_NOT_FOUND");
    peer.shutdown().await.unwrap();
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_live_tokens_valid() {
    let app = TestApp::spawn().await;
    let before = app.admin_token().await;
    let old_kid = decode_part(&before, 0)["kid"].clone();
    let new_kid = app.node.as_ref().unwrap().engine.rotate_signing_key().await.unwrap();
    let after = app.admin_token().await;
    assert_eq!(decode_part(&after, 0)["kid"], new_kid.as_str());
    assert_ne!(old_kid, new_kid.as_str());
    // Both the token signed before rotation and the new one authenticate, here and on
    // a node that starts afterwards.
    app.get("/v1/account", &before).await.assert_status(200);
    app.get("/v1/account", &after).await.assert_status(200);
    let peer = app.spawn_peer().await;
    for t in [&before, &after] {
        let status =
            app.client.get(format!("http://{}/v1/account", peer.addr)).bearer_auth(t).send().await.unwrap().status();
        assert_eq!(status, 200);
    }
    peer.shutdown().await.unwrap();
}

#[tokio::test]
async fn pending_tenants_get_no_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_account_key(&admin, &["account-tenant-approval"]).await;
    app.put(
        "/v1/account",
        &admin,
        &json!({"billingContactFirstName": "Ada", "billingContactLastName": "Lovelace", "tenantCreationRequiresApproval": true}),
    )
    .await
    .assert_status(200);
    let reply = app.post("/v1/account/tenants", &admin, &json!({"name": "Pending Ltd"})).await;
    let tenant = reply.assert_status(201)["tenantId"].as_str().unwrap().to_string();
    let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
    app.token_request(&app.hmac(&key, b""), &[]).await.assert_error(403, "TENANT_NOT_ACTIVE");
    app.post(&format!("/v1/account/tenants/{tenant}/approve"), &admin, &json!({})).await.assert_status(200);
    app.token_request(&app.hmac(&key, b""), &[]).await.assert_status(200);
}

#[tokio::test]
async fn changing_a_keys_roles_retires_tokens_with_the_old_roles() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let key = app.create_account_key(&admin, &["account-tenant-write"]).await;
    let old = app.token(&key).await;
    let path = format!("/v1/account/keys/{}", key.public_key);
    // A rename keeps the roles, and the tokens.
    app.put(&path, &admin, &json!({"name": "renamed", "roles": ["account-tenant-write"]})).await.assert_status(200);
    app.get("/v1/account/tenants", &old).await.assert_status(200);
    // Narrowing the roles: the old token may no longer act with its wider roles.
    let peer = app.spawn_peer().await;
    app.put(&path, &admin, &json!({"name": "renamed", "roles": ["account-tenant-read"]})).await.assert_status(200);
    app.post("/v1/account/tenants", &old, &json!({"name": "Should not exist"}))
        .await
        .assert_error(401, "TOKEN_REVOKED");
    let changed_at = Instant::now();
    loop {
        let reply = common::read(
            app.client.get(format!("http://{}/v1/account/tenants", peer.addr)).bearer_auth(&old).send().await.unwrap(),
        )
        .await;
        if reply.status == 401 {
            reply.assert_error(401, "TOKEN_REVOKED");
            break;
        }
        assert!(changed_at.elapsed() < Duration::from_secs(1), "peer honours stale roles after 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new token carries the new roles.
    let new = app.token(&key).await;
    assert_eq!(decode_claims(&new)["role"], json!(["account-tenant-read"]));
    app.get("/v1/account/tenants", &new).await.assert_status(200);
    app.post("/v1/account/tenants", &new, &json!({"name": "Nope"})).await.assert_error(403, "ROLE_REQUIRED");
    assert_eq!(app.get("/v1/account/tenants", &admin).await.body.as_array().unwrap().len(), 0);
    peer.shutdown().await.unwrap();
}
