//! Baton's storage: the [`Store`] trait, its records, and one implementation per
//! backend ([`SqliteStore`], [`PostgresStore`]) with migrations embedded in the binary.
//!
//! Both backends share the portable SQL in `portable.rs` (compiled once per backend,
//! against that backend's native driver); what differs — connection set-up, write
//! transactions, row locks — stays in the backend's own module. The conformance
//! suite in `tests/` runs against every backend.

mod checkout_store;
mod error;
mod execution_store;
mod instrument_store;
mod migrations;
mod order_store;
mod pay_by_link_store;
mod postgres;
mod records;
mod refund_store;
mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;
mod vault_store;
mod webhook_store;

use async_trait::async_trait;

pub use checkout_store::*;
pub use error::StoreError;
pub use execution_store::*;
pub use instrument_store::*;
pub use order_store::*;
pub use pay_by_link_store::*;
pub use postgres::PostgresStore;
pub use records::*;
pub use refund_store::*;
pub use sqlite::SqliteStore;
pub use vault_store::*;
pub use webhook_store::*;

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Everything Baton persists. Tenant-owned data is always addressed through its
/// owner (account and tenant), so a caller cannot reach another tenant's rows.
#[async_trait]
pub trait Store:
    RoutingStore
    + VaultStore
    + InstrumentStore
    + OrderStore
    + ExecutionStore
    + RefundStore
    + WebhookStore
    + CheckoutStore
    + PayByLinkStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;
    /// Applies pending migrations (safe to run from several nodes at once).
    async fn migrate(&self) -> StoreResult<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the connection pools, waiting for checked-out connections.
    async fn close(&self);

    // Bootstrap ------------------------------------------------------------------
    /// Creates the first account, its licence and its admin key in one transaction,
    /// together with the master key's check value; `AlreadyInitialized` if any
    /// account exists.
    async fn initialize(&self, init: &Initialization) -> StoreResult<()>;
    /// The master key check value written by `initialize`, if initialised.
    async fn master_key_check(&self) -> StoreResult<Option<Vec<u8>>>;

    // Accounts and licences ------------------------------------------------------
    async fn account(&self, account_id: &str) -> StoreResult<Option<AccountRecord>>;
    /// The account and its current licence, in one round trip.
    async fn account_with_license(
        &self,
        account_id: &str,
    ) -> StoreResult<Option<(AccountRecord, Option<LicenseRecord>)>>;
    async fn update_account(&self, account: &AccountRecord) -> StoreResult<()>;
    async fn current_license(&self, account_id: &str) -> StoreResult<Option<LicenseRecord>>;
    async fn license_history(&self, account_id: &str) -> StoreResult<Vec<LicenseRecord>>;

    // Tenants ----------------------------------------------------------------------
    /// Inserts a tenant unless the account already has `max_tenants` tenants that
    /// count towards the licence (`-1` = unlimited): `LimitExceeded`; a duplicate
    /// name is `Conflict`. Atomic across nodes.
    async fn create_tenant(&self, tenant: &TenantRecord, max_tenants: i64) -> StoreResult<()> {
        self.create_tenant_announced(tenant, max_tenants, &[]).await
    }
    /// As `create_tenant`, writing `events` to the outbox in the same transaction.
    async fn create_tenant_announced(
        &self,
        tenant: &TenantRecord,
        max_tenants: i64,
        events: &[EventRecord],
    ) -> StoreResult<()>;
    async fn tenants(&self, account_id: &str, status: Option<TenantStatus>) -> StoreResult<Vec<TenantRecord>>;
    async fn tenant(&self, account_id: &str, tenant_id: &str) -> StoreResult<Option<TenantRecord>>;
    /// Saves name and address; `Conflict` if the name is taken (the caller checks
    /// that the tenant exists first).
    async fn update_tenant(&self, tenant: &TenantRecord) -> StoreResult<()>;
    /// Moves a tenant from `from` to `to`; `false` if it was not in `from`.
    async fn transition_tenant(
        &self,
        account_id: &str,
        tenant_id: &str,
        from: TenantStatus,
        to: TenantStatus,
        reason: Option<&str>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Deletes a tenant (and its keys) if its status is one of `deletable`.
    async fn delete_tenant(&self, account_id: &str, tenant_id: &str, deletable: &[TenantStatus]) -> StoreResult<bool>;

    // API keys -----------------------------------------------------------------------
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    /// A live key by public key, whoever owns it (HMAC verification).
    async fn api_key_by_public_key(&self, public_key: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn api_keys(&self, owner: &KeyOwner) -> StoreResult<Vec<ApiKeyRecord>>;
    async fn api_key(&self, owner: &KeyOwner, public_key: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// Renames a key and replaces its roles. `LastAdminKey` if that would leave the
    /// account without a live `account-admin` key.
    async fn update_api_key(
        &self,
        owner: &KeyOwner,
        public_key: &str,
        name: &str,
        roles: &RoleSet,
        now: i64,
    ) -> StoreResult<bool>;
    /// Soft-deletes a key (its tokens are then refused). `LastAdminKey` as above.
    async fn delete_api_key(&self, owner: &KeyOwner, public_key: &str, now: i64) -> StoreResult<bool>;
    /// Keys created, updated or deleted at or after `since` (ms), with their current
    /// roles: what token verification needs to refuse tokens of changed keys.
    async fn keys_changed_since(&self, since: i64) -> StoreResult<Vec<KeyChange>>;
    /// Live account keys that hold `role` explicitly.
    async fn count_account_keys_with_role(&self, account_id: &str, role: Role) -> StoreResult<i64>;

    // Token signing keys ---------------------------------------------------------------
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Removes signing keys created before `before` except the newest one.
    async fn prune_signing_keys(&self, before: i64) -> StoreResult<u64>;

    // Replay protection and idempotency ---------------------------------------------------
    /// Records `(public_key, nonce)`; `false` if it was already recorded and unexpired.
    async fn remember_nonce(&self, public_key: &str, nonce: &str, now: i64, expires_at: i64) -> StoreResult<bool>;
    /// Claims an idempotency key for a request, or reports what happened to it before.
    async fn begin_idempotent(&self, claim: &IdempotencyClaim<'_>) -> StoreResult<IdempotencyBegin>;
    /// Stores the response of the claim made at `claimed_at` (a no-op if that claim
    /// went stale and was retaken by another request).
    async fn finish_idempotent(
        &self,
        scope: &str,
        key: &str,
        claimed_at: i64,
        response: &StoredResponse,
    ) -> StoreResult<()>;
    /// Releases the claim made at `claimed_at` after its request failed, so that a retry can run.
    async fn abandon_idempotent(&self, scope: &str, key: &str, claimed_at: i64) -> StoreResult<()>;

    /// Deletes expired nonces and idempotency keys; returns how many rows went.
    async fn purge_expired(&self, now: i64) -> StoreResult<u64>;

    // Node heartbeats -------------------------------------------------------------------
    /// Records that node `node_id` (started at `started_at`) is alive at `now`.
    async fn heartbeat(&self, node_id: &str, started_at: i64, now: i64) -> StoreResult<()>;
    /// Forgets nodes not heard from since `before`; returns how many.
    async fn forget_nodes(&self, before: i64) -> StoreResult<u64>;
}

/// A tenant's routing configuration: installed apps, schemes and their drafts, reward
/// groups, and reward apps' funding accounts. Every call names the tenant.
///
/// Every write that can change what an execution routes with — installing, configuring
/// or uninstalling an app, publishing a draft, deleting a scheme — raises the tenant's
/// routing version in its own transaction ([`RoutingStore::routing_version`]; executions
/// read it with their instruction), so that copies kept in a node's memory are known to
/// be stale on every node as soon as the change commits.
#[async_trait]
pub trait RoutingStore: Send + Sync + 'static {
    /// The tenant's routing version (0 for a tenant that does not exist).
    async fn routing_version(&self, tenant_id: &str) -> StoreResult<i64>;
    /// Installs an app unless the account already has as many collect (DEBIT) or
    /// payout (CREDIT) apps as `limits` allow (`LimitExceeded`); installed already is
    /// `Conflict`. Atomic across nodes.
    async fn install_app(&self, account_id: &str, app: &InstalledAppRecord, limits: AppLimits) -> StoreResult<()>;
    /// Installed apps by installation time, then app id (installs within the same
    /// millisecond are ordered by id).
    async fn installed_apps(&self, tenant_id: &str) -> StoreResult<Vec<InstalledAppRecord>>;
    async fn installed_app(&self, tenant_id: &str, app_id: &str) -> StoreResult<Option<InstalledAppRecord>>;
    /// Replaces an installed app's configuration; `false` if it is not installed.
    async fn configure_app(
        &self,
        tenant_id: &str,
        app_id: &str,
        public: &str,
        secrets_sealed: Option<&[u8]>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Uninstalls an app: `InUse` while any draft references it, `false` if not installed.
    async fn uninstall_app(&self, tenant_id: &str, app_id: &str) -> StoreResult<bool>;

    /// Creates a scheme with its first draft. Referenced apps must be installed and
    /// reward groups must exist (`MissingReference`).
    async fn create_scheme(&self, scheme: &SchemeRecord, first_draft: &DraftWrite) -> StoreResult<()>;
    /// A tenant's schemes of one kind, in creation order, with their drafts.
    async fn schemes(&self, tenant_id: &str, kind: SchemeKind) -> StoreResult<Vec<SchemeWithDrafts>>;
    async fn scheme(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str)
        -> StoreResult<Option<SchemeWithDrafts>>;
    /// The kind of a tenant's scheme, without its drafts (one small read).
    async fn scheme_kind(&self, tenant_id: &str, scheme_id: &str) -> StoreResult<Option<SchemeKind>>;
    /// Deletes a scheme and its drafts; `false` if there is no such scheme.
    async fn delete_scheme(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str) -> StoreResult<bool>;
    /// Adds a draft to an existing scheme (`Conflict` on a duplicate name; references as for `create_scheme`).
    async fn insert_draft(&self, draft: &DraftWrite) -> StoreResult<()>;
    /// Replaces a draft; `PublishedDraft` if it is the published one, `false` if absent.
    async fn update_draft(&self, draft: &DraftWrite) -> StoreResult<bool>;
    /// Deletes a draft; `PublishedDraft` if it is the published one, `false` if absent.
    async fn delete_draft(&self, tenant_id: &str, scheme_id: &str, draft_id: &str) -> StoreResult<bool>;
    /// Makes a draft the published one, after checking that what it references still
    /// exists (`MissingReference`); `false` if the draft or scheme is absent.
    async fn publish_draft(&self, tenant_id: &str, scheme_id: &str, draft_id: &str, now: i64) -> StoreResult<bool>;
    /// The published draft, read in one statement: `None` if there is no such scheme,
    /// `Some(None)` if nothing is published.
    async fn published_draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
    ) -> StoreResult<Option<Option<DraftRecord>>>;

    /// `Conflict` on a duplicate name (case-insensitive, via `name_key`).
    async fn create_reward_group(&self, group: &RewardGroupRecord) -> StoreResult<()>;
    async fn reward_groups(&self, tenant_id: &str) -> StoreResult<Vec<RewardGroupRecord>>;
    async fn reward_group(&self, tenant_id: &str, reward_group_id: &str) -> StoreResult<Option<RewardGroupRecord>>;
    /// `Conflict` on a duplicate name; `false` if absent.
    async fn update_reward_group(&self, group: &RewardGroupRecord) -> StoreResult<bool>;
    /// `InUse` while a published payout draft references the group; `false` if absent.
    async fn delete_reward_group(&self, tenant_id: &str, reward_group_id: &str) -> StoreResult<bool>;

    /// `Conflict` if the tenant already has an account with this app.
    async fn create_reward_account(&self, account: &RewardAccountRecord) -> StoreResult<()>;
    async fn reward_account(&self, tenant_id: &str, app_id: &str) -> StoreResult<Option<RewardAccountRecord>>;
    /// Adds `delta` (minor units, may be negative) to the balance unless that would make
    /// it negative; returns the new balance, or `None` if there is no account or too
    /// little in it.
    async fn adjust_reward_balance(
        &self,
        tenant_id: &str,
        app_id: &str,
        delta: i64,
        now: i64,
    ) -> StoreResult<Option<i64>>;
}

pub use baton_domain::{Role, RoleSet, SchemeKind, TenantStatus};
