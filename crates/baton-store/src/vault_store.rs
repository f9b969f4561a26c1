//! Storage of the vault's key hierarchy: customers' wrapped data keys, and the values
//! sealed directly under the master key (re-sealed when the master key rotates).
//!
//! The SQL lives in `portable_vault.rs`, compiled into both backends.

use async_trait::async_trait;

use crate::StoreResult;

/// A customer's data key as stored: wrapped by the master key whose id it records.
/// Once shredded, the wrapped key is gone (`None`) and `shredded_at` says when.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKeyRecord {
    pub tenant_id: String,
    pub customer_ref: String,
    /// The data key sealed under the master key (`MasterKey::wrap`); `None` once shredded.
    pub wrapped_key: Option<Vec<u8>>,
    /// `MasterKey::key_id` of the key that wrapped it.
    pub master_key_id: String,
    pub created_at: i64,
    pub shredded_at: Option<i64>,
}

impl std::fmt::Debug for CustomerKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerKeyRecord")
            .field("tenant_id", &self.tenant_id)
            .field("customer_ref", &self.customer_ref)
            .field("wrapped_key", &self.wrapped_key.as_ref().map(|_| "[wrapped]"))
            .field("master_key_id", &self.master_key_id)
            .field("created_at", &self.created_at)
            .field("shredded_at", &self.shredded_at)
            .finish()
    }
}

/// Where a value sealed directly under the master key lives; the engine knows which
/// associated data each kind was sealed with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SealedSecretRef {
    /// `token_signing_keys.secret_sealed`.
    SigningKey { kid: String },
    /// `api_keys.private_key_sealed` (deleted keys included).
    ApiKey { public_key: String },
    /// `installed_apps.config_secrets_sealed`, when the app has secrets.
    AppSecrets { tenant_id: String, app_id: String },
    /// `webhook_endpoints.secret_sealed`.
    WebhookSecret { endpoint_id: String },
    /// `webhook_endpoints.previous_secret_sealed`, while a rotation overlap lasts.
    WebhookPreviousSecret { endpoint_id: String },
    /// `delivery_settings.secrets_sealed`: a tenant's SMTP password and SMS gateway
    /// credentials.
    DeliverySettings { tenant_id: String },
}

/// A value sealed under the master key, with where it lives.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub location: SealedSecretRef,
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret").field("location", &self.location).field("sealed", &"[sealed]").finish()
    }
}

/// The vault's rows. Every compare-and-set takes the bytes the caller read, so a
/// concurrent rotation, shred or rewrite is never overwritten with stale data.
#[async_trait]
pub trait VaultStore: Send + Sync + 'static {
    /// The customer's data key row (live or shredded), if one was ever created.
    async fn customer_key(&self, tenant_id: &str, customer_ref: &str) -> StoreResult<Option<CustomerKeyRecord>>;
    /// Inserts the row unless the customer already has one (live or shredded):
    /// `false` then, and the caller reads the winner. Concurrent first uses of one
    /// customer thus end with exactly one key.
    async fn create_customer_key(&self, record: &CustomerKeyRecord) -> StoreResult<bool>;
    /// Destroys the customer's wrapped data key (crypto-shredding): the bytes are
    /// removed from the row and `shredded_at` is set. `false` if there is no live key.
    async fn shred_customer_key(&self, tenant_id: &str, customer_ref: &str, now: i64) -> StoreResult<bool>;
    /// Up to `limit` live keys wrapped by a master key other than `master_key_id`,
    /// ordered by (master key id, tenant, customer): the next batch of a rotation.
    async fn keys_wrapped_by_other(&self, master_key_id: &str, limit: usize) -> StoreResult<Vec<CustomerKeyRecord>>;
    /// How many live keys each master key wraps, by master key id (in id order).
    async fn count_keys_by_master_key(&self) -> StoreResult<Vec<(String, u64)>>;
    /// Replaces a live wrapped key if it still holds `old_wrapped`; `false` if it was
    /// shredded or rewritten meanwhile.
    async fn rewrap_customer_key(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        old_wrapped: &[u8],
        new_wrapped: &[u8],
        new_master_key_id: &str,
    ) -> StoreResult<bool>;

    /// Every value sealed directly under the master key: signing keys, API private
    /// keys (deleted ones too) and installed apps' secrets.
    async fn sealed_secrets(&self) -> StoreResult<Vec<SealedSecret>>;
    /// Replaces a sealed value if it still holds `old`; `false` if it changed or is gone.
    async fn reseal_secret(&self, location: &SealedSecretRef, old: &[u8], new: &[u8]) -> StoreResult<bool>;
    /// Replaces the master key check value written by `initialize` if it is still
    /// `old`; `false` otherwise.
    async fn set_master_key_check(&self, old: &[u8], new: &[u8]) -> StoreResult<bool>;
}
