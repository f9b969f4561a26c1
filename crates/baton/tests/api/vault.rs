//! The customer vault's key hierarchy end to end: customer data keys created through
//! the engine of a real node, `baton vault rotate-master-key` run as the binary, and
//! nodes restarted with the old and the new master key. On SQLite by default, on
//! PostgreSQL when `BATON_TEST_DATABASE_URL` is set.

use crate::common;

use std::ops::ControlFlow;
use std::process::{Command, Output};
use std::sync::Arc;

use baton::config::{Database, MasterKeySource};
use baton_engine::vault::RotationReport;
use baton_engine::{EngineError, KeyOwner, KeyRequest};
use baton_vault::MasterKey;
use common::{KeyPair, TestApp};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_baton");

/// The master key the app's nodes run with (base64).
fn master_key_text(app: &TestApp) -> String {
    match &app.config.store.master_key {
        MasterKeySource::Inline(text) => text.clone(),
        other => panic!("the harness configures an inline master key, not {other:?}"),
    }
}

/// Runs the binary against the app's database with the given master key settings.
fn baton(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(app.data_dir.path()).env("BATON_LOG", "warn");
    for var in ["DATABASE_URL", "BATON_DATA_DIR", "BATON_MASTER_KEY", "BATON_MASTER_KEY_FILE", "BATON_NEW_MASTER_KEY"] {
        command.env_remove(var);
    }
    match &app.config.store.database {
        Database::Sqlite { .. } => command.arg("--data-dir").arg(app.data_dir.path()),
        Database::Postgres { url, .. } => command.env("DATABASE_URL", url),
    };
    command.envs(env.iter().copied()).output().expect("baton runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stops the app's node.
async fn stop(app: &mut TestApp) {
    app.node.take().expect("a running node").shutdown().await.expect("clean shutdown");
}

/// Starts a node with `master_key`, and points the app at it if it starts.
async fn restart_with(app: &mut TestApp, master_key: &str) -> anyhow::Result<()> {
    let mut config = app.config.clone();
    config.store.master_key = MasterKeySource::Inline(master_key.to_string());
    let node = baton::node::start(config.clone(), app.clock.clone()).await?;
    assert!(node.initial_credentials.is_none(), "the database was already initialised");
    app.base = format!("http://{}", node.addr);
    app.addr = node.addr;
    app.config = config;
    app.node = Some(node);
    Ok(())
}

fn engine(app: &TestApp) -> Arc<baton_engine::Engine> {
    app.node.as_ref().expect("a running node").engine.clone()
}

/// A tenant with a `tenant-admin` key, the sandbox card app configured with a secret,
/// and `customers` customers whose data keys each sealed one value. Returns the
/// tenant, its key, and each customer's ref with its sealed value.
async fn populate(app: &TestApp, customers: usize) -> (String, KeyPair, Vec<(String, Vec<u8>)>) {
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Vault tenant").await;
    let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
    let engine = engine(app);
    let config = json!({ "merchantName": "Acme", "apiKey": "sk_test_rotation" });
    engine.install_app(&app.account_id, &tenant, "sandbox-card", Some(&config)).await.expect("install");
    let mut sealed = Vec::new();
    for i in 0..customers {
        let customer = format!("cust-{i:03}");
        let data_key = engine.customer_data_key(&tenant, &customer).await.expect("data key");
        let aad = baton_vault::instrument_aad(&tenant, &customer, "fi-1");
        sealed.push((customer.clone(), data_key.seal(format!("4111 {customer}").as_bytes(), &aad)));
    }
    (tenant, key, sealed)
}

/// Every customer's value opens with the data key the node now unwraps.
async fn assert_customers_readable(app: &TestApp, tenant: &str, sealed: &[(String, Vec<u8>)]) {
    let engine = engine(app);
    for (customer, value) in sealed {
        let data_key = engine.customer_data_key(tenant, customer).await.expect("data key after rotation");
        let aad = baton_vault::instrument_aad(tenant, customer, "fi-1");
        assert_eq!(data_key.open(value, &aad).unwrap(), format!("4111 {customer}").as_bytes(), "{customer}");
    }
}

/// Tokens are issued by HMAC (so API private keys open) and the app's secrets open
/// (reading the installed app opens them: a 500 otherwise).
async fn assert_identity_and_apps_work(app: &TestApp, tenant_key: &KeyPair) {
    let admin = app.admin_token().await;
    app.get("/v1/account", &admin).await.assert_status(200);
    let token = app.token(tenant_key).await;
    let reply = app.get("/v1/apps/installed/sandbox-card", &token).await;
    assert_eq!(reply.assert_status(200)["configuration"]["apiKey"], "********");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_master_key_moves_everything_and_retires_the_old_key() {
    let mut app = TestApp::spawn().await;
    let (tenant, tenant_key, sealed) = populate(&app, 5).await;
    let engine_before = engine(&app);
    engine_before.customer_data_key(&tenant, "forgotten").await.unwrap();
    assert!(engine_before.shred_customer(&tenant, "forgotten").await.unwrap());
    // The tenant's own SMTP password, sealed under the master key.
    let settings = baton_engine::pay_by_link::delivery::DeliverySettingsInput {
        email: Some(baton_engine::pay_by_link::delivery::EmailSettingsInput {
            host: Some("smtp.example.com".into()),
            username: Some("acme".into()),
            password: Some("smtp-password".into()),
            from: Some("billing@acme.test".into()),
            ..Default::default()
        }),
        sms: None,
    };
    engine_before.save_delivery_settings(&tenant, settings).await.unwrap();
    // A token issued before the rotation.
    let old_token = app.admin_token().await;
    drop(engine_before);
    stop(&mut app).await;

    let old_key = master_key_text(&app);
    let (new_key, new_text) = MasterKey::generate();
    let key_file = app.data_dir.path().join("new-master.key");
    std::fs::write(&key_file, format!("{new_text}\n")).unwrap();

    // Without a new key, or with the current one as the new one: refused, nothing done.
    let out = baton(&app, &["vault", "rotate-master-key"], &[("BATON_MASTER_KEY", &old_key)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("new master key is required"), "{}", stderr(&out));
    let out =
        baton(&app, &["vault", "rotate-master-key", "--new-master-key", &old_key], &[("BATON_MASTER_KEY", &old_key)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is the current one"), "{}", stderr(&out));
    // With a master key that is not the database's: refused, nothing done.
    let (_, stranger) = MasterKey::generate();
    let out = baton(
        &app,
        &["vault", "rotate-master-key", "--new-master-key-file", key_file.to_str().unwrap()],
        &[("BATON_MASTER_KEY", &stranger)],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not the one this database was initialised with"), "{}", stderr(&out));

    let out = baton(
        &app,
        &["vault", "rotate-master-key", "--new-master-key-file", key_file.to_str().unwrap(), "--batch-size", "2"],
        &[("BATON_MASTER_KEY", &old_key)],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty(), "progress and advice go to stderr");
    // Five live customer keys in batches of two; the shredded one is not touched.
    assert!(err.contains("2 customer data keys re-wrapped, 3 to go"), "{err}");
    assert!(err.contains("5 customer data keys re-wrapped, 0 to go"), "{err}");
    // Signing key, admin key, tenant key, the app's secrets, the tenant's SMTP password.
    assert!(err.contains("5 customer data keys re-wrapped, 5 sealed secrets re-sealed"), "{err}");
    assert!(err.contains(&new_key.key_id()), "{err}");
    assert!(err.contains("Restart every node with the new master key"), "{err}");
    assert!(!err.contains(&new_text) && !err.contains(&old_key), "keys are never printed");

    // The old key no longer starts a node.
    let refused = restart_with(&mut app, &old_key).await.expect_err("the old key is refused");
    assert!(format!("{refused:#}").contains("not the one this database was initialised with"), "{refused:#}");

    // The new key does, and everything works: HMAC token issuance (API private keys),
    // tokens signed before the rotation (signing keys), app secrets, customer keys.
    restart_with(&mut app, &new_text).await.expect("the new key starts a node");
    assert_identity_and_apps_work(&app, &tenant_key).await;
    assert_eq!(app.get("/v1/account", &old_token).await.status, 200, "an earlier token still verifies");
    assert_customers_readable(&app, &tenant, &sealed).await;
    match engine(&app).customer_data_key(&tenant, "forgotten").await {
        Err(EngineError::Rejected(p)) => assert_eq!(p.0[0].code, "CUSTOMER_ERASED"),
        other => panic!("a forgotten customer stays forgotten, got {other:?}"),
    }
    // New customers get keys under the new master key.
    engine(&app).customer_data_key(&tenant, "after-rotation").await.unwrap();
    // The SMTP password opens under the new key (it is read to send every message).
    let delivery = engine(&app).delivery_settings(&tenant).await.expect("delivery secrets open");
    assert_eq!(delivery.email.unwrap()["password"], "********");

    // Running the finished rotation again (config already on the new key) is refused
    // as a no-op; with the old key as current it is accepted and changes nothing.
    stop(&mut app).await;
    let out = baton(
        &app,
        &["vault", "rotate-master-key", "--new-master-key-file", key_file.to_str().unwrap()],
        &[("BATON_MASTER_KEY", &old_key)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("0 customer data keys re-wrapped, 0 sealed secrets re-sealed"), "{}", stderr(&out));
    restart_with(&mut app, &new_text).await.expect("still the new key");
    assert_customers_readable(&app, &tenant, &sealed).await;
    stop(&mut app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rotation_resumes_where_it_stopped() {
    let mut app = TestApp::spawn().await;
    let (tenant, tenant_key, sealed) = populate(&app, 5).await;
    let owner = KeyOwner::Account { account_id: app.account_id.clone() };
    let extra = engine(&app)
        .create_api_key(owner, KeyRequest { name: Some("extra".into()), roles: vec!["account-admin".into()] })
        .await
        .unwrap();
    engine(&app).rotate_signing_key().await.unwrap();
    stop(&mut app).await;

    // In process, against the same database: one batch of two, then stop.
    let old_key = master_key_text(&app);
    let (new_key, new_text) = MasterKey::generate();
    let rotating = baton::node::build_engine(&app.config.store, app.config.token_ttl, app.clock.clone()).await.unwrap();
    let mut batches = 0;
    let report = rotating
        .rotate_master_key_with(&new_key, 2, |_| {
            batches += 1;
            ControlFlow::Break(())
        })
        .await
        .unwrap();
    assert_eq!((batches, report), (1, RotationReport { rewrapped: 2, remaining: 3, resealed: 0, complete: false }));
    rotating.close().await;

    // Half-way, the database still expects the old key: a node starts with it, but the
    // two moved customers' keys are not readable with it.
    restart_with(&mut app, &old_key).await.expect("the old key still starts a node");
    let moved = &sealed[0].0;
    assert!(engine(&app).customer_data_key(&tenant, moved).await.is_err());
    assert_customers_readable(&app, &tenant, &sealed[2..]).await;
    stop(&mut app).await;

    // The command continues with the three left, then the sealed values.
    let out = baton(
        &app,
        &["vault", "rotate-master-key", "--batch-size", "2"],
        &[("BATON_MASTER_KEY", &old_key), ("BATON_NEW_MASTER_KEY", &new_text)],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 customer data keys re-wrapped, 1 to go"), "{err}");
    // Two signing keys, two account keys, the tenant key, the app's secrets.
    assert!(err.contains("3 customer data keys re-wrapped, 6 sealed secrets re-sealed"), "{err}");

    assert!(restart_with(&mut app, &old_key).await.is_err(), "the old key is refused");
    restart_with(&mut app, &new_text).await.expect("the new key starts a node");
    assert_customers_readable(&app, &tenant, &sealed).await;
    assert_identity_and_apps_work(&app, &tenant_key).await;
    let extra = KeyPair { public_key: extra.key.public_key, private_key: extra.private_key };
    app.token(&extra).await;
    stop(&mut app).await;
}
