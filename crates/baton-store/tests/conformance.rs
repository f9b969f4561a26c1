//! Storage conformance suite: every scenario runs against a fresh SQLite file and,
//! when `BATON_TEST_DATABASE_URL` is set, against a fresh PostgreSQL database.

use std::future::Future;
use std::sync::Arc;

use baton_domain::{Address, Country, Role, RoleSet, SchemeKind, TenantStatus};
use baton_domain::{InstrumentState, InstrumentType, StateReason};
use baton_store::testing::PgTestDatabase;
use baton_store::{
    AccountRecord, ApiKeyRecord, Backend, Claimant, IdempotencyBegin, IdempotencyClaim, Initialization, KeyChange,
    KeyOwner, LicenseRecord, PostgresStore, SigningKeyRecord, SqliteStore, Store, StoreError, StoreResult,
    StoredResponse, TenantRecord,
};
use baton_store::{
    AppLimits, DraftRecord, DraftWrite, InstalledAppRecord, RewardAccountRecord, RewardGroupMember, RewardGroupRecord,
    SchemeRecord,
};
use baton_store::{
    Change, ChargebackFilter, ChargebackRecord, ListedChargeback, RefundRecord, TransactionOutcome, TransactionRecord,
};
use baton_store::{CustomerDefaultRecord, DefaultChange, InstructionRecord, OrderRecord};
use baton_store::{CustomerKeyRecord, SealedSecret, SealedSecretRef};
use baton_store::{ErasureRecord, InstrumentRecord, InstrumentStateRecord};
use baton_store::{InstructionFilter, Keyset, ListedInstruction, OrderFilter};
use tokio::sync::Barrier;

// Harness -----------------------------------------------------------------------------

async fn with_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("baton.db")).await.expect("open SQLite store");
    store.migrate().await.expect("migrate SQLite store");
    let store: Arc<dyn Store> = Arc::new(store);
    assert_eq!(store.backend(), Backend::Sqlite);
    scenario(store.clone()).await;
    store.close().await;
    // The directory must outlive the store's connections.
    drop(dir);
}

async fn with_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    // No server configured: this variant passes without running.
    let Some(db) = PgTestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::connect(&db.url, 5).await.expect("connect to test database");
    store.migrate().await.expect("migrate PostgreSQL store");
    let store: Arc<dyn Store> = Arc::new(store);
    assert_eq!(store.backend(), Backend::Postgres);
    scenario(store.clone()).await;
    store.close().await;
    // Dropping `db` drops the database, so it must live until the store is closed.
    drop(db);
}

/// One `#[tokio::test]` per backend for each scenario; an optional bracketed list is
/// passed to `tokio::test` (the runtime flavour for the concurrency scenarios).
macro_rules! conformance {
    ($($scenario:ident => $sqlite:ident, $postgres:ident $([$($flavor:tt)*])?;)*) => {$(
        #[tokio::test $(($($flavor)*))?]
        async fn $sqlite() {
            with_sqlite($scenario).await;
        }

        #[tokio::test $(($($flavor)*))?]
        async fn $postgres() {
            with_postgres($scenario).await;
        }
    )*};
}

conformance! {
    scenario_migrate_is_repeatable => sqlite_migrate_is_repeatable, postgres_migrate_is_repeatable;
    scenario_initialize => sqlite_initialize, postgres_initialize;
    scenario_initialize_concurrent => sqlite_initialize_concurrent, postgres_initialize_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_account_update => sqlite_account_update, postgres_account_update;
    scenario_license => sqlite_license, postgres_license;
    scenario_license_without_current => sqlite_license_without_current, postgres_license_without_current;
    scenario_tenants => sqlite_tenants, postgres_tenants;
    scenario_tenant_limit => sqlite_tenant_limit, postgres_tenant_limit;
    scenario_tenant_limit_concurrent => sqlite_tenant_limit_concurrent, postgres_tenant_limit_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_tenant_name_concurrent => sqlite_tenant_name_concurrent, postgres_tenant_name_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_api_keys => sqlite_api_keys, postgres_api_keys;
    scenario_last_admin_key => sqlite_last_admin_key, postgres_last_admin_key;
    scenario_last_admin_key_concurrent => sqlite_last_admin_key_concurrent, postgres_last_admin_key_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_nonces => sqlite_nonces, postgres_nonces;
    scenario_nonces_concurrent => sqlite_nonces_concurrent, postgres_nonces_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_idempotency => sqlite_idempotency, postgres_idempotency;
    scenario_idempotency_expiry_and_purge => sqlite_idempotency_expiry_and_purge, postgres_idempotency_expiry_and_purge;
    scenario_idempotency_concurrent => sqlite_idempotency_concurrent, postgres_idempotency_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_idempotency_dead_and_live_nodes => sqlite_idempotency_dead_and_live_nodes,
        postgres_idempotency_dead_and_live_nodes;
    scenario_signing_keys => sqlite_signing_keys, postgres_signing_keys;
    scenario_installed_apps => sqlite_installed_apps, postgres_installed_apps;
    scenario_app_limits => sqlite_app_limits, postgres_app_limits;
    scenario_app_limits_concurrent => sqlite_app_limits_concurrent, postgres_app_limits_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_schemes_and_drafts => sqlite_schemes_and_drafts, postgres_schemes_and_drafts;
    scenario_publish_revalidates => sqlite_publish_revalidates, postgres_publish_revalidates;
    scenario_reward_groups => sqlite_reward_groups, postgres_reward_groups;
    scenario_reward_accounts => sqlite_reward_accounts, postgres_reward_accounts;
    scenario_reward_balance_concurrent => sqlite_reward_balance_concurrent, postgres_reward_balance_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_reward_claim_drawdown_concurrent => sqlite_reward_claim_drawdown_concurrent,
        postgres_reward_claim_drawdown_concurrent [flavor = "multi_thread", worker_threads = 2];
    scenario_customer_key_created_once => sqlite_customer_key_created_once, postgres_customer_key_created_once
        [flavor = "multi_thread", worker_threads = 2];
    scenario_customer_key_shred => sqlite_customer_key_shred, postgres_customer_key_shred;
    scenario_customer_keys_by_master_key => sqlite_customer_keys_by_master_key, postgres_customer_keys_by_master_key;
    scenario_customer_key_rewrap_compare_and_set => sqlite_customer_key_rewrap_compare_and_set,
        postgres_customer_key_rewrap_compare_and_set;
    scenario_sealed_secrets_reseal => sqlite_sealed_secrets_reseal, postgres_sealed_secrets_reseal;
    scenario_instruments => sqlite_instruments, postgres_instruments;
    scenario_instrument_isolation => sqlite_instrument_isolation, postgres_instrument_isolation;
    scenario_instrument_state_compare_and_set => sqlite_instrument_state_compare_and_set,
        postgres_instrument_state_compare_and_set;
    scenario_instrument_state_concurrent => sqlite_instrument_state_concurrent, postgres_instrument_state_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_erase_customer_instruments => sqlite_erase_customer_instruments, postgres_erase_customer_instruments;
    scenario_orders => sqlite_orders, postgres_orders;
    scenario_order_defaults_resolve_statuses => sqlite_order_defaults_resolve_statuses,
        postgres_order_defaults_resolve_statuses;
    scenario_order_scheme_kind_must_fit => sqlite_order_scheme_kind_must_fit, postgres_order_scheme_kind_must_fit;
    // On one thread every racer has queued its order before SQLite's order writer runs:
    // they are committed as one group. On two threads groups form as they happen.
    scenario_orders_concurrent => sqlite_orders_concurrent_one_thread, postgres_orders_concurrent_one_thread;
    scenario_orders_concurrent => sqlite_orders_concurrent, postgres_orders_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_orders_announced => sqlite_orders_announced, postgres_orders_announced;
    scenario_orders_announced_concurrent => sqlite_orders_announced_concurrent_one_thread,
        postgres_orders_announced_concurrent_one_thread;
    scenario_orders_announced_concurrent => sqlite_orders_announced_concurrent, postgres_orders_announced_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_order_listing_filters => sqlite_order_listing_filters, postgres_order_listing_filters;
    scenario_order_listing_pages_with_inserts => sqlite_order_listing_pages_with_inserts,
        postgres_order_listing_pages_with_inserts;
    scenario_apply_is_all_or_nothing => sqlite_apply_is_all_or_nothing, postgres_apply_is_all_or_nothing;
    scenario_apply_event_runs => sqlite_apply_event_runs, postgres_apply_event_runs;
    // On one thread every racer has queued its changes before SQLite's group writer
    // runs: they meet in one group. On two threads groups form as they happen.
    scenario_apply_concurrent => sqlite_apply_concurrent_one_thread, postgres_apply_concurrent_one_thread;
    scenario_apply_concurrent => sqlite_apply_concurrent, postgres_apply_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_execution_subject => sqlite_execution_subject, postgres_execution_subject;
    scenario_start_processing => sqlite_start_processing, postgres_start_processing;
    scenario_due_collections_scan => sqlite_due_collections_scan, postgres_due_collections_scan;
    scenario_routing_version => sqlite_routing_version, postgres_routing_version;
    scenario_jobs_are_claimed_once => sqlite_jobs_are_claimed_once, postgres_jobs_are_claimed_once
        [flavor = "multi_thread", worker_threads = 4];
    scenario_job_leases_of_dead_and_live_nodes => sqlite_job_leases_of_dead_and_live_nodes,
        postgres_job_leases_of_dead_and_live_nodes;
    scenario_pending_attempts_of_dead_nodes => sqlite_pending_attempts_of_dead_nodes,
        postgres_pending_attempts_of_dead_nodes;
    scenario_node_heartbeats => sqlite_node_heartbeats, postgres_node_heartbeats;
    scenario_refunds_capped_concurrently => sqlite_refunds_capped_concurrently,
        postgres_refunds_capped_concurrently [flavor = "multi_thread", worker_threads = 2];
    scenario_chargebacks_unique_and_guarded => sqlite_chargebacks_unique_and_guarded,
        postgres_chargebacks_unique_and_guarded;
    scenario_chargeback_listing_pages => sqlite_chargeback_listing_pages, postgres_chargeback_listing_pages;
    scenario_webhook_fan_out => sqlite_webhook_fan_out, postgres_webhook_fan_out;
    scenario_events_no_endpoint_wants_are_written_dispatched => sqlite_events_no_endpoint_wants_are_written_dispatched,
        postgres_events_no_endpoint_wants_are_written_dispatched;
    scenario_webhook_deliveries_in_order => sqlite_webhook_deliveries_in_order,
        postgres_webhook_deliveries_in_order;
    scenario_webhook_batch_records => sqlite_webhook_batch_records, postgres_webhook_batch_records;
    scenario_webhook_claims_are_exclusive => sqlite_webhook_claims_are_exclusive,
        postgres_webhook_claims_are_exclusive [flavor = "multi_thread", worker_threads = 4];
    scenario_webhook_leases_of_dead_and_live_nodes => sqlite_webhook_leases_of_dead_and_live_nodes,
        postgres_webhook_leases_of_dead_and_live_nodes;
    scenario_webhook_dead_node_takeover_concurrent => sqlite_webhook_dead_node_takeover_concurrent,
        postgres_webhook_dead_node_takeover_concurrent [flavor = "multi_thread", worker_threads = 4];
    scenario_pay_by_links => sqlite_pay_by_links, postgres_pay_by_links;
    scenario_pay_by_link_status_concurrent => sqlite_pay_by_link_status_concurrent,
        postgres_pay_by_link_status_concurrent [flavor = "multi_thread", worker_threads = 2];
    scenario_pay_by_link_guards => sqlite_pay_by_link_guards, postgres_pay_by_link_guards;
    scenario_cancel_races_payment_start => sqlite_cancel_races_payment_start,
        postgres_cancel_races_payment_start [flavor = "multi_thread", worker_threads = 2];
    scenario_tenant_documents => sqlite_tenant_documents, postgres_tenant_documents;
}

/// Runs `racers` futures made by `make` on separate tasks, released together by a
/// barrier so that they really overlap, and returns their outputs in order.
async fn race<T, F, Fut>(racers: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let (barrier, fut) = (barrier.clone(), make(i));
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut outputs = Vec::with_capacity(racers);
    for task in tasks {
        outputs.push(task.await.expect("racer panicked"));
    }
    outputs
}

// Fixtures ----------------------------------------------------------------------------

const ACCOUNT: &str = "acc_main";
const OTHER_ACCOUNT: &str = "acc_other";
const ADMIN_KEY: &str = "pk_admin";
/// An arbitrary base time (Unix ms) so that every timestamp is realistic.
const T0: i64 = 1_700_000_000_000;

fn roles(list: &[Role]) -> RoleSet {
    RoleSet::new(list.to_vec())
}

fn gb_address(street: &str) -> Address {
    Address {
        street_address: street.to_string(),
        extended_street_address: "Floor 2".to_string(),
        locality: "London".to_string(),
        region: "Greater London".to_string(),
        post_code: "EC1A 1BB".to_string(),
        country: Some(Country::GB),
    }
}

fn account_record(account_id: &str) -> AccountRecord {
    AccountRecord {
        account_id: account_id.to_string(),
        account_ref: format!("ref-{account_id}"),
        company_name: "Baton Test Ltd".to_string(),
        billing_first_name: "Ada".to_string(),
        billing_last_name: "Lovelace".to_string(),
        billing_address: Address::default(),
        tenant_creation_requires_approval: false,
        created_at: T0,
        updated_at: T0,
    }
}

fn license_record(license_id: &str, valid_to: Option<i64>) -> LicenseRecord {
    LicenseRecord {
        license_id: license_id.to_string(),
        license_name: "Enterprise".to_string(),
        max_tenants: 25,
        max_transactions: 1_000_000,
        max_collect_apps: 7,
        max_payout_apps: 3,
        valid_from: T0 - 1_000,
        valid_to,
    }
}

fn account_owner(account_id: &str) -> KeyOwner {
    KeyOwner::Account { account_id: account_id.to_string() }
}

fn tenant_owner(tenant_id: &str) -> KeyOwner {
    KeyOwner::Tenant { account_id: ACCOUNT.to_string(), tenant_id: tenant_id.to_string() }
}

fn key_record(public_key: &str, owner: KeyOwner, list: &[Role], created_at: i64) -> ApiKeyRecord {
    ApiKeyRecord {
        public_key: public_key.to_string(),
        owner,
        name: format!("key {public_key}"),
        roles: roles(list),
        // Distinct bytes per key, including a zero byte, to catch truncation or mix-ups.
        private_key_sealed: [public_key.as_bytes(), &[0, 255, 7]].concat(),
        created_at,
        updated_at: created_at,
    }
}

fn account_key(public_key: &str, list: &[Role], created_at: i64) -> ApiKeyRecord {
    key_record(public_key, account_owner(ACCOUNT), list, created_at)
}

fn tenant_key(tenant_id: &str, public_key: &str, list: &[Role], created_at: i64) -> ApiKeyRecord {
    key_record(public_key, tenant_owner(tenant_id), list, created_at)
}

fn signing_key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_string(),
        secret_sealed: [b"secret-".as_slice(), kid.as_bytes()].concat(),
        created_at,
    }
}

fn initialization() -> Initialization {
    Initialization {
        master_key_check: vec![0xba, 0x70, 0x00, 0x01, 0xff],
        account: account_record(ACCOUNT),
        license: license_record("lic_1", None),
        admin_key: account_key(ADMIN_KEY, &[Role::AccountAdmin], T0),
        signing_key: signing_key("kid_init", T0),
    }
}

/// Initialises the store with the standard fixture and returns what was written.
async fn init(store: &dyn Store) -> Initialization {
    let init = initialization();
    store.initialize(&init).await.expect("initialize");
    init
}

fn tenant_record(tenant_id: &str, name: &str, status: TenantStatus, created_at: i64) -> TenantRecord {
    TenantRecord {
        tenant_id: tenant_id.to_string(),
        account_id: ACCOUNT.to_string(),
        name: name.to_string(),
        name_key: name.to_lowercase(),
        address: Address::default(),
        status,
        status_reason: None,
        created_at,
        updated_at: created_at,
    }
}

fn public_keys(keys: &[ApiKeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.public_key.as_str()).collect()
}

fn tenant_ids(tenants: &[TenantRecord]) -> Vec<&str> {
    tenants.iter().map(|t| t.tenant_id.as_str()).collect()
}

async fn deleted_since(store: &dyn Store, since: i64) -> Vec<String> {
    let mut keys: Vec<String> = store
        .keys_changed_since(since)
        .await
        .expect("keys_changed_since")
        .into_iter()
        .filter(|k| k.deleted)
        .map(|k| k.public_key)
        .collect();
    // The order is unspecified.
    keys.sort();
    keys
}

fn assert_conflict(result: StoreResult<()>) {
    assert!(matches!(result, Err(StoreError::Conflict(_))), "expected Conflict, got {result:?}");
}

fn assert_limit_exceeded(result: StoreResult<()>) {
    assert!(matches!(result, Err(StoreError::LimitExceeded)), "expected LimitExceeded, got {result:?}");
}

fn assert_last_admin<T: std::fmt::Debug>(result: StoreResult<T>) {
    assert!(matches!(result, Err(StoreError::LastAdminKey)), "expected LastAdminKey, got {result:?}");
}

// Scenarios: bootstrap, account, licence -----------------------------------------------

async fn scenario_migrate_is_repeatable(store: Arc<dyn Store>) {
    // Several nodes may migrate at once; already-applied migrations are a no-op.
    let (a, b) = tokio::join!(store.migrate(), store.migrate());
    a.expect("first concurrent migrate");
    b.expect("second concurrent migrate");
    store.ping().await.expect("ping");
    assert_eq!(store.master_key_check().await.unwrap(), None);
}

async fn scenario_initialize(store: Arc<dyn Store>) {
    let init = initialization();
    assert_eq!(store.master_key_check().await.unwrap(), None);
    assert_eq!(store.account(ACCOUNT).await.unwrap(), None);
    assert_eq!(store.current_license(ACCOUNT).await.unwrap(), None);
    assert!(store.signing_keys().await.unwrap().is_empty());
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), None);

    store.initialize(&init).await.expect("first initialize");

    let written = || async {
        assert_eq!(store.master_key_check().await.unwrap(), Some(vec![0xba, 0x70, 0x00, 0x01, 0xff]));
        assert_eq!(store.account(ACCOUNT).await.unwrap(), Some(init.account.clone()));
        assert_eq!(store.current_license(ACCOUNT).await.unwrap(), Some(init.license.clone()));
        assert_eq!(store.license_history(ACCOUNT).await.unwrap(), vec![init.license.clone()]);
        assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), Some(init.admin_key.clone()));
        assert_eq!(store.api_keys(&account_owner(ACCOUNT)).await.unwrap(), vec![init.admin_key.clone()]);
        assert_eq!(store.signing_keys().await.unwrap(), vec![init.signing_key.clone()]);
        assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);
    };
    written().await;

    // The very same initialisation again.
    let again = store.initialize(&init).await;
    assert!(matches!(again, Err(StoreError::AlreadyInitialized)), "got {again:?}");

    // A different initialisation (other account, keys, check value) writes nothing.
    let other = Initialization {
        master_key_check: vec![1, 2, 3],
        account: account_record(OTHER_ACCOUNT),
        license: license_record("lic_other", None),
        admin_key: key_record("pk_other_admin", account_owner(OTHER_ACCOUNT), &[Role::AccountAdmin], T0 + 5),
        signing_key: signing_key("kid_other", T0 + 5),
    };
    let again = store.initialize(&other).await;
    assert!(matches!(again, Err(StoreError::AlreadyInitialized)), "got {again:?}");
    written().await;
    assert_eq!(store.account(OTHER_ACCOUNT).await.unwrap(), None);
    assert_eq!(store.current_license(OTHER_ACCOUNT).await.unwrap(), None);
    assert!(store.license_history(OTHER_ACCOUNT).await.unwrap().is_empty());
    assert_eq!(store.api_key_by_public_key("pk_other_admin").await.unwrap(), None);
}

async fn scenario_initialize_concurrent(store: Arc<dyn Store>) {
    // Nodes starting together: exactly one initialisation wins, wholly.
    let results = race(4, |i| {
        let store = store.clone();
        async move {
            let account_id = format!("acc_{i}");
            let init = Initialization {
                master_key_check: vec![i as u8; 4],
                account: account_record(&account_id),
                license: license_record(&format!("lic_{i}"), None),
                admin_key: key_record(&format!("pk_admin_{i}"), account_owner(&account_id), &[Role::AccountAdmin], T0),
                signing_key: signing_key(&format!("kid_{i}"), T0),
            };
            store.initialize(&init).await
        }
    })
    .await;
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "results: {results:?}");
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok() || matches!(r, Err(StoreError::AlreadyInitialized)), "racer {i}: {r:?}");
    }
    let w = winners[0];
    assert_eq!(store.master_key_check().await.unwrap(), Some(vec![w as u8; 4]));
    assert_eq!(store.signing_keys().await.unwrap(), vec![signing_key(&format!("kid_{w}"), T0)]);
    for i in 0..results.len() {
        let account_id = format!("acc_{i}");
        assert_eq!(store.account(&account_id).await.unwrap().is_some(), i == w, "account {i}");
        assert_eq!(store.current_license(&account_id).await.unwrap().is_some(), i == w, "licence {i}");
        let key = store.api_key_by_public_key(&format!("pk_admin_{i}")).await.unwrap();
        assert_eq!(key.is_some(), i == w, "admin key {i}");
    }
}

async fn scenario_account_update(store: Arc<dyn Store>) {
    let init = init(&*store).await;

    let updated = AccountRecord {
        company_name: "Renamed Holdings plc".to_string(),
        billing_first_name: "Grace".to_string(),
        billing_last_name: "Hopper".to_string(),
        billing_address: gb_address("1 Poultry"),
        tenant_creation_requires_approval: true,
        updated_at: T0 + 60_000,
        ..init.account.clone()
    };
    store.update_account(&updated).await.expect("update account");
    assert_eq!(store.account(ACCOUNT).await.unwrap(), Some(updated.clone()));

    // Back to an address without a country and the flag off: NULL and false round-trip too.
    let cleared = AccountRecord {
        billing_address: Address { locality: "Paris".to_string(), ..Address::default() },
        tenant_creation_requires_approval: false,
        updated_at: T0 + 120_000,
        ..updated
    };
    store.update_account(&cleared).await.expect("update account again");
    assert_eq!(store.account(ACCOUNT).await.unwrap(), Some(cleared));
}

async fn scenario_license(store: Arc<dyn Store>) {
    let init = init(&*store).await;
    assert_eq!(store.current_license(ACCOUNT).await.unwrap(), Some(init.license.clone()));
    assert_eq!(store.license_history(ACCOUNT).await.unwrap(), vec![init.license]);
    assert_eq!(store.current_license(OTHER_ACCOUNT).await.unwrap(), None);
    assert!(store.license_history(OTHER_ACCOUNT).await.unwrap().is_empty());
    // The joined read returns the same account and current licence in one go.
    assert_eq!(
        store.account_with_license(ACCOUNT).await.unwrap(),
        Some((init.account.clone(), Some(store.current_license(ACCOUNT).await.unwrap().unwrap())))
    );
    assert_eq!(store.account_with_license(OTHER_ACCOUNT).await.unwrap(), None);
}

async fn scenario_license_without_current(store: Arc<dyn Store>) {
    // A licence with an end date is history, not the current licence.
    let ended = license_record("lic_ended", Some(T0 + 86_400_000));
    let init = Initialization { license: ended.clone(), ..initialization() };
    store.initialize(&init).await.expect("initialize");
    assert_eq!(store.current_license(ACCOUNT).await.unwrap(), None);
    assert_eq!(store.license_history(ACCOUNT).await.unwrap(), vec![ended]);
    // Without a current licence the joined read still finds the account.
    assert_eq!(store.account_with_license(ACCOUNT).await.unwrap(), Some((init.account.clone(), None)));
}

// Scenarios: tenants ------------------------------------------------------------------

async fn scenario_tenants(store: Arc<dyn Store>) {
    init(&*store).await;
    let acme = TenantRecord {
        address: gb_address("10 Downing St"),
        ..tenant_record("t_acme", "Acme", TenantStatus::Active, T0 + 10)
    };
    // Created earlier than Acme although inserted later: listing follows created_at.
    let beta = tenant_record("t_beta", "Beta", TenantStatus::PendingApproval, T0 + 5);
    let gamma = TenantRecord {
        status_reason: Some("incomplete documents".to_string()),
        ..tenant_record("t_gamma", "Gamma", TenantStatus::Rejected, T0 + 20)
    };
    for t in [&acme, &beta, &gamma] {
        store.create_tenant(t, -1).await.expect("create tenant");
    }

    assert_eq!(store.tenants(ACCOUNT, None).await.unwrap(), vec![beta.clone(), acme.clone(), gamma.clone()]);
    assert_eq!(store.tenants(ACCOUNT, Some(TenantStatus::Active)).await.unwrap(), vec![acme.clone()]);
    assert_eq!(store.tenants(ACCOUNT, Some(TenantStatus::PendingApproval)).await.unwrap(), vec![beta.clone()]);
    assert_eq!(store.tenants(ACCOUNT, Some(TenantStatus::Rejected)).await.unwrap(), vec![gamma.clone()]);
    assert!(store.tenants(OTHER_ACCOUNT, None).await.unwrap().is_empty());
    assert_eq!(store.tenant(ACCOUNT, "t_acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(store.tenant(ACCOUNT, "t_missing").await.unwrap(), None);
    // Tenants are addressed through their account.
    assert_eq!(store.tenant(OTHER_ACCOUNT, "t_acme").await.unwrap(), None);

    // Same name in another case: same name_key, so a conflict.
    let shouting = tenant_record("t_shout", "ACME", TenantStatus::Active, T0 + 30);
    assert_eq!(shouting.name_key, acme.name_key);
    assert_conflict(store.create_tenant(&shouting, -1).await);
    // A duplicate id is a conflict as well.
    assert_conflict(store.create_tenant(&tenant_record("t_acme", "Delta", TenantStatus::Active, T0 + 30), -1).await);
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["t_beta", "t_acme", "t_gamma"]);

    // update_tenant saves name and address only; status and creation time stay.
    let renamed = TenantRecord {
        name: "Acme Ltd".to_string(),
        name_key: "acme ltd".to_string(),
        address: Address { post_code: "SW1A 2AA".to_string(), ..Address::default() },
        updated_at: T0 + 1_000,
        ..acme.clone()
    };
    let attempt =
        TenantRecord { status: TenantStatus::Rejected, status_reason: Some("sneaky".to_string()), ..renamed.clone() };
    store.update_tenant(&attempt).await.expect("update tenant");
    assert_eq!(store.tenant(ACCOUNT, "t_acme").await.unwrap(), Some(renamed.clone()));

    // Taking a name that is in use (in another case) is a conflict and changes nothing.
    let clash = TenantRecord {
        name: "ACME LTD".to_string(),
        name_key: "acme ltd".to_string(),
        updated_at: T0 + 2_000,
        ..beta.clone()
    };
    assert_conflict(store.update_tenant(&clash).await);
    assert_eq!(store.tenant(ACCOUNT, "t_beta").await.unwrap(), Some(beta.clone()));

    // The old name was released by the rename.
    let reuse = tenant_record("t_acme2", "acme", TenantStatus::Active, T0 + 40);
    store.create_tenant(&reuse, -1).await.expect("old name is free again");

    // A tenant that does not exist cannot be updated (documented as `NotFound`).
    let ghost = tenant_record("t_ghost", "Ghost", TenantStatus::Active, T0);
    let result = store.update_tenant(&ghost).await;
    assert!(result.is_err(), "updating a missing tenant succeeded");
    assert!(!matches!(result, Err(StoreError::Conflict(_))), "got {result:?}");
    assert_eq!(store.tenant(ACCOUNT, "t_ghost").await.unwrap(), None);

    // Transitions apply only from the expected status.
    let moved = store
        .transition_tenant(ACCOUNT, "t_beta", TenantStatus::Active, TenantStatus::Rejected, Some("no"), T0 + 3_000)
        .await
        .unwrap();
    assert!(!moved);
    assert_eq!(store.tenant(ACCOUNT, "t_beta").await.unwrap(), Some(beta.clone()));
    let moved = store
        .transition_tenant(
            OTHER_ACCOUNT,
            "t_beta",
            TenantStatus::PendingApproval,
            TenantStatus::Active,
            None,
            T0 + 3_000,
        )
        .await
        .unwrap();
    assert!(!moved, "transitioned through another account");
    let moved = store
        .transition_tenant(ACCOUNT, "t_missing", TenantStatus::PendingApproval, TenantStatus::Active, None, T0 + 3_000)
        .await
        .unwrap();
    assert!(!moved);

    let moved = store
        .transition_tenant(ACCOUNT, "t_beta", TenantStatus::PendingApproval, TenantStatus::Active, None, T0 + 4_000)
        .await
        .unwrap();
    assert!(moved);
    let beta_active = TenantRecord { status: TenantStatus::Active, updated_at: T0 + 4_000, ..beta.clone() };
    assert_eq!(store.tenant(ACCOUNT, "t_beta").await.unwrap(), Some(beta_active.clone()));

    let moved = store
        .transition_tenant(
            ACCOUNT,
            "t_gamma",
            TenantStatus::Rejected,
            TenantStatus::PendingApproval,
            Some("resubmitted"),
            T0 + 5_000,
        )
        .await
        .unwrap();
    assert!(moved);
    let gamma_pending = TenantRecord {
        status: TenantStatus::PendingApproval,
        status_reason: Some("resubmitted".to_string()),
        updated_at: T0 + 5_000,
        ..gamma.clone()
    };
    assert_eq!(store.tenant(ACCOUNT, "t_gamma").await.unwrap(), Some(gamma_pending.clone()));
    assert_eq!(
        tenant_ids(&store.tenants(ACCOUNT, Some(TenantStatus::Active)).await.unwrap()),
        ["t_beta", "t_acme", "t_acme2"]
    );

    // Deletion: only in a deletable status, only through the owning account.
    let deletable = [TenantStatus::PendingApproval, TenantStatus::Rejected];
    assert!(!store.delete_tenant(ACCOUNT, "t_acme", &deletable).await.unwrap());
    assert_eq!(store.tenant(ACCOUNT, "t_acme").await.unwrap(), Some(renamed.clone()));
    assert!(!store.delete_tenant(OTHER_ACCOUNT, "t_gamma", &deletable).await.unwrap());
    assert!(!store.delete_tenant(ACCOUNT, "t_missing", &deletable).await.unwrap());

    // Keys of the tenant, one live and one soft-deleted, and a neighbour's key.
    let gamma_live = tenant_key("t_gamma", "pk_gamma_live", &[Role::TenantAdmin], T0 + 6_000);
    let gamma_gone = tenant_key("t_gamma", "pk_gamma_gone", &[Role::TenantAppRead], T0 + 6_001);
    let acme_key = tenant_key("t_acme", "pk_acme", &[Role::TenantAdmin], T0 + 6_002);
    for k in [&gamma_live, &gamma_gone, &acme_key] {
        store.insert_api_key(k).await.expect("insert key");
    }
    assert!(store.delete_api_key(&tenant_owner("t_gamma"), "pk_gamma_gone", T0 + 6_500).await.unwrap());

    assert!(store.delete_tenant(ACCOUNT, "t_gamma", &deletable).await.unwrap());
    assert_eq!(store.tenant(ACCOUNT, "t_gamma").await.unwrap(), None);
    assert_eq!(store.api_key_by_public_key("pk_gamma_live").await.unwrap(), None);
    assert!(store.api_keys(&tenant_owner("t_gamma")).await.unwrap().is_empty());
    assert_eq!(store.api_key(&tenant_owner("t_gamma"), "pk_gamma_live").await.unwrap(), None);
    assert!(!store.delete_tenant(ACCOUNT, "t_gamma", &deletable).await.unwrap(), "deleted twice");
    // Everything else is untouched.
    assert_eq!(store.api_key_by_public_key("pk_acme").await.unwrap(), Some(acme_key));
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["t_beta", "t_acme", "t_acme2"]);
    // The freed name can be used again.
    store
        .create_tenant(&tenant_record("t_gamma2", "gamma", TenantStatus::Active, T0 + 7_000), -1)
        .await
        .expect("deleted tenant's name is free");
}

