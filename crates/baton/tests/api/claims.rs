//! Reward claims (SPEC §4.10): claim, poll, settle through the sandbox reward app.

use crate::common;

use std::time::Duration;

use baton::config::Database;
use baton_engine::demo::DemoTenant;
use common::{KeyPair, Reply, TestApp};
use serde_json::{json, Value};

/// A USD reward valid in the US for 1.00–2000.00 (variable value) in the sandbox catalogue.
const USD_REWARD: &str = "763f0c67cd8bdbb1e6da29540097080ef280e08cc3967de3e0f1c3103728efdd";
/// A EUR reward (DE, AT): not offered for a USD instruction.
const EUR_REWARD: &str = "b1c0b8432a425a4e16ca521aad11890fdcdfd10e8f2efd60fcde2c83a5320e1b";

struct Fx {
    app: TestApp,
    demo: DemoTenant,
    token: String,
}

impl Fx {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let demo = app.engine().create_demo_tenant(&app.account_id).await.expect("demo tenant");
        let key = KeyPair { public_key: demo.public_key.clone(), private_key: demo.private_key.clone() };
        let token = app.token(&key).await;
        Self { app, demo, token }
    }

    /// An order `order_ref` with one instruction `I1` for customer `C1` under the demo payout
    /// (or collect) scheme.
    async fn order(&self, order_ref: &str, direction: &str, amount: &str) {
        let scheme = if direction == "CREDIT" { &self.demo.payout_scheme_id } else { &self.demo.collect_scheme_id };
        let body = json!({ "orderRef": order_ref, "instructions": [{
            "instructionRef": "I1", "customerRef": "C1", "direction": direction, "amount": amount,
            "currency": "USD", "country": "US", "schemeId": scheme }] });
        let reply = self.app.post("/v1/order-management", &self.token, &body).await;
        assert!(reply.status.is_success(), "{}", reply.text);
    }

    async fn claim(&self, order_ref: &str, reward_id: &str) -> Reply {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/claim-reward");
        self.app.post(&path, &self.token, &json!({ "rewardId": reward_id })).await
    }

    async fn instruction(&self, order_ref: &str) -> Value {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1");
        self.app.get(&path, &self.token).await.assert_status(200).clone()
    }

    async fn balance(&self) -> i64 {
        self.app.engine().reward_account(&self.demo.tenant_id, "SANDBOX_REWARDS").await.unwrap().balance.minor
    }

    async fn set_balance(&self, minor: i64) {
        self.app
            .execute_sql(&format!(
                "UPDATE reward_accounts SET balance_minor = {minor} WHERE tenant_id = '{}'",
                self.demo.tenant_id
            ))
            .await;
    }

    /// One number from the node's database.
    async fn count(&self, sql: &str) -> i64 {
        match &self.app.config.store.database {
            Database::Sqlite { path } => {
                use sqlx::{ConnectOptions, Connection};
                let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                n
            }
            Database::Postgres { url, .. } => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                n
            }
        }
    }

    async fn events(&self, event_type: &str) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) FROM events WHERE tenant_id = '{}' AND event_type = '{event_type}'",
            self.demo.tenant_id
        ))
        .await
    }
}

/// `/v1/customer-vault/{customer}/reward/{fi}/transaction/{tx}` split into (fi, tx).
fn location_ids(location: &str) -> (String, String) {
    let parts: Vec<&str> = location.split('/').collect();
    assert_eq!(parts[..4], ["", "v1", "customer-vault", "C1"], "{location}");
    assert_eq!(parts[4], "reward", "{location}");
    assert_eq!(parts[6], "transaction", "{location}");
    (parts[5].to_string(), parts[7].to_string())
}

