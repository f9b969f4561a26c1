//! Storage conformance suite: every scenario runs against a fresh SQLite file and,
//! when `BATON_TEST_DATABASE_URL` is set, against a fresh PostgreSQL database. One
//! module per area of the store; each declares its scenarios with `conformance!`, and
//! the fixtures they share are visible to all of them.

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

pub(crate) async fn with_sqlite<F, Fut>(scenario: F)
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

pub(crate) async fn with_postgres<F, Fut>(scenario: F)
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

/// Runs `racers` futures made by `make` on separate tasks, released together by a
/// barrier so that they really overlap, and returns their outputs in order.
pub(crate) async fn race<T, F, Fut>(racers: usize, make: F) -> Vec<T>
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

pub(crate) const ACCOUNT: &str = "acc_main";
pub(crate) const OTHER_ACCOUNT: &str = "acc_other";
pub(crate) const ADMIN_KEY: &str = "pk_admin";
/// An arbitrary base time (Unix ms) so that every timestamp is realistic.
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn roles(list: &[Role]) -> RoleSet {
    RoleSet::new(list.to_vec())
}

pub(crate) fn gb_address(street: &str) -> Address {
    Address {
        street_address: street.to_string(),
        extended_street_address: "Floor 2".to_string(),
        locality: "London".to_string(),
        region: "Greater London".to_string(),
        post_code: "EC1A 1BB".to_string(),
        country: Some(Country::GB),
    }
}

pub(crate) fn account_record(account_id: &str) -> AccountRecord {
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

pub(crate) fn license_record(license_id: &str, valid_to: Option<i64>) -> LicenseRecord {
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

pub(crate) fn account_owner(account_id: &str) -> KeyOwner {
    KeyOwner::Account { account_id: account_id.to_string() }
}

pub(crate) fn tenant_owner(tenant_id: &str) -> KeyOwner {
    KeyOwner::Tenant { account_id: ACCOUNT.to_string(), tenant_id: tenant_id.to_string() }
}

pub(crate) fn key_record(public_key: &str, owner: KeyOwner, list: &[Role], created_at: i64) -> ApiKeyRecord {
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

pub(crate) fn account_key(public_key: &str, list: &[Role], created_at: i64) -> ApiKeyRecord {
    key_record(public_key, account_owner(ACCOUNT), list, created_at)
}

pub(crate) fn tenant_key(tenant_id: &str, public_key: &str, list: &[Role], created_at: i64) -> ApiKeyRecord {
    key_record(public_key, tenant_owner(tenant_id), list, created_at)
}

pub(crate) fn signing_key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_string(),
        secret_sealed: [b"secret-".as_slice(), kid.as_bytes()].concat(),
        created_at,
    }
}

pub(crate) fn initialization() -> Initialization {
    Initialization {
        master_key_check: vec![0xba, 0x70, 0x00, 0x01, 0xff],
        account: account_record(ACCOUNT),
        license: license_record("lic_1", None),
        admin_key: account_key(ADMIN_KEY, &[Role::AccountAdmin], T0),
        signing_key: signing_key("kid_init", T0),
    }
}

/// Initialises the store with the standard fixture and returns what was written.
pub(crate) async fn init(store: &dyn Store) -> Initialization {
    let init = initialization();
    store.initialize(&init).await.expect("initialize");
    init
}

pub(crate) fn tenant_record(tenant_id: &str, name: &str, status: TenantStatus, created_at: i64) -> TenantRecord {
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

pub(crate) fn public_keys(keys: &[ApiKeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.public_key.as_str()).collect()
}

pub(crate) fn tenant_ids(tenants: &[TenantRecord]) -> Vec<&str> {
    tenants.iter().map(|t| t.tenant_id.as_str()).collect()
}

pub(crate) async fn deleted_since(store: &dyn Store, since: i64) -> Vec<String> {
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

pub(crate) fn assert_conflict(result: StoreResult<()>) {
    assert!(matches!(result, Err(StoreError::Conflict(_))), "expected Conflict, got {result:?}");
}

pub(crate) fn assert_limit_exceeded(result: StoreResult<()>) {
    assert!(matches!(result, Err(StoreError::LimitExceeded)), "expected LimitExceeded, got {result:?}");
}

pub(crate) fn assert_last_admin<T: std::fmt::Debug>(result: StoreResult<T>) {
    assert!(matches!(result, Err(StoreError::LastAdminKey)), "expected LastAdminKey, got {result:?}");
}

mod checkout;
mod core;
mod execution;
mod instruments;
mod orders;
mod pay_by_links;
mod refunds;
mod routing;
mod vault;
mod webhooks;

#[allow(unused_imports)]
use checkout::*;
#[allow(unused_imports)]
use core::*;
#[allow(unused_imports)]
use execution::*;
#[allow(unused_imports)]
use instruments::*;
#[allow(unused_imports)]
use orders::*;
#[allow(unused_imports)]
use pay_by_links::*;
#[allow(unused_imports)]
use refunds::*;
#[allow(unused_imports)]
use routing::*;
#[allow(unused_imports)]
use vault::*;
#[allow(unused_imports)]
use webhooks::*;