async fn scenario_tenant_limit(store: Arc<dyn Store>) {
    init(&*store).await;
    let t = |id: &str, at: i64| tenant_record(id, id, TenantStatus::Active, at);

    store.create_tenant(&t("a", T0 + 1), 2).await.expect("first within limit");
    store.create_tenant(&t("b", T0 + 2), 2).await.expect("second within limit");
    assert_limit_exceeded(store.create_tenant(&t("c", T0 + 3), 2).await);
    assert_eq!(store.tenant(ACCOUNT, "c").await.unwrap(), None);
    assert_limit_exceeded(store.create_tenant(&t("c", T0 + 3), 0).await);

    // -1 is unlimited.
    store.create_tenant(&t("c", T0 + 3), -1).await.expect("unlimited");
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["a", "b", "c"]);
    assert_limit_exceeded(store.create_tenant(&t("d", T0 + 4), 3).await);

    // Pending tenants count; rejected ones do not.
    assert!(store
        .transition_tenant(ACCOUNT, "b", TenantStatus::Active, TenantStatus::PendingApproval, None, T0 + 5)
        .await
        .unwrap());
    assert_limit_exceeded(store.create_tenant(&t("d", T0 + 4), 3).await);
    assert!(store
        .transition_tenant(ACCOUNT, "a", TenantStatus::Active, TenantStatus::Rejected, Some("fraud"), T0 + 6)
        .await
        .unwrap());
    store.create_tenant(&t("d", T0 + 7), 3).await.expect("rejected tenant frees a slot");
    assert_limit_exceeded(store.create_tenant(&t("e", T0 + 8), 3).await);
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["a", "b", "c", "d"]);
}

async fn scenario_tenant_limit_concurrent(store: Arc<dyn Store>) {
    init(&*store).await;
    let results = race(8, |i| {
        let store = store.clone();
        async move {
            let id = format!("t_race_{i}");
            let tenant = tenant_record(&id, &format!("Racer {i}"), TenantStatus::Active, T0 + i as i64);
            (id, store.create_tenant(&tenant, 1).await)
        }
    })
    .await;
    let mut winners = Vec::new();
    for (id, result) in results {
        match result {
            Ok(()) => winners.push(id),
            Err(StoreError::LimitExceeded) => {}
            Err(e) => panic!("{id}: unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let tenants = store.tenants(ACCOUNT, None).await.unwrap();
    assert_eq!(tenant_ids(&tenants), [winners[0].as_str()]);
}

async fn scenario_tenant_name_concurrent(store: Arc<dyn Store>) {
    init(&*store).await;
    // The same name in different cases: one wins, the others conflict.
    let results = race(8, |i| {
        let store = store.clone();
        async move {
            let name = if i % 2 == 0 { "Same Name" } else { "SAME NAME" };
            let tenant = tenant_record(&format!("t_same_{i}"), name, TenantStatus::Active, T0 + i as i64);
            store.create_tenant(&tenant, -1).await
        }
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count();
    assert_eq!((ok, conflicts), (1, 7), "results: {results:?}");
    assert_eq!(store.tenants(ACCOUNT, None).await.unwrap().len(), 1);
}

// Scenarios: API keys -----------------------------------------------------------------

async fn scenario_api_keys(store: Arc<dyn Store>) {
    let init = init(&*store).await;
    for (id, name) in [("t_a", "Tenant A"), ("t_b", "Tenant B")] {
        store.create_tenant(&tenant_record(id, name, TenantStatus::Active, T0 + 1), -1).await.unwrap();
    }
    let acc_b = account_key("pk_acc_b", &[Role::AccountTenantRead, Role::AccountTenantApproval], T0 + 20);
    let acc_a = account_key("pk_acc_a", &[Role::AccountTenantWrite], T0 + 10);
    // Same creation time as pk_acc_a: ties are ordered by public key.
    let acc_c = account_key("pk_acc_c", &[Role::AccountTenantWrite], T0 + 10);
    let ta_1 = tenant_key("t_a", "pk_ta_1", &[Role::TenantAdmin], T0 + 5);
    let ta_2 = tenant_key("t_a", "pk_ta_2", &[Role::TenantAppRead, Role::TenantTransactionWrite], T0 + 1);
    let tb_1 = tenant_key("t_b", "pk_tb_1", &[Role::TenantAdmin], T0 + 2);
    for k in [&acc_b, &acc_c, &acc_a, &ta_1, &ta_2, &tb_1] {
        store.insert_api_key(k).await.expect("insert key");
    }
    // Public keys are unique across owners.
    assert_conflict(store.insert_api_key(&tenant_key("t_b", "pk_acc_a", &[Role::TenantAdmin], T0)).await);

    for k in [&init.admin_key, &acc_a, &acc_b, &acc_c, &ta_1, &ta_2, &tb_1] {
        assert_eq!(store.api_key_by_public_key(&k.public_key).await.unwrap().as_ref(), Some(k));
        assert_eq!(store.api_key(&k.owner, &k.public_key).await.unwrap().as_ref(), Some(k));
    }
    assert_eq!(store.api_key_by_public_key("pk_missing").await.unwrap(), None);

    let account = account_owner(ACCOUNT);
    let (owner_a, owner_b) = (tenant_owner("t_a"), tenant_owner("t_b"));
    assert_eq!(
        store.api_keys(&account).await.unwrap(),
        vec![init.admin_key.clone(), acc_a.clone(), acc_c.clone(), acc_b.clone()]
    );
    assert_eq!(store.api_keys(&owner_a).await.unwrap(), vec![ta_2.clone(), ta_1.clone()]);
    assert_eq!(store.api_keys(&owner_b).await.unwrap(), vec![tb_1.clone()]);
    assert!(store.api_keys(&account_owner(OTHER_ACCOUNT)).await.unwrap().is_empty());
    let foreign = KeyOwner::Tenant { account_id: OTHER_ACCOUNT.to_string(), tenant_id: "t_a".to_string() };
    assert!(store.api_keys(&foreign).await.unwrap().is_empty());

    // Owner scoping: a key is invisible through any owner but its own.
    assert_eq!(store.api_key(&owner_b, "pk_ta_1").await.unwrap(), None);
    assert_eq!(store.api_key(&account, "pk_ta_1").await.unwrap(), None);
    assert_eq!(store.api_key(&foreign, "pk_ta_1").await.unwrap(), None);
    assert_eq!(store.api_key(&owner_a, "pk_acc_a").await.unwrap(), None);
    assert_eq!(store.api_key(&account_owner(OTHER_ACCOUNT), "pk_acc_a").await.unwrap(), None);
    let admin_roles = roles(&[Role::TenantAdmin]);
    assert!(!store.update_api_key(&owner_b, "pk_ta_1", "hijack", &admin_roles, T0 + 50).await.unwrap());
    assert!(!store.update_api_key(&account, "pk_ta_1", "hijack", &admin_roles, T0 + 50).await.unwrap());
    assert!(!store.update_api_key(&owner_a, "pk_acc_a", "hijack", &admin_roles, T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&owner_b, "pk_ta_1", T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&account, "pk_ta_1", T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&owner_a, "pk_acc_a", T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&foreign, "pk_ta_1", T0 + 50).await.unwrap());
    assert_eq!(store.api_key_by_public_key("pk_ta_1").await.unwrap(), Some(ta_1.clone()));
    assert_eq!(store.api_key_by_public_key("pk_acc_a").await.unwrap(), Some(acc_a.clone()));
    assert!(deleted_since(&*store, 0).await.is_empty());

    // Update: name, roles and updated_at change; the rest stays.
    let new_roles = roles(&[Role::AccountTenantApproval, Role::AccountTenantRead]);
    assert!(store.update_api_key(&account, "pk_acc_a", "Renamed", &new_roles, T0 + 100).await.unwrap());
    let acc_a = ApiKeyRecord { name: "Renamed".to_string(), roles: new_roles, updated_at: T0 + 100, ..acc_a };
    assert_eq!(store.api_key(&account, "pk_acc_a").await.unwrap(), Some(acc_a.clone()));
    let tenant_roles = roles(&[Role::TenantAppWrite, Role::TenantAppRead]);
    assert!(store.update_api_key(&owner_a, "pk_ta_2", "Apps", &tenant_roles, T0 + 101).await.unwrap());
    let ta_2 = ApiKeyRecord { name: "Apps".to_string(), roles: tenant_roles, updated_at: T0 + 101, ..ta_2 };
    assert_eq!(store.api_key_by_public_key("pk_ta_2").await.unwrap(), Some(ta_2.clone()));
    assert!(!store.update_api_key(&account, "pk_missing", "x", &admin_roles, T0 + 102).await.unwrap());
    // The update is visible as a change carrying the new roles.
    let changes = store.keys_changed_since(T0 + 101).await.unwrap();
    assert_eq!(changes, vec![KeyChange { public_key: "pk_ta_2".into(), roles: ta_2.roles.clone(), deleted: false }]);

    // Roles are counted on live account keys that hold them explicitly: write does
    // not count as read, admin does not count as approval, tenant keys never count.
    let count = |role| {
        let store = store.clone();
        async move { store.count_account_keys_with_role(ACCOUNT, role).await.unwrap() }
    };
    assert_eq!(count(Role::AccountAdmin).await, 1);
    assert_eq!(count(Role::AccountTenantApproval).await, 2);
    assert_eq!(count(Role::AccountTenantRead).await, 2);
    assert_eq!(count(Role::AccountTenantWrite).await, 1);
    assert_eq!(count(Role::TenantAdmin).await, 0);
    assert_eq!(store.count_account_keys_with_role(OTHER_ACCOUNT, Role::AccountAdmin).await.unwrap(), 0);

    // Soft delete.
    let deleted_at = T0 + 1_000;
    assert!(store.delete_api_key(&account, "pk_acc_b", deleted_at).await.unwrap());
    assert_eq!(store.api_key_by_public_key("pk_acc_b").await.unwrap(), None);
    assert_eq!(store.api_key(&account, "pk_acc_b").await.unwrap(), None);
    assert_eq!(public_keys(&store.api_keys(&account).await.unwrap()), [ADMIN_KEY, "pk_acc_a", "pk_acc_c"]);
    assert!(!store.update_api_key(&account, "pk_acc_b", "zombie", &admin_roles, deleted_at + 1).await.unwrap());
    assert!(!store.delete_api_key(&account, "pk_acc_b", deleted_at + 1).await.unwrap(), "deleted twice");
    assert_eq!(count(Role::AccountTenantApproval).await, 1);
    assert_eq!(deleted_since(&*store, 0).await, ["pk_acc_b"]);
    assert_eq!(deleted_since(&*store, deleted_at).await, ["pk_acc_b"]);
    assert!(deleted_since(&*store, deleted_at + 1).await.is_empty());
    // A deleted key's public key stays taken.
    assert_conflict(store.insert_api_key(&account_key("pk_acc_b", &[Role::AccountTenantRead], T0 + 2_000)).await);
    assert_eq!(store.api_key_by_public_key("pk_acc_b").await.unwrap(), None);

    let tenant_deleted_at = deleted_at + 50;
    assert!(store.delete_api_key(&owner_a, "pk_ta_2", tenant_deleted_at).await.unwrap());
    assert_eq!(store.api_key_by_public_key("pk_ta_2").await.unwrap(), None);
    assert_eq!(store.api_keys(&owner_a).await.unwrap(), vec![ta_1]);
    assert_eq!(deleted_since(&*store, deleted_at).await, ["pk_acc_b", "pk_ta_2"]);
    assert_eq!(deleted_since(&*store, deleted_at + 1).await, ["pk_ta_2"]);
    assert_eq!(deleted_since(&*store, tenant_deleted_at).await, ["pk_ta_2"]);
    assert!(deleted_since(&*store, tenant_deleted_at + 1).await.is_empty());
    assert_eq!(store.api_keys(&owner_b).await.unwrap(), vec![tb_1]);
}

async fn scenario_last_admin_key(store: Arc<dyn Store>) {
    let init = init(&*store).await;
    let account = account_owner(ACCOUNT);
    store.create_tenant(&tenant_record("t_a", "Tenant A", TenantStatus::Active, T0), -1).await.unwrap();
    let reader = account_key("pk_reader", &[Role::AccountTenantRead], T0 + 1);
    let tenant_admin = tenant_key("t_a", "pk_tenant_admin", &[Role::TenantAdmin], T0 + 2);
    store.insert_api_key(&reader).await.unwrap();
    store.insert_api_key(&tenant_admin).await.unwrap();

    // The only account admin can be neither deleted nor demoted.
    assert_last_admin(store.delete_api_key(&account, ADMIN_KEY, T0 + 10).await);
    let demoted = roles(&[Role::AccountTenantRead]);
    assert_last_admin(store.update_api_key(&account, ADMIN_KEY, "demoted", &demoted, T0 + 11).await);
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), Some(init.admin_key.clone()));
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);
    assert!(deleted_since(&*store, 0).await.is_empty());

    // Renaming while keeping the role, and removing other keys, is fine.
    let kept = roles(&[Role::AccountAdmin, Role::AccountTenantRead]);
    assert!(store.update_api_key(&account, ADMIN_KEY, "Root", &kept, T0 + 12).await.unwrap());
    let admin = ApiKeyRecord { name: "Root".to_string(), roles: kept, updated_at: T0 + 12, ..init.admin_key.clone() };
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), Some(admin.clone()));
    assert!(store.delete_api_key(&account, "pk_reader", T0 + 13).await.unwrap());
    assert!(store.delete_api_key(&tenant_owner("t_a"), "pk_tenant_admin", T0 + 14).await.unwrap());

    // With a second admin, one of them may go.
    let second = account_key("pk_admin_2", &[Role::AccountAdmin], T0 + 20);
    store.insert_api_key(&second).await.unwrap();
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 2);
    assert!(store.delete_api_key(&account, ADMIN_KEY, T0 + 30).await.unwrap());
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), None);
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);

    // The deleted admin does not count: the second one is now the last.
    assert_last_admin(store.delete_api_key(&account, "pk_admin_2", T0 + 40).await);
    assert_last_admin(store.update_api_key(&account, "pk_admin_2", "demoted", &demoted, T0 + 41).await);
    assert_eq!(store.api_key_by_public_key("pk_admin_2").await.unwrap(), Some(second.clone()));

    // Demotion is allowed once another admin exists.
    let third = account_key("pk_admin_3", &[Role::AccountAdmin], T0 + 50);
    store.insert_api_key(&third).await.unwrap();
    assert!(store.update_api_key(&account, "pk_admin_2", "demoted", &demoted, T0 + 51).await.unwrap());
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);
    assert_last_admin(store.delete_api_key(&account, "pk_admin_3", T0 + 60).await);
    assert_eq!(public_keys(&store.api_keys(&account).await.unwrap()), ["pk_admin_2", "pk_admin_3"]);
}

async fn scenario_last_admin_key_concurrent(store: Arc<dyn Store>) {
    init(&*store).await;
    let account = account_owner(ACCOUNT);
    let demoted = roles(&[Role::AccountTenantRead]);
    let mut survivor = ADMIN_KEY.to_string();
    // Each round races the removal of both live admin keys; odd rounds demote the
    // newcomer instead of deleting it.
    for round in 0..6_i64 {
        let newcomer = format!("pk_admin_round_{round}");
        let key = account_key(&newcomer, &[Role::AccountAdmin], T0 + 100 * round + 1);
        store.insert_api_key(&key).await.unwrap();
        let now = T0 + 100 * round + 50;
        let contenders = [survivor.clone(), newcomer];
        let results = race(2, |i| {
            let (store, account, demoted) = (store.clone(), account.clone(), demoted.clone());
            let public_key = contenders[i].clone();
            async move {
                let result = if i == 1 && round % 2 == 1 {
                    store.update_api_key(&account, &public_key, "demoted", &demoted, now).await
                } else {
                    store.delete_api_key(&account, &public_key, now).await
                };
                (public_key, result)
            }
        })
        .await;
        let mut removed = Vec::new();
        let mut refused = Vec::new();
        for (key, result) in results {
            match result {
                Ok(true) => removed.push(key),
                Err(StoreError::LastAdminKey) => refused.push(key),
                other => panic!("round {round}: {key}: unexpected {other:?}"),
            }
        }
        assert_eq!((removed.len(), refused.len()), (1, 1), "round {round}: removed {removed:?}, refused {refused:?}");
        assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1, "round {round}");
        let live_admin = store.api_key(&account, &refused[0]).await.unwrap().expect("refused key is live");
        assert!(live_admin.roles.contains(Role::AccountAdmin), "round {round}");
        survivor = refused.pop().unwrap();
    }
}

// Scenarios: nonces and idempotency ---------------------------------------------------

async fn scenario_nonces(store: Arc<dyn Store>) {
    let t = 1_000_000;
    assert!(store.remember_nonce("pk_1", "n_1", t, t + 1_000).await.unwrap());
    assert!(!store.remember_nonce("pk_1", "n_1", t + 10, t + 1_010).await.unwrap(), "replay accepted");
    assert!(!store.remember_nonce("pk_1", "n_1", t + 999, t + 1_999).await.unwrap(), "accepted before expiry");
    // Nonces are per key.
    assert!(store.remember_nonce("pk_2", "n_1", t + 20, t + 500).await.unwrap());
    assert!(store.remember_nonce("pk_1", "n_2", t + 30, t + 5_000).await.unwrap());
    assert!(!store.remember_nonce("pk_2", "n_1", t + 40, t + 540).await.unwrap());

    // After expiry the nonce is accepted again, and protected anew.
    assert!(store.remember_nonce("pk_1", "n_1", t + 1_001, t + 3_000).await.unwrap());
    assert!(!store.remember_nonce("pk_1", "n_1", t + 2_500, t + 3_500).await.unwrap());

    // Purge at t + 2_000: pk_2/n_1 (expired at t + 500) and pk_3/n_9 (t + 1_999) go;
    // pk_1/n_1 (t + 3_000) and pk_1/n_2 (t + 5_000) stay.
    assert!(store.remember_nonce("pk_3", "n_9", t, t + 1_999).await.unwrap());
    assert_eq!(store.purge_expired(t + 2_000).await.unwrap(), 2);
    assert_eq!(store.purge_expired(t + 2_000).await.unwrap(), 0);
    assert!(!store.remember_nonce("pk_1", "n_1", t + 2_100, t + 4_000).await.unwrap());
    assert!(!store.remember_nonce("pk_1", "n_2", t + 2_100, t + 4_000).await.unwrap());
    assert!(store.remember_nonce("pk_2", "n_1", t + 2_100, t + 4_000).await.unwrap());
}

async fn scenario_nonces_concurrent(store: Arc<dyn Store>) {
    // The same signed request replayed in parallel: only one may pass.
    let t = 1_000_000;
    let fresh = race(8, |i| {
        let store = store.clone();
        async move { store.remember_nonce("pk_1", "n_race", t + i as i64, t + 60_000).await.unwrap() }
    })
    .await;
    assert_eq!(fresh.iter().filter(|f| **f).count(), 1, "fresh: {fresh:?}");
    // Likewise once the nonce has expired.
    let fresh = race(8, |i| {
        let store = store.clone();
        async move { store.remember_nonce("pk_1", "n_race", t + 60_001 + i as i64, t + 120_000).await.unwrap() }
    })
    .await;
    assert_eq!(fresh.iter().filter(|f| **f).count(), 1, "fresh after expiry: {fresh:?}");
}

const SCOPE: &str = "acc_main:pk_admin";
const DAY_MS: i64 = 86_400_000;
const STALE_MS: i64 = 30_000;
/// How long a node may be silent before the scenarios' claimants take it for dead.
const LOST_MS: i64 = 5_000;
/// The node of the scenarios that are not about dying: heard from at every moment they
/// use ([`keep_alive`]), so only the claims themselves decide.
const LIVE_NODE: &str = "node-live";

/// `node` claiming at `now`, taking nodes silent for more than [`LOST_MS`] for dead.
fn claimant(node: &str, now: i64) -> Claimant<'_> {
    Claimant { node_id: node, lost_before: now - LOST_MS }
}

/// A heartbeat of `node` far in the future: it is alive at every moment a scenario uses.
async fn keep_alive(store: &dyn Store, node: &str) {
    store.heartbeat(node, T0, T0 + 1000 * DAY_MS).await.unwrap();
}

fn claim_by<'a>(node: &'a str, key: &'a str, hash: &'a str, now: i64, expires_at: i64) -> IdempotencyClaim<'a> {
    IdempotencyClaim {
        scope: SCOPE,
        key,
        request_hash: hash,
        now,
        expires_at,
        claimant: claimant(node, now),
        stale_after_ms: STALE_MS,
    }
}

fn claim<'a>(key: &'a str, hash: &'a str, now: i64, expires_at: i64) -> IdempotencyClaim<'a> {
    claim_by(LIVE_NODE, key, hash, now, expires_at)
}

async fn begin_by(store: &dyn Store, node: &str, key: &str, hash: &str, now: i64) -> IdempotencyBegin {
    store.begin_idempotent(&claim_by(node, key, hash, now, now + DAY_MS)).await.expect("begin_idempotent")
}

async fn begin(store: &dyn Store, key: &str, hash: &str, now: i64) -> IdempotencyBegin {
    begin_by(store, LIVE_NODE, key, hash, now).await
}

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> StoredResponse {
    StoredResponse {
        status,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: body.to_vec(),
    }
}

async fn scenario_idempotency(store: Arc<dyn Store>) {
    let store = &*store;
    keep_alive(store, LIVE_NODE).await;
    let t = T0;
    assert_eq!(begin(store, "k1", "h1", t).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "k1", "h1", t + 1).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "k1", "h2", t + 2).await, IdempotencyBegin::Mismatch);
    // Keys of different scopes never collide.
    let other_scope = IdempotencyClaim { scope: "acc_main:pk_other", ..claim("k1", "h2", t + 3, t + DAY_MS) };
    assert_eq!(store.begin_idempotent(&other_scope).await.unwrap(), IdempotencyBegin::Started);

    // Duplicate header names, non-ASCII and binary bytes must survive unchanged.
    let stored = response(
        201,
        &[
            ("content-type", "application/json"),
            ("location", "/v1/tenants/t_1"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=ü"),
        ],
        b"{\"id\":\"t_1\"}\x00\xff",
    );
    store.finish_idempotent(SCOPE, "k1", t, &stored).await.unwrap();
    assert_eq!(begin(store, "k1", "h1", t + 10).await, IdempotencyBegin::Replay(stored.clone()));
    assert_eq!(begin(store, "k1", "h1", t + 11).await, IdempotencyBegin::Replay(stored.clone()));
    assert_eq!(begin(store, "k1", "h2", t + 12).await, IdempotencyBegin::Mismatch);
    // A completed record is never stale, and abandoning it does nothing.
    assert_eq!(begin(store, "k1", "h1", t + STALE_MS * 10).await, IdempotencyBegin::Replay(stored.clone()));
    store.abandon_idempotent(SCOPE, "k1", t).await.unwrap();
    assert_eq!(begin(store, "k1", "h1", t + 20).await, IdempotencyBegin::Replay(stored.clone()));
    // The other scope's claim is still in progress.
    assert_eq!(store.begin_idempotent(&other_scope).await.unwrap(), IdempotencyBegin::InProgress);

    // An empty response replays as empty.
    assert_eq!(begin(store, "k_empty", "h", t).await, IdempotencyBegin::Started);
    let empty = response(204, &[], b"");
    store.finish_idempotent(SCOPE, "k_empty", t, &empty).await.unwrap();
    assert_eq!(begin(store, "k_empty", "h", t + 1).await, IdempotencyBegin::Replay(empty));

    // Abandoning releases the claim for a retry (with any request).
    assert_eq!(begin(store, "k2", "h1", t).await, IdempotencyBegin::Started);
    store.abandon_idempotent(SCOPE, "k2", t).await.unwrap();
    assert_eq!(begin(store, "k2", "h3", t + 1).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "k2", "h3", t + 2).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "k2", "h1", t + 3).await, IdempotencyBegin::Mismatch);

    // A claim whose node died is taken over once the node has been silent for LOST_MS.
    store.heartbeat("node-dead", T0, t).await.unwrap();
    assert_eq!(begin_by(store, "node-dead", "k3", "h1", t).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 1).await, IdempotencyBegin::TakenOver { earlier_claimed_at: t });
    // The new claim is held by a live node.
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 2).await, IdempotencyBegin::InProgress);
    // The dead node's request, finishing or failing late, cannot touch the new claim.
    store.finish_idempotent(SCOPE, "k3", t, &response(200, &[], b"late")).await.unwrap();
    store.abandon_idempotent(SCOPE, "k3", t).await.unwrap();
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 2).await, IdempotencyBegin::InProgress);
    let k3 = response(200, &[("x-k", "3")], b"three");
    store.finish_idempotent(SCOPE, "k3", t + LOST_MS + 1, &k3).await.unwrap();
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 3).await, IdempotencyBegin::Replay(k3));
}

async fn scenario_idempotency_dead_and_live_nodes(store: Arc<dyn Store>) {
    use IdempotencyBegin::*;
    let store = &*store;
    let t = T0;
    // A live node's claim is never taken over, however long its request runs (far
    // beyond `stale_after_ms`): its heartbeat holds it.
    store.heartbeat("node-a", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-a", "slow", "h", t).await, Started);
    let hour = 3_600_000;
    for later in [LOST_MS, 10 * STALE_MS, hour] {
        store.heartbeat("node-a", t, t + later).await.unwrap();
        assert_eq!(begin_by(store, "node-b", "slow", "h", t + later + LOST_MS).await, InProgress, "{later}");
    }
    // An old heartbeat written late does not make the node look older.
    store.heartbeat("node-a", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-b", "slow", "h", t + hour + LOST_MS).await, InProgress);
    // Once it stops, its claim is taken over a few seconds later, as a take-over.
    let last = t + hour;
    assert_eq!(begin_by(store, "node-b", "slow", "h", last + LOST_MS + 1).await, TakenOver { earlier_claimed_at: t });

    // A claim of a node never heard from is free at once (a node beats before it claims).
    assert_eq!(begin_by(store, "node-silent", "k-silent", "h", t).await, Started);
    store.heartbeat("node-b", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-b", "k-silent", "h", t + 1).await, TakenOver { earlier_claimed_at: t });

    // Another request with the key of a dead node's claim starts afresh: it cannot
    // have been what the dead node was doing.
    store.heartbeat("node-c", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-c", "k-other", "h1", t).await, Started);
    assert_eq!(begin_by(store, "node-b", "k-other", "h2", t + LOST_MS).await, Mismatch, "node-c still lives");
    assert_eq!(begin_by(store, "node-b", "k-other", "h2", t + LOST_MS + 1).await, Started);
    store.heartbeat("node-b", t, t + LOST_MS + 2).await.unwrap();
    assert_eq!(begin_by(store, "node-c", "k-other", "h1", t + LOST_MS + 2).await, Mismatch);

    // A finished claim is never taken over, whoever made it.
    assert_eq!(begin_by(store, "node-c", "k-done", "h", t).await, Started);
    let done = response(201, &[], b"done");
    store.finish_idempotent(SCOPE, "k-done", t, &done).await.unwrap();
    assert_eq!(begin_by(store, "node-b", "k-done", "h", t + DAY_MS - 1).await, Replay(done));
}

async fn scenario_idempotency_expiry_and_purge(store: Arc<dyn Store>) {
    let store = &*store;
    keep_alive(store, LIVE_NODE).await;
    let t = T0;
    let short = |key: &'static str, now: i64| claim(key, "h", now, t + 5_000);

    // A completed record replays until it expires, then the key is free again.
    assert_eq!(store.begin_idempotent(&short("done", t)).await.unwrap(), IdempotencyBegin::Started);
    let done = response(200, &[("etag", "\"1\"")], b"done");
    store.finish_idempotent(SCOPE, "done", t, &done).await.unwrap();
    assert_eq!(begin(store, "done", "h", t + 4_000).await, IdempotencyBegin::Replay(done));
    assert_eq!(begin(store, "done", "h2", t + 5_001).await, IdempotencyBegin::Started);
    // The old response is gone with it.
    assert_eq!(begin(store, "done", "h2", t + 5_002).await, IdempotencyBegin::InProgress);

    // Rows for purging: two keys and a nonce expire at t + 5_000; "long" and the
    // re-claimed "done" live for a day.
    assert_eq!(store.begin_idempotent(&short("expired_open", t)).await.unwrap(), IdempotencyBegin::Started);
    assert_eq!(store.begin_idempotent(&short("expired_done", t)).await.unwrap(), IdempotencyBegin::Started);
    store.finish_idempotent(SCOPE, "expired_done", t, &response(200, &[], b"x")).await.unwrap();
    assert_eq!(begin(store, "long", "h", t).await, IdempotencyBegin::Started);
    // A nonce expiring in the same window counts too.
    assert!(store.remember_nonce("pk_1", "n_1", t, t + 5_000).await.unwrap());

    assert_eq!(store.purge_expired(t + 5_001).await.unwrap(), 3);
    assert_eq!(store.purge_expired(t + 5_001).await.unwrap(), 0);
    // Purged keys start afresh; kept ones are untouched.
    assert_eq!(begin(store, "expired_done", "other", t + 5_002).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "expired_open", "h", t + 5_002).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "long", "h", t + 5_002).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "done", "h2", t + 5_002).await, IdempotencyBegin::InProgress);
}

async fn scenario_idempotency_concurrent(store: Arc<dyn Store>) {
    let racers = 8;
    // The first claim is made by a node that then dies; the second round by a live one.
    store.heartbeat("node-dying", T0, T0 + racers as i64).await.unwrap();
    keep_alive(&*store, LIVE_NODE).await;
    let begin_all = |node: &'static str, base: i64| {
        let store = store.clone();
        race(racers, move |i| {
            let store = store.clone();
            async move { begin_by(&*store, node, "k_race", "h_race", base + i as i64).await }
        })
    };
    let count = |outcomes: &[IdempotencyBegin], wanted: fn(&IdempotencyBegin) -> bool| {
        outcomes.iter().filter(|o| wanted(o)).count()
    };
    let in_progress = |o: &IdempotencyBegin| *o == IdempotencyBegin::InProgress;

    // A new key: one claim.
    let outcomes = begin_all("node-dying", T0).await;
    assert_eq!(count(&outcomes, |o| *o == IdempotencyBegin::Started), 1, "new key: {outcomes:?}");
    assert_eq!(count(&outcomes, in_progress), racers - 1, "new key: {outcomes:?}");

    // The claim of the dead node: exactly one take-over.
    let outcomes = begin_all(LIVE_NODE, T0 + racers as i64 + LOST_MS + 1).await;
    let taken = |o: &IdempotencyBegin| matches!(o, IdempotencyBegin::TakenOver { .. });
    assert_eq!(count(&outcomes, taken), 1, "dead node's claim: {outcomes:?}");
    assert_eq!(count(&outcomes, in_progress), racers - 1, "dead node's claim: {outcomes:?}");
}