#[tokio::test]
async fn a_claim_settles_after_a_second_with_sealed_credentials() {
    let fx = Fx::new().await;
    fx.order("O1", "CREDIT", "25.00").await;
    assert_eq!(fx.instruction("O1").await["status"], "INCOMPLETE", "no instrument needed beforehand");

    let reply = fx.claim("O1", USD_REWARD).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    assert!(reply.text.is_empty(), "no body: {}", reply.text);
    let location = reply.header("location").expect("a Location").to_string();
    let (fi, tx) = location_ids(&location);
    assert_eq!(fx.balance().await, 1_000_000 - 2_500, "the claim drew the balance down");

    let instruction = fx.instruction("O1").await;
    assert_eq!(instruction["status"], "PROCESSING");
    assert_eq!(instruction["financialInstrument"]["financialInstrumentId"], fi.as_str());
    assert_eq!(instruction["financialInstrument"]["source"], "SYSTEM_GENERATED");
    let instrument = fx.app.get(&format!("/v1/customer-vault/C1/financial-instruments/{fi}"), &fx.token).await;
    let instrument = instrument.assert_status(200).clone();
    assert_eq!(instrument["type"], "REWARD");
    assert_eq!(instrument["state"], "ACTIVE");

    // Polled before the provider issued it.
    let poll = fx.app.get(&location, &fx.token).await;
    assert_eq!(poll.assert_status(200), &json!({ "status": "SETTLING", "data": null }));
    assert_eq!(fx.app.tick().await.jobs_run, 0, "not due yet");
    assert_eq!(fx.app.get(&location, &fx.token).await.body["status"], "SETTLING");

    fx.app.clock.advance(Duration::from_secs(1));
    assert_eq!(fx.app.tick().await.jobs_run, 1);
    let poll = fx.app.get(&location, &fx.token).await.assert_status(200).clone();
    assert_eq!(poll["status"], "SETTLED");
    let credentials = poll["data"]["credentialList"].as_array().expect("credentials").clone();
    assert!(!credentials.is_empty());
    for c in &credentials {
        for field in ["label", "value", "rewardType", "credentialType"] {
            assert!(c.get(field).is_some(), "{field} in {c}");
        }
    }
    assert!(poll["data"]["redemptionInstructions"].is_string());
    // Upper-case ids are the same claim.
    let upper = format!("/v1/customer-vault/C1/reward/{}/transaction/{}", fi.to_uppercase(), tx.to_uppercase());
    assert_eq!(fx.app.get(&upper, &fx.token).await.assert_status(200), &poll);

    assert_eq!(fx.instruction("O1").await["status"], "SETTLED");
    let instrument = fx.app.get(&format!("/v1/customer-vault/C1/financial-instruments/{fi}"), &fx.token).await;
    assert_eq!(instrument.assert_status(200)["state"], "LOCKED");
    assert_eq!(fx.events("reward.claim.settled").await, 1);
    assert_eq!(fx.events("reward.claim.failed").await, 0);
    // The credentials are stored sealed, never in clear.
    let value = credentials[0]["value"].as_str().unwrap().to_string();
    assert_eq!(
        fx.count(&format!(
            "SELECT COUNT(*) FROM transactions WHERE transaction_id = '{tx}' AND result_sealed IS NOT NULL \
             AND operation = 'REWARD_CLAIM' AND status = 'SETTLED' AND reward_id = '{USD_REWARD}'"
        ))
        .await,
        1
    );
    assert_eq!(fx.count(&format!("SELECT COUNT(*) FROM events WHERE data LIKE '%{value}%'")).await, 0);
    assert_eq!(fx.balance().await, 1_000_000 - 2_500, "settling keeps the drawdown");
}

#[tokio::test]
async fn claims_are_refused_with_specific_errors() {
    let fx = Fx::new().await;
    fx.order("DEBIT", "DEBIT", "25.00").await;
    fx.claim("DEBIT", USD_REWARD).await.assert_error(400, "NOT_A_PAYOUT_INSTRUCTION");

    fx.order("O1", "CREDIT", "25.00").await;
    fx.claim("O1", EUR_REWARD).await.assert_error(400, "REWARD_NOT_AVAILABLE");
    fx.claim("O1", "no-such-reward").await.assert_error(400, "REWARD_NOT_AVAILABLE");
    let path = "/v1/order-management/O1/instruction/I1/claim-reward";
    fx.app.post(path, &fx.token, &json!({})).await.assert_error(400, "FIELD_REQUIRED");
    fx.claim("NOPE", USD_REWARD).await.assert_error(404, "ORDER_NOT_FOUND");

    // Not in the Exact options for the amount: above the reward's maximum.
    fx.order("BIG", "CREDIT", "2500.00").await;
    fx.claim("BIG", USD_REWARD).await.assert_error(400, "REWARD_NOT_AVAILABLE");

    // The funding account holds less than the amount: nothing changes.
    fx.set_balance(1_000).await;
    fx.claim("O1", USD_REWARD).await.assert_error(402, "INSUFFICIENT_PROVIDER_FUNDS");
    assert_eq!(fx.instruction("O1").await["status"], "INCOMPLETE");
    assert_eq!(fx.balance().await, 1_000);
    let instruments = fx.app.get("/v1/customer-vault/C1/financial-instruments", &fx.token).await;
    assert_eq!(instruments.assert_status(200).as_array().map(Vec::len), Some(0), "no instrument was left behind");

    // A claimed instruction is no longer updatable.
    fx.set_balance(10_000).await;
    let reply = fx.claim("O1", USD_REWARD).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    fx.claim("O1", USD_REWARD).await.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    assert_eq!(fx.balance().await, 7_500, "drawn once");

    // Polling: unknown transaction, another customer, another instrument.
    let location = reply.header("location").unwrap().to_string();
    let (fi, tx) = location_ids(&location);
    let unknown = format!("/v1/customer-vault/C1/reward/{fi}/transaction/{}", uuid::Uuid::new_v4());
    fx.app.get(&unknown, &fx.token).await.assert_error(404, "TRANSACTION_NOT_FOUND");
    let other_customer = format!("/v1/customer-vault/C2/reward/{fi}/transaction/{tx}");
    fx.app.get(&other_customer, &fx.token).await.assert_error(404, "TRANSACTION_NOT_FOUND");
    let other_fi = format!("/v1/customer-vault/C1/reward/{}/transaction/{tx}", uuid::Uuid::new_v4());
    fx.app.get(&other_fi, &fx.token).await.assert_error(404, "TRANSACTION_NOT_FOUND");
}

