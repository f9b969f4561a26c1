//! Secrets never reach the log, even at the most verbose level, and every request's
//! lines carry its correlation id.

use crate::common;

use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn no_secret_is_ever_logged() {
    let captured = common::LogCapture::start();

    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let account_key = app.create_account_key(&admin, &["account-tenant-write"]).await;
    let tenant = app.create_tenant(&admin, "Logged Ltd").await;
    let tenant_key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
    let tenant_token = app.token(&tenant_key).await;
    app.get(&format!("/v1/tenant/{tenant}/keys"), &tenant_token).await.assert_status(200);
    // A refused signature and a refused token are logged as refusals, without their secrets.
    let bad = app.hmac(
        &common::KeyPair { public_key: account_key.public_key.clone(), private_key: app.admin.private_key.clone() },
        b"",
    );
    app.token_request(&bad, &[]).await.assert_error(401, "HMAC_SIGNATURE_INVALID");
    app.post("/v1/account/tenants", &tenant_token, &json!({"name": "x"}))
        .await
        .assert_error(403, "ACCOUNT_KEY_REQUIRED");

    let log = captured.text();
    assert!(log.contains("request served"), "requests are logged at all");
    let master_key = match &app.config.store.master_key {
        baton::config::MasterKeySource::Inline(k) => k.clone(),
        other => panic!("unexpected master key source {other:?}"),
    };
    let signature = bad.rsplit(':').next().unwrap().to_string();
    for (what, secret) in [
        ("admin private key", app.admin.private_key.as_str()),
        ("account key private key", account_key.private_key.as_str()),
        ("tenant key private key", tenant_key.private_key.as_str()),
        ("master key", master_key.as_str()),
        ("bearer token", admin.as_str()),
        ("tenant bearer token", tenant_token.as_str()),
        ("HMAC signature", signature.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} appears in the log");
    }
    // Every line logged inside a request names that request's correlation id.
    for line in log.lines().filter(|l| l.contains("request served")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["span"]["correlation_id"].as_str().is_some_and(|c| c.contains(':')), "{line}");
        assert_eq!(v["span"]["environment"], "sandbox");
    }
}