// Scenarios: signing keys -------------------------------------------------------------

async fn scenario_signing_keys(store: Arc<dyn Store>) {
    assert_eq!(store.prune_signing_keys(i64::MAX).await.unwrap(), 0, "pruning an empty table");
    let (old, mid, new) = (signing_key("kid_c", 100), signing_key("kid_b", 200), signing_key("kid_a", 300));
    // Insertion order and kid order both differ from creation order.
    for k in [&mid, &new, &old] {
        store.insert_signing_key(k).await.unwrap();
    }
    assert!(matches!(store.insert_signing_key(&signing_key("kid_b", 999)).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.signing_keys().await.unwrap(), vec![old.clone(), mid.clone(), new.clone()]);

    assert_eq!(store.prune_signing_keys(100).await.unwrap(), 0, "created_at == before is kept");
    assert_eq!(store.prune_signing_keys(150).await.unwrap(), 1);
    assert_eq!(store.signing_keys().await.unwrap(), vec![mid, new.clone()]);
    // Every key is older than `before`: the newest still stays.
    assert_eq!(store.prune_signing_keys(10_000).await.unwrap(), 1);
    assert_eq!(store.signing_keys().await.unwrap(), vec![new.clone()]);
    assert_eq!(store.prune_signing_keys(10_000).await.unwrap(), 0);
    assert_eq!(store.signing_keys().await.unwrap(), vec![new]);
}

// PostgreSQL only: a deterministic interleaving -----------------------------------------

/// `delete_tenant` checks the status and then deletes without holding a lock, so an
/// approval committed in between is lost: the tenant is deleted although ACTIVE.
/// The window is forced by holding a row lock on the tenant's key, which stops
/// `delete_tenant` after its status check (it must remove that key). SQLite runs one
/// write transaction at a time, so the interleaving cannot happen there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_delete_tenant_does_not_delete_an_approved_tenant() {
    use sqlx::Connection as _;

    let Some(db) = PgTestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::connect(&db.url, 5).await.expect("connect to test database");
    store.migrate().await.expect("migrate");
    let store: Arc<dyn Store> = Arc::new(store);
    init(&*store).await;
    let pending = tenant_record("t_pending", "Pending", TenantStatus::PendingApproval, T0);
    store.create_tenant(&pending, -1).await.unwrap();
    store.insert_api_key(&tenant_key("t_pending", "pk_pending", &[Role::TenantAdmin], T0 + 1)).await.unwrap();

    let mut blocker = sqlx::PgConnection::connect(&db.url).await.expect("blocker connection");
    let mut watcher = sqlx::PgConnection::connect(&db.url).await.expect("watcher connection");
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT 1 FROM api_keys WHERE public_key = 'pk_pending' FOR UPDATE")
        .execute(&mut blocker)
        .await
        .unwrap();

    // Polls (each query is its own snapshot) until `n` sessions wait on a lock, or
    // `done` reports true.
    async fn wait_for_lock_waiters(watcher: &mut sqlx::PgConnection, n: i64, done: impl Fn() -> bool) {
        for _ in 0..100_000 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut *watcher)
            .await
            .unwrap();
            if waiting >= n || done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never saw {n} sessions waiting on a lock");
    }

    let deletable = [TenantStatus::PendingApproval, TenantStatus::Rejected];
    let deleting = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_tenant(ACCOUNT, "t_pending", &deletable).await })
    };
    wait_for_lock_waiters(&mut watcher, 1, || false).await;
    let approving = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .transition_tenant(
                    ACCOUNT,
                    "t_pending",
                    TenantStatus::PendingApproval,
                    TenantStatus::Active,
                    None,
                    T0 + 10,
                )
                .await
        })
    };
    // The approval either completes or (with a locking fix) waits behind the delete.
    wait_for_lock_waiters(&mut watcher, 2, || approving.is_finished()).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    let deleted = deleting.await.expect("delete task").expect("delete_tenant");
    let approved = approving.await.expect("approve task").expect("transition_tenant");
    let tenant = store.tenant(ACCOUNT, "t_pending").await.unwrap();
    assert!(!(deleted && approved), "both the approval and the deletion succeeded; tenant afterwards: {tenant:?}");
    if approved {
        assert_eq!(tenant.map(|t| t.status), Some(TenantStatus::Active));
    } else {
        assert_eq!(tenant, None);
    }
    store.close().await;
    drop(db);
}

// Routing configuration ---------------------------------------------------------------

const UNLIMITED: AppLimits = AppLimits { max_collect_apps: -1, max_payout_apps: -1 };

/// An initialised account with two active tenants, "t_1" and "t_2".
async fn two_tenants(store: &dyn Store) {
    init(store).await;
    for (id, name) in [("t_1", "One"), ("t_2", "Two")] {
        store.create_tenant(&tenant_record(id, name, TenantStatus::Active, T0), -1).await.unwrap();
    }
}

fn app(tenant_id: &str, app_id: &str, can_debit: bool, can_credit: bool) -> InstalledAppRecord {
    InstalledAppRecord {
        tenant_id: tenant_id.into(),
        app_id: app_id.into(),
        can_debit,
        can_credit,
        config_public: None,
        config_secrets_sealed: None,
        installed_at: T0,
        updated_at: T0,
    }
}

fn scheme(tenant_id: &str, scheme_id: &str, kind: SchemeKind) -> SchemeRecord {
    SchemeRecord {
        scheme_id: scheme_id.into(),
        tenant_id: tenant_id.into(),
        kind,
        published_draft_id: None,
        created_at: T0,
        updated_at: T0,
    }
}

fn draft(tenant_id: &str, scheme_id: &str, draft_id: &str, name: &str, apps: &[&str], groups: &[&str]) -> DraftWrite {
    DraftWrite {
        draft: DraftRecord {
            draft_id: draft_id.into(),
            scheme_id: scheme_id.into(),
            tenant_id: tenant_id.into(),
            name: name.into(),
            name_key: name.to_lowercase(),
            code: Some(format!("code-{draft_id}")),
            rules: format!("[{{\"draft\":\"{draft_id}\"}}]"),
            created_at: T0,
            last_modified: T0,
        },
        app_ids: apps.iter().map(|a| a.to_string()).collect(),
        reward_group_ids: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn group(tenant_id: &str, id: &str, name: &str, rewards: &[(&str, bool)]) -> RewardGroupRecord {
    RewardGroupRecord {
        reward_group_id: id.into(),
        tenant_id: tenant_id.into(),
        name: name.into(),
        name_key: name.to_lowercase(),
        members: rewards.iter().map(|(r, e)| RewardGroupMember { reward_id: r.to_string(), enabled: *e }).collect(),
        created_at: T0,
        updated_at: T0,
    }
}

fn assert_missing(result: StoreResult<()>, what: &str) {
    match result {
        Err(StoreError::MissingReference(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected MissingReference({what}), got {other:?}"),
    }
}

async fn scenario_installed_apps(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let card = app("t_1", "SANDBOX_CARD", true, true);
    store.install_app(ACCOUNT, &card, UNLIMITED).await.unwrap();
    assert_conflict(store.install_app(ACCOUNT, &card, UNLIMITED).await);
    store.install_app(ACCOUNT, &app("t_2", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_BANK", true, true), UNLIMITED).await.unwrap();
    let ids: Vec<String> = store.installed_apps("t_1").await.unwrap().into_iter().map(|a| a.app_id).collect();
    assert_eq!(ids, ["SANDBOX_BANK", "SANDBOX_CARD"], "same install time: ordered by id");
    assert_eq!(store.installed_app("t_1", "SANDBOX_CARD").await.unwrap(), Some(card.clone()));
    assert_eq!(store.installed_app("t_2", "SANDBOX_BANK").await.unwrap(), None, "other tenant's app");

    // Configuration replaces public and sealed parts together.
    assert!(store
        .configure_app("t_1", "SANDBOX_CARD", "{\"merchantName\":\"A\"}", Some(&[1, 0, 2]), T0 + 5)
        .await
        .unwrap());
    let configured = store.installed_app("t_1", "SANDBOX_CARD").await.unwrap().unwrap();
    assert_eq!(configured.config_public.as_deref(), Some("{\"merchantName\":\"A\"}"));
    assert_eq!(configured.config_secrets_sealed, Some(vec![1, 0, 2]));
    assert_eq!(configured.updated_at, T0 + 5);
    assert!(store.configure_app("t_1", "SANDBOX_CARD", "{}", None, T0 + 6).await.unwrap());
    assert_eq!(store.installed_app("t_1", "SANDBOX_CARD").await.unwrap().unwrap().config_secrets_sealed, None);
    assert!(!store.configure_app("t_1", "SANDBOX_REWARDS", "{}", None, T0).await.unwrap());
    assert!(!format!("{configured:?}").contains("[1, 0, 2]"), "sealed secrets stay out of Debug");

    assert!(store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    assert!(!store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    assert!(store.installed_app("t_2", "SANDBOX_CARD").await.unwrap().is_some(), "the other tenant keeps its own");
}

async fn scenario_app_limits(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let limits = AppLimits { max_collect_apps: 1, max_payout_apps: 2 };
    store.install_app(ACCOUNT, &app("t_1", "DEBIT_A", true, false), limits).await.unwrap();
    // The limit is the account's, across its tenants.
    assert!(matches!(
        store.install_app(ACCOUNT, &app("t_2", "DEBIT_B", true, false), limits).await,
        Err(StoreError::LimitExceeded)
    ));
    assert!(matches!(
        store.install_app(ACCOUNT, &app("t_2", "BOTH", true, true), limits).await,
        Err(StoreError::LimitExceeded)
    ));
    store.install_app(ACCOUNT, &app("t_2", "CREDIT_A", false, true), limits).await.unwrap();
    store.install_app(ACCOUNT, &app("t_1", "CREDIT_B", false, true), limits).await.unwrap();
    assert!(matches!(
        store.install_app(ACCOUNT, &app("t_1", "CREDIT_C", false, true), limits).await,
        Err(StoreError::LimitExceeded)
    ));
    assert_eq!(store.installed_apps("t_2").await.unwrap().len(), 1, "refused installs wrote nothing");
    // Uninstalling frees a place.
    assert!(store.uninstall_app("t_1", "DEBIT_A").await.unwrap());
    store.install_app(ACCOUNT, &app("t_2", "DEBIT_B", true, false), limits).await.unwrap();
}

async fn scenario_app_limits_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let limits = AppLimits { max_collect_apps: 1, max_payout_apps: -1 };
    let results = race(6, |i| {
        let store = store.clone();
        async move {
            let tenant = if i % 2 == 0 { "t_1" } else { "t_2" };
            store.install_app(ACCOUNT, &app(tenant, &format!("DEBIT_{i}"), true, false), limits).await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(StoreError::LimitExceeded))));
}

async fn scenario_schemes_and_drafts(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();

    // References must exist; a refused create writes nothing.
    assert_missing(
        store
            .create_scheme(
                &scheme("t_1", "s_bad", SchemeKind::Collect),
                &draft("t_1", "s_bad", "d_bad", "V1", &["SANDBOX_BANK"], &[]),
            )
            .await,
        "SANDBOX_BANK",
    );
    assert_eq!(store.scheme("t_1", SchemeKind::Collect, "s_bad").await.unwrap(), None);

    let first = draft("t_1", "s_1", "d_1", "Version 1", &["SANDBOX_CARD"], &[]);
    store.create_scheme(&scheme("t_1", "s_1", SchemeKind::Collect), &first).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s_p", SchemeKind::Payout), &draft("t_1", "s_p", "d_p", "P", &[], &[]))
        .await
        .unwrap();
    let collect = store.schemes("t_1", SchemeKind::Collect).await.unwrap();
    assert_eq!(collect.len(), 1, "kinds are separate");
    assert_eq!(collect[0].drafts, vec![first.draft.clone()]);
    assert_eq!(store.scheme("t_1", SchemeKind::Payout, "s_1").await.unwrap(), None, "wrong kind");
    assert_eq!(store.scheme("t_2", SchemeKind::Collect, "s_1").await.unwrap(), None, "other tenant");
    assert_eq!(store.scheme_kind("t_1", "s_1").await.unwrap(), Some(SchemeKind::Collect));
    assert_eq!(store.scheme_kind("t_1", "s_p").await.unwrap(), Some(SchemeKind::Payout));
    assert_eq!(store.scheme_kind("t_2", "s_1").await.unwrap(), None, "other tenant");
    assert_eq!(store.published_draft("t_1", SchemeKind::Collect, "s_1").await.unwrap(), Some(None));
    assert_eq!(store.published_draft("t_1", SchemeKind::Collect, "s_none").await.unwrap(), None);

    // Drafts: names unique per scheme, case-insensitively.
    let mut second = draft("t_1", "s_1", "d_2", "Version 2", &["SANDBOX_CARD"], &[]);
    second.draft.created_at = T0 + 1;
    store.insert_draft(&second).await.unwrap();
    assert_conflict(store.insert_draft(&draft("t_1", "s_1", "d_3", "VERSION 2", &[], &[])).await);
    second.draft.rules = "[\"changed\"]".into();
    second.draft.last_modified = T0 + 2;
    assert!(store.update_draft(&second).await.unwrap());
    assert!(!store.update_draft(&draft("t_1", "s_1", "d_missing", "X", &[], &[])).await.unwrap());
    let s1 = store.scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap().unwrap();
    assert_eq!(s1.drafts, vec![first.draft.clone(), second.draft.clone()]);

    // Publishing: the published draft is read whole, and cannot change or go.
    assert!(store.publish_draft("t_1", "s_1", "d_2", T0 + 10).await.unwrap());
    assert_eq!(
        store.published_draft("t_1", SchemeKind::Collect, "s_1").await.unwrap(),
        Some(Some(second.draft.clone()))
    );
    assert_eq!(
        store.scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap().unwrap().scheme.published_draft_id.as_deref(),
        Some("d_2")
    );
    assert!(matches!(store.update_draft(&second).await, Err(StoreError::PublishedDraft)));
    assert!(matches!(store.delete_draft("t_1", "s_1", "d_2").await, Err(StoreError::PublishedDraft)));
    assert!(!store.publish_draft("t_1", "s_1", "d_missing", T0).await.unwrap());
    assert!(!store.publish_draft("t_2", "s_1", "d_1", T0).await.unwrap(), "other tenant");
    assert!(store.publish_draft("t_1", "s_1", "d_1", T0 + 11).await.unwrap());
    assert!(store.delete_draft("t_1", "s_1", "d_2").await.unwrap(), "no longer published");
    assert!(!store.delete_draft("t_1", "s_1", "d_2").await.unwrap());

    // An app referenced by any draft cannot be uninstalled until the scheme goes.
    assert!(matches!(store.uninstall_app("t_1", "SANDBOX_CARD").await, Err(StoreError::InUse(_))));
    assert!(!store.delete_scheme("t_1", SchemeKind::Payout, "s_1").await.unwrap(), "wrong kind");
    assert!(store.delete_scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap());
    assert_eq!(store.scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap(), None);
    assert!(store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
}

async fn scenario_publish_revalidates(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.create_reward_group(&group("t_1", "g_1", "Coffee", &[("r1", true)])).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s_1", SchemeKind::Payout), &draft("t_1", "s_1", "d_1", "V1", &[], &["g_1"]))
        .await
        .unwrap();
    assert_missing(store.insert_draft(&draft("t_1", "s_1", "d_2", "V2", &[], &["g_other"])).await, "g_other");
    // Not yet published: the group may go, but the draft can then not be published.
    assert!(store.delete_reward_group("t_1", "g_1").await.unwrap());
    match store.publish_draft("t_1", "s_1", "d_1", T0).await {
        Err(StoreError::MissingReference(m)) => assert!(m.contains("g_1")),
        other => panic!("expected MissingReference, got {other:?}"),
    }
    assert_eq!(store.published_draft("t_1", SchemeKind::Payout, "s_1").await.unwrap(), Some(None));
}

async fn scenario_reward_groups(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let coffee = group("t_1", "g_1", "Coffee Shops", &[("r1", true), ("r2", false)]);
    store.create_reward_group(&coffee).await.unwrap();
    assert_conflict(store.create_reward_group(&group("t_1", "g_2", "COFFEE SHOPS", &[])).await);
    store.create_reward_group(&group("t_2", "g_3", "Coffee Shops", &[])).await.unwrap();
    let mut amazon = group("t_1", "g_4", "Amazon", &[("a1", true)]);
    amazon.created_at = T0 + 1;
    store.create_reward_group(&amazon).await.unwrap();
    assert_eq!(store.reward_groups("t_1").await.unwrap(), vec![coffee.clone(), amazon.clone()]);
    assert_eq!(store.reward_group("t_2", "g_1").await.unwrap(), None, "other tenant");

    amazon.members.push(RewardGroupMember { reward_id: "a2".into(), enabled: false });
    amazon.updated_at = T0 + 2;
    assert!(store.update_reward_group(&amazon).await.unwrap());
    assert_eq!(store.reward_group("t_1", "g_4").await.unwrap(), Some(amazon.clone()));
    let mut clash = amazon.clone();
    clash.name_key = "coffee shops".into();
    assert_conflict(store.update_reward_group(&clash).await.map(|_| ()));

    // In use while a published payout draft references it; an unpublished one does not hold it.
    store
        .create_scheme(&scheme("t_1", "s_1", SchemeKind::Payout), &draft("t_1", "s_1", "d_1", "V1", &[], &["g_4"]))
        .await
        .unwrap();
    assert!(store.publish_draft("t_1", "s_1", "d_1", T0 + 3).await.unwrap());
    assert!(matches!(store.delete_reward_group("t_1", "g_4").await, Err(StoreError::InUse(_))));
    assert_eq!(store.reward_group("t_1", "g_4").await.unwrap(), Some(amazon));
    assert!(store.delete_reward_group("t_1", "g_1").await.unwrap(), "an unused group goes");
    assert!(!store.delete_reward_group("t_1", "g_1").await.unwrap());
    assert!(store.delete_scheme("t_1", SchemeKind::Payout, "s_1").await.unwrap());
    assert!(store.delete_reward_group("t_1", "g_4").await.unwrap());
}

async fn scenario_reward_accounts(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let account = RewardAccountRecord {
        tenant_id: "t_1".into(),
        app_id: "SANDBOX_REWARDS".into(),
        customer_identifier: "cust".into(),
        account_identifier: "acct".into(),
        currency: "USD".into(),
        balance_minor: 0,
        created_at: T0,
        updated_at: T0,
    };
    store.create_reward_account(&account).await.unwrap();
    assert_conflict(store.create_reward_account(&account).await);
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap(), Some(account.clone()));
    assert_eq!(store.reward_account("t_2", "SANDBOX_REWARDS").await.unwrap(), None);
    assert_eq!(store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", 1_000, T0 + 1).await.unwrap(), Some(1_000));
    assert_eq!(store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", -300, T0 + 2).await.unwrap(), Some(700));
    assert_eq!(
        store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", -800, T0 + 3).await.unwrap(),
        None,
        "never below zero"
    );
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 700);
    assert_eq!(store.adjust_reward_balance("t_2", "SANDBOX_REWARDS", 10, T0).await.unwrap(), None, "no account");
}

async fn scenario_reward_balance_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let account = RewardAccountRecord {
        tenant_id: "t_1".into(),
        app_id: "SANDBOX_REWARDS".into(),
        customer_identifier: "c".into(),
        account_identifier: "a".into(),
        currency: "USD".into(),
        balance_minor: 1_000,
        created_at: T0,
        updated_at: T0,
    };
    store.create_reward_account(&account).await.unwrap();
    let results = race(8, |_| {
        let store = store.clone();
        async move { store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", -300, T0 + 1).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), 3, "{results:?}");
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 100);
}

/// A claim draws the balance and creates its instrument in one `apply`: claims racing
/// for a balance that covers one never overdraw it, and the losers leave no instrument.
async fn scenario_reward_claim_drawdown_concurrent(store: Arc<dyn Store>) {
    use baton_store::Change;
    two_tenants(&*store).await;
    let account = RewardAccountRecord {
        tenant_id: "t_1".into(),
        app_id: "SANDBOX_REWARDS".into(),
        customer_identifier: "c".into(),
        account_identifier: "a".into(),
        currency: "USD".into(),
        balance_minor: 1_000,
        created_at: T0,
        updated_at: T0,
    };
    store.create_reward_account(&account).await.unwrap();
    let results = race(6, |i| {
        let store = store.clone();
        async move {
            let changes = [
                Change::DebitRewardAccount {
                    tenant_id: "t_1".into(),
                    app_id: "SANDBOX_REWARDS".into(),
                    amount_minor: 600,
                },
                Change::InsertInstrument(Box::new(instrument(
                    &format!("fi_claim_{i}"),
                    "t_1",
                    "cust",
                    InstrumentType::Reward,
                    T0,
                ))),
            ];
            store.apply(&changes, T0 + 1).await.unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|applied| **applied).count(), 1, "{results:?}");
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 400);
    assert_eq!(store.instruments("t_1", "cust", None).await.unwrap().len(), 1, "the losers rolled back");
    let give_back =
        Change::CreditRewardAccount { tenant_id: "t_1".into(), app_id: "SANDBOX_REWARDS".into(), amount_minor: 600 };
    assert!(store.apply(&[give_back], T0 + 2).await.unwrap());
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 1_000);
    let other =
        Change::CreditRewardAccount { tenant_id: "t_2".into(), app_id: "SANDBOX_REWARDS".into(), amount_minor: 1 };
    assert!(!store.apply(&[other], T0 + 3).await.unwrap(), "no account");
}

/// Two nodes on one SQLite file: transactions that read and then write (tenant
/// creation under a licence limit) must wait for each other, never fail with
/// "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_nodes_on_one_file_write_without_locking_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.db");
    let first: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    first.migrate().await.unwrap();
    let second: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    init(&*first).await;
    let results = race(2, |node| {
        let store = if node == 0 { first.clone() } else { second.clone() };
        async move {
            for i in 0..40 {
                let id = format!("t_{node}_{i}");
                store.create_tenant(&tenant_record(&id, &id, TenantStatus::Active, T0 + i), 1_000).await?;
                store.purge_expired(T0).await?;
            }
            Ok::<_, StoreError>(())
        }
    })
    .await;
    for r in results {
        r.expect("no locking error");
    }
    assert_eq!(first.tenants(ACCOUNT, None).await.unwrap().len(), 80);
    first.close().await;
    second.close().await;
}

// Vault: customer data keys and master key rotation ------------------------------------

/// Master key ids as the vault writes them (16 hex digits).
const MK_OLD: &str = "00aa00aa00aa00aa";
const MK_NEW: &str = "77ee77ee77ee77ee";
const MK_THIRD: &str = "ffff0000ffff0000";

/// Distinct wrapped bytes per customer and master key, with a zero byte inside.
fn wrapped(customer_ref: &str, master_key_id: &str) -> Vec<u8> {
    [&[1u8, 0][..], customer_ref.as_bytes(), master_key_id.as_bytes(), &[0, 255]].concat()
}

fn customer_key(tenant_id: &str, customer_ref: &str, master_key_id: &str, created_at: i64) -> CustomerKeyRecord {
    CustomerKeyRecord {
        tenant_id: tenant_id.into(),
        customer_ref: customer_ref.into(),
        wrapped_key: Some(wrapped(customer_ref, master_key_id)),
        master_key_id: master_key_id.into(),
        created_at,
        shredded_at: None,
    }
}

fn refs(records: &[CustomerKeyRecord]) -> Vec<(&str, &str, &str)> {
    records.iter().map(|r| (r.master_key_id.as_str(), r.tenant_id.as_str(), r.customer_ref.as_str())).collect()
}

async fn scenario_customer_key_created_once(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap(), None);
    // Eight nodes add a first instrument for the same customer at once, each with its own key.
    let results = race(8, |i| {
        let store = store.clone();
        async move {
            let mut record = customer_key("t_1", "cust-1", MK_OLD, T0 + i as i64);
            record.wrapped_key = Some(wrapped(&format!("racer-{i}"), MK_OLD));
            let created = store.create_customer_key(&record).await.expect("create_customer_key");
            (record, created)
        }
    })
    .await;
    let winners: Vec<&CustomerKeyRecord> = results.iter().filter(|(_, created)| *created).map(|(r, _)| r).collect();
    assert_eq!(winners.len(), 1, "exactly one key is created: {results:?}");
    // Every racer reads the same winner afterwards.
    let stored = store.customer_key("t_1", "cust-1").await.unwrap().expect("the key exists");
    assert_eq!(&stored, winners[0]);

    // The same customer ref in another tenant is another customer.
    assert_eq!(store.customer_key("t_2", "cust-1").await.unwrap(), None);
    let other = customer_key("t_2", "cust-1", MK_OLD, T0);
    assert!(store.create_customer_key(&other).await.unwrap());
    assert_eq!(store.customer_key("t_2", "cust-1").await.unwrap(), Some(other));
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap(), Some(stored.clone()));

    // Keys belong to existing tenants only.
    assert!(store.create_customer_key(&customer_key("t_missing", "cust-1", MK_OLD, T0)).await.is_err());
    // The wrapped key stays out of Debug.
    let debug = format!("{stored:?}");
    assert!(debug.contains("[wrapped]") && debug.contains("cust-1"), "{debug}");
    assert!(!debug.contains("racer") && !debug.contains("255"), "{debug}");
}

async fn scenario_customer_key_shred(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let record = customer_key("t_1", "cust-1", MK_OLD, T0);
    assert!(store.create_customer_key(&record).await.unwrap());
    assert!(store.create_customer_key(&customer_key("t_2", "cust-1", MK_OLD, T0)).await.unwrap());
    assert!(!store.shred_customer_key("t_1", "nobody", T0 + 1).await.unwrap(), "no key to shred");
    assert!(!store.shred_customer_key("t_missing", "cust-1", T0 + 1).await.unwrap());

    assert!(store.shred_customer_key("t_1", "cust-1", T0 + 5).await.unwrap());
    let shredded = store.customer_key("t_1", "cust-1").await.unwrap().expect("the row stays");
    assert_eq!(
        shredded,
        CustomerKeyRecord { wrapped_key: None, shredded_at: Some(T0 + 5), ..record.clone() },
        "the key bytes are gone"
    );
    assert!(!store.shred_customer_key("t_1", "cust-1", T0 + 9).await.unwrap(), "shredding twice");
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap().unwrap().shredded_at, Some(T0 + 5));
    // A shredded customer does not get a new key by a create.
    assert!(!store.create_customer_key(&customer_key("t_1", "cust-1", MK_OLD, T0 + 10)).await.unwrap());
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap().unwrap().wrapped_key, None);
    // The other tenant's customer of the same ref is untouched.
    assert_eq!(store.customer_key("t_2", "cust-1").await.unwrap(), Some(customer_key("t_2", "cust-1", MK_OLD, T0)));

    // A tombstone (erased before any key existed) can be written directly.
    let tombstone = CustomerKeyRecord {
        wrapped_key: None,
        shredded_at: Some(T0 + 20),
        ..customer_key("t_1", "cust-2", MK_OLD, T0 + 20)
    };
    assert!(store.create_customer_key(&tombstone).await.unwrap());
    assert_eq!(store.customer_key("t_1", "cust-2").await.unwrap(), Some(tombstone));
    assert!(!store.shred_customer_key("t_1", "cust-2", T0 + 21).await.unwrap());
    // A live key must not claim to be shredded, nor a shredded one to hold bytes.
    let inconsistent = CustomerKeyRecord { shredded_at: Some(T0), ..customer_key("t_1", "cust-3", MK_OLD, T0) };
    assert!(store.create_customer_key(&inconsistent).await.is_err());
    assert_eq!(store.customer_key("t_1", "cust-3").await.unwrap(), None);
}

async fn scenario_customer_keys_by_master_key(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    assert!(store.keys_wrapped_by_other(MK_NEW, 10).await.unwrap().is_empty());
    assert_eq!(store.count_keys_by_master_key().await.unwrap(), []);
    // Five keys under the old master key, two already under the new one, one under a
    // third, and one shredded: inserted out of order.
    for (tenant, customer, mk) in [
        ("t_2", "cust-b", MK_OLD),
        ("t_1", "cust-c", MK_NEW),
        ("t_1", "cust-b", MK_OLD),
        ("t_1", "cust-z", MK_THIRD),
        ("t_2", "cust-a", MK_OLD),
        ("t_1", "cust-a", MK_OLD),
        ("t_2", "cust-c", MK_NEW),
        ("t_1", "cust-d", MK_OLD),
        ("t_1", "cust-x", MK_OLD),
    ] {
        assert!(store.create_customer_key(&customer_key(tenant, customer, mk, T0)).await.unwrap());
    }
    assert!(store.shred_customer_key("t_1", "cust-x", T0 + 1).await.unwrap());

    assert_eq!(
        store.count_keys_by_master_key().await.unwrap(),
        [(MK_OLD.to_string(), 5), (MK_NEW.to_string(), 2), (MK_THIRD.to_string(), 1)],
        "live keys only: the shredded one does not count"
    );

    // Batches in (master key id, tenant, customer) order; keys under the new master key
    // and shredded keys are never listed.
    let first = store.keys_wrapped_by_other(MK_NEW, 3).await.unwrap();
    assert_eq!(refs(&first), [(MK_OLD, "t_1", "cust-a"), (MK_OLD, "t_1", "cust-b"), (MK_OLD, "t_1", "cust-d")]);
    assert_eq!(first[0], customer_key("t_1", "cust-a", MK_OLD, T0));
    let all = store.keys_wrapped_by_other(MK_NEW, 100).await.unwrap();
    assert_eq!(
        refs(&all),
        [
            (MK_OLD, "t_1", "cust-a"),
            (MK_OLD, "t_1", "cust-b"),
            (MK_OLD, "t_1", "cust-d"),
            (MK_OLD, "t_2", "cust-a"),
            (MK_OLD, "t_2", "cust-b"),
            (MK_THIRD, "t_1", "cust-z"),
        ]
    );
    // Ids either side of the excluded one: a batch may span both.
    let around = store.keys_wrapped_by_other(MK_OLD, 100).await.unwrap();
    assert_eq!(refs(&around), [(MK_NEW, "t_1", "cust-c"), (MK_NEW, "t_2", "cust-c"), (MK_THIRD, "t_1", "cust-z")]);
    assert_eq!(refs(&store.keys_wrapped_by_other(MK_OLD, 2).await.unwrap()), refs(&around[..2]));
    assert!(store.keys_wrapped_by_other(MK_NEW, 0).await.unwrap().is_empty());

    // Rewrapping the first batch moves the next batch along (resumable by id alone).
    for r in &first {
        let old = r.wrapped_key.as_deref().unwrap();
        let new = wrapped(&r.customer_ref, MK_NEW);
        assert!(store.rewrap_customer_key(&r.tenant_id, &r.customer_ref, old, &new, MK_NEW).await.unwrap());
    }
    assert_eq!(
        store.count_keys_by_master_key().await.unwrap(),
        [(MK_OLD.to_string(), 2), (MK_NEW.to_string(), 5), (MK_THIRD.to_string(), 1)]
    );
    let next = store.keys_wrapped_by_other(MK_NEW, 3).await.unwrap();
    assert_eq!(refs(&next), [(MK_OLD, "t_2", "cust-a"), (MK_OLD, "t_2", "cust-b"), (MK_THIRD, "t_1", "cust-z")]);
    let rewrapped = store.customer_key("t_1", "cust-b").await.unwrap().unwrap();
    assert_eq!((rewrapped.master_key_id.as_str(), rewrapped.wrapped_key), (MK_NEW, Some(wrapped("cust-b", MK_NEW))));
    assert_eq!(rewrapped.created_at, T0, "rewrapping keeps the creation time");
}

async fn scenario_customer_key_rewrap_compare_and_set(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let record = customer_key("t_1", "cust-1", MK_OLD, T0);
    assert!(store.create_customer_key(&record).await.unwrap());
    let old = wrapped("cust-1", MK_OLD);
    let new = wrapped("cust-1", MK_NEW);

    // Stale bytes (another rotation got there first) are refused.
    let stale = wrapped("cust-1", MK_THIRD);
    assert!(!store.rewrap_customer_key("t_1", "cust-1", &stale, &new, MK_NEW).await.unwrap());
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap(), Some(record.clone()));
    // The right bytes but another tenant's or customer's row: nothing changes.
    assert!(!store.rewrap_customer_key("t_2", "cust-1", &old, &new, MK_NEW).await.unwrap());
    assert!(!store.rewrap_customer_key("t_1", "cust-2", &old, &new, MK_NEW).await.unwrap());

    assert!(store.rewrap_customer_key("t_1", "cust-1", &old, &new, MK_NEW).await.unwrap());
    assert_eq!(
        store.customer_key("t_1", "cust-1").await.unwrap(),
        Some(CustomerKeyRecord { wrapped_key: Some(new.clone()), master_key_id: MK_NEW.into(), ..record.clone() })
    );
    // Repeating the same rewrap finds the old bytes gone.
    assert!(!store.rewrap_customer_key("t_1", "cust-1", &old, &new, MK_NEW).await.unwrap());

    // A shredded key is never brought back by a rotation that read it before the shred.
    assert!(store.shred_customer_key("t_1", "cust-1", T0 + 3).await.unwrap());
    let again = wrapped("cust-1", MK_THIRD);
    assert!(!store.rewrap_customer_key("t_1", "cust-1", &new, &again, MK_THIRD).await.unwrap());
    let after = store.customer_key("t_1", "cust-1").await.unwrap().unwrap();
    assert_eq!((after.wrapped_key, after.shredded_at, after.master_key_id.as_str()), (None, Some(T0 + 3), MK_NEW));

    // Concurrent rotations of one key: exactly one compare-and-set wins.
    let record = customer_key("t_2", "cust-9", MK_OLD, T0);
    assert!(store.create_customer_key(&record).await.unwrap());
    let results = race(4, |i| {
        let store = store.clone();
        let old = record.wrapped_key.clone().unwrap();
        async move {
            let new = wrapped(&format!("rotator-{i}"), MK_NEW);
            store.rewrap_customer_key("t_2", "cust-9", &old, &new, MK_NEW).await.unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
}

async fn scenario_sealed_secrets_reseal(store: Arc<dyn Store>) {
    let initialization = init(&*store).await;
    store.create_tenant(&tenant_record("t_1", "One", TenantStatus::Active, T0), -1).await.unwrap();
    store.insert_signing_key(&signing_key("kid_2", T0 + 1)).await.unwrap();
    store.insert_api_key(&tenant_key("t_1", "pk_tenant", &[Role::TenantAdmin], T0 + 2)).await.unwrap();
    store.insert_api_key(&account_key("pk_gone", &[Role::AccountAdmin], T0 + 3)).await.unwrap();
    assert!(store.delete_api_key(&account_owner(ACCOUNT), "pk_gone", T0 + 4).await.unwrap());
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_BANK", true, true), UNLIMITED).await.unwrap();
    assert!(store.configure_app("t_1", "SANDBOX_CARD", "{}", Some(&[9, 0, 9]), T0 + 5).await.unwrap());
    assert!(store.configure_app("t_1", "SANDBOX_BANK", "{}", None, T0 + 5).await.unwrap());

    let secrets = store.sealed_secrets().await.unwrap();
    let signing = |kid: &str| SealedSecretRef::SigningKey { kid: kid.into() };
    let api = |pk: &str| SealedSecretRef::ApiKey { public_key: pk.into() };
    let card = SealedSecretRef::AppSecrets { tenant_id: "t_1".into(), app_id: "SANDBOX_CARD".into() };
    assert_eq!(
        secrets,
        [
            SealedSecret { location: signing("kid_init"), sealed: initialization.signing_key.secret_sealed.clone() },
            SealedSecret { location: signing("kid_2"), sealed: signing_key("kid_2", 0).secret_sealed },
            SealedSecret { location: api(ADMIN_KEY), sealed: initialization.admin_key.private_key_sealed.clone() },
            SealedSecret {
                location: api("pk_tenant"),
                sealed: tenant_key("t_1", "pk_tenant", &[], 0).private_key_sealed
            },
            SealedSecret { location: api("pk_gone"), sealed: account_key("pk_gone", &[], 0).private_key_sealed },
            SealedSecret { location: card.clone(), sealed: vec![9, 0, 9] },
        ],
        "every sealed value, deleted keys included, apps without secrets excluded"
    );
    assert!(!format!("{secrets:?}").contains("secret-kid"), "sealed bytes stay out of Debug");

    // Compare-and-set on each kind: stale bytes are refused, the right ones replaced.
    let changed_since = store.keys_changed_since(T0 + 10).await.unwrap();
    for s in &secrets {
        let new = [b"resealed:".as_slice(), &s.sealed].concat();
        assert!(!store.reseal_secret(&s.location, b"stale", &new).await.unwrap(), "{:?}", s.location);
        assert!(store.reseal_secret(&s.location, &s.sealed, &new).await.unwrap(), "{:?}", s.location);
        assert!(!store.reseal_secret(&s.location, &s.sealed, &new).await.unwrap(), "{:?}", s.location);
    }
    let resealed = store.sealed_secrets().await.unwrap();
    assert_eq!(resealed.len(), secrets.len());
    for (before, after) in secrets.iter().zip(&resealed) {
        assert_eq!(after.location, before.location);
        assert_eq!(after.sealed, [b"resealed:".as_slice(), &before.sealed].concat());
    }
    // The rows' readers see the new bytes; nothing else about them changed.
    let admin = store.api_key_by_public_key(ADMIN_KEY).await.unwrap().unwrap();
    assert_eq!(
        admin.private_key_sealed,
        [b"resealed:".as_slice(), &initialization.admin_key.private_key_sealed].concat()
    );
    assert_eq!(admin.updated_at, initialization.admin_key.updated_at);
    assert_eq!(store.keys_changed_since(T0 + 10).await.unwrap(), changed_since, "resealing is not a key change");
    assert_eq!(store.signing_keys().await.unwrap()[0].secret_sealed, resealed[0].sealed);
    let app = store.installed_app("t_1", "SANDBOX_CARD").await.unwrap().unwrap();
    assert_eq!((app.config_secrets_sealed.as_deref(), app.updated_at), (Some(&b"resealed:\x09\x00\x09"[..]), T0 + 5));
    // Missing rows are refused.
    assert!(!store.reseal_secret(&signing("kid_missing"), b"x", b"y").await.unwrap());
    let other_app = SealedSecretRef::AppSecrets { tenant_id: "t_2".into(), app_id: "SANDBOX_CARD".into() };
    assert!(!store.reseal_secret(&other_app, &resealed[5].sealed, b"y").await.unwrap());

    // The master key check value: compare-and-set too.
    let check = initialization.master_key_check.clone();
    assert!(!store.set_master_key_check(b"not the check", b"new check").await.unwrap());
    assert_eq!(store.master_key_check().await.unwrap(), Some(check.clone()));
    assert!(store.set_master_key_check(&check, b"new check").await.unwrap());
    assert_eq!(store.master_key_check().await.unwrap(), Some(b"new check".to_vec()));
    assert!(!store.set_master_key_check(&check, b"newer check").await.unwrap(), "stale");
    assert_eq!(store.master_key_check().await.unwrap(), Some(b"new check".to_vec()));
}

/// `PRAGMA secure_delete` and the checkpoint after a shred: no piece of the wrapped
/// key is found in the database's files afterwards (before, it is). Without
/// `secure_delete` it stays in the free space of the rewritten page; without the
/// checkpoint, in the write-ahead log.
#[tokio::test]
async fn sqlite_shredded_key_bytes_do_not_linger_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    store.migrate().await.unwrap();
    two_tenants(&*store).await;
    // Random-looking bytes that occur nowhere else.
    let marker: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37).wrapping_add(11) ^ 0x5a).collect();
    let record = CustomerKeyRecord { wrapped_key: Some(marker.clone()), ..customer_key("t_1", "cust-1", MK_OLD, T0) };
    assert!(store.create_customer_key(&record).await.unwrap());
    // Neighbours in the same page, so that the page is rewritten rather than dropped.
    for i in 0..50 {
        assert!(store.create_customer_key(&customer_key("t_1", &format!("cust-n{i:02}"), MK_OLD, T0)).await.unwrap());
    }
    // Closing the last connection checkpoints the log into the database file, so the
    // key is in the file's page when the shred rewrites it.
    store.close().await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let files = || {
        ["baton.db", "baton.db-wal", "baton.db-shm", "baton.db-journal"]
            .into_iter()
            .filter_map(|name| std::fs::read(dir.path().join(name)).ok().map(|bytes| (name, bytes)))
            .collect::<Vec<_>>()
    };
    // Any 8 consecutive bytes of it: a shorter cell written over the old one hides a prefix.
    let contains = |haystack: &[u8]| marker.chunks(8).any(|c| haystack.windows(8).any(|w| w == c));
    assert!(files().iter().any(|(_, bytes)| contains(bytes)), "the wrapped key is on disk before the shred");

    assert!(store.shred_customer_key("t_1", "cust-1", T0 + 1).await.unwrap());
    for (name, bytes) in files() {
        assert!(!contains(&bytes), "{name} still holds the shredded key");
    }
    assert_eq!(store.customer_key("t_1", "cust-n00").await.unwrap().unwrap().master_key_id, MK_OLD);
    store.close().await;
    for (name, bytes) in files() {
        assert!(!contains(&bytes), "{name} holds the shredded key after close");
    }
}

// Financial instruments -------------------------------------------------------------------

fn instrument(
    id: &str,
    tenant_id: &str,
    customer_ref: &str,
    kind: InstrumentType,
    created_at: i64,
) -> InstrumentRecord {
    InstrumentRecord {
        financial_instrument_id: id.into(),
        tenant_id: tenant_id.into(),
        customer_ref: customer_ref.into(),
        kind,
        state: InstrumentState::Active,
        state_reason: None,
        display: format!("{{\"last4\":\"{}\"}}", &id[id.len().saturating_sub(4)..]),
        details_sealed: format!("sealed-{id}").into_bytes(),
        provider_tokens_sealed: (kind == InstrumentType::Card).then(|| b"tokens".to_vec()),
        single_use: kind == InstrumentType::MobilePhone,
        supports_debit: true,
        supports_credit: kind != InstrumentType::Card,
        created_at,
        updated_at: created_at,
    }
}

fn ids(list: &[InstrumentRecord]) -> Vec<&str> {
    list.iter().map(|r| r.financial_instrument_id.as_str()).collect()
}

fn history_of(list: &[InstrumentStateRecord]) -> Vec<(i64, InstrumentState, Option<StateReason>, i64)> {
    list.iter().map(|s| (s.seq, s.state, s.reason, s.changed_at)).collect()
}

async fn scenario_instruments(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let card = instrument("fi-0001", "t_1", "cust-1", InstrumentType::Card, T0 + 2);
    let bank = instrument("fi-0002", "t_1", "cust-1", InstrumentType::BankAccount, T0 + 1);
    let phone = instrument("fi-0003", "t_1", "cust-1", InstrumentType::MobilePhone, T0 + 3);
    for r in [&card, &bank, &phone] {
        store.insert_instrument(r).await.unwrap();
    }
    assert!(store.insert_instrument(&card).await.is_err(), "the id is the primary key");

    assert_eq!(store.instrument("t_1", "cust-1", "fi-0001").await.unwrap(), Some(card.clone()));
    assert_eq!(store.instrument("t_1", "cust-1", "fi-9999").await.unwrap(), None);
    // Oldest first.
    assert_eq!(ids(&store.instruments("t_1", "cust-1", None).await.unwrap()), ["fi-0002", "fi-0001", "fi-0003"]);
    assert_eq!(ids(&store.instruments("t_1", "cust-1", Some(InstrumentState::Active)).await.unwrap()).len(), 3);
    assert!(store.instruments("t_1", "cust-1", Some(InstrumentState::Closed)).await.unwrap().is_empty());
    assert!(store.instruments("t_1", "cust-2", None).await.unwrap().is_empty());

    // Creation is the first history entry.
    assert_eq!(
        history_of(&store.instrument_history("t_1", "cust-1", "fi-0001").await.unwrap()),
        [(1, InstrumentState::Active, None, T0 + 2)]
    );
    assert!(store
        .change_instrument_state(
            "t_1",
            "cust-1",
            "fi-0001",
            InstrumentState::Active,
            InstrumentState::Inactive,
            Some(StateReason::Expired),
            T0 + 10
        )
        .await
        .unwrap());
    assert_eq!(ids(&store.instruments("t_1", "cust-1", Some(InstrumentState::Inactive)).await.unwrap()), ["fi-0001"]);
    assert_eq!(
        ids(&store.instruments("t_1", "cust-1", Some(InstrumentState::Active)).await.unwrap()),
        ["fi-0002", "fi-0003"]
    );
    let changed = store.instrument("t_1", "cust-1", "fi-0001").await.unwrap().unwrap();
    assert_eq!(
        changed,
        InstrumentRecord {
            state: InstrumentState::Inactive,
            state_reason: Some(StateReason::Expired),
            updated_at: T0 + 10,
            ..card
        }
    );
}

async fn scenario_instrument_isolation(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-a", "t_1", "cust-1", InstrumentType::Card, T0)).await.unwrap();
    store.insert_instrument(&instrument("fi-b", "t_2", "cust-1", InstrumentType::Card, T0)).await.unwrap();
    // Another tenant's customer of the same ref, or another customer of the same tenant.
    assert_eq!(store.instrument("t_2", "cust-1", "fi-a").await.unwrap(), None);
    assert_eq!(store.instrument("t_1", "cust-2", "fi-a").await.unwrap(), None);
    assert_eq!(ids(&store.instruments("t_1", "cust-1", None).await.unwrap()), ["fi-a"]);
    assert_eq!(ids(&store.instruments("t_2", "cust-1", None).await.unwrap()), ["fi-b"]);
    assert!(store.instrument_history("t_2", "cust-1", "fi-a").await.unwrap().is_empty());
    assert!(store.instrument_history("t_1", "cust-2", "fi-a").await.unwrap().is_empty());
    for (tenant, customer) in [("t_2", "cust-1"), ("t_1", "cust-2")] {
        assert!(!store
            .change_instrument_state(
                tenant,
                customer,
                "fi-a",
                InstrumentState::Active,
                InstrumentState::Closed,
                None,
                T0 + 1
            )
            .await
            .unwrap());
    }
    assert_eq!(store.instrument("t_1", "cust-1", "fi-a").await.unwrap().unwrap().state, InstrumentState::Active);
    // Erasing one tenant's customer leaves the other tenant's namesake alone.
    let erasure = store.erase_customer_instruments("er-1", "t_2", "cust-1", None, T0 + 2).await.unwrap();
    assert_eq!(erasure.instruments_closed, 1);
    assert_eq!(store.instrument("t_1", "cust-1", "fi-a").await.unwrap().unwrap().state, InstrumentState::Active);
    assert_eq!(store.erasure("t_1", "er-1").await.unwrap(), None);
}

async fn scenario_instrument_state_compare_and_set(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "cust-1", InstrumentType::BankAccount, T0)).await.unwrap();
    let change = |from, to, reason, at| {
        let store = store.clone();
        async move { store.change_instrument_state("t_1", "cust-1", "fi-1", from, to, reason, at).await.unwrap() }
    };
    use InstrumentState::*;
    assert!(change(Active, Inactive, Some(StateReason::FraudSuspected), T0 + 1).await);
    assert!(!change(Active, Closed, None, T0 + 2).await, "no longer ACTIVE: nothing changes");
    assert!(change(Inactive, Active, None, T0 + 3).await);
    assert!(change(Active, Closed, Some(StateReason::CustomerRequest), T0 + 4).await);
    assert!(!change(Active, Inactive, Some(StateReason::Expired), T0 + 5).await);
    assert!(!store.change_instrument_state("t_1", "cust-1", "fi-missing", Active, Closed, None, T0).await.unwrap());
    assert_eq!(
        history_of(&store.instrument_history("t_1", "cust-1", "fi-1").await.unwrap()),
        [
            (1, Active, None, T0),
            (2, Inactive, Some(StateReason::FraudSuspected), T0 + 1),
            (3, Active, None, T0 + 3),
            (4, Closed, Some(StateReason::CustomerRequest), T0 + 4),
        ]
    );
    let r = store.instrument("t_1", "cust-1", "fi-1").await.unwrap().unwrap();
    assert_eq!((r.state, r.state_reason, r.updated_at), (Closed, Some(StateReason::CustomerRequest), T0 + 4));
}