#[tokio::test]
async fn two_claims_against_a_balance_for_one_draw_it_once() {
    let fx = Fx::new().await;
    fx.order("A", "CREDIT", "25.00").await;
    fx.order("B", "CREDIT", "25.00").await;
    fx.set_balance(2_500).await;
    let (a, b) = tokio::join!(fx.claim("A", USD_REWARD), fx.claim("B", USD_REWARD));
    let statuses = [a.status.as_u16(), b.status.as_u16()];
    assert!(statuses.contains(&202) && statuses.contains(&402), "{statuses:?}: {} / {}", a.text, b.text);
    let loser = if a.status.as_u16() == 402 { &a } else { &b };
    assert_eq!(loser.code(), "INSUFFICIENT_PROVIDER_FUNDS");
    assert_eq!(fx.balance().await, 0);
    assert_eq!(
        fx.count("SELECT COUNT(*) FROM financial_instruments WHERE type = 'REWARD'").await,
        1,
        "only the winner created an instrument"
    );
}

#[tokio::test]
async fn a_failed_claim_gives_the_balance_back() {
    let fx = Fx::new().await;
    fx.order("O1", "CREDIT", "25.00").await;
    let reply = fx.claim("O1", USD_REWARD).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    let location = reply.header("location").unwrap().to_string();
    assert_eq!(fx.balance().await, 1_000_000 - 2_500);
    // The provider no longer has the reward when it comes to issue it.
    fx.app.execute_sql("UPDATE transactions SET reward_id = 'withdrawn' WHERE operation = 'REWARD_CLAIM'").await;
    fx.app.clock.advance(Duration::from_secs(1));
    fx.app.tick().await;
    assert_eq!(fx.app.get(&location, &fx.token).await.assert_status(200), &json!({ "status": "FAILED", "data": null }));
    assert_eq!(fx.instruction("O1").await["status"], "FAILED");
    assert_eq!(fx.balance().await, 1_000_000, "the amount went back to the account");
    assert_eq!(fx.events("reward.claim.failed").await, 1);
    assert_eq!(fx.events("reward.claim.settled").await, 0);
}

#[tokio::test]
async fn the_sandbox_simulator_issues_a_pending_claim_now() {
    let fx = Fx::new().await;
    fx.order("O1", "CREDIT", "25.00").await;
    let location = fx.claim("O1", USD_REWARD).await.header("location").expect("a Location").to_string();
    assert_eq!(fx.instruction("O1").await["status"], "PROCESSING");
    let advance = json!({ "orderRef": "O1", "instructionRef": "I1" });
    let reply = fx.app.post("/v1/sandbox/reward-claims/advance", &fx.token, &advance).await;
    assert_eq!(reply.assert_status(200)["status"], "SETTLED", "no waiting for the provider's delay");
    let claim = fx.app.get(&location, &fx.token).await;
    assert_eq!(claim.assert_status(200)["status"], "SETTLED");
    assert_eq!(fx.events("reward.claim.settled").await, 1);
    // Nothing is pending any more; the claim's own job is gone too.
    let again = fx.app.post("/v1/sandbox/reward-claims/advance", &fx.token, &advance).await;
    again.assert_error(400, "NO_PENDING_REWARD_CLAIM");
    fx.app.clock.advance(std::time::Duration::from_secs(5));
    assert_eq!(fx.app.tick().await.jobs_run, 0);
}
