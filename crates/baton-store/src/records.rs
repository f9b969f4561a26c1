//! Rows as the store reads and writes them. Timestamps are Unix milliseconds.

use baton_domain::{Address, RoleSet, SchemeKind, TenantStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account_id: String,
    pub account_ref: String,
    pub company_name: String,
    pub billing_first_name: String,
    pub billing_last_name: String,
    pub billing_address: Address,
    pub tenant_creation_requires_approval: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRecord {
    pub license_id: String,
    pub license_name: String,
    pub max_tenants: i64,
    pub max_transactions: i64,
    pub max_collect_apps: i64,
    pub max_payout_apps: i64,
    pub valid_from: i64,
    pub valid_to: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub tenant_id: String,
    pub account_id: String,
    pub name: String,
    /// The name as compared for uniqueness (see `TenantName::key`).
    pub name_key: String,
    pub address: Address,
    pub status: TenantStatus,
    pub status_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Who owns an API key: the account itself, or one of its tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Account { account_id: String },
    Tenant { account_id: String, tenant_id: String },
}

impl KeyOwner {
    pub fn account_id(&self) -> &str {
        match self {
            KeyOwner::Account { account_id } | KeyOwner::Tenant { account_id, .. } => account_id,
        }
    }
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            KeyOwner::Account { .. } => None,
            KeyOwner::Tenant { tenant_id, .. } => Some(tenant_id),
        }
    }
}

/// An API key. The private key is kept only sealed under the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub public_key: String,
    pub owner: KeyOwner,
    pub name: String,
    pub roles: RoleSet,
    pub private_key_sealed: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("public_key", &self.public_key)
            .field("owner", &self.owner)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("private_key_sealed", &"[sealed]")
            .finish()
    }
}

/// A key that signs access tokens; `kid` goes into each token's header.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub secret_sealed: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord").field("kid", &self.kid).field("created_at", &self.created_at).finish()
    }
}

/// What `initialize` writes: the first account with its licence and admin key.
#[derive(Debug, Clone)]
pub struct Initialization {
    pub master_key_check: Vec<u8>,
    pub account: AccountRecord,
    pub license: LicenseRecord,
    pub admin_key: ApiKeyRecord,
    pub signing_key: SigningKeyRecord,
}

/// The node making a claim, and which nodes count as dead: a claim records the node
/// that made it, and a claim of a dead node may be taken over by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimant<'a> {
    pub node_id: &'a str,
    /// A node whose last heartbeat is older than this is taken for dead.
    pub lost_before: i64,
}

/// A request's claim on an idempotency key.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim<'a> {
    /// Who the key belongs to (keys of different callers never collide).
    pub scope: &'a str,
    pub key: &'a str,
    /// A hash of method, path and body: the same key with another request is a conflict.
    pub request_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// The node running the request. An unfinished claim is taken over once its node is
    /// dead, and never while the node lives.
    pub claimant: Claimant<'a>,
    /// A claim recorded without a node (by an older version) is taken to be from a
    /// crashed request once it is still unfinished after this long.
    pub stale_after_ms: i64,
}

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is now claimed by this request.
    Started,
    /// The key is now claimed by this request, taken over from an unfinished claim of
    /// the same request (claimed at `earlier_claimed_at`) whose node died: that earlier
    /// try may have taken effect before it was cut off.
    TakenOver { earlier_claimed_at: i64 },
    /// Another request with this key is still running.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
    /// The key was used with this same request; here is its response.
    Replay(StoredResponse),
}

/// A key's state after a recent change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub public_key: String,
    pub roles: RoleSet,
    pub deleted: bool,
}

/// An app installed for a tenant. Its public configuration is JSON; its secrets are
/// sealed under the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct InstalledAppRecord {
    pub tenant_id: String,
    pub app_id: String,
    pub can_debit: bool,
    pub can_credit: bool,
    pub config_public: Option<String>,
    pub config_secrets_sealed: Option<Vec<u8>>,
    pub installed_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for InstalledAppRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstalledAppRecord")
            .field("tenant_id", &self.tenant_id)
            .field("app_id", &self.app_id)
            .field("configured", &self.config_public.is_some())
            .field("config_secrets_sealed", &self.config_secrets_sealed.as_ref().map(|_| "[sealed]"))
            .finish()
    }
}

/// The licence limits that app installation checks (`-1` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppLimits {
    /// Apps that can collect (DEBIT), across the account.
    pub max_collect_apps: i64,
    /// Apps that can pay out (CREDIT), across the account.
    pub max_payout_apps: i64,
}

/// A collect or payout scheme; its content lives in its drafts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeRecord {
    pub scheme_id: String,
    pub tenant_id: String,
    pub kind: SchemeKind,
    pub published_draft_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A saved version of a scheme. `rules` is the rules as JSON, in saved order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRecord {
    pub draft_id: String,
    pub scheme_id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    pub code: Option<String>,
    pub rules: String,
    pub created_at: i64,
    pub last_modified: i64,
}

/// A draft to write, with what it references (checked and recorded in the same
/// transaction, so an app cannot be uninstalled from under a draft being saved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftWrite {
    pub draft: DraftRecord,
    pub app_ids: Vec<String>,
    pub reward_group_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeWithDrafts {
    pub scheme: SchemeRecord,
    /// In creation order.
    pub drafts: Vec<DraftRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardGroupMember {
    pub reward_id: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardGroupRecord {
    pub reward_group_id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    pub members: Vec<RewardGroupMember>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A reward app's funding account for a tenant, with its balance in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardAccountRecord {
    pub tenant_id: String,
    pub app_id: String,
    pub customer_identifier: String,
    pub account_identifier: String,
    pub currency: String,
    pub balance_minor: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Parses a word stored by Baton (a status, a type); anything else means the row was
/// not written by Baton: `Corrupt`, naming `what`.
pub(crate) fn parse_word<T: std::str::FromStr>(text: String, what: &str) -> crate::StoreResult<T> {
    text.parse().map_err(|_| crate::StoreError::Corrupt(format!("{what} {text:?}")))
}