async fn scenario_instrument_state_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "cust-1", InstrumentType::Card, T0)).await.unwrap();
    let targets = [InstrumentState::Inactive, InstrumentState::Locked, InstrumentState::Closed];
    let store2 = store.clone();
    let results = race(6, move |i| {
        let store = store2.clone();
        async move {
            let to = targets[i % 3];
            store
                .change_instrument_state(
                    "t_1",
                    "cust-1",
                    "fi-1",
                    InstrumentState::Active,
                    to,
                    Some(StateReason::Expired),
                    T0 + 1,
                )
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|applied| **applied).count(), 1, "exactly one change from ACTIVE applies");
    let history = store.instrument_history("t_1", "cust-1", "fi-1").await.unwrap();
    assert_eq!(history.len(), 2);
    let r = store.instrument("t_1", "cust-1", "fi-1").await.unwrap().unwrap();
    assert_eq!(history[1].state, r.state);
}

async fn scenario_erase_customer_instruments(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    for (id, created) in [("fi-1", T0), ("fi-2", T0 + 1), ("fi-3", T0 + 2)] {
        store.insert_instrument(&instrument(id, "t_1", "cust-1", InstrumentType::BankAccount, created)).await.unwrap();
    }
    store.insert_instrument(&instrument("fi-other", "t_1", "cust-2", InstrumentType::Card, T0)).await.unwrap();
    use InstrumentState::*;
    assert!(store.change_instrument_state("t_1", "cust-1", "fi-2", Active, Closed, None, T0 + 5).await.unwrap());
    assert!(store
        .change_instrument_state("t_1", "cust-1", "fi-3", Active, Inactive, Some(StateReason::Expired), T0 + 6)
        .await
        .unwrap());

    let reason = Some(StateReason::CustomerRequest);
    let erasure = store.erase_customer_instruments("er-1", "t_1", "cust-1", reason, T0 + 10).await.unwrap();
    let expected = ErasureRecord {
        erasure_id: "er-1".into(),
        tenant_id: "t_1".into(),
        customer_ref: "cust-1".into(),
        instruments_closed: 2,
        created_at: T0 + 10,
    };
    assert_eq!(erasure, expected, "the already CLOSED instrument is skipped");
    assert_eq!(store.erasure("t_1", "er-1").await.unwrap(), Some(expected));
    assert_eq!(store.erasure("t_1", "er-missing").await.unwrap(), None);
    assert_eq!(ids(&store.instruments("t_1", "cust-1", Some(Closed)).await.unwrap()), ["fi-1", "fi-2", "fi-3"]);
    assert_eq!(
        history_of(&store.instrument_history("t_1", "cust-1", "fi-3").await.unwrap()),
        [(1, Active, None, T0 + 2), (2, Inactive, Some(StateReason::Expired), T0 + 6), (3, Closed, reason, T0 + 10)]
    );
    // The already closed one keeps its own closing entry only.
    assert_eq!(store.instrument_history("t_1", "cust-1", "fi-2").await.unwrap().len(), 2);
    // Another customer is untouched.
    assert_eq!(store.instrument("t_1", "cust-2", "fi-other").await.unwrap().unwrap().state, Active);

    // A second erasure is recorded and closes nothing.
    let again = store.erase_customer_instruments("er-2", "t_1", "cust-1", reason, T0 + 20).await.unwrap();
    assert_eq!(again.instruments_closed, 0);
    // Erasing a customer without instruments is recorded too.
    assert_eq!(
        store.erase_customer_instruments("er-3", "t_1", "nobody", reason, T0).await.unwrap().instruments_closed,
        0
    );
    assert!(
        store.erase_customer_instruments("er-1", "t_1", "cust-1", reason, T0).await.is_err(),
        "erasure ids are unique"
    );
}

// Orders and instructions ---------------------------------------------------------------

fn order_record(tenant_id: &str, order_id: &str, order_ref: &str) -> OrderRecord {
    OrderRecord {
        order_id: order_id.into(),
        tenant_id: tenant_id.into(),
        order_ref: order_ref.into(),
        metadata: "{}".into(),
        created_at: T0,
        updated_at: T0,
    }
}

fn instruction_record(tenant_id: &str, order_id: &str, id: &str, customer: &str) -> InstructionRecord {
    InstructionRecord {
        instruction_id: id.into(),
        tenant_id: tenant_id.into(),
        order_id: order_id.into(),
        instruction_ref: format!("ref-{id}"),
        customer_ref: customer.into(),
        direction: baton_domain::Direction::Credit,
        status: baton_domain::InstructionStatus::Incomplete,
        financial_instrument_id: None,
        instrument_source: baton_domain::Source::None,
        scheme_id: None,
        scheme_source: baton_domain::Source::None,
        amount_minor: 21000,
        currency: "EUR".into(),
        country: "DE".into(),
        settled_by_date: Some("2020-12-31".into()),
        metadata: "{\"b\":\"9\"}".into(),
        created_at: T0,
        updated_at: T0,
    }
}

fn default_record(order_id: &str, customer: &str, fi: Option<&str>, scheme: Option<&str>) -> CustomerDefaultRecord {
    CustomerDefaultRecord {
        order_id: order_id.into(),
        customer_ref: customer.into(),
        financial_instrument_id: fi.map(Into::into),
        instrument_source: baton_domain::Source::Tenant,
        scheme_id: scheme.map(Into::into),
        scheme_source: baton_domain::Source::Tenant,
        metadata: "{\"a\":\"1\",\"b\":\"2\"}".into(),
        updated_at: T0,
    }
}

fn conflict_named(result: StoreResult<()>, name: &str) {
    match result {
        Err(StoreError::Conflict(c)) => assert_eq!(c, name),
        other => panic!("expected Conflict({name}), got {other:?}"),
    }
}

async fn scenario_orders(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let order = order_record("t_1", "o-1", "REF1");
    let ins = instruction_record("t_1", "o-1", "i-1", "C1");
    store.create_order(&order, &[], std::slice::from_ref(&ins)).await.unwrap();
    assert_eq!(store.order("t_1", "REF1").await.unwrap(), Some(order.clone()));
    assert_eq!(store.order("t_2", "REF1").await.unwrap(), None, "another tenant's order is invisible");
    assert_eq!(store.order_instructions("t_1", "o-1").await.unwrap(), std::slice::from_ref(&ins));
    assert!(store.order_instructions("t_2", "o-1").await.unwrap().is_empty());
    assert_eq!(store.instruction("t_1", "o-1", "ref-i-1").await.unwrap(), Some(ins.clone()));
    assert_eq!(store.instruction("t_2", "o-1", "ref-i-1").await.unwrap(), None);

    // Uniqueness: the order ref per tenant (all or nothing), the instruction ref per order.
    let again = order_record("t_1", "o-2", "REF1");
    let other = instruction_record("t_1", "o-2", "i-2", "C1");
    conflict_named(store.create_order(&again, &[], &[other]).await, "orders_ref_unique");
    assert_eq!(store.order_instructions("t_1", "o-2").await.unwrap(), []);
    let dup = InstructionRecord { instruction_id: "i-3".into(), ..ins.clone() };
    conflict_named(store.insert_instruction(&dup).await, "instructions_ref_unique");
    let bad_order = order_record("t_1", "o-3", "REF3");
    let dup_pair = [
        instruction_record("t_1", "o-3", "i-4", "C1"),
        InstructionRecord { instruction_id: "i-5".into(), ..instruction_record("t_1", "o-3", "i-4", "C1") },
    ];
    conflict_named(store.create_order(&bad_order, &[], &dup_pair).await, "instructions_ref_unique");
    assert_eq!(store.order("t_1", "REF3").await.unwrap(), None, "nothing stored");
    store.create_order(&order_record("t_2", "o-4", "REF1"), &[], &[]).await.unwrap();

    // Writes through another tenant reach nothing.
    assert!(!store.set_order_metadata("t_2", "o-1", "{\"x\":\"1\"}", T0 + 1).await.unwrap());
    let foreign = InstructionRecord { tenant_id: "t_2".into(), instruction_id: "i-9".into(), ..ins.clone() };
    assert!(matches!(store.insert_instruction(&foreign).await, Err(StoreError::MissingReference(_))));
    assert!(store.set_order_metadata("t_1", "o-1", "{\"x\":\"1\"}", T0 + 1).await.unwrap());
    assert_eq!(store.order("t_1", "REF1").await.unwrap().unwrap().metadata, "{\"x\":\"1\"}");

    // Update is compare-and-set on the status; VOID only from the listed states.
    use baton_domain::InstructionStatus::*;
    let changed = InstructionRecord { amount_minor: 500, updated_at: T0 + 2, ..ins.clone() };
    assert!(store.update_instruction(&changed, &[Incomplete, Ready]).await.unwrap());
    assert!(!store.change_instruction_status("t_2", "o-1", "i-1", &[Incomplete], Void, T0 + 3).await.unwrap());
    assert!(store
        .change_instruction_status("t_1", "o-1", "i-1", &[Incomplete, Ready, Late], Void, T0 + 3)
        .await
        .unwrap());
    assert!(!store
        .change_instruction_status("t_1", "o-1", "i-1", &[Incomplete, Ready, Late], Void, T0 + 4)
        .await
        .unwrap());
    assert!(!store.update_instruction(&changed, &[Incomplete, Ready]).await.unwrap());
    let stored = store.instruction("t_1", "o-1", "ref-i-1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.amount_minor), (Void, 500));
}

async fn scenario_order_defaults_resolve_statuses(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    use baton_domain::Source;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store.insert_instrument(&instrument("fi-2", "t_1", "C2", InstrumentType::BankAccount, T0)).await.unwrap();
    let order = order_record("t_1", "o-1", "REF1");
    let inherits = instruction_record("t_1", "o-1", "i-1", "C1");
    let overrides = InstructionRecord {
        scheme_id: Some("s-own".into()),
        scheme_source: Source::Tenant,
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: Source::Tenant,
        ..instruction_record("t_1", "o-1", "i-2", "C1")
    };
    let frozen = instruction_record("t_1", "o-1", "i-3", "C1");
    // The instructions pay out (CREDIT): their schemes are payout schemes.
    for id in ["s-own", "s-default"] {
        store
            .create_scheme(
                &scheme("t_1", id, SchemeKind::Payout),
                &draft("t_1", id, &format!("d-{id}"), "V1", &[], &[]),
            )
            .await
            .unwrap();
    }
    let defaults = [default_record("o-1", "C1", Some("fi-1"), Some("s-default"))];
    store.create_order(&order, &defaults, &[inherits, overrides, frozen]).await.unwrap();
    let status = |list: &[InstructionRecord]| list.iter().map(|i| i.status).collect::<Vec<_>>();
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Ready, Ready, Ready]);

    // Voiding freezes what it inherited, with the source and merged metadata.
    assert!(store.change_instruction_status("t_1", "o-1", "i-3", &[Incomplete, Ready], Void, T0 + 1).await.unwrap());
    let voided = store.instruction("t_1", "o-1", "ref-i-3").await.unwrap().unwrap();
    assert_eq!(voided.financial_instrument_id.as_deref(), Some("fi-1"));
    assert_eq!((voided.instrument_source, voided.scheme_source), (Source::CustomerDefault, Source::CustomerDefault));
    assert_eq!(voided.metadata, "{\"a\":\"1\",\"b\":\"9\"}");

    // Clearing the default scheme: only the inheriting, unprocessed instruction changes.
    let change = DefaultChange::Scheme(None, Source::None);
    assert!(store.update_customer_default("t_1", "o-1", "C1", &change, T0 + 2).await.unwrap());
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Incomplete, Ready, Void]);
    assert!(!store.update_customer_default("t_2", "o-1", "C1", &change, T0 + 2).await.unwrap());
    assert!(!store.update_customer_default("t_1", "o-1", "C9", &change, T0 + 2).await.unwrap());

    // An FI of another customer never counts as ACTIVE for this one.
    let other_fi = [default_record("o-1", "C1", Some("fi-2"), Some("s-default"))];
    assert!(store.put_customer_defaults("t_1", "o-1", &other_fi, T0 + 3).await.unwrap());
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Incomplete, Ready, Void]);
    assert!(store.put_customer_defaults("t_1", "o-1", &defaults, T0 + 4).await.unwrap());
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Ready, Ready, Void]);
    assert_eq!(store.customer_defaults("t_1", "o-1").await.unwrap(), defaults);
    assert!(store.customer_defaults("t_2", "o-1").await.unwrap().is_empty());
    assert!(!store.put_customer_defaults("t_2", "o-1", &defaults, T0 + 4).await.unwrap());

    // Deleting a default is refused while a live instruction of the customer exists.
    assert!(matches!(store.delete_customer_default("t_1", "o-1", "C1", T0 + 5).await, Err(StoreError::InUse(_))));
    for id in ["i-1", "i-2"] {
        assert!(store.change_instruction_status("t_1", "o-1", id, &[Incomplete, Ready], Void, T0 + 5).await.unwrap());
    }
    assert!(!store.delete_customer_default("t_2", "o-1", "C1", T0 + 6).await.unwrap());
    assert!(store.delete_customer_default("t_1", "o-1", "C1", T0 + 6).await.unwrap());
    assert!(!store.delete_customer_default("t_1", "o-1", "C1", T0 + 6).await.unwrap());
}

