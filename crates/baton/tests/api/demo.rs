//! `baton init --demo`: the demo tenant takes a payment right away.

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use baton::config::{Database, MasterKeySource, ServeConfig, StoreConfig};
use baton_domain::Environment;
use baton_engine::ManualClock;
use common::{KeyPair, TestApp};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_baton");

fn baton(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BATON_MASTER_KEY")
        .env("BATON_LOG", "warn")
        .output()
        .expect("baton runs")
}

fn text(v: &Value, field: &str) -> String {
    let s = v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}"));
    assert!(!s.is_empty(), "{field} is empty");
    s.to_string()
}

#[tokio::test]
async fn init_demo_prints_one_json_object_and_its_tenant_settles_a_card_payment() {
    let dir = tempfile::tempdir().unwrap();
    let out = baton(&["init", "--demo", "--json", "--data-dir", "data"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1);
    let demo: Value = serde_json::from_str(stdout.trim()).expect("exactly one JSON object");
    let keys: Vec<&String> = demo.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["accountId", "privateKey", "publicKey", "tenant"]);
    let tenant = &demo["tenant"];
    let keys: Vec<&String> = tenant.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["collectSchemeId", "payoutSchemeId", "privateKey", "publicKey", "rewardGroupId", "tenantId"]);
    for field in ["collectSchemeId", "payoutSchemeId", "privateKey", "publicKey", "rewardGroupId", "tenantId"] {
        text(tenant, field);
    }
    let saved = std::fs::read(dir.path().join("data/demo-tenant.json")).unwrap();
    assert_eq!(&serde_json::from_slice::<Value>(&saved).unwrap(), tenant, "the same tenant in the file");

    // A node on that database, accepting raw card data.
    let data_dir = dir.path().join("data");
    let config = ServeConfig {
        store: StoreConfig {
            data_dir: data_dir.clone(),
            database: Database::Sqlite { path: data_dir.join("baton.db") },
            master_key: MasterKeySource::DevFile(data_dir.join("master.key")),
            environment: Environment::Sandbox,
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        trusted_proxies: Vec::new(),
        rate_limit_per_second: 0,
        rate_limit_burst: 0,
        token_ttl: Duration::from_secs(3600),
        body_limit: 1024 * 1024,
        shutdown_grace: Duration::from_secs(5),
        accept_raw_card_data: true,
        worker_interval: None,
        connector_timeout: Duration::from_secs(30),
        webhooks: Default::default(),
        public_url: None,
        delivery: Default::default(),
    };
    let clock = Arc::new(ManualClock::default());
    let node = baton::node::start(config.clone(), clock.clone()).await.expect("node starts");
    assert!(node.initial_credentials.is_none(), "already initialised by init");
    let app = TestApp {
        base: format!("http://{}", node.addr),
        addr: node.addr,
        client: reqwest::Client::new(),
        account_id: text(&demo, "accountId"),
        admin: KeyPair { public_key: text(&demo, "publicKey"), private_key: text(&demo, "privateKey") },
        clock,
        config,
        node: Some(node),
        data_dir: tempfile::tempdir().unwrap(),
        pg: None,
    };
    app.admin_token().await;
    let key = KeyPair { public_key: text(tenant, "publicKey"), private_key: text(tenant, "privateKey") };
    let token = app.token(&key).await;

    // A stored card, an order with one instruction under the demo collect scheme, executed.
    let card = json!({ "type": "CARD", "details": {
        "cardNumber": "4242424242424242", "expiryMonth": 12, "expiryYear": 2030, "cardholderName": "Jane Doe" } });
    let fi = app.post("/v1/customer-vault/C1/financial-instruments", &token, &card).await;
    let fi = text(fi.assert_status(201), "financialInstrumentId");
    let order = json!({ "orderRef": "DEMO-1", "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "amount": "25.00", "currency": "EUR",
        "country": "DE", "financialInstrumentId": fi, "schemeId": text(tenant, "collectSchemeId") }] });
    let reply = app.post("/v1/order-management", &token, &order).await;
    assert!(reply.status.is_success(), "{}", reply.text);
    let executed = app.post("/v1/order-management/DEMO-1/instruction/I1/execute", &token, &json!({})).await;
    assert_eq!(executed.assert_status(200)["status"], "SETTLED");

    // The payout scheme offers the reward group's rewards.
    let path =
        format!("/v1/schemes/payout/{}/options?amount=25&currency=USD&country=US", text(tenant, "payoutSchemeId"));
    let options = app.get(&path, &token).await;
    assert!(options.status.is_success(), "{}", options.text);
    assert!(options.text.contains("SANDBOX_REWARDS"), "{}", options.text);
}

#[tokio::test]
async fn the_demo_tenant_can_be_added_to_an_account_that_requires_approval() {
    let app = TestApp::spawn().await;
    app.execute_sql("UPDATE accounts SET tenant_creation_requires_approval = TRUE").await;
    let demo = app.engine().create_demo_tenant(&app.account_id).await.expect("demo tenant");
    let tenant = app.engine().tenant(&app.account_id, &demo.tenant_id).await.unwrap();
    assert_eq!(tenant.status, baton_domain::TenantStatus::Active, "approved");
    let balance = app.engine().reward_account(&demo.tenant_id, "SANDBOX_REWARDS").await.unwrap().balance;
    assert_eq!(balance.minor, baton_engine::demo::DEMO_REWARD_FUNDS * 100);
}