/// An instruction is READY only with a scheme that routes its direction: a collect
/// scheme (own or inherited) leaves a CREDIT instruction INCOMPLETE.
async fn scenario_order_scheme_kind_must_fit(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    use baton_domain::Source;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(
            &scheme("t_1", "s-collect", SchemeKind::Collect),
            &draft("t_1", "s-collect", "d-c", "V1", &[], &[]),
        )
        .await
        .unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    let with_scheme = |id: &str, scheme: &str| InstructionRecord {
        scheme_id: Some(scheme.into()),
        scheme_source: Source::Tenant,
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: Source::Tenant,
        ..instruction_record("t_1", "o-1", id, "C1")
    };
    let inherits = InstructionRecord {
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: Source::Tenant,
        ..instruction_record("t_1", "o-1", "i-3", "C1")
    };
    let defaults = [default_record("o-1", "C1", None, Some("s-collect"))];
    store
        .create_order(
            &order_record("t_1", "o-1", "REF1"),
            &defaults,
            &[with_scheme("i-1", "s-collect"), with_scheme("i-2", "s-payout"), inherits],
        )
        .await
        .unwrap();
    let statuses: Vec<_> = store.order_instructions("t_1", "o-1").await.unwrap().iter().map(|i| i.status).collect();
    assert_eq!(statuses, [Incomplete, Ready, Incomplete], "only the payout scheme fits a CREDIT instruction");
}

type NewOrder = (OrderRecord, Vec<CustomerDefaultRecord>, Vec<InstructionRecord>);

/// An order of customer C1 with three CREDIT instructions, created at `T0 + n`; in t_1
/// with a default (the active FI "fi-1", the payout scheme "s-payout") when `default`.
fn racing_order(tenant: &str, id: &str, order_ref: &str, n: i64, default: bool) -> NewOrder {
    let at = T0 + n;
    let instructions =
        (0..3).map(|k| instruction_at(tenant, id, &format!("i-{id}-{order_ref}-{k}"), "C1", at)).collect();
    let defaults = if default {
        vec![CustomerDefaultRecord { updated_at: at, ..default_record(id, "C1", Some("fi-1"), Some("s-payout")) }]
    } else {
        Vec::new()
    };
    (order_at(tenant, id, order_ref, at), defaults, instructions)
}

/// Creates all `orders` at once and returns each caller's result.
async fn create_racing(store: &Arc<dyn Store>, orders: &[NewOrder]) -> Vec<Option<String>> {
    let results = race(orders.len(), |i| {
        let store = store.clone();
        let (order, defaults, instructions) = orders[i].clone();
        async move { store.create_order(&order, &defaults, &instructions).await }
    })
    .await;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Ok(()) => None,
            Err(StoreError::Conflict(name)) => Some(name),
            Err(other) => panic!("order {i}: unexpected {other:?}"),
        })
        .collect()
}

/// The order is stored whole: its defaults, and its instructions with resolved statuses.
async fn assert_stored(store: &dyn Store, (order, defaults, instructions): &NewOrder) {
    let status = if defaults.is_empty() {
        baton_domain::InstructionStatus::Incomplete
    } else {
        baton_domain::InstructionStatus::Ready
    };
    let expected: Vec<_> = instructions.iter().map(|r| InstructionRecord { status, ..r.clone() }).collect();
    assert_eq!(store.order(&order.tenant_id, &order.order_ref).await.unwrap().as_ref(), Some(order));
    assert_eq!(&store.customer_defaults(&order.tenant_id, &order.order_id).await.unwrap(), defaults);
    assert_eq!(store.order_instructions(&order.tenant_id, &order.order_id).await.unwrap(), expected, "{order:?}");
}

/// Announces each new instruction with an event naming its status as stored.
fn announce_created() -> baton_store::Announcement {
    Arc::new(|i: &InstructionRecord| {
        Ok(baton_store::EventRecord {
            event_id: format!("created-{}", i.instruction_id),
            account_id: None,
            tenant_id: Some(i.tenant_id.clone()),
            event_type: baton_domain::EventType::InstructionCreated,
            ordering_key: Some(i.instruction_id.clone()),
            data: serde_json::json!({ "status": i.status.as_str() }).to_string(),
            created_at: i.created_at,
        })
    })
}

/// The `instruction.created` events in the outbox: (instruction, status announced).
async fn created_events(store: &dyn Store, tenant_id: &str) -> Vec<(String, String)> {
    let events = store.events(tenant_id).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.event.event_type == baton_domain::EventType::InstructionCreated)
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.event.data).unwrap();
            (e.event.ordering_key.unwrap(), data["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// New instructions are announced in the transaction that creates them, with the status
/// they are stored with; a refused write announces nothing.
async fn scenario_orders_announced(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    let order = order_record("t_1", "o-1", "REF1");
    let defaults = [default_record("o-1", "C1", Some("fi-1"), Some("s-payout"))];
    let ready = instruction_record("t_1", "o-1", "i-1", "C1");
    let incomplete = instruction_record("t_1", "o-1", "i-2", "C2");
    let stored =
        store.create_order_announced(&order, &defaults, &[ready, incomplete], Some(announce_created())).await.unwrap();
    assert_eq!(stored.iter().map(|i| i.status).collect::<Vec<_>>(), [Ready, Incomplete]);
    assert_eq!(stored, store.order_instructions("t_1", "o-1").await.unwrap(), "returned as stored");
    let announced = [("i-1".to_string(), "READY".to_string()), ("i-2".to_string(), "INCOMPLETE".to_string())];
    assert_eq!(created_events(&*store, "t_1").await, announced);

    // A refused order announces nothing.
    let taken = order_record("t_1", "o-2", "REF1");
    let again = instruction_record("t_1", "o-2", "i-3", "C1");
    let refused = store.create_order_announced(&taken, &[], &[again], Some(announce_created())).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(created_events(&*store, "t_1").await, announced);

    // An instruction added to the order is announced too, with its resolved status.
    let added = instruction_record("t_1", "o-1", "i-4", "C1");
    let stored = store.insert_instruction_announced(&added, Some(announce_created())).await.unwrap();
    assert_eq!(stored.status, Ready);
    assert_eq!(Some(stored), store.instruction("t_1", "o-1", "ref-i-4").await.unwrap());
    assert_eq!(created_events(&*store, "t_1").await.last(), Some(&("i-4".to_string(), "READY".to_string())));
    let duplicate = InstructionRecord { instruction_id: "i-5".into(), ..added };
    assert!(store.insert_instruction_announced(&duplicate, Some(announce_created())).await.is_err());
    assert_eq!(created_events(&*store, "t_1").await.len(), 3);
    // Without an announcement, nothing is announced.
    store
        .create_order(&order_record("t_1", "o-3", "REF3"), &[], &[instruction_record("t_1", "o-3", "i-6", "C1")])
        .await
        .unwrap();
    assert_eq!(created_events(&*store, "t_1").await.len(), 3);
}

/// Orders created at once (on SQLite, in one group) are each announced once, with their
/// own statuses; the refused one not at all.
async fn scenario_orders_announced_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    // Order 0 and 1 want the same ref; the even ones have a default (READY), the odd ones not.
    let orders: Vec<NewOrder> = (0..6)
        .map(|i| {
            let order_ref = if i == 1 { "R00".to_string() } else { format!("R{i:02}") };
            racing_order("t_1", &format!("o-{i}"), &order_ref, i as i64, i % 2 == 0)
        })
        .collect();
    let results = race(orders.len(), |i| {
        let store = store.clone();
        let (order, defaults, instructions) = orders[i].clone();
        async move { store.create_order_announced(&order, &defaults, &instructions, Some(announce_created())).await }
    })
    .await;
    let refused: Vec<usize> = (0..6).filter(|&i| results[i].is_err()).collect();
    assert!(refused == [0] || refused == [1], "exactly one of orders 0 and 1 is refused: {results:?}");
    let created = created_events(&*store, "t_1").await;
    assert_eq!(created.len(), 5 * 3, "three instructions for each written order: {created:?}");
    for (i, (order, _, instructions)) in orders.iter().enumerate() {
        let announced: Vec<&(String, String)> =
            created.iter().filter(|(id, _)| instructions.iter().any(|r| &r.instruction_id == id)).collect();
        if refused.contains(&i) {
            assert!(announced.is_empty(), "order {i}");
            continue;
        }
        let stored = store.order_instructions("t_1", &order.order_id).await.unwrap();
        assert_eq!(results[i].as_ref().unwrap(), &stored, "order {i} is returned as stored");
        let expected: Vec<(String, String)> =
            stored.iter().map(|r| (r.instruction_id.clone(), r.status.as_str().to_string())).collect();
        assert_eq!(announced.into_iter().cloned().collect::<Vec<_>>(), expected, "order {i}");
    }
}

/// Many orders created at once (on SQLite, committed together in one transaction):
/// every caller gets the result it would have had alone, and a refused order leaves
/// nothing behind, nor does it change the order it collided with.
async fn scenario_orders_concurrent(store: Arc<dyn Store>) {
    let conflict = || Some("orders_ref_unique".to_string());
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    let taken = racing_order("t_1", "o-taken", "TAKEN", 0, true);
    store.create_order(&taken.0, &taken.1, &taken.2).await.unwrap();

    // Orders 0 and 1 want the same ref, 2 a taken one, 3 that ref in another tenant, 4
    // and 5 the same order id; the rest are plain. Even ones of t_1 carry a default.
    let orders: Vec<NewOrder> = (0..24)
        .map(|i| {
            let id = if i == 5 { "o-04".to_string() } else { format!("o-{i:02}") };
            let (tenant, order_ref) = match i {
                0 | 1 => ("t_1", "SAME".to_string()),
                2 => ("t_1", "TAKEN".to_string()),
                3 => ("t_2", "TAKEN".to_string()),
                _ => ("t_1", format!("R{i:02}")),
            };
            racing_order(tenant, &id, &order_ref, i, i % 2 == 0 && tenant == "t_1")
        })
        .collect();
    let results = create_racing(&store, &orders).await;
    let winner = |a: usize, b: usize| match (&results[a], &results[b]) {
        (None, c) if *c == conflict() => (a, b),
        (c, None) if *c == conflict() => (b, a),
        other => panic!("of orders {a} and {b} exactly one must be refused: {other:?}"),
    };
    let (same_ref, same_ref_loser) = winner(0, 1);
    let (same_id, same_id_loser) = winner(4, 5);
    assert_eq!(results[2], conflict(), "the ref is taken in t_1");
    for i in (0..24).filter(|&i| ![2, same_ref_loser, same_id_loser].contains(&i)) {
        assert_eq!(results[i], None, "order {i}");
        assert_stored(&*store, &orders[i]).await;
    }
    // The refused ones left nothing, and the orders they collided with are unchanged.
    assert_stored(&*store, &taken).await;
    assert_stored(&*store, &orders[same_ref]).await;
    assert_stored(&*store, &orders[same_id]).await;
    let loser = &orders[same_ref_loser].0;
    assert!(store.order_instructions("t_1", &loser.order_id).await.unwrap().is_empty());
    assert!(store.customer_defaults("t_1", &loser.order_id).await.unwrap().is_empty());
    assert_eq!(store.order("t_1", &orders[same_id_loser].0.order_ref).await.unwrap(), None);

    // A repeated instruction ref fails that order alone; a ref taken just before is
    // refused; the orders racing with them are written.
    let mut more: Vec<NewOrder> =
        (0..8).map(|i| racing_order("t_1", &format!("p-{i}"), &format!("P{i}"), 30 + i, i % 2 == 0)).collect();
    more[0].2[2].instruction_ref = more[0].2[0].instruction_ref.clone();
    more[1].0.order_ref = "SAME".into();
    let results = create_racing(&store, &more).await;
    assert_eq!(results[0].as_deref(), Some("instructions_ref_unique"));
    assert_eq!(results[1], conflict());
    assert_eq!(store.order("t_1", "P0").await.unwrap(), None);
    for id in ["p-0", "p-1"] {
        assert!(store.order_instructions("t_1", id).await.unwrap().is_empty());
        assert!(store.customer_defaults("t_1", id).await.unwrap().is_empty());
    }
    assert_stored(&*store, &orders[same_ref]).await;
    for (i, order) in more.iter().enumerate().skip(2) {
        assert_eq!(results[i], None, "order {i}");
        assert_stored(&*store, order).await;
    }

    // Once the store is closed, every caller gets an error; none is left waiting.
    store.close().await;
    let last: Vec<NewOrder> =
        (0..4).map(|i| racing_order("t_1", &format!("z-{i}"), &format!("Z{i}"), 40 + i, false)).collect();
    let results = race(last.len(), |i| {
        let store = store.clone();
        let (order, defaults, instructions) = last[i].clone();
        async move { store.create_order(&order, &defaults, &instructions).await }
    })
    .await;
    for (i, result) in results.iter().enumerate() {
        assert!(matches!(result, Err(StoreError::Database(_))), "order {i}: {result:?}");
    }
}

// Order and instruction listings --------------------------------------------------------

fn order_at(tenant_id: &str, order_id: &str, order_ref: &str, at: i64) -> OrderRecord {
    OrderRecord { created_at: at, updated_at: at, ..order_record(tenant_id, order_id, order_ref) }
}

fn instruction_at(tenant_id: &str, order_id: &str, id: &str, customer: &str, at: i64) -> InstructionRecord {
    InstructionRecord { created_at: at, updated_at: at, ..instruction_record(tenant_id, order_id, id, customer) }
}

async fn instruction_ids(store: &dyn Store, tenant_id: &str, filter: &InstructionFilter) -> Vec<String> {
    let listed = store.list_instructions(tenant_id, filter, None, 100).await.unwrap();
    listed.into_iter().map(|l| l.instruction.instruction_id).collect()
}

async fn order_ids(store: &dyn Store, tenant_id: &str, filter: &OrderFilter) -> Vec<String> {
    let listed = store.list_orders(tenant_id, filter, None, 100).await.unwrap();
    listed.into_iter().map(|o| o.order_id).collect()
}

/// Every filter of both listings, the `(created_at, id)` order (ties by id), limits,
/// keyset positions and tenant isolation.
async fn scenario_order_listing_filters(store: Arc<dyn Store>) {
    use baton_domain::Direction::{Credit, Debit};
    use baton_domain::InstructionStatus::*;
    two_tenants(&*store).await;
    let s = &*store;
    let i01 = instruction_at("t_1", "o01", "i01", "C1", T0);
    let i02 = InstructionRecord {
        direction: Debit,
        currency: "USD".into(),
        settled_by_date: None,
        status: Void,
        ..instruction_at("t_1", "o01", "i02", "C2", T0 + 10)
    };
    let i03 = InstructionRecord {
        direction: Debit,
        settled_by_date: Some("2021-01-15".into()),
        ..instruction_at("t_1", "o02", "i03", "C1", T0 + 10)
    };
    let i04 = InstructionRecord {
        currency: "GBP".into(),
        settled_by_date: Some("2021-02-01".into()),
        status: Settled,
        ..instruction_at("t_1", "o02", "i04", "C3", T0 + 20)
    };
    let c9 = default_record("o01", "C9", None, None);
    s.create_order(&order_at("t_1", "o01", "A", T0), std::slice::from_ref(&c9), &[i01.clone(), i02]).await.unwrap();
    // o02 and o03 share their creation time: ordered by id.
    s.create_order(&order_at("t_1", "o03", "C", T0 + 5), &[], &[]).await.unwrap();
    s.create_order(&order_at("t_1", "o02", "B", T0 + 5), &[], &[i04, i03]).await.unwrap();
    s.create_order(&order_at("t_2", "o04", "A", T0), &[], &[instruction_at("t_2", "o04", "i05", "C1", T0)])
        .await
        .unwrap();

    // Instructions: everything of the tenant, by (created_at, id), with the order ref.
    let all = s.list_instructions("t_1", &InstructionFilter::default(), None, 100).await.unwrap();
    let listed: Vec<(&str, &str)> =
        all.iter().map(|l| (l.order_ref.as_str(), l.instruction.instruction_id.as_str())).collect();
    assert_eq!(listed, [("A", "i01"), ("A", "i02"), ("B", "i03"), ("B", "i04")]);
    assert_eq!(all[0], ListedInstruction { order_ref: "A".into(), instruction: i01 });
    assert_eq!(instruction_ids(s, "t_2", &InstructionFilter::default()).await, ["i05"]);
    assert!(instruction_ids(s, "t_3", &InstructionFilter::default()).await.is_empty());

    let f = InstructionFilter::default;
    let check = |filter: InstructionFilter, expected: &'static [&'static str]| async move {
        assert_eq!(instruction_ids(s, "t_1", &filter).await, expected, "{filter:?}");
    };
    check(InstructionFilter { statuses: vec![Void, Settled], ..f() }, &["i02", "i04"]).await;
    check(InstructionFilter { statuses: vec![Incomplete], ..f() }, &["i01", "i03"]).await;
    check(InstructionFilter { statuses: vec![Processing], ..f() }, &[]).await;
    check(InstructionFilter { customer_ref: Some("C1".into()), ..f() }, &["i01", "i03"]).await;
    check(InstructionFilter { customer_ref: Some("C9".into()), ..f() }, &[]).await;
    check(InstructionFilter { direction: Some(Debit), ..f() }, &["i02", "i03"]).await;
    check(InstructionFilter { direction: Some(Credit), ..f() }, &["i01", "i04"]).await;
    check(InstructionFilter { currency: Some("EUR".into()), ..f() }, &["i01", "i03"]).await;
    check(InstructionFilter { created_from: Some(T0 + 10), ..f() }, &["i02", "i03", "i04"]).await;
    check(InstructionFilter { created_before: Some(T0 + 10), ..f() }, &["i01"]).await;
    check(InstructionFilter { created_from: Some(T0 + 10), created_before: Some(T0 + 20), ..f() }, &["i02", "i03"])
        .await;
    // Settle-by bounds are inclusive; an instruction without a date never matches one.
    check(InstructionFilter { settled_by_from: Some("2021-01-01".into()), ..f() }, &["i03", "i04"]).await;
    check(InstructionFilter { settled_by_to: Some("2021-01-15".into()), ..f() }, &["i01", "i03"]).await;
    let day = Some("2021-01-15".to_string());
    check(InstructionFilter { settled_by_from: day.clone(), settled_by_to: day, ..f() }, &["i03"]).await;
    check(InstructionFilter { customer_ref: Some("C1".into()), direction: Some(Debit), ..f() }, &["i03"]).await;
    let other = InstructionFilter { customer_ref: Some("C1".into()), ..f() };
    assert_eq!(instruction_ids(s, "t_2", &other).await, ["i05"]);

    // Limits and keyset positions (ties at T0 + 10 broken by id).
    let page = s.list_instructions("t_1", &f(), None, 2).await.unwrap();
    assert_eq!(page.iter().map(|l| l.instruction.instruction_id.as_str()).collect::<Vec<_>>(), ["i01", "i02"]);
    let after = Keyset { created_at: T0 + 10, id: "i02".into() };
    let page = s.list_instructions("t_1", &f(), Some(&after), 2).await.unwrap();
    assert_eq!(page.iter().map(|l| l.instruction.instruction_id.as_str()).collect::<Vec<_>>(), ["i03", "i04"]);
    let after = Keyset { created_at: T0 + 20, id: "i04".into() };
    assert!(s.list_instructions("t_1", &f(), Some(&after), 2).await.unwrap().is_empty());

    // Orders: by (created_at, id); `customerRef` matches instructions or defaults.
    let o = OrderFilter::default;
    assert_eq!(order_ids(s, "t_1", &o()).await, ["o01", "o02", "o03"]);
    assert_eq!(order_ids(s, "t_2", &o()).await, ["o04"]);
    let by_customer = |c: &str| OrderFilter { customer_ref: Some(c.into()), ..o() };
    assert_eq!(order_ids(s, "t_1", &by_customer("C1")).await, ["o01", "o02"]);
    assert_eq!(order_ids(s, "t_1", &by_customer("C9")).await, ["o01"], "a customer default alone counts");
    assert_eq!(order_ids(s, "t_1", &by_customer("C3")).await, ["o02"]);
    assert!(order_ids(s, "t_1", &by_customer("C5")).await.is_empty());
    assert!(order_ids(s, "t_2", &by_customer("C9")).await.is_empty());
    assert_eq!(order_ids(s, "t_1", &OrderFilter { created_from: Some(T0 + 5), ..o() }).await, ["o02", "o03"]);
    assert_eq!(order_ids(s, "t_1", &OrderFilter { created_before: Some(T0 + 5), ..o() }).await, ["o01"]);
    let first = s.list_orders("t_1", &o(), None, 2).await.unwrap();
    assert_eq!(first, [order_at("t_1", "o01", "A", T0), order_at("t_1", "o02", "B", T0 + 5)]);
    let after = Keyset { created_at: T0 + 5, id: "o02".into() };
    let rest = s.list_orders("t_1", &o(), Some(&after), 2).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.order_id.as_str()).collect::<Vec<_>>(), ["o03"]);

    // Defaults of several orders in one query, only the tenant's.
    let ids = ["o01".to_string(), "o02".to_string(), "o04".to_string()];
    assert_eq!(s.customer_defaults_of_orders("t_1", &ids).await.unwrap(), [c9]);
    assert!(s.customer_defaults_of_orders("t_2", &ids).await.unwrap().is_empty());
    assert!(s.customer_defaults_of_orders("t_1", &[]).await.unwrap().is_empty());
}

/// Walks both listings page by page while rows are inserted between pages: later rows,
/// rows tied with the last position handed out, rows created "in the past" (a slow
/// writer) and other tenants' rows. Every row that existed before the walk is seen
/// exactly once and in order; nothing is seen twice.
async fn scenario_order_listing_pages_with_inserts(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let s = &*store;
    // Ten instructions, two per creation time; seven orders, some sharing a time.
    let originals: Vec<InstructionRecord> =
        (0..10).map(|k| instruction_at("t_1", "o00", &format!("i{k:02}"), "C1", T0 + (k / 2) * 10)).collect();
    s.create_order(&order_at("t_1", "o00", "R00", T0), &[], &originals).await.unwrap();
    for k in 1..7 {
        s.create_order(&order_at("t_1", &format!("o{k:02}"), &format!("R{k:02}"), T0 + k / 2), &[], &[]).await.unwrap();
    }
    s.create_order(&order_at("t_2", "x00", "X00", T0), &[], &[]).await.unwrap();

    // Instructions, three per page.
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut after: Option<Keyset> = None;
    let mut round = 0;
    loop {
        let page = s.list_instructions("t_1", &InstructionFilter::default(), after.as_ref(), 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(Keyset { created_at: last.instruction.created_at, id: last.instruction.instruction_id.clone() });
        seen.extend(page.iter().map(|l| (l.instruction.created_at, l.instruction.instruction_id.clone())));
        let k = after.as_ref().unwrap();
        round += 1;
        // Tied with the position (sorts after it), in the past, later, and another tenant's.
        for (id, at) in [
            (format!("{}t{round}", k.id), k.created_at),
            (format!("p{round}"), T0 - 1),
            (format!("z{round}"), T0 + 1_000),
        ] {
            if round <= 3 {
                s.insert_instruction(&instruction_at("t_1", "o00", &id, "C1", at)).await.unwrap();
            }
        }
        if round == 1 {
            s.insert_instruction(&instruction_at("t_2", "x00", "i99", "C1", T0 + 15)).await.unwrap();
        }
        assert!(round < 50, "the walk ends");
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "strictly increasing (created_at, id): no duplicates, in order: {ids:?}");
    for original in &originals {
        assert!(ids.contains(&original.instruction_id.as_str()), "{} skipped: {ids:?}", original.instruction_id);
    }
    assert!(!ids.iter().any(|id| id.starts_with('p')), "rows before the position stay behind it");
    assert!(!ids.contains(&"i99"), "another tenant's rows never appear");
    assert!(ids.contains(&"z1") && ids.contains(&"i02t1"), "rows after the position are reached: {ids:?}");

    // Orders, two per page, with the same kinds of inserts between pages.
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut after: Option<Keyset> = None;
    let mut round = 0;
    loop {
        let page = s.list_orders("t_1", &OrderFilter::default(), after.as_ref(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(Keyset { created_at: last.created_at, id: last.order_id.clone() });
        seen.extend(page.iter().map(|o| (o.created_at, o.order_id.clone())));
        let k = after.as_ref().unwrap();
        round += 1;
        if round <= 3 {
            for (id, at) in
                [(format!("{}t", k.id), k.created_at), (format!("p{round}"), T0 - 1), (format!("z{round}"), T0 + 1_000)]
            {
                s.create_order(&order_at("t_1", &id, &format!("N-{id}"), at), &[], &[]).await.unwrap();
            }
            s.create_order(&order_at("t_2", &format!("x{round}"), &format!("X{round}"), T0 + 2), &[], &[])
                .await
                .unwrap();
        }
        assert!(round < 50, "the walk ends");
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "strictly increasing (created_at, id): no duplicates, in order: {ids:?}");
    for k in 0..7 {
        assert!(ids.contains(&format!("o{k:02}").as_str()), "o{k:02} skipped: {ids:?}");
    }
    assert!(!ids.iter().any(|id| id.starts_with('p') || id.starts_with('x')), "{ids:?}");
    assert!(ids.contains(&"z1") && ids.contains(&"o01t"), "{ids:?}");
}

// Execution -------------------------------------------------------------------------------

fn attempt(tenant_id: &str, id: &str) -> baton_store::TransactionRecord {
    baton_store::TransactionRecord {
        transaction_id: id.into(),
        tenant_id: tenant_id.into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        customer_ref: "C1".into(),
        financial_instrument_id: None,
        app_id: "SANDBOX_CARD".into(),
        payment_method: Some("VISA".into()),
        operation: baton_domain::Operation::Credit,
        transaction_type: baton_domain::TransactionType::Mit,
        attempt: 1,
        amount_minor: 21000,
        currency: "EUR".into(),
        status: baton_domain::TransactionStatus::Pending,
        idempotency_key: format!("key-{id}"),
        provider_reference: None,
        decline_category: None,
        error_code: None,
        psp_code: None,
        psp_message: None,
        connector_ms: None,
        reward_id: None,
        result_sealed: None,
        created_at: T0,
        updated_at: T0,
        finished_at: None,
        node_id: None,
    }
}

fn event(tenant_id: &str, id: &str, event_type: baton_domain::EventType) -> baton_store::EventRecord {
    baton_store::EventRecord {
        event_id: id.into(),
        account_id: None,
        tenant_id: Some(tenant_id.into()),
        event_type,
        ordering_key: Some("i-1".into()),
        data: "{}".into(),
        created_at: T0,
    }
}

async fn scenario_apply_is_all_or_nothing(store: Arc<dyn Store>) {
    use baton_domain::{EventType, InstructionStatus, TransactionStatus};
    use baton_store::{Change, TransactionOutcome};
    two_tenants(&*store).await;
    let order = order_record("t_1", "o-1", "REF1");
    store.create_order(&order, &[], &[instruction_record("t_1", "o-1", "i-1", "C1")]).await.unwrap();
    let to_processing = |from: Vec<InstructionStatus>| Change::InstructionStatus {
        tenant_id: "t_1".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        from,
        to: InstructionStatus::Processing,
    };

    // A guard that does not hold undoes the changes before it.
    let refused = [
        Change::InsertTransaction(Box::new(attempt("t_1", "tx-1"))),
        Change::Event(event("t_1", "ev-1", EventType::InstructionProcessing)),
        to_processing(vec![InstructionStatus::Ready]),
    ];
    assert!(!store.apply(&refused, T0).await.unwrap());
    assert_eq!(store.transaction("t_1", "tx-1").await.unwrap(), None);
    assert!(store.events("t_1").await.unwrap().is_empty());
    assert_eq!(
        store.instruction("t_1", "o-1", "ref-i-1").await.unwrap().unwrap().status,
        InstructionStatus::Incomplete
    );

    // Another tenant's instruction is not reachable either.
    let foreign = [Change::InstructionStatus {
        tenant_id: "t_2".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        from: vec![InstructionStatus::Incomplete],
        to: InstructionStatus::Processing,
    }];
    assert!(!store.apply(&foreign, T0).await.unwrap());

    let accepted = [
        to_processing(vec![InstructionStatus::Incomplete]),
        Change::InsertTransaction(Box::new(attempt("t_1", "tx-1"))),
        Change::Event(event("t_1", "ev-1", EventType::InstructionProcessing)),
    ];
    assert!(store.apply(&accepted, T0 + 1).await.unwrap());
    assert_eq!(store.transaction("t_1", "tx-1").await.unwrap(), Some(attempt("t_1", "tx-1")));
    assert_eq!(store.transaction("t_2", "tx-1").await.unwrap(), None, "another tenant sees nothing");
    let events = store.events("t_1").await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.account_id.as_deref(), Some(ACCOUNT), "the account comes from the tenant");
    assert_eq!(events[0].dispatched_at, Some(T0), "no endpoint wants it: written dispatched");

    // Outcomes are compare-and-set on the attempt's status: the second one changes nothing.
    let settle = |reference: &str| Change::FinishTransaction {
        tenant_id: "t_1".into(),
        transaction_id: "tx-1".into(),
        from: vec![TransactionStatus::Pending, TransactionStatus::Processing],
        to: TransactionStatus::Settled,
        outcome: TransactionOutcome { provider_reference: Some(reference.into()), ..Default::default() },
    };
    assert!(store.apply(&[settle("ref-a")], T0 + 2).await.unwrap());
    assert!(!store.apply(&[settle("ref-b")], T0 + 3).await.unwrap());
    let settled = store.transaction("t_1", "tx-1").await.unwrap().unwrap();
    assert_eq!((settled.status, settled.provider_reference.as_deref()), (TransactionStatus::Settled, Some("ref-a")));
    assert_eq!(settled.finished_at, Some(T0 + 2));
    assert_eq!(
        store
            .transaction_by_provider_reference("t_1", "SANDBOX_CARD", "ref-a")
            .await
            .unwrap()
            .map(|t| t.transaction_id),
        Some("tx-1".into())
    );
    assert_eq!(store.instruction_transactions("t_1", "i-1").await.unwrap().len(), 1);
}

/// A run of events is written in one statement, in order; an unknown tenant fails it.
async fn scenario_apply_event_runs(store: Arc<dyn Store>) {
    use baton_domain::EventType;
    two_tenants(&*store).await;
    let mut own_account = event("t_1", "ev-2", EventType::InstructionUpdated);
    own_account.account_id = Some(ACCOUNT.into());
    let changes = [
        Change::Event(event("t_1", "ev-1", EventType::InstructionProcessing)),
        Change::Event(own_account),
        Change::Event(event("t_1", "ev-3", EventType::InstructionSettled)),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let events = store.events("t_1").await.unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e.event.event_id.as_str()).collect();
    assert_eq!(ids, ["ev-1", "ev-2", "ev-3"]);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(events.iter().all(|e| e.event.account_id.as_deref() == Some(ACCOUNT)));

    let unknown = [
        Change::Event(event("t_1", "ev-4", EventType::InstructionProcessing)),
        Change::Event(event("t_missing", "ev-5", EventType::InstructionProcessing)),
    ];
    assert!(matches!(store.apply(&unknown, T0).await, Err(StoreError::Corrupt(_))));
    assert_eq!(store.events("t_1").await.unwrap().len(), 3, "nothing of the failed list is kept");
}

/// READY instructions `i-0`..`i-{n}` of customer C1 in order o-1, paid with `fi-1`.
async fn ready_instructions(store: &dyn Store, n: usize) -> Vec<InstructionRecord> {
    two_tenants(store).await;
    // A customer's instruments are sealed with the customer's key: it exists before them.
    assert!(store.create_customer_key(&customer_key("t_1", "C1", "mk-1", T0)).await.unwrap());
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let records: Vec<InstructionRecord> = (0..n)
        .map(|i| InstructionRecord {
            financial_instrument_id: Some("fi-1".into()),
            instrument_source: baton_domain::Source::Tenant,
            scheme_id: Some("s-1".into()),
            scheme_source: baton_domain::Source::Tenant,
            ..instruction_record("t_1", "o-1", &format!("i-{i}"), "C1")
        })
        .collect();
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &records).await.unwrap();
    let stored = store.order_instructions("t_1", "o-1").await.unwrap();
    assert!(stored.iter().all(|i| i.status == baton_domain::InstructionStatus::Ready));
    stored
}

/// Concurrent change lists (and orders) each get the result they would have had alone:
/// SQLite commits them together, and a refused or failing one affects no other.
async fn scenario_apply_concurrent(store: Arc<dyn Store>) {
    use baton_domain::{EventType, InstructionStatus};
    let ready = Arc::new(ready_instructions(&*store, 10).await);
    let start = |seen: &InstructionRecord| Change::StartProcessing { seen: Box::new(seen.clone()), default: None };
    let started = |i: usize| {
        vec![
            start(&ready[i]),
            Change::InsertTransaction(Box::new(attempt("t_1", &format!("tx-{i}")))),
            Change::Event(event("t_1", &format!("ev-{i}"), EventType::InstructionProcessing)),
            Change::Event(event("t_1", &format!("ev-{i}-updated"), EventType::InstructionUpdated)),
        ]
    };

    // Change lists and new orders that all hold: each is applied, with its events.
    let results = race(6, |i| {
        let (store, changes) = (store.clone(), started(i));
        async move {
            if i < 4 {
                store.apply(&changes, T0 + 1).await.map(|applied| applied.to_string())
            } else {
                let order = order_record("t_1", &format!("o-new-{i}"), &format!("NEW-{i}"));
                let instruction = instruction_record("t_1", &format!("o-new-{i}"), &format!("n-{i}"), "C1");
                store.create_order(&order, &[], &[instruction]).await.map(|()| "created".to_string())
            }
        }
    })
    .await;
    let results: Vec<String> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results, ["true", "true", "true", "true", "created", "created"]);
    for i in 4..6 {
        assert!(store.order("t_1", &format!("NEW-{i}")).await.unwrap().is_some());
    }
    let events: Vec<String> = store.events("t_1").await.unwrap().into_iter().map(|e| e.event.event_id).collect();
    for i in 0..4 {
        let at = events.iter().position(|e| *e == format!("ev-{i}")).expect("its event is written");
        assert_eq!(events.get(at + 1), Some(&format!("ev-{i}-updated")), "a list's events stay in order: {events:?}");
        assert!(store.transaction("t_1", &format!("tx-{i}")).await.unwrap().is_some());
    }

    // A refused list (i-0 is no longer READY), a failing one (its event names no tenant)
    // and the others: each gets its own result, and only its own changes are kept.
    let results = race(6, |i| {
        let store = store.clone();
        let changes = match i {
            0 => started(0),
            1 => vec![start(&ready[5]), Change::Event(event("t_missing", "ev-lost", EventType::InstructionProcessing))],
            _ => started(i + 4),
        };
        async move { store.apply(&changes, T0 + 2).await }
    })
    .await;
    assert!(!results[0].as_ref().unwrap(), "refused: i-0 is no longer READY");
    assert!(matches!(results[1], Err(StoreError::Corrupt(_))), "{:?}", results[1]);
    for (i, result) in results.iter().enumerate().skip(2) {
        assert!(result.as_ref().unwrap(), "change list {i} applies: {result:?}");
    }
    let stored = store.order_instructions("t_1", "o-1").await.unwrap();
    let status = |id: &str| stored.iter().find(|i| i.instruction_id == id).unwrap().status;
    for i in [0, 1, 2, 3, 6, 7, 8, 9] {
        assert_eq!(status(&format!("i-{i}")), InstructionStatus::Processing, "i-{i}");
    }
    assert_eq!(status("i-5"), InstructionStatus::Ready, "nothing of the failed list is kept");
    assert_eq!(status("i-4"), InstructionStatus::Ready);
    let events: Vec<String> = store.events("t_1").await.unwrap().into_iter().map(|e| e.event.event_id).collect();
    assert_eq!(events.len(), 16, "two events for each of the eight applied lists: {events:?}");
    assert!(!events.contains(&"ev-lost".to_string()));
}

async fn scenario_execution_subject(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store.insert_instrument(&instrument("fi-2", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let key = customer_key("t_1", "C1", MK_OLD, T0);
    assert!(store.create_customer_key(&key).await.unwrap());
    let order = order_record("t_1", "o-1", "REF1");
    let default = default_record("o-1", "C1", Some("fi-1"), Some("s-1"));
    let inherits = instruction_record("t_1", "o-1", "i-1", "C1");
    let own = InstructionRecord {
        financial_instrument_id: Some("fi-2".into()),
        instrument_source: baton_domain::Source::Tenant,
        ..instruction_record("t_1", "o-1", "i-2", "C1")
    };
    store.create_order(&order, std::slice::from_ref(&default), &[inherits, own]).await.unwrap();

    let subject = store.execution_subject("t_1", "REF1", "ref-i-1").await.unwrap().expect("the order exists");
    let stored = store.instruction("t_1", "o-1", "ref-i-1").await.unwrap();
    assert_eq!(subject.order, store.order("t_1", "REF1").await.unwrap().unwrap());
    assert_eq!(subject.instruction, stored);
    assert_eq!(subject.instruction.as_ref().map(|i| i.status), Some(Ready));
    assert_eq!(subject.default, Some(default.clone()));
    assert_eq!(subject.instrument.as_ref().map(|f| f.financial_instrument_id.as_str()), Some("fi-1"), "inherited");
    assert_eq!(subject.instrument, store.instrument("t_1", "C1", "fi-1").await.unwrap());
    assert_eq!(subject.customer_key, Some(key.clone()));
    assert_eq!(subject.routing_version, store.routing_version("t_1").await.unwrap());

    let subject = store.execution_subject("t_1", "REF1", "ref-i-2").await.unwrap().unwrap();
    assert_eq!(subject.instrument.map(|f| f.financial_instrument_id), Some("fi-2".into()), "its own wins");

    // Once frozen, the instruction keeps what it inherited, whatever the default says now.
    assert!(store.change_instruction_status("t_1", "o-1", "i-1", &[Ready], Void, T0 + 1).await.unwrap());
    let other = default_record("o-1", "C1", Some("fi-2"), Some("s-1"));
    assert!(store.put_customer_defaults("t_1", "o-1", &[other], T0 + 2).await.unwrap());
    let subject = store.execution_subject("t_1", "REF1", "ref-i-1").await.unwrap().unwrap();
    assert_eq!(subject.instruction.as_ref().map(|i| i.status), Some(Void));
    assert_eq!(subject.instrument.map(|f| f.financial_instrument_id), Some("fi-1".into()));

    // No such instruction, order or tenant; an erased customer's key is read as shredded.
    let subject = store.execution_subject("t_1", "REF1", "ref-nope").await.unwrap().unwrap();
    assert!(subject.instruction.is_none() && subject.instrument.is_none() && subject.default.is_none());
    assert!(store.execution_subject("t_1", "NOPE", "ref-i-1").await.unwrap().is_none());
    assert!(store.execution_subject("t_2", "REF1", "ref-i-1").await.unwrap().is_none());
    assert!(store.shred_customer_key("t_1", "C1", T0 + 3).await.unwrap());
    let subject = store.execution_subject("t_1", "REF1", "ref-i-2").await.unwrap().unwrap();
    assert_eq!(subject.customer_key.map(|k| k.wrapped_key), Some(None));
}

/// The due-collection scan returns READY debits due by today in a stable order and
/// resumes after a given row, so rows a worker passes over never hide later ones.
async fn scenario_due_collections_scan(store: Arc<dyn Store>) {
    use baton_domain::{Direction, InstructionStatus};
    use baton_store::DuePosition;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    for (id, kind) in [("s-1", SchemeKind::Collect), ("s-2", SchemeKind::Payout)] {
        store
            .create_scheme(&scheme("t_1", id, kind), &draft("t_1", id, &format!("d-{id}"), "V1", &[], &[]))
            .await
            .unwrap();
    }
    let due = |id: &str, date: &str, created_at: i64| InstructionRecord {
        direction: Direction::Debit,
        status: InstructionStatus::Ready,
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: baton_domain::Source::Tenant,
        scheme_id: Some("s-1".into()),
        scheme_source: baton_domain::Source::Tenant,
        settled_by_date: Some(date.into()),
        created_at,
        ..instruction_record("t_1", "o-1", id, "C1")
    };
    let rows = vec![
        due("i-c", "2021-01-02", T0),
        due("i-b", "2021-01-01", T0 + 5),
        due("i-a", "2021-01-01", T0 + 5),
        due("i-d", "2021-01-01", T0),
        due("i-later", "2021-01-03", T0),
        InstructionRecord {
            direction: Direction::Credit,
            scheme_id: Some("s-2".into()),
            ..due("i-credit", "2021-01-01", T0)
        },
        InstructionRecord { status: InstructionStatus::Late, ..due("i-late", "2021-01-01", T0) },
        InstructionRecord { settled_by_date: None, ..due("i-undated", "2021-01-01", T0) },
    ];
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &rows).await.unwrap();
    let ids = |rows: Vec<InstructionRecord>| rows.into_iter().map(|r| r.instruction_id).collect::<Vec<_>>();
    let today = "2021-01-02";
    let all = store.instructions_due_collection(today, &DuePosition::start(), 10).await.unwrap();
    assert_eq!(ids(all.clone()), ["i-d", "i-a", "i-b", "i-c"], "by date, creation, then id");
    // Page by page, each row once, whatever the page size.
    let mut after = DuePosition::start();
    let mut seen = Vec::new();
    loop {
        let page = store.instructions_due_collection(today, &after, 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = DuePosition::of(last);
        seen.extend(ids(page));
    }
    assert_eq!(seen, ids(all));
}

/// Starting to process an instruction holds only while everything it was read with
/// still stands; what it inherited is frozen from the rows read.
async fn scenario_start_processing(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    use baton_domain::{InstrumentState, Source};
    two_tenants(&*store).await;
    assert!(store.create_customer_key(&customer_key("t_1", "C1", "mk-1", T0)).await.unwrap());
    for fi in ["fi-1", "fi-2"] {
        store.insert_instrument(&instrument(fi, "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    }
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let default = default_record("o-1", "C1", Some("fi-1"), Some("s-1"));
    let instructions: Vec<InstructionRecord> =
        (1..=5).map(|i| instruction_record("t_1", "o-1", &format!("i-{i}"), "C1")).collect();
    store
        .create_order(&order_record("t_1", "o-1", "REF1"), std::slice::from_ref(&default), &instructions)
        .await
        .unwrap();
    let read = |id: &'static str| {
        let store = store.clone();
        async move { store.instruction("t_1", "o-1", &format!("ref-{id}")).await.unwrap().unwrap() }
    };
    let start = |seen: &InstructionRecord, default: Option<&CustomerDefaultRecord>| Change::StartProcessing {
        seen: Box::new(seen.clone()),
        default: default.map(|d| Box::new(d.clone())),
    };

    // As read: it starts, with what it inherited frozen into it.
    let seen = read("i-1").await;
    assert_eq!(seen.status, Ready);
    assert!(store.apply(&[start(&seen, Some(&default))], T0 + 1).await.unwrap());
    let started = read("i-1").await;
    let expected = InstructionRecord { status: Processing, updated_at: T0 + 1, ..seen.frozen(Some(&default)).unwrap() };
    assert_eq!(started, expected);
    assert_eq!(started.financial_instrument_id.as_deref(), Some("fi-1"));
    assert_eq!((started.instrument_source, started.scheme_source), (Source::CustomerDefault, Source::CustomerDefault));
    assert_eq!(started.metadata, "{\"a\":\"1\",\"b\":\"9\"}");
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 2).await.unwrap(), "only once");

    // Not if it was read without its default, or changed since it was read.
    let seen = read("i-2").await;
    assert!(!store.apply(&[start(&seen, None)], T0 + 3).await.unwrap(), "the default was there");
    let changed = InstructionRecord { amount_minor: 100, updated_at: T0 + 3, ..seen.clone() };
    assert!(store.update_instruction(&changed, &[Ready]).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 4).await.unwrap(), "its amount changed");
    assert!(store.apply(&[start(&read("i-2").await, Some(&default))], T0 + 4).await.unwrap());

    // Not if its default changed since it was read.
    let seen = read("i-3").await;
    let moved = default_record("o-1", "C1", Some("fi-2"), Some("s-1"));
    assert!(store.put_customer_defaults("t_1", "o-1", std::slice::from_ref(&moved), T0 + 5).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 6).await.unwrap(), "another instrument now");
    assert_eq!(read("i-3").await.status, Ready);
    assert!(store.apply(&[start(&seen, Some(&moved))], T0 + 6).await.unwrap());
    assert_eq!(read("i-3").await.financial_instrument_id.as_deref(), Some("fi-2"));

    // Not when the instrument it would be paid with is no longer ACTIVE.
    let seen = read("i-4").await;
    let deactivate = Change::InstrumentState {
        tenant_id: "t_1".into(),
        customer_ref: "C1".into(),
        instrument_id: "fi-2".into(),
        from: InstrumentState::Active,
        to: InstrumentState::Inactive,
        reason: None,
    };
    assert!(store.apply(&[deactivate], T0 + 7).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&moved))], T0 + 8).await.unwrap());

    // A LATE instruction was frozen when it became LATE: its default no longer matters.
    assert!(store.change_instruction_status("t_1", "o-1", "i-5", &[Ready, Incomplete], Late, T0 + 9).await.unwrap());
    let late = read("i-5").await;
    assert_eq!(late.financial_instrument_id.as_deref(), Some("fi-2"));
    let reactivate = Change::InstrumentState {
        tenant_id: "t_1".into(),
        customer_ref: "C1".into(),
        instrument_id: "fi-2".into(),
        from: InstrumentState::Inactive,
        to: InstrumentState::Active,
        reason: None,
    };
    assert!(store.apply(&[reactivate], T0 + 10).await.unwrap());
    assert!(store.put_customer_defaults("t_1", "o-1", std::slice::from_ref(&default), T0 + 11).await.unwrap());
    let foreign = InstructionRecord { tenant_id: "t_2".into(), ..late.clone() };
    assert!(!store.apply(&[start(&foreign, None)], T0 + 12).await.unwrap(), "another tenant reaches nothing");
    assert!(store.apply(&[start(&late, Some(&moved))], T0 + 12).await.unwrap());
    assert_eq!(read("i-5").await, InstructionRecord { status: Processing, updated_at: T0 + 12, ..late });

    // Once the customer is erased (their key shredded), nothing of theirs starts.
    let seen = read("i-4").await;
    assert!(store.shred_customer_key("t_1", "C1", T0 + 13).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 14).await.unwrap(), "an erased customer");
    assert_eq!(read("i-4").await.status, seen.status);
}

/// Every change that can alter routing raises the tenant's routing version, and only its own.
async fn scenario_routing_version(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let version = |tenant: &'static str| {
        let store = store.clone();
        async move { store.routing_version(tenant).await.unwrap() }
    };
    assert_eq!((version("t_1").await, version("t_2").await), (0, 0));
    assert_eq!(version("t_missing").await, 0);
    let mut expected = 0;

    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();
    expected += 1; // install
    assert_eq!(version("t_1").await, expected);
    assert!(store.configure_app("t_1", "SANDBOX_CARD", "{}", Some(&[1]), T0 + 1).await.unwrap());
    expected += 1; // configure
    assert_eq!(version("t_1").await, expected);
    assert!(!store.configure_app("t_1", "SANDBOX_BANK", "{}", None, T0 + 1).await.unwrap());
    assert_eq!(version("t_1").await, expected, "nothing configured");

    let first = draft("t_1", "s-1", "d-1", "V1", &["SANDBOX_CARD"], &[]);
    store.create_scheme(&scheme("t_1", "s-1", SchemeKind::Collect), &first).await.unwrap();
    store.insert_draft(&draft("t_1", "s-1", "d-2", "V2", &[], &[])).await.unwrap();
    assert!(store.publish_draft("t_1", "s-1", "d-1", T0 + 2).await.unwrap());
    expected += 1; // publish
    assert_eq!(version("t_1").await, expected);
    assert!(!store.publish_draft("t_1", "s-1", "d-missing", T0 + 2).await.unwrap());
    assert!(store.publish_draft("t_1", "s-1", "d-2", T0 + 3).await.unwrap());
    expected += 1; // publish another
    assert_eq!(version("t_1").await, expected);
    assert!(store.delete_draft("t_1", "s-1", "d-1").await.unwrap());
    assert!(store.delete_scheme("t_1", SchemeKind::Collect, "s-1").await.unwrap());
    expected += 1; // delete scheme
    assert_eq!(version("t_1").await, expected);
    assert!(store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    expected += 1; // uninstall
    assert!(!store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    assert_eq!(version("t_1").await, expected);
    assert_eq!(version("t_2").await, 0, "the other tenant's version stays");
}

async fn scenario_jobs_are_claimed_once(store: Arc<dyn Store>) {
    use baton_store::{Change, JobRecord};
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    let job = |n: usize| JobRecord {
        job_id: format!("job-{n}"),
        kind: "test".into(),
        subject_id: format!("subject-{n}"),
        tenant_id: Some("t_1".into()),
        payload: "{}".into(),
        run_at: T0 + n as i64,
        attempts: 0,
        last_error: None,
        created_at: T0,
    };
    let jobs: Vec<Change> = (0..20).map(|n| Change::ScheduleJob(job(n))).collect();
    assert!(store.apply(&jobs, T0).await.unwrap());
    // Scheduling the same (kind, subject) again moves the job instead of adding one.
    let mut later = job(19);
    later.job_id = "job-19-again".into();
    later.run_at = T0 + 1_000_000;
    assert!(store.apply(&[Change::ScheduleJob(later)], T0).await.unwrap());
    assert_eq!(store.job("test", "subject-19").await.unwrap().unwrap().run_at, T0 + 1_000_000);

    // Four workers claim at once: each due job goes to exactly one of them.
    let barrier = Arc::new(Barrier::new(4));
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store.claim_jobs(T0 + 100, T0 + 10_000, 8, claimant(LIVE_NODE, T0 + 100)).await.unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for h in handles {
        claimed.extend(h.await.unwrap().into_iter().map(|j| (j.job_id, j.attempts)));
    }
    claimed.sort();
    let expected: Vec<(String, i64)> = {
        let mut v: Vec<_> = (0..19).map(|n| (format!("job-{n}"), 1)).collect();
        v.sort();
        v
    };
    assert_eq!(claimed, expected, "19 due jobs, each claimed once");

    // Leased jobs are not claimed again until the lease ends; then they are.
    assert!(store.claim_jobs(T0 + 200, T0 + 10_000, 50, claimant(LIVE_NODE, T0 + 200)).await.unwrap().is_empty());
    store.retry_job("job-3", T0 + 300, "boom").await.unwrap();
    let again = store.claim_jobs(T0 + 300, T0 + 20_000, 50, claimant(LIVE_NODE, T0 + 300)).await.unwrap();
    assert_eq!(again.iter().map(|j| (j.job_id.as_str(), j.attempts)).collect::<Vec<_>>(), [("job-3", 2)]);
    assert_eq!(again[0].last_error.as_deref(), Some("boom"));
    let expired = store.claim_jobs(T0 + 10_000, T0 + 30_000, 50, claimant(LIVE_NODE, T0 + 10_000)).await.unwrap();
    assert_eq!(expired.len(), 18, "the others' leases ended");
    assert!(store.apply(&[Change::DeleteJob { job_id: "job-3".into() }], T0).await.unwrap());
    assert_eq!(store.job("test", "subject-3").await.unwrap(), None);
}

async fn scenario_job_leases_of_dead_and_live_nodes(store: Arc<dyn Store>) {
    use baton_store::{Change, JobRecord};
    two_tenants(&*store).await;
    let t = T0;
    let job = JobRecord {
        job_id: "job-1".into(),
        kind: "test".into(),
        subject_id: "subject-1".into(),
        tenant_id: Some("t_1".into()),
        payload: "{}".into(),
        run_at: t,
        attempts: 0,
        last_error: None,
        created_at: t,
    };
    assert!(store.apply(&[Change::ScheduleJob(job)], t).await.unwrap());
    let claim = |node: &'static str, now: i64| {
        let store = store.clone();
        async move {
            let jobs = store.claim_jobs(now, now + 120_000, 10, claimant(node, now)).await.unwrap();
            jobs.into_iter().map(|j| (j.job_id, j.attempts)).collect::<Vec<_>>()
        }
    };
    let job1 = |attempts: i64| vec![("job-1".to_string(), attempts)];
    store.heartbeat("node-a", t, t).await.unwrap();
    store.heartbeat("node-b", t, t).await.unwrap();
    assert_eq!(claim("node-a", t).await, job1(1));
    // While node-a beats, its lease holds until it runs out.
    store.heartbeat("node-a", t, t + 100_000).await.unwrap();
    assert_eq!(claim("node-b", t + 100_000 + LOST_MS).await, []);
    store.heartbeat("node-a", t, t + 119_999).await.unwrap();
    // A lease that ran out is free even if its node lives (it lost track of the job).
    store.heartbeat("node-b", t, t + 120_000).await.unwrap();
    assert_eq!(claim("node-b", t + 120_000).await, job1(2));
    // node-b dies: its lease is taken over LOST_MS after it was last heard from.
    store.heartbeat("node-a", t, t + 120_000 + LOST_MS + 1).await.unwrap();
    assert_eq!(claim("node-a", t + 120_000 + LOST_MS).await, []);
    assert_eq!(claim("node-a", t + 120_000 + LOST_MS + 1).await, job1(3));
}

async fn scenario_pending_attempts_of_dead_nodes(store: Arc<dyn Store>) {
    use baton_domain::TransactionStatus;
    use baton_store::Change;
    two_tenants(&*store).await;
    let order = order_record("t_1", "o-1", "REF1");
    store.create_order(&order, &[], &[instruction_record("t_1", "o-1", "i-1", "C1")]).await.unwrap();
    let of = |id: &str, node: Option<&str>, status: TransactionStatus| {
        let t = baton_store::TransactionRecord { node_id: node.map(String::from), status, ..attempt("t_1", id) };
        Change::InsertTransaction(Box::new(t))
    };
    let changes = [
        of("tx-a", Some("node-a"), TransactionStatus::Pending),
        of("tx-b", Some("node-b"), TransactionStatus::Pending),
        of("tx-older-version", None, TransactionStatus::Pending),
        of("tx-done", Some("node-a"), TransactionStatus::Settled),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let stale = |now: i64| {
        let store = store.clone();
        async move {
            let found = store.stale_pending_transactions(now - 60_000, now - LOST_MS, 10).await.unwrap();
            let mut ids: Vec<String> = found.into_iter().map(|t| t.transaction_id).collect();
            ids.sort();
            ids
        }
    };
    store.heartbeat("node-a", T0, T0).await.unwrap();
    keep_alive(&*store, "node-b").await;
    // A live node's call is its own...
    assert_eq!(stale(T0 + LOST_MS).await, Vec::<String>::new());
    store.heartbeat("node-a", T0, T0 + 20_000).await.unwrap();
    assert_eq!(stale(T0 + 20_000 + LOST_MS).await, Vec::<String>::new());
    // ...a dead node's is synced once the node has been silent for LOST_MS,
    assert_eq!(stale(T0 + 20_000 + LOST_MS + 1).await, ["tx-a"]);
    // and any attempt still PENDING after `stale_after` lost its answer.
    assert_eq!(stale(T0 + 60_001).await, ["tx-a", "tx-b", "tx-older-version"]);
}

async fn scenario_node_heartbeats(store: Arc<dyn Store>) {
    store.heartbeat("node-1", T0, T0).await.unwrap();
    store.heartbeat("node-2", T0, T0 + DAY_MS).await.unwrap();
    // A late write of an older heartbeat does not move a node back.
    store.heartbeat("node-2", T0, T0 + 1).await.unwrap();
    assert_eq!(store.forget_nodes(T0 + 1).await.unwrap(), 1);
    assert_eq!(store.forget_nodes(T0 + 1).await.unwrap(), 0);
    assert_eq!(store.forget_nodes(T0 + DAY_MS).await.unwrap(), 0, "node-2 was heard from at T0 + DAY_MS");
    assert_eq!(store.forget_nodes(T0 + DAY_MS + 1).await.unwrap(), 1);
}

// Refunds and chargebacks ----------------------------------------------------------------

/// A tenant with an order, its settled debit instruction `i-1` and its settled attempt
/// `tx-1` of 10.00 EUR.
async fn settled_debit(store: &dyn Store) -> TransactionRecord {
    two_tenants(store).await;
    settled_debit_in(store, "t_1", 1).await
}

/// Order `o-{n}` (`REF{n}`) of `tenant_id` with its settled debit instruction `i-{n}`
/// (`ref-i-{n}`) and its settled attempt `tx-{n}` of 10.00 EUR.
async fn settled_debit_in(store: &dyn Store, tenant_id: &str, n: u32) -> TransactionRecord {
    let (order_id, instruction_id) = (format!("o-{n}"), format!("i-{n}"));
    let ins = InstructionRecord {
        direction: baton_domain::Direction::Debit,
        status: baton_domain::InstructionStatus::Settled,
        amount_minor: 1000,
        ..instruction_record(tenant_id, &order_id, &instruction_id, "C1")
    };
    store.create_order(&order_record(tenant_id, &order_id, &format!("REF{n}")), &[], &[ins]).await.unwrap();
    let tx = TransactionRecord {
        transaction_id: format!("tx-{n}"),
        tenant_id: tenant_id.into(),
        order_id,
        instruction_id,
        customer_ref: "C1".into(),
        financial_instrument_id: None,
        app_id: "SANDBOX_CARD".into(),
        payment_method: Some("VISA".into()),
        operation: baton_domain::Operation::Debit,
        transaction_type: baton_domain::TransactionType::Mit,
        attempt: 1,
        amount_minor: 1000,
        currency: "EUR".into(),
        status: baton_domain::TransactionStatus::Settled,
        idempotency_key: format!("key-{n}"),
        provider_reference: Some(format!("ch_{n}")),
        decline_category: None,
        error_code: None,
        psp_code: None,
        psp_message: None,
        connector_ms: None,
        reward_id: None,
        result_sealed: None,
        created_at: T0,
        updated_at: T0,
        finished_at: Some(T0),
        node_id: None,
    };
    assert!(store.apply(&[Change::InsertTransaction(Box::new(tx.clone()))], T0).await.unwrap());
    tx
}

fn refund_record(id: &str, amount_minor: i64) -> RefundRecord {
    RefundRecord {
        refund_id: id.into(),
        tenant_id: "t_1".into(),
        instruction_id: "i-1".into(),
        transaction_id: "tx-1".into(),
        app_id: "SANDBOX_CARD".into(),
        refund_ref: format!("ref-{id}"),
        amount_minor,
        currency: "EUR".into(),
        reason: baton_domain::RefundReason::Other,
        status: baton_domain::RefundStatus::Pending,
        provider_reference: None,
        error_code: None,
        psp_code: None,
        psp_message: None,
        metadata: "{}".into(),
        created_at: T0,
        updated_at: T0,
    }
}

async fn scenario_refunds_capped_concurrently(store: Arc<dyn Store>) {
    settled_debit(&*store).await;
    // Ten refunds of 3.00 against 10.00, all at once: exactly three fit.
    let results = race(10, |i| {
        let store = store.clone();
        async move {
            let change = Change::InsertRefund { refund: refund_record(&format!("r-{i}"), 300), limit_minor: 1000 };
            store.apply(&[change], T0 + 1).await.unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|ok| **ok).count(), 3, "{results:?}");
    let refunds = store.refunds("t_1", "i-1").await.unwrap();
    assert_eq!(refunds.iter().map(|r| r.amount_minor).sum::<i64>(), 900);

    // A failed refund no longer counts; a finished one is guarded by its status.
    use baton_domain::RefundStatus::*;
    let first = refunds[0].refund_id.clone();
    let fail = |from: Vec<baton_domain::RefundStatus>| Change::FinishRefund {
        tenant_id: "t_1".into(),
        refund_id: first.clone(),
        from,
        to: Failed,
        outcome: TransactionOutcome { error_code: Some("PROVIDER_DECLINED".into()), ..Default::default() },
    };
    assert!(!store.apply(&[fail(vec![Processing])], T0 + 2).await.unwrap());
    assert!(store.apply(&[fail(vec![Pending])], T0 + 2).await.unwrap());
    let big = Change::InsertRefund { refund: refund_record("r-big", 400), limit_minor: 1000 };
    assert!(store.apply(&[big], T0 + 3).await.unwrap());
    let over = Change::InsertRefund { refund: refund_record("r-over", 1), limit_minor: 1000 };
    assert!(!store.apply(&[over], T0 + 3).await.unwrap());
    // The ref is unique per instruction.
    let dup = RefundRecord { refund_id: "r-dup".into(), amount_minor: 1, ..refund_record("r-big", 1) };
    assert!(matches!(
        store.apply(&[Change::InsertRefund { refund: dup, limit_minor: 100_000 }], T0 + 4).await,
        Err(StoreError::Conflict(_))
    ));
    let stored = store.refund("t_1", "i-1", "ref-r-big").await.unwrap().unwrap();
    assert_eq!((stored.amount_minor, stored.status), (400, Pending));
    assert!(store.refunds("t_2", "i-1").await.unwrap().is_empty(), "another tenant sees nothing");
}

async fn scenario_chargebacks_unique_and_guarded(store: Arc<dyn Store>) {
    settled_debit(&*store).await;
    use baton_domain::ChargebackStatus::*;
    let record = ChargebackRecord {
        chargeback_id: "cb-1".into(),
        tenant_id: "t_1".into(),
        instruction_id: "i-1".into(),
        transaction_id: "tx-1".into(),
        app_id: "SANDBOX_CARD".into(),
        provider_reference: "dp_1".into(),
        amount_minor: 1000,
        currency: "EUR".into(),
        reason: baton_domain::ChargebackReason::Fraud,
        provider_reason_code: Some("10.4".into()),
        status: Open,
        due_by: None,
        evidence: None,
        created_at: T0,
        updated_at: T0,
    };
    assert!(store.apply(&[Change::InsertChargeback(record.clone())], T0).await.unwrap());
    let again = ChargebackRecord { chargeback_id: "cb-2".into(), ..record.clone() };
    assert!(!store.apply(&[Change::InsertChargeback(again)], T0).await.unwrap(), "one per provider reference");
    assert_eq!(store.chargeback("t_1", "cb-1").await.unwrap(), Some(record.clone()));
    assert_eq!(store.chargeback("t_2", "cb-1").await.unwrap(), None);
    let by_ref = store.chargeback_by_provider_reference("t_1", "SANDBOX_CARD", "dp_1").await.unwrap();
    assert_eq!(by_ref.map(|c| c.chargeback_id), Some("cb-1".into()));

    let to = |from, to, evidence: Option<&str>| Change::ChargebackStatus {
        tenant_id: "t_1".into(),
        chargeback_id: "cb-1".into(),
        from,
        to,
        evidence: evidence.map(Into::into),
    };
    assert!(!store.apply(&[to(EvidenceSubmitted, Won, None)], T0 + 1).await.unwrap());
    assert!(store.apply(&[to(Open, EvidenceSubmitted, Some("{\"text\":\"x\"}"))], T0 + 1).await.unwrap());
    let stored = store.chargeback("t_1", "cb-1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.evidence.as_deref()), (EvidenceSubmitted, Some("{\"text\":\"x\"}")));

    let all = ChargebackFilter::default();
    assert_eq!(store.list_chargebacks("t_1", &all, None, 10).await.unwrap().len(), 1);
    let open = ChargebackFilter { status: Some(Open), ..all.clone() };
    assert!(store.list_chargebacks("t_1", &open, None, 10).await.unwrap().is_empty());
    let fraud = ChargebackFilter {
        reason: Some(baton_domain::ChargebackReason::Fraud),
        from: Some(T0),
        to: Some(T0 + 1),
        ..all.clone()
    };
    assert_eq!(store.list_chargebacks("t_1", &fraud, None, 10).await.unwrap().len(), 1);
    let later = ChargebackFilter { from: Some(T0 + 1), ..all.clone() };
    assert!(store.list_chargebacks("t_1", &later, None, 10).await.unwrap().is_empty());
    assert!(store.list_chargebacks("t_2", &all, None, 10).await.unwrap().is_empty());
}

/// A chargeback `id` of `tenant_id` on the settled debit `i-{n}` / `tx-{n}`.
fn chargeback_at(
    tenant_id: &str,
    id: &str,
    n: u32,
    reason: baton_domain::ChargebackReason,
    at: i64,
) -> ChargebackRecord {
    ChargebackRecord {
        chargeback_id: id.into(),
        tenant_id: tenant_id.into(),
        instruction_id: format!("i-{n}"),
        transaction_id: format!("tx-{n}"),
        app_id: "SANDBOX_CARD".into(),
        provider_reference: format!("dp_{id}"),
        amount_minor: 1000,
        currency: "EUR".into(),
        reason,
        provider_reason_code: None,
        status: baton_domain::ChargebackStatus::Open,
        due_by: None,
        evidence: None,
        created_at: at,
        updated_at: at,
    }
}

async fn chargeback_ids(
    store: &dyn Store,
    tenant_id: &str,
    filter: &ChargebackFilter,
    after: Option<&Keyset>,
    limit: u32,
) -> Vec<String> {
    let listed = store.list_chargebacks(tenant_id, filter, after, limit).await.unwrap();
    listed.into_iter().map(|l| l.chargeback.chargeback_id).collect()
}

/// The chargeback listing's keyset query: newest first with ties by id ascending, the
/// order and instruction refs joined in, every filter alone and combined with keyset
/// positions, tenant isolation, and a walk page by page while rows are inserted between
/// pages (newer than the walk, tied with the position, older, another tenant's).
async fn scenario_chargeback_listing_pages(store: Arc<dyn Store>) {
    use baton_domain::ChargebackReason::{Fraud, Quality};
    use baton_domain::ChargebackStatus::{Accepted, Open};
    settled_debit(&*store).await;
    settled_debit_in(&*store, "t_1", 2).await;
    settled_debit_in(&*store, "t_2", 3).await;
    let s = &*store;
    let insert = |c: ChargebackRecord| async move {
        assert!(s.apply(&[Change::InsertChargeback(c)], T0).await.unwrap());
    };
    // Ten of t_1, two per creation time, alternating instructions; inserted oldest last.
    let originals: Vec<ChargebackRecord> = (0..10)
        .map(|k| {
            let reason = if k % 3 == 0 { Fraud } else { Quality };
            chargeback_at("t_1", &format!("cb{k:02}"), 1 + (k % 2) as u32, reason, T0 + (k / 2) * 10)
        })
        .collect();
    for c in originals.iter().rev() {
        insert(c.clone()).await;
    }
    insert(chargeback_at("t_2", "cx", 3, Fraud, T0 + 20)).await;
    let accepted = Change::ChargebackStatus {
        tenant_id: "t_1".into(),
        chargeback_id: "cb04".into(),
        from: Open,
        to: Accepted,
        evidence: None,
    };
    assert!(s.apply(&[accepted], T0 + 100).await.unwrap());

    // Everything of the tenant, newest first, ties by id; each with its refs.
    let f = ChargebackFilter::default;
    let all = s.list_chargebacks("t_1", &f(), None, 100).await.unwrap();
    let listed: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|l| (l.chargeback.chargeback_id.as_str(), l.order_ref.as_str(), l.instruction_ref.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("cb08", "REF1", "ref-i-1"),
            ("cb09", "REF2", "ref-i-2"),
            ("cb06", "REF1", "ref-i-1"),
            ("cb07", "REF2", "ref-i-2"),
            ("cb04", "REF1", "ref-i-1"),
            ("cb05", "REF2", "ref-i-2"),
            ("cb02", "REF1", "ref-i-1"),
            ("cb03", "REF2", "ref-i-2"),
            ("cb00", "REF1", "ref-i-1"),
            ("cb01", "REF2", "ref-i-2"),
        ]
    );
    let first = ListedChargeback {
        order_ref: "REF1".into(),
        instruction_ref: "ref-i-1".into(),
        chargeback: originals[8].clone(),
    };
    assert_eq!(all[0], first);
    assert_eq!(all[4].chargeback.status, Accepted);
    assert_eq!(chargeback_ids(s, "t_2", &f(), None, 100).await, ["cx"]);
    assert!(chargeback_ids(s, "t_3", &f(), None, 100).await.is_empty());

    // Filters, alone and together.
    let check = |filter: ChargebackFilter, expected: &'static [&'static str]| async move {
        assert_eq!(chargeback_ids(s, "t_1", &filter, None, 100).await, expected, "{filter:?}");
    };
    check(ChargebackFilter { reason: Some(Fraud), ..f() }, &["cb09", "cb06", "cb03", "cb00"]).await;
    check(ChargebackFilter { status: Some(Accepted), ..f() }, &["cb04"]).await;
    check(
        ChargebackFilter { status: Some(Open), reason: Some(Quality), ..f() },
        &["cb08", "cb07", "cb05", "cb02", "cb01"],
    )
    .await;
    check(ChargebackFilter { from: Some(T0 + 10), to: Some(T0 + 30), ..f() }, &["cb04", "cb05", "cb02", "cb03"]).await;
    check(ChargebackFilter { from: Some(T0 + 40), ..f() }, &["cb08", "cb09"]).await;
    check(ChargebackFilter { to: Some(T0 + 10), ..f() }, &["cb00", "cb01"]).await;
    check(ChargebackFilter { instruction_id: Some("i-2".into()), ..f() }, &["cb09", "cb07", "cb05", "cb03", "cb01"])
        .await;
    check(ChargebackFilter { instruction_id: Some("i-1".into()), reason: Some(Fraud), ..f() }, &["cb06", "cb00"]).await;
    check(ChargebackFilter { instruction_id: Some("i-3".into()), ..f() }, &[]).await;
    let theirs = ChargebackFilter { instruction_id: Some("i-3".into()), ..f() };
    assert_eq!(chargeback_ids(s, "t_2", &theirs, None, 100).await, ["cx"]);

    // Limits and keyset positions: strictly after, ties by id ascending.
    assert_eq!(chargeback_ids(s, "t_1", &f(), None, 3).await, ["cb08", "cb09", "cb06"]);
    let at = |created_at: i64, id: &str| Keyset { created_at, id: id.into() };
    assert_eq!(chargeback_ids(s, "t_1", &f(), Some(&at(T0 + 30, "cb06")), 3).await, ["cb07", "cb04", "cb05"]);
    assert_eq!(chargeback_ids(s, "t_1", &f(), Some(&at(T0 + 30, "cb07")), 3).await, ["cb04", "cb05", "cb02"]);
    assert_eq!(chargeback_ids(s, "t_1", &f(), Some(&at(T0 + 25, "zz")), 2).await, ["cb04", "cb05"]);
    assert!(chargeback_ids(s, "t_1", &f(), Some(&at(T0, "cb01")), 3).await.is_empty());
    let fraud = ChargebackFilter { reason: Some(Fraud), ..f() };
    assert_eq!(chargeback_ids(s, "t_1", &fraud, Some(&at(T0 + 30, "cb06")), 3).await, ["cb03", "cb00"]);
    let window = ChargebackFilter { from: Some(T0 + 10), to: Some(T0 + 30), ..f() };
    assert_eq!(chargeback_ids(s, "t_1", &window, Some(&at(T0 + 20, "cb04")), 1).await, ["cb05"]);
    // A position is only a position: another tenant's listing from it has only its own rows.
    assert_eq!(chargeback_ids(s, "t_2", &f(), Some(&at(T0 + 30, "cb06")), 3).await, ["cx"]);
    assert!(chargeback_ids(s, "t_2", &f(), Some(&at(T0 + 20, "cx")), 3).await.is_empty());

    // A walk, three per page, with inserts between pages.
    let mut seen: Vec<(std::cmp::Reverse<i64>, String)> = Vec::new();
    let mut after: Option<Keyset> = None;
    let mut round = 0;
    loop {
        let page = s.list_chargebacks("t_1", &f(), after.as_ref(), 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(at(last.chargeback.created_at, &last.chargeback.chargeback_id));
        seen.extend(
            page.iter().map(|l| (std::cmp::Reverse(l.chargeback.created_at), l.chargeback.chargeback_id.clone())),
        );
        let k = after.clone().unwrap();
        round += 1;
        if round <= 3 {
            // Tied with the position (sorts after it), older, newer; and another tenant's.
            for (id, created_at, n) in [
                (format!("{}t{round}", k.id), k.created_at, 1),
                (format!("p{round}"), T0 - 1, 2),
                (format!("z{round}"), T0 + 1_000, 1),
            ] {
                insert(chargeback_at("t_1", &id, n, Quality, created_at)).await;
            }
            insert(chargeback_at("t_2", &format!("x{round}"), 3, Quality, k.created_at)).await;
        }
        assert!(round < 50, "the walk ends");
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "newest first, ties by id: no duplicates, in order: {ids:?}");
    for original in &originals {
        assert!(ids.contains(&original.chargeback_id.as_str()), "{} skipped: {ids:?}", original.chargeback_id);
    }
    assert!(!ids.iter().any(|id| id.starts_with('z')), "rows newer than the position stay before it: {ids:?}");
    assert!(!ids.iter().any(|id| id.starts_with('x')), "another tenant's rows never appear: {ids:?}");
    assert!(ids.contains(&"p1") && ids.contains(&"cb06t1"), "rows after the position are reached: {ids:?}");
    // A new walk from the start sees every row of the tenant.
    assert_eq!(chargeback_ids(s, "t_1", &f(), None, 100).await.len(), 10 + 9);
}

// Webhooks ------------------------------------------------------------------------------

fn endpoint(id: &str, tenant_id: Option<&str>, events: &[&str]) -> baton_store::WebhookEndpointRecord {
    baton_store::WebhookEndpointRecord {
        endpoint_id: id.into(),
        account_id: ACCOUNT.into(),
        tenant_id: tenant_id.map(str::to_string),
        url: format!("https://example.com/{id}"),
        event_types: events.iter().map(|e| e.to_string()).collect(),
        description: None,
        enabled: true,
        secret_sealed: vec![1, 2, 3],
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        failing_since: None,
        disabled_reason: None,
        created_at: T0,
        updated_at: T0,
    }
}

fn wh_event(id: &str, tenant_id: Option<&str>, t: baton_domain::EventType, key: Option<&str>) -> baton_store::Change {
    baton_store::Change::Event(baton_store::EventRecord {
        event_id: id.into(),
        account_id: tenant_id.is_none().then(|| ACCOUNT.to_string()),
        tenant_id: tenant_id.map(str::to_string),
        event_type: t,
        ordering_key: key.map(str::to_string),
        data: format!(r#"{{"n":"{id}"}}"#),
        created_at: T0,
    })
}

fn counter_ids() -> impl Fn() -> String + Send + Sync {
    let n = std::sync::atomic::AtomicUsize::new(0);
    move || format!("d-{:04}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

async fn delivered_events(store: &dyn Store, endpoint_id: &str) -> Vec<String> {
    let filter = baton_store::DeliveryFilter { limit: 100, ..Default::default() };
    let mut list: Vec<_> = store.webhook_deliveries(endpoint_id, &filter).await.unwrap();
    list.sort_by_key(|(d, _)| d.event_seq);
    list.into_iter().map(|(d, _)| d.event_id).collect()
}

fn succeeded(c: &baton_store::ClaimedDelivery, attempted_at: i64) -> baton_store::AttemptOutcome {
    baton_store::AttemptOutcome {
        attempt: baton_store::DeliveryAttemptRecord {
            delivery_id: c.delivery.delivery_id.clone(),
            attempt: c.delivery.attempts + 1,
            status_code: Some(200),
            duration_ms: 3,
            response: Some("ok".into()),
            error: None,
            attempted_at,
        },
        status: baton_store::DeliveryStatus::Succeeded,
        next_attempt_at: attempted_at,
        disable_endpoint: None,
    }
}

async fn scenario_webhook_fan_out(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("all-1", Some("t_1"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("settled-1", Some("t_1"), &["instruction.settled"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("all-2", Some("t_2"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("account", None, &["*"])).await.unwrap();
    let mut off = endpoint("off", Some("t_1"), &["*"]);
    off.enabled = false;
    store.insert_webhook_endpoint(&off).await.unwrap();
    let changes = [
        wh_event("e1", Some("t_1"), InstructionProcessing, Some("i-1")),
        wh_event("e2", Some("t_1"), InstructionSettled, Some("i-1")),
        wh_event("e3", Some("t_2"), InstructionSettled, Some("i-2")),
        wh_event("e4", None, TenantApprovalRequested, None),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let ids = counter_ids();
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (4, 5));
    assert_eq!(delivered_events(&*store, "all-1").await, ["e1", "e2"]);
    assert_eq!(delivered_events(&*store, "settled-1").await, ["e2"]);
    assert_eq!(delivered_events(&*store, "all-2").await, ["e3"], "a tenant's events go to that tenant only");
    assert_eq!(delivered_events(&*store, "account").await, ["e4"], "account events to account endpoints");
    assert!(delivered_events(&*store, "off").await.is_empty(), "disabled endpoints get nothing");
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (0, 0), "each event is fanned out once");
    assert_eq!(store.undelivered_count().await.unwrap(), 5);

    // Owners are scoped: another tenant cannot read or delete the endpoint.
    assert!(store.webhook_endpoint(ACCOUNT, Some("t_2"), "all-1").await.unwrap().is_none());
    assert!(store.webhook_endpoint(ACCOUNT, None, "all-1").await.unwrap().is_none());
    assert!(store.webhook_endpoint(ACCOUNT, None, "account").await.unwrap().is_some());
    assert!(!store.delete_webhook_endpoint(ACCOUNT, Some("t_2"), "all-1").await.unwrap());
    let listed: Vec<String> =
        store.webhook_endpoints(ACCOUNT, Some("t_1")).await.unwrap().into_iter().map(|e| e.endpoint_id).collect();
    assert_eq!(listed, ["all-1", "off", "settled-1"], "by creation time, then id");
    assert!(store.delete_webhook_endpoint(ACCOUNT, Some("t_1"), "all-1").await.unwrap());
    assert_eq!(store.undelivered_count().await.unwrap(), 3, "deliveries go with their endpoint");
}

async fn scenario_events_no_endpoint_wants_are_written_dispatched(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("settled-1", Some("t_1"), &["instruction.settled"])).await.unwrap();
    let mut off = endpoint("off-1", Some("t_1"), &["*"]);
    off.enabled = false;
    store.insert_webhook_endpoint(&off).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("all-2", Some("t_2"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("account", None, &["*"])).await.unwrap();
    let changes = [
        wh_event("p1", Some("t_1"), InstructionProcessing, Some("i-1")),
        wh_event("s1", Some("t_1"), InstructionSettled, Some("i-1")),
        wh_event("p2", Some("t_2"), InstructionProcessing, Some("i-2")),
        wh_event("a", None, TenantApprovalRequested, None),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let dispatched = |events: Vec<baton_store::StoredEvent>| -> Vec<(String, bool)> {
        events.into_iter().map(|e| (e.event.event_id, e.dispatched_at.is_some())).collect()
    };
    let t1 = dispatched(store.events("t_1").await.unwrap());
    assert_eq!(t1, [("p1".into(), true), ("s1".into(), false)], "only an enabled endpoint naming the type counts");
    assert_eq!(dispatched(store.events("t_2").await.unwrap()), [("p2".into(), false)], "`*` names every type");
    // Those left are fanned out as ever; account events always are.
    let ids = counter_ids();
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (3, 3));
    assert_eq!(delivered_events(&*store, "settled-1").await, ["s1"]);
    assert_eq!(delivered_events(&*store, "all-2").await, ["p2"]);
    assert_eq!(delivered_events(&*store, "account").await, ["a"]);

    // An endpoint enabled later gets the events written after it.
    store.insert_webhook_endpoint(&endpoint("all-1", Some("t_1"), &["*"])).await.unwrap();
    assert!(store.apply(&[wh_event("p3", Some("t_1"), InstructionProcessing, Some("i-3"))], T0).await.unwrap());
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (1, 1));
    assert_eq!(delivered_events(&*store, "all-1").await, ["p3"]);
}

async fn scenario_webhook_deliveries_in_order(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    use baton_store::DeliveryStatus;
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    store.insert_webhook_endpoint(&endpoint("ep", Some("t_1"), &["*"])).await.unwrap();
    let changes = [
        wh_event("a1", Some("t_1"), InstructionProcessing, Some("i-a")),
        wh_event("b1", Some("t_1"), InstructionProcessing, Some("i-b")),
        wh_event("a2", Some("t_1"), InstructionSettled, Some("i-a")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let ids = counter_ids();
    store.dispatch_events(T0, 100, &ids).await.unwrap();

    // Only the first event of each instruction is claimable.
    let first = store.claim_deliveries(T0, T0 + 1000, 10, claimant(LIVE_NODE, T0)).await.unwrap();
    let claimed: Vec<&str> = first.iter().map(|c| c.event.event_id.as_str()).collect();
    assert_eq!(claimed, ["a1", "b1"]);
    assert_eq!(first[0].endpoint.url, "https://example.com/ep");
    assert_eq!(first[0].event.data, r#"{"n":"a1"}"#);
    // a1 fails and waits for a retry: a2 keeps waiting behind it.
    let a1 = &first[0];
    let mut failed = succeeded(a1, T0);
    failed.status = DeliveryStatus::Failed;
    failed.attempt.status_code = Some(500);
    failed.next_attempt_at = T0 + 60_000;
    assert!(store.record_attempt(T0 + 1000, &failed, T0).await.unwrap());
    let ep = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep").await.unwrap().unwrap();
    assert_eq!(ep.failing_since, Some(T0));
    assert!(store.record_attempt(T0 + 1000, &succeeded(&first[1], T0), T0).await.unwrap());
    let ep = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep").await.unwrap().unwrap();
    assert_eq!(ep.failing_since, None, "any success ends the endpoint's failing run");
    assert!(store.claim_deliveries(T0 + 1, T0 + 1000, 10, claimant(LIVE_NODE, T0 + 1)).await.unwrap().is_empty());

    // The retry falls due, succeeds, and a2 follows.
    let retry = store.claim_deliveries(T0 + 60_000, T0 + 61_000, 10, claimant(LIVE_NODE, T0 + 60_000)).await.unwrap();
    assert_eq!(retry.iter().map(|c| c.event.event_id.as_str()).collect::<Vec<_>>(), ["a1"]);
    assert_eq!(retry[0].delivery.attempts, 1);
    // A stale lease holder cannot overwrite the state, but its attempt is logged.
    assert!(!store.record_attempt(T0 + 1000, &succeeded(&retry[0], T0 + 60_000), T0 + 60_000).await.unwrap());
    let mut ok = succeeded(&retry[0], T0 + 60_000);
    ok.attempt.attempt = 3;
    assert!(store.record_attempt(T0 + 61_000, &ok, T0 + 60_000).await.unwrap());
    let next = store.claim_deliveries(T0 + 60_000, T0 + 61_000, 10, claimant(LIVE_NODE, T0 + 60_000)).await.unwrap();
    assert_eq!(next.iter().map(|c| c.event.event_id.as_str()).collect::<Vec<_>>(), ["a2"]);

    // The listing shows attempts and filters by type, status and time.
    let all =
        store.webhook_deliveries("ep", &baton_store::DeliveryFilter { limit: 10, ..Default::default() }).await.unwrap();
    let a1_row = all.iter().find(|(d, _)| d.event_id == "a1").unwrap();
    assert_eq!(a1_row.0.status, DeliveryStatus::Succeeded);
    assert_eq!(
        a1_row.1.iter().map(|a| (a.attempt, a.status_code)).collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(200)), (3, Some(200))]
    );
    let settled =
        baton_store::DeliveryFilter { event_type: Some("instruction.settled".into()), limit: 10, ..Default::default() };
    assert_eq!(store.webhook_deliveries("ep", &settled).await.unwrap().len(), 1);
    let done = baton_store::DeliveryFilter { status: Some(DeliveryStatus::Succeeded), limit: 10, ..Default::default() };
    assert_eq!(store.webhook_deliveries("ep", &done).await.unwrap().len(), 2);
    let later = baton_store::DeliveryFilter { from: Some(T0 + 1), limit: 10, ..Default::default() };
    assert!(store.webhook_deliveries("ep", &later).await.unwrap().is_empty());

    // Redelivery makes a delivered one due again, unless it is leased right now.
    assert!(!store.redeliver(&next[0].delivery.delivery_id, T0 + 60_500).await.unwrap(), "leased");
    assert!(store.redeliver(&a1_row.0.delivery_id, T0 + 70_000).await.unwrap());
    assert_eq!(store.webhook_delivery(&a1_row.0.delivery_id).await.unwrap().unwrap().status, DeliveryStatus::Failed);

    // Disabling: the endpoint goes off and the account event is written once.
    let mut disable = succeeded(&next[0], T0 + 60_000);
    disable.status = DeliveryStatus::Dead;
    disable.disable_endpoint = Some(match wh_event("off-1", None, WebhookEndpointDisabled, None) {
        baton_store::Change::Event(e) => e,
        _ => unreachable!(),
    });
    assert!(store.record_attempt(T0 + 61_000, &disable, T0 + 60_000).await.unwrap());
    let ep = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep").await.unwrap().unwrap();
    assert!(!ep.enabled);
    assert_eq!(ep.disabled_reason.as_deref(), Some("FAILING"));
    assert!(
        store
            .claim_deliveries(T0 + 80_000, T0 + 81_000, 10, claimant(LIVE_NODE, T0 + 80_000))
            .await
            .unwrap()
            .is_empty(),
        "disabled: nothing sent"
    );
}

async fn scenario_webhook_claims_are_exclusive(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    for n in 0..3 {
        store.insert_webhook_endpoint(&endpoint(&format!("ep-{n}"), Some("t_1"), &["*"])).await.unwrap();
    }
    // 40 instructions with two events each: 80 events, 240 deliveries.
    let mut changes = Vec::new();
    for i in 0..40 {
        changes.push(wh_event(&format!("p-{i}"), Some("t_1"), InstructionProcessing, Some(&format!("i-{i}"))));
        changes.push(wh_event(&format!("s-{i}"), Some("t_1"), InstructionSettled, Some(&format!("i-{i}"))));
    }
    assert!(store.apply(&changes, T0).await.unwrap());
    // Two fan-outs race: every event is fanned out exactly once.
    let ids = Arc::new(counter_ids());
    let results = race(2, |_| {
        let (store, ids) = (store.clone(), ids.clone());
        async move {
            let mut total = (0, 0);
            loop {
                let (e, d) = store.dispatch_events(T0, 7, &*ids).await.unwrap();
                if e == 0 {
                    break total;
                }
                total = (total.0 + e, total.1 + d);
            }
        }
    })
    .await;
    assert_eq!(results.iter().map(|r| r.0).sum::<usize>(), 80);
    assert_eq!(results.iter().map(|r| r.1).sum::<usize>(), 240);

    // Four workers claim, deliver and claim again until nothing is left: every delivery
    // is sent exactly once, and per endpoint each instruction's events arrive in order.
    let sent = Arc::new(std::sync::Mutex::new(Vec::<(String, String, usize)>::new()));
    let clock = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    race(4, |_| {
        let (store, sent, clock) = (store.clone(), sent.clone(), clock.clone());
        async move {
            let mut idle = 0;
            while idle < 3 {
                let claimed = store.claim_deliveries(T0, T0 + 600_000, 5, claimant(LIVE_NODE, T0)).await.unwrap();
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                for c in claimed {
                    let at = clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    sent.lock().unwrap().push((c.endpoint.endpoint_id.clone(), c.event.event_id.clone(), at));
                    assert!(store.record_attempt(T0 + 600_000, &succeeded(&c, T0), T0).await.unwrap());
                }
            }
        }
    })
    .await;
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 240, "each delivery sent once");
    let mut unique: Vec<_> = sent.iter().map(|(e, id, _)| (e.clone(), id.clone())).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 240, "no delivery sent twice");
    for (endpoint_id, event_id, at) in sent.iter().filter(|(_, id, _)| id.starts_with("s-")) {
        let processing = format!("p-{}", &event_id[2..]);
        let before = sent.iter().find(|(e, id, _)| e == endpoint_id && *id == processing).unwrap();
        assert!(before.2 < *at, "{endpoint_id}: {processing} before {event_id}");
    }
    assert_eq!(store.undelivered_count().await.unwrap(), 0);
}

async fn scenario_webhook_batch_records(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    use baton_store::DeliveryStatus;
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    store.insert_webhook_endpoint(&endpoint("ep-a", Some("t_1"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("ep-b", Some("t_1"), &["instruction.settled"])).await.unwrap();
    let changes = [
        wh_event("x", Some("t_1"), InstructionSettled, Some("i-x")),
        wh_event("y", Some("t_1"), InstructionSettled, Some("i-y")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    store.dispatch_events(T0, 100, &counter_ids()).await.unwrap();
    let claimed = store.claim_deliveries(T0, T0 + 1000, 10, claimant(LIVE_NODE, T0)).await.unwrap();
    assert_eq!(claimed.len(), 4);
    // ep-a: one success, one failure; ep-b: two failures, one of them with a lapsed lease.
    let mut batch = Vec::new();
    let mut failures_b = 0;
    let mut success_a = false;
    for c in &claimed {
        let mut o = succeeded(c, T0 + 5);
        let mut lease = T0 + 1000;
        if c.endpoint.endpoint_id == "ep-a" && !success_a {
            success_a = true;
        } else {
            o.status = DeliveryStatus::Failed;
            o.attempt.status_code = Some(500);
            o.next_attempt_at = T0 + 60_000;
            if c.endpoint.endpoint_id == "ep-b" {
                failures_b += 1;
                if failures_b == 2 {
                    lease = T0 + 999;
                }
            }
        }
        batch.push((lease, o));
    }
    let written = store.record_attempts(&batch, T0 + 5).await.unwrap();
    let expected: Vec<bool> = batch.iter().map(|(lease, _)| *lease == T0 + 1000).collect();
    assert_eq!(written, expected);
    assert_eq!(written.iter().filter(|w| !**w).count(), 1);
    let a = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep-a").await.unwrap().unwrap();
    assert_eq!(a.failing_since, None, "a success in the batch ends the run");
    let b = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep-b").await.unwrap().unwrap();
    assert_eq!(b.failing_since, Some(T0 + 5));
    for ((_, o), w) in batch.iter().zip(&written) {
        let d = store.webhook_delivery(&o.attempt.delivery_id).await.unwrap().unwrap();
        if *w {
            assert_eq!((d.status, d.attempts, d.locked_until), (o.status, 1, None));
            assert_eq!(d.delivered_at.is_some(), o.status == DeliveryStatus::Succeeded);
        } else {
            assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0), "a lapsed lease leaves the state alone");
        }
        let listed = store
            .webhook_deliveries(&d.endpoint_id, &baton_store::DeliveryFilter { limit: 10, ..Default::default() })
            .await
            .unwrap();
        let attempts = &listed.iter().find(|(x, _)| x.delivery_id == d.delivery_id).unwrap().1;
        assert_eq!(attempts.len(), 1, "every attempt is logged");
    }
}

async fn scenario_webhook_leases_of_dead_and_live_nodes(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("ep", Some("t_1"), &["*"])).await.unwrap();
    let changes = [
        wh_event("p", Some("t_1"), InstructionProcessing, Some("i-1")),
        wh_event("s", Some("t_1"), InstructionSettled, Some("i-1")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    store.dispatch_events(T0, 100, &counter_ids()).await.unwrap();
    let claim = |node: &'static str, now: i64| {
        let store = store.clone();
        async move { store.claim_deliveries(now, now + 600_000, 10, claimant(node, now)).await.unwrap() }
    };
    let ids =
        |claimed: &[baton_store::ClaimedDelivery]| claimed.iter().map(|c| c.event.event_id.clone()).collect::<Vec<_>>();
    let t = T0;
    store.heartbeat("node-a", t, t).await.unwrap();
    keep_alive(&*store, "node-b").await;
    let a = claim("node-a", t).await;
    assert_eq!(ids(&a), ["p"]);
    // While node-a beats, the delivery stays its own, however slow the receiver.
    for later in [1_000, 4 * LOST_MS, 300_000] {
        store.heartbeat("node-a", t, t + later).await.unwrap();
        assert!(claim("node-b", t + later + LOST_MS).await.is_empty(), "{later}");
    }
    // node-a dies (last heard from at t + 300_000): node-b takes the delivery over
    // LOST_MS later, long before the lease would run out.
    let dead = t + 300_000 + LOST_MS + 1;
    let b = claim("node-b", dead).await;
    assert_eq!(ids(&b), ["p"]);
    assert_eq!(b[0].delivery.attempts, 0);
    // The next event of the instruction still waits behind it, and node-a's record of
    // its send, coming late, cannot overwrite node-b's lease.
    assert!(claim("node-b", dead + 1).await.is_empty(), "in order");
    assert!(!store.record_attempt(t + 600_000, &succeeded(&a[0], dead), dead).await.unwrap());
    assert!(store.record_attempt(dead + 600_000, &succeeded(&b[0], dead + 2), dead + 2).await.unwrap());
    assert_eq!(ids(&claim("node-b", dead + 3).await), ["s"]);
}

async fn scenario_webhook_dead_node_takeover_concurrent(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("ep", Some("t_1"), &["*"])).await.unwrap();
    let mut changes = Vec::new();
    for i in 0..30 {
        changes.push(wh_event(&format!("p-{i}"), Some("t_1"), InstructionProcessing, Some(&format!("i-{i}"))));
        changes.push(wh_event(&format!("s-{i}"), Some("t_1"), InstructionSettled, Some(&format!("i-{i}"))));
    }
    assert!(store.apply(&changes, T0).await.unwrap());
    store.dispatch_events(T0, 100, &counter_ids()).await.unwrap();
    // A node leases the first event of every instruction, then dies.
    store.heartbeat("node-dead", T0, T0).await.unwrap();
    let held = store.claim_deliveries(T0, T0 + 600_000, 100, claimant("node-dead", T0)).await.unwrap();
    assert_eq!(held.len(), 30);

    // Four live nodes race for what it held: each delivery goes out once, in order.
    let now = T0 + LOST_MS + 1;
    let sent = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    race(4, |i| {
        let (store, sent) = (store.clone(), sent.clone());
        async move {
            let node: &'static str = ["node-0", "node-1", "node-2", "node-3"][i];
            keep_alive(&*store, node).await;
            let mut idle = 0;
            while idle < 3 {
                let claimed = store.claim_deliveries(now, now + 600_000, 4, claimant(node, now)).await.unwrap();
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                for c in claimed {
                    sent.lock().unwrap().push(c.event.event_id.clone());
                    assert!(store.record_attempt(now + 600_000, &succeeded(&c, now), now).await.unwrap());
                }
            }
        }
    })
    .await;
    let sent = sent.lock().unwrap().clone();
    let mut unique = sent.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((sent.len(), unique.len()), (60, 60), "each delivery sent once: {sent:?}");
    for i in 0..30 {
        let position = |id: String| sent.iter().position(|e| *e == id).unwrap();
        assert!(position(format!("p-{i}")) < position(format!("s-{i}")), "i-{i} in order");
    }
    assert_eq!(store.undelivered_count().await.unwrap(), 0);
}

// Checkout sessions ----------------------------------------------------------------------

conformance! {
    scenario_checkout_sessions => sqlite_checkout_sessions, postgres_checkout_sessions;
    scenario_checkout_token_opens_once_concurrent => sqlite_checkout_token_opens_once_concurrent,
        postgres_checkout_token_opens_once_concurrent [flavor = "multi_thread", worker_threads = 4];
    scenario_checkout_lease_concurrent => sqlite_checkout_lease_concurrent,
        postgres_checkout_lease_concurrent [flavor = "multi_thread", worker_threads = 4];
}

fn checkout_session(session_id: &str, jti: &str, expires_at: i64) -> baton_store::CheckoutSessionRecord {
    baton_store::CheckoutSessionRecord {
        session_id: session_id.to_string(),
        jti: jti.to_string(),
        tenant_id: "t_1".into(),
        order_ref: "O-1".into(),
        instruction_ref: "I-1".into(),
        claims: r#"{"orderRef":"O-1"}"#.into(),
        bearer_token: format!("token-{jti}"),
        language: "de-DE".into(),
        parent_origin: Some("https://shop.example".into()),
        status: baton_domain::CheckoutStatus::Open,
        attempts: 0,
        last_failure: None,
        provider_name: None,
        pending_instrument_id: None,
        busy_until: None,
        expires_at,
        created_at: T0,
        updated_at: T0,
    }
}

async fn scenario_checkout_sessions(store: Arc<dyn Store>) {
    use baton_domain::CheckoutStatus::*;
    use baton_store::CheckoutSessionUpdate;
    two_tenants(&*store).await;
    assert_eq!(store.merchant_name("t_2").await.unwrap().as_deref(), Some("Two"));
    assert_eq!(store.merchant_name("t_9").await.unwrap(), None);
    let expires = T0 + 3_600_000;
    let s = checkout_session("s-1", "jti-1", expires);
    assert!(store.create_checkout_session(&s).await.unwrap());
    assert_eq!(store.checkout_session("s-1").await.unwrap(), Some(s.clone()));
    assert_eq!(store.checkout_session("s-2").await.unwrap(), None);
    // The same token (jti) never opens a second session; nothing is written.
    assert!(!store.create_checkout_session(&checkout_session("s-2", "jti-1", expires)).await.unwrap());
    assert_eq!(store.checkout_session("s-2").await.unwrap(), None);
    assert!(store.create_checkout_session(&checkout_session("s-3", "jti-3", expires)).await.unwrap());

    // A lease needs the status, an unexpired session and no other lease.
    assert_eq!(store.lease_checkout_session("s-1", &[Authenticating], T0 + 1, T0 + 60_001).await.unwrap(), None);
    let leased = store.lease_checkout_session("s-1", &[Open, Authenticating], T0 + 1, T0 + 60_001).await.unwrap();
    assert_eq!(leased.as_ref().map(|l| l.busy_until), Some(Some(T0 + 60_001)));
    assert_eq!(store.lease_checkout_session("s-1", &[Open], T0 + 2, T0 + 60_002).await.unwrap(), None, "busy");
    let failed = CheckoutSessionUpdate {
        status: Open,
        last_failure: Some("PAYMENT_DECLINED".into()),
        provider_name: Some("SANDBOX_CARD".into()),
        pending_instrument_id: None,
        attempted: true,
    };
    // Only the holder of the lease records the result.
    assert!(!store.finish_checkout_session("s-1", T0 + 60_002, &failed, T0 + 3).await.unwrap());
    assert!(store.finish_checkout_session("s-1", T0 + 60_001, &failed, T0 + 3).await.unwrap());
    assert!(!store.finish_checkout_session("s-1", T0 + 60_001, &failed, T0 + 4).await.unwrap(), "released");
    let after = store.checkout_session("s-1").await.unwrap().unwrap();
    assert_eq!((after.status, after.attempts, after.busy_until), (Open, 1, None));
    assert_eq!(after.last_failure.as_deref(), Some("PAYMENT_DECLINED"));
    assert_eq!(after.provider_name.as_deref(), Some("SANDBOX_CARD"));
    assert_eq!(after.updated_at, T0 + 3);

    // A lapsed lease can be taken over; the old holder can no longer finish.
    let first = store.lease_checkout_session("s-1", &[Open], T0 + 10, T0 + 20).await.unwrap().unwrap();
    let second = store.lease_checkout_session("s-1", &[Open], T0 + 20, T0 + 80).await.unwrap().unwrap();
    let challenge = CheckoutSessionUpdate {
        status: Authenticating,
        last_failure: None,
        provider_name: Some("SANDBOX_CARD".into()),
        pending_instrument_id: Some("fi-1".into()),
        attempted: true,
    };
    assert!(!store.finish_checkout_session("s-1", first.busy_until.unwrap(), &challenge, T0 + 21).await.unwrap());
    assert!(store.finish_checkout_session("s-1", second.busy_until.unwrap(), &challenge, T0 + 21).await.unwrap());
    let after = store.checkout_session("s-1").await.unwrap().unwrap();
    assert_eq!((after.status, after.attempts, after.last_failure), (Authenticating, 2, None));
    assert_eq!(after.pending_instrument_id.as_deref(), Some("fi-1"));

    // Final states take no lease for a payment; nothing is leased after expiry.
    let lease = store.lease_checkout_session("s-1", &[Authenticating], T0 + 30, T0 + 90).await.unwrap().unwrap();
    let done = CheckoutSessionUpdate {
        status: Succeeded,
        last_failure: None,
        provider_name: Some("SANDBOX_CARD".into()),
        pending_instrument_id: None,
        attempted: true,
    };
    assert!(store.finish_checkout_session("s-1", lease.busy_until.unwrap(), &done, T0 + 31).await.unwrap());
    assert_eq!(store.lease_checkout_session("s-1", &[Open, Authenticating], T0 + 40, T0 + 100).await.unwrap(), None);
    assert_eq!(store.lease_checkout_session("s-3", &[Open], expires, expires + 60_000).await.unwrap(), None);
    assert!(store.lease_checkout_session("s-3", &[Open], expires - 1, expires + 60_000).await.unwrap().is_some());

    // Expired sessions are purged; their tokens are refused as expired anyway.
    assert!(store.create_checkout_session(&checkout_session("s-4", "jti-4", expires + 1)).await.unwrap());
    assert_eq!(store.purge_checkout_sessions(expires + 1).await.unwrap(), 2);
    assert_eq!(store.checkout_session("s-1").await.unwrap(), None);
    assert!(store.checkout_session("s-4").await.unwrap().is_some());
}

async fn scenario_checkout_token_opens_once_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let opened = race(8, |i| {
        let store = store.clone();
        async move {
            store.create_checkout_session(&checkout_session(&format!("s-{i}"), "jti-x", T0 + 60_000)).await.unwrap()
        }
    })
    .await;
    assert_eq!(opened.iter().filter(|o| **o).count(), 1, "{opened:?}");
}

async fn scenario_checkout_lease_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    assert!(store.create_checkout_session(&checkout_session("s-1", "jti-1", T0 + 600_000)).await.unwrap());
    let leases = race(8, |i| {
        let store = store.clone();
        async move {
            store
                .lease_checkout_session("s-1", &[baton_domain::CheckoutStatus::Open], T0 + 1, T0 + 1000 + i as i64)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(leases.iter().filter(|l| l.is_some()).count(), 1);
}

// Pay-by-links --------------------------------------------------------------------------

fn pay_link(id: &str, expires_at: i64) -> baton_store::PayByLinkRecord {
    baton_store::PayByLinkRecord {
        pay_by_link_id: id.into(),
        tenant_id: "t_1".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        status: baton_domain::PayByLinkStatus::Active,
        language: baton_domain::Language::DeDe,
        callbacks: Some(r#"{"success":"https://shop.example/ok"}"#.into()),
        expires_at,
        opened_at: None,
        finished_at: None,
        created_at: T0,
        updated_at: T0,
    }
}

fn message(id: &str, link: &str) -> baton_store::MessageDeliveryRecord {
    baton_store::MessageDeliveryRecord {
        delivery_id: id.into(),
        tenant_id: "t_1".into(),
        pay_by_link_id: link.into(),
        customer_ref: "C1".into(),
        channel: baton_domain::DeliveryChannel::Email,
        recipient_sealed: vec![1, 2, 3],
        recipient_masked: "j***@example.com".into(),
        language: baton_domain::Language::DeDe,
        template: baton_domain::MessageTemplate::PaymentRequest,
        status: baton_domain::DeliveryStatus::Queued,
        attempts: 0,
        last_error: None,
        created_at: T0,
        updated_at: T0,
        sent_at: None,
    }
}

fn deliver_job(id: &str, subject: &str) -> baton_store::JobRecord {
    baton_store::JobRecord::new(id.into(), "deliver-message", subject, "t_1", "{}".into(), T0, T0)
}

async fn scenario_pay_by_links(store: Arc<dyn Store>) {
    use baton_domain::{DeliveryStatus, InstructionStatus, PayByLinkStatus};
    two_tenants(&*store).await;
    let ins = InstructionRecord {
        direction: baton_domain::Direction::Debit,
        ..instruction_record("t_1", "o-1", "i-1", "C1")
    };
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &[ins]).await.unwrap();

    // The link, its message and the job that sends it: one transaction.
    let link = pay_link("L1", T0 + 60_000);
    let changes = [
        Change::InsertPayByLink(Box::new(link.clone())),
        Change::InsertMessageDelivery(Box::new(message("d-1", "L1"))),
        Change::ScheduleJob(deliver_job("j-1", "d-1")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let row = store.pay_by_link("t_1", "L1").await.unwrap().unwrap();
    assert_eq!(row.link, link);
    assert_eq!(
        (row.order_ref.as_str(), row.instruction_ref.as_str(), row.customer_ref.as_str()),
        ("REF1", "ref-i-1", "C1")
    );
    assert_eq!(store.pay_by_link_by_id("L1").await.unwrap().unwrap(), row);
    assert!(store.pay_by_link("t_2", "L1").await.unwrap().is_none(), "another tenant's link is not found");
    assert_eq!(store.message_deliveries("t_1", "L1").await.unwrap(), vec![message("d-1", "L1")]);
    assert!(store.message_deliveries("t_2", "L1").await.unwrap().is_empty());
    assert!(store.job("deliver-message", "d-1").await.unwrap().is_some());

    // A failing change takes the link and its message down with it.
    let broken = [
        Change::InsertPayByLink(Box::new(pay_link("L2", T0 + 60_000))),
        Change::InsertMessageDelivery(Box::new(message("d-2", "L2"))),
        Change::PayByLinkStatus {
            tenant_id: "t_1".into(),
            pay_by_link_id: "L1".into(),
            from: vec![PayByLinkStatus::Expired],
            to: PayByLinkStatus::Cancelled,
        },
    ];
    assert!(!store.apply(&broken, T0).await.unwrap());
    assert!(store.pay_by_link("t_1", "L2").await.unwrap().is_none());
    assert!(store.message_delivery("t_1", "d-2").await.unwrap().is_none());

    // Status moves are compare-and-set; OPENED records the first open, a final status its end.
    let open = Change::PayByLinkStatus {
        tenant_id: "t_1".into(),
        pay_by_link_id: "L1".into(),
        from: vec![PayByLinkStatus::Active],
        to: PayByLinkStatus::Opened,
    };
    assert!(store.apply(std::slice::from_ref(&open), T0 + 1000).await.unwrap());
    assert!(!store.apply(&[open], T0 + 2000).await.unwrap(), "opened once");
    let row = store.pay_by_link("t_1", "L1").await.unwrap().unwrap();
    assert_eq!(
        (row.link.status, row.link.opened_at, row.link.finished_at),
        (PayByLinkStatus::Opened, Some(T0 + 1000), None)
    );

    // Messages: retried (attempts and error kept), then sent.
    let retry = Change::MessageDeliveryStatus {
        tenant_id: "t_1".into(),
        delivery_id: "d-1".into(),
        from: DeliveryStatus::Queued,
        to: DeliveryStatus::Queued,
        attempts: 1,
        last_error: Some("451 later".into()),
    };
    assert!(store.apply(&[retry], T0 + 3000).await.unwrap());
    let sent = Change::MessageDeliveryStatus {
        tenant_id: "t_1".into(),
        delivery_id: "d-1".into(),
        from: DeliveryStatus::Queued,
        to: DeliveryStatus::Sent,
        attempts: 2,
        last_error: None,
    };
    assert!(store.apply(std::slice::from_ref(&sent), T0 + 4000).await.unwrap());
    assert!(!store.apply(&[sent], T0 + 5000).await.unwrap(), "a sent message stays sent");
    let d = store.message_delivery("t_1", "d-1").await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts, d.last_error, d.sent_at), (DeliveryStatus::Sent, 2, None, Some(T0 + 4000)));
    assert!(store.message_delivery("t_2", "d-1").await.unwrap().is_none());

    // Due: live links past their expiry, or whose instruction settled.
    assert!(store.apply(&[Change::InsertPayByLink(Box::new(pay_link("L3", T0 + 600_000)))], T0).await.unwrap());
    let due = |now| {
        let store = store.clone();
        async move {
            store
                .pay_by_links_due(now, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.link.pay_by_link_id)
                .collect::<Vec<_>>()
        }
    };
    assert!(due(T0 + 59_999).await.is_empty());
    assert_eq!(due(T0 + 60_000).await, ["L1"]);
    let settle = Change::InstructionStatus {
        tenant_id: "t_1".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        from: vec![InstructionStatus::Incomplete],
        to: InstructionStatus::Settled,
    };
    assert!(store.apply(&[settle], T0).await.unwrap());
    assert_eq!(due(T0).await, ["L1", "L3"]);
    let expire = Change::PayByLinkStatus {
        tenant_id: "t_1".into(),
        pay_by_link_id: "L1".into(),
        from: PayByLinkStatus::LIVE.to_vec(),
        to: PayByLinkStatus::Expired,
    };
    assert!(store.apply(&[expire], T0 + 70_000).await.unwrap());
    let row = store.pay_by_link("t_1", "L1").await.unwrap().unwrap();
    assert_eq!((row.link.status, row.link.finished_at), (PayByLinkStatus::Expired, Some(T0 + 70_000)));
    assert_eq!(due(T0 + 70_000).await, ["L3"], "ended links are not due");
}

async fn scenario_pay_by_link_status_concurrent(store: Arc<dyn Store>) {
    use baton_domain::PayByLinkStatus;
    two_tenants(&*store).await;
    let ins = InstructionRecord {
        direction: baton_domain::Direction::Debit,
        ..instruction_record("t_1", "o-1", "i-1", "C1")
    };
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &[ins]).await.unwrap();
    assert!(store.apply(&[Change::InsertPayByLink(Box::new(pay_link("L1", T0)))], T0).await.unwrap());
    // An open, an expiry and a cancellation race: exactly one moves the link, and its
    // event is written only with it.
    let barrier = Arc::new(Barrier::new(3));
    let mut tasks = Vec::new();
    for (i, to) in
        [PayByLinkStatus::Opened, PayByLinkStatus::Expired, PayByLinkStatus::Cancelled].into_iter().enumerate()
    {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let changes = [
                Change::PayByLinkStatus {
                    tenant_id: "t_1".into(),
                    pay_by_link_id: "L1".into(),
                    from: vec![PayByLinkStatus::Active],
                    to,
                },
                Change::Event(event("t_1", &format!("e-{i}"), baton_domain::EventType::PayByLinkExpired)),
            ];
            store.apply(&changes, T0).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(store.events("t_1").await.unwrap().len(), 1);
}

/// `n` READY instructions `i-1`… of order `o-1` (paid with `fi-1` through their customer
/// default), each with a live link `L1`… expiring at `T0 + 60 s`.
async fn instructions_with_links(store: &dyn Store, n: usize) -> CustomerDefaultRecord {
    two_tenants(store).await;
    assert!(store.create_customer_key(&customer_key("t_1", "C1", "mk-1", T0)).await.unwrap());
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::Card, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let default = default_record("o-1", "C1", Some("fi-1"), Some("s-1"));
    let instructions: Vec<InstructionRecord> =
        (1..=n).map(|i| instruction_record("t_1", "o-1", &format!("i-{i}"), "C1")).collect();
    store
        .create_order(&order_record("t_1", "o-1", "REF1"), std::slice::from_ref(&default), &instructions)
        .await
        .unwrap();
    for i in 1..=n {
        let link = baton_store::PayByLinkRecord {
            instruction_id: format!("i-{i}"),
            ..pay_link(&format!("L{i}"), T0 + 60_000)
        };
        assert!(store.apply(&[Change::InsertPayByLink(Box::new(link))], T0).await.unwrap());
    }
    default
}

fn link_live(tenant_id: &str, link: &str) -> Change {
    Change::PayByLinkLive { tenant_id: tenant_id.into(), pay_by_link_id: link.into() }
}

/// What cancelling link `link` of instruction `instruction` writes.
fn cancel_link(link: &str, instruction: &str) -> [Change; 2] {
    use baton_domain::InstructionStatus::*;
    [
        Change::PayByLinkStatus {
            tenant_id: "t_1".into(),
            pay_by_link_id: link.into(),
            from: baton_domain::PayByLinkStatus::LIVE.to_vec(),
            to: baton_domain::PayByLinkStatus::Cancelled,
        },
        Change::InstructionStatusIn {
            tenant_id: "t_1".into(),
            instruction_id: instruction.into(),
            statuses: vec![Incomplete, Ready, Late, Failed, Void],
        },
    ]
}

async fn scenario_pay_by_link_guards(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::{Processing, Ready};
    use baton_domain::PayByLinkStatus;
    let default = instructions_with_links(&*store, 3).await;
    let read = |id: &'static str| {
        let store = store.clone();
        async move { store.instruction("t_1", "o-1", &format!("ref-{id}")).await.unwrap().unwrap() }
    };
    let link = |id: &'static str| {
        let store = store.clone();
        async move { store.pay_by_link("t_1", id).await.unwrap().unwrap().link }
    };
    let start = |seen: &InstructionRecord| Change::StartProcessing {
        seen: Box::new(seen.clone()),
        default: Some(Box::new(default.clone())),
    };

    // A live link passes and is left as it was; an expired, foreign or unknown one fails.
    let before = link("L1").await;
    assert!(store.apply(&[link_live("t_1", "L1")], T0 + 1).await.unwrap());
    assert_eq!(link("L1").await, before, "the guard writes nothing");
    assert!(!store.apply(&[link_live("t_1", "L1")], T0 + 60_000).await.unwrap(), "past its expiry");
    assert!(!store.apply(&[link_live("t_2", "L1")], T0 + 1).await.unwrap(), "another tenant's");
    assert!(!store.apply(&[link_live("t_1", "L9")], T0 + 1).await.unwrap(), "no such link");

    // A cancelled link fails the start of its payment, and the start writes nothing.
    assert!(store.apply(&cancel_link("L1", "i-1"), T0 + 2).await.unwrap());
    assert_eq!(link("L1").await.status, PayByLinkStatus::Cancelled);
    let seen = read("i-1").await;
    assert_eq!(seen.status, Ready);
    assert!(!store.apply(&[start(&seen), link_live("t_1", "L1")], T0 + 3).await.unwrap());
    assert_eq!(read("i-1").await, seen, "not started");
    // So does one past its expiry that no worker has marked yet.
    let seen = read("i-3").await;
    assert!(!store.apply(&[start(&seen), link_live("t_1", "L3")], T0 + 60_000).await.unwrap());
    assert_eq!(read("i-3").await, seen);

    // A live link lets it start; then the link can no longer be cancelled.
    let seen = read("i-2").await;
    assert!(store.apply(&[start(&seen), link_live("t_1", "L2")], T0 + 4).await.unwrap());
    assert_eq!(read("i-2").await.status, Processing);
    assert!(!store.apply(&cancel_link("L2", "i-2"), T0 + 5).await.unwrap(), "a payment is under way");
    assert_eq!(link("L2").await.status, PayByLinkStatus::Active, "the cancel wrote nothing");
    let foreign =
        Change::InstructionStatusIn { tenant_id: "t_2".into(), instruction_id: "i-3".into(), statuses: vec![Ready] };
    assert!(!store.apply(&[foreign], T0 + 5).await.unwrap(), "another tenant's instruction");
}

/// A payment's start and its link's cancel race: exactly one of them commits.
async fn scenario_cancel_races_payment_start(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::{Processing, Ready};
    use baton_domain::PayByLinkStatus;
    const ROUNDS: usize = 8;
    let default = instructions_with_links(&*store, ROUNDS).await;
    let (mut started, mut cancelled) = (0, 0);
    for i in 1..=ROUNDS {
        let (instruction, link) = (format!("i-{i}"), format!("L{i}"));
        let seen = store.instruction("t_1", "o-1", &format!("ref-{instruction}")).await.unwrap().unwrap();
        let start = vec![
            Change::StartProcessing { seen: Box::new(seen.clone()), default: Some(Box::new(default.clone())) },
            link_live("t_1", &link),
        ];
        let cancel = cancel_link(&link, &instruction).to_vec();
        let won = race(2, |racer| {
            let store = store.clone();
            let changes = if racer == 0 { start.clone() } else { cancel.clone() };
            async move { store.apply(&changes, T0 + 1).await.unwrap() }
        })
        .await;
        let now = store.instruction("t_1", "o-1", &format!("ref-{instruction}")).await.unwrap().unwrap();
        let status = store.pay_by_link("t_1", &link).await.unwrap().unwrap().link.status;
        match won[..] {
            [true, false] => {
                started += 1;
                assert_eq!((now.status, status), (Processing, PayByLinkStatus::Active));
            }
            [false, true] => {
                cancelled += 1;
                assert_eq!((now.status, status), (Ready, PayByLinkStatus::Cancelled));
            }
            _ => panic!("round {i}: start and cancel applied {won:?}; instruction {:?}, link {status:?}", now.status),
        }
    }
    eprintln!("started first: {started}, cancelled first: {cancelled}");
}

async fn scenario_tenant_documents(store: Arc<dyn Store>) {
    use baton_store::{DocumentKind, SealedSecretRef, TenantDocument};
    two_tenants(&*store).await;
    let doc = |tenant: &str, text: &str, sealed: Option<Vec<u8>>, at| TenantDocument {
        tenant_id: tenant.into(),
        document: text.into(),
        secrets_sealed: sealed,
        updated_at: at,
    };
    assert!(store.tenant_document(DocumentKind::ThemeTemplate, "t_1").await.unwrap().is_none());
    let theme = doc("t_1", r#"{"styleSheet":"a{color:red}"}"#, None, T0);
    store.save_tenant_document(DocumentKind::ThemeTemplate, &theme).await.unwrap();
    assert_eq!(store.tenant_document(DocumentKind::ThemeTemplate, "t_1").await.unwrap(), Some(theme));
    let replaced = doc("t_1", r#"{"styleSheet":""}"#, None, T0 + 1);
    store.save_tenant_document(DocumentKind::ThemeTemplate, &replaced).await.unwrap();
    assert_eq!(store.tenant_document(DocumentKind::ThemeTemplate, "t_1").await.unwrap(), Some(replaced));
    // The kinds and the tenants are kept apart.
    assert!(store.tenant_document(DocumentKind::DeliverySettings, "t_1").await.unwrap().is_none());
    assert!(store.tenant_document(DocumentKind::ThemeTemplate, "t_2").await.unwrap().is_none());

    // Delivery secrets are among the values a master key rotation re-seals.
    let settings = doc("t_2", "{}", Some(vec![9, 9, 9]), T0);
    store.save_tenant_document(DocumentKind::DeliverySettings, &settings).await.unwrap();
    let location = SealedSecretRef::DeliverySettings { tenant_id: "t_2".into() };
    let listed = store.sealed_secrets().await.unwrap();
    assert!(listed.iter().any(|s| s.location == location && s.sealed == vec![9, 9, 9]), "{listed:?}");
    assert!(!store.reseal_secret(&location, &[1], &[7, 7]).await.unwrap(), "compare-and-set on the old bytes");
    assert!(store.reseal_secret(&location, &[9, 9, 9], &[7, 7]).await.unwrap());
    let saved = store.tenant_document(DocumentKind::DeliverySettings, "t_2").await.unwrap().unwrap();
    assert_eq!(saved.secrets_sealed, Some(vec![7, 7]));
}

/// A server whose autovacuum is off is named in the node's warnings; one with it on is not.
#[tokio::test]
async fn postgres_warns_when_autovacuum_is_off() {
    use sqlx::Connection as _;

    let Some(db) = PgTestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::connect(&db.url, 1).await.expect("connect to test database");
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connection");
    let setting: String = sqlx::query_scalar("SHOW autovacuum").fetch_one(&mut conn).await.unwrap();
    let warnings = store.setting_warnings().await.unwrap();
    let named = warnings.iter().any(|w| w.contains("autovacuum is off"));
    assert_eq!(named, setting == "off", "autovacuum = {setting}: {warnings:?}");
}
