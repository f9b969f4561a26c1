//! The customer vault's keys (SPEC §5.4): one data key per customer, wrapped by the
//! master key; crypto-shredding; and master key rotation.
//!
//! A customer's data key is created on first use. Concurrent first uses (two nodes
//! adding the customer's first instruments at once) end with one key: the store keeps
//! the first row written and every other caller unwraps that one.
//!
//! Rotation re-wraps data keys (the data sealed under them is never touched) and
//! re-seals what is sealed directly under the master key: token signing keys, API
//! private keys and installed apps' secrets. It is resumable: rows already under the
//! new key are recognised (data keys by their master key id, sealed values by opening
//! under the new key) and skipped, so re-running the same rotation continues where it
//! stopped. The database's master key check value is switched last, after which nodes
//! start only with the new key.

use std::ops::ControlFlow;

use baton_domain::Problem;
use baton_store::{CustomerKeyRecord, SealedSecretRef};
use baton_vault::{customer_key_aad, DataKey, MasterKey};

use crate::error::internal;
use crate::{Engine, EngineResult};

/// Progress of a master key rotation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Customer data keys re-wrapped under the new key by this run.
    pub rewrapped: u64,
    /// Live customer data keys still wrapped by another master key (an estimate while
    /// the rotation runs; exact when it stops or completes).
    pub remaining: u64,
    /// Values sealed directly under the master key (signing keys, API private keys,
    /// app secrets) re-sealed under the new key by this run.
    pub resealed: u64,
    /// Everything is under the new key and the database now expects the new key.
    pub complete: bool,
}

fn customer_erased(customer_ref: &str) -> Problem {
    Problem::conflict("CUSTOMER_ERASED")
        .message("The customer {customerRef} was erased; their vault can no longer be used.")
        .detail("customerRef", customer_ref)
}

/// The associated data each kind of sealed value was sealed with (see `identity.rs`,
/// `api_keys.rs` and `marketplace/apps.rs`, which seal them).
fn sealed_secret_aad(location: &SealedSecretRef) -> Vec<u8> {
    match location {
        SealedSecretRef::SigningKey { kid } => kid.as_bytes().to_vec(),
        SealedSecretRef::ApiKey { public_key } => public_key.as_bytes().to_vec(),
        // Must match `marketplace::apps::secrets_aad`; the rotation tests open app
        // secrets after a rotation, so a divergence fails them.
        SealedSecretRef::AppSecrets { tenant_id, app_id } => format!("installed-app:{tenant_id}:{app_id}").into_bytes(),
        // Must match `webhooks::secret_aad` (the webhook tests deliver after a rotation).
        SealedSecretRef::WebhookSecret { endpoint_id } | SealedSecretRef::WebhookPreviousSecret { endpoint_id } => {
            crate::webhooks::secret_aad(endpoint_id)
        }
        // Must match `pay_by_link::delivery::settings_aad` (the delivery tests send after a rotation).
        SealedSecretRef::DeliverySettings { tenant_id } => crate::pay_by_link::delivery::settings_aad(tenant_id),
    }
}

/// Live keys not wrapped by `master_key_id`.
fn remaining_keys(counts: &[(String, u64)], master_key_id: &str) -> u64 {
    counts.iter().filter(|(id, _)| id != master_key_id).map(|(_, n)| n).sum()
}

fn describe(location: &SealedSecretRef) -> String {
    match location {
        SealedSecretRef::SigningKey { kid } => format!("token signing key {kid}"),
        SealedSecretRef::ApiKey { public_key } => format!("the private key of API key {public_key}"),
        SealedSecretRef::AppSecrets { tenant_id, app_id } => {
            format!("the secrets of app {app_id} of tenant {tenant_id}")
        }
        SealedSecretRef::WebhookSecret { endpoint_id } => format!("the secret of webhook {endpoint_id}"),
        SealedSecretRef::DeliverySettings { tenant_id } => format!("the delivery settings of tenant {tenant_id}"),
        SealedSecretRef::WebhookPreviousSecret { endpoint_id } => {
            format!("the previous secret of webhook {endpoint_id}")
        }
    }
}

impl Engine {
    /// The customer's data key, created (and stored wrapped by the master key) on
    /// first use. `409 CUSTOMER_ERASED` once the customer has been forgotten.
    pub async fn customer_data_key(&self, tenant_id: &str, customer_ref: &str) -> EngineResult<DataKey> {
        if let Some(record) = self.store.customer_key(tenant_id, customer_ref).await? {
            return self.unwrap_customer_key(&record);
        }
        let key = DataKey::generate();
        let record = CustomerKeyRecord {
            tenant_id: tenant_id.to_string(),
            customer_ref: customer_ref.to_string(),
            wrapped_key: Some(self.master_key.wrap(&key, &customer_key_aad(tenant_id, customer_ref))),
            master_key_id: self.master_key.key_id(),
            created_at: self.now_ms(),
            shredded_at: None,
        };
        if self.store.create_customer_key(&record).await? {
            return Ok(key);
        }
        // Another caller created the customer's key first: everyone uses that one.
        let winner = self.store.customer_key(tenant_id, customer_ref).await?.ok_or_else(|| {
            internal(format!("the data key of customer {customer_ref} of tenant {tenant_id} exists but cannot be read"))
        })?;
        self.unwrap_customer_key(&winner)
    }

    pub(crate) fn unwrap_customer_key(&self, record: &CustomerKeyRecord) -> EngineResult<DataKey> {
        let Some(wrapped) = &record.wrapped_key else {
            return Err(customer_erased(&record.customer_ref).into());
        };
        let (tenant_id, customer_ref) = (&record.tenant_id, &record.customer_ref);
        let current = self.master_key.key_id();
        if record.master_key_id != current {
            return Err(internal(format!(
                "the data key of customer {customer_ref} of tenant {tenant_id} is wrapped by master key {}, \
                 not by this node's master key {current}; finish the master key rotation",
                record.master_key_id
            )));
        }
        self.master_key.unwrap(wrapped, &customer_key_aad(tenant_id, customer_ref)).map_err(|e| {
            internal(format!("cannot unwrap the data key of customer {customer_ref} of tenant {tenant_id}: {e}"))
        })
    }

    /// Forgets a customer (right to be forgotten): destroys their data key, so that
    /// nothing sealed under it can be decrypted again, by anyone. The customer stays
    /// erased: a later [`Engine::customer_data_key`] is refused. Returns whether a key
    /// was destroyed (`false` when the customer never had one or was already erased).
    pub async fn shred_customer(&self, tenant_id: &str, customer_ref: &str) -> EngineResult<bool> {
        let now = self.now_ms();
        // A key created concurrently with the erasure is shredded on the next turn.
        for _ in 0..3 {
            if self.store.shred_customer_key(tenant_id, customer_ref, now).await? {
                // Not the customer ref: the log must not remember whom it forgot.
                tracing::info!(tenant_id, "customer data key shredded");
                return Ok(true);
            }
            // No live key: record the erasure, so that no key is created later.
            let tombstone = CustomerKeyRecord {
                tenant_id: tenant_id.to_string(),
                customer_ref: customer_ref.to_string(),
                wrapped_key: None,
                master_key_id: self.master_key.key_id(),
                created_at: now,
                shredded_at: Some(now),
            };
            if self.store.create_customer_key(&tombstone).await? {
                return Ok(false);
            }
            if let Some(CustomerKeyRecord { wrapped_key: None, .. }) =
                self.store.customer_key(tenant_id, customer_ref).await?
            {
                return Ok(false);
            }
        }
        Err(internal(format!("could not shred the data key of customer {customer_ref} of tenant {tenant_id}")))
    }

    /// Moves everything protected by this engine's (current) master key to `new`, in
    /// batches of `batch` data keys. See [`Engine::rotate_master_key_with`].
    pub async fn rotate_master_key(&self, new: &MasterKey, batch: usize) -> EngineResult<RotationReport> {
        self.rotate_master_key_with(new, batch, |_| ControlFlow::Continue(())).await
    }

    /// Re-wraps every live customer data key from the current master key to `new`
    /// (in batches of `batch`, calling `progress` after each; `Break` stops there, to
    /// be resumed by another call), then re-seals the values sealed directly under the
    /// master key, and finally switches the database's check value to `new`'s.
    ///
    /// Resumable and idempotent: keys already under `new` are skipped, and a database
    /// whose check value is already `new`'s is accepted (a completed rotation re-run
    /// picks up stragglers written by nodes still on the old key). Nodes still running
    /// with the old key cannot read what was moved; they must be restarted with `new`.
    pub async fn rotate_master_key_with(
        &self,
        new: &MasterKey,
        batch: usize,
        mut progress: impl FnMut(&RotationReport) -> ControlFlow<()> + Send,
    ) -> EngineResult<RotationReport> {
        let old = &*self.master_key;
        let batch = batch.max(1);
        let (old_id, new_id) = (old.key_id(), new.key_id());
        let (old_check, new_check) = (old.check_value(), new.check_value());
        match self.store.master_key_check().await? {
            None => return Err(internal("the database is not initialised: there is no master key to rotate".into())),
            Some(stored) if stored == old_check || stored == new_check => {}
            Some(_) => {
                return Err(internal(
                    "the configured master key is not the one this database was initialised with".into(),
                ))
            }
        }

        // Keys under a third master key (an earlier rotation to it was interrupted)
        // cannot be unwrapped here: refuse before moving anything.
        let counts = self.store.count_keys_by_master_key().await?;
        if let Some((foreign, n)) = counts.iter().find(|(id, _)| *id != old_id && *id != new_id) {
            return Err(internal(format!(
                "{n} customer data keys are wrapped by master key {foreign}, which is neither the current master \
                 key ({old_id}) nor the new one ({new_id}); an earlier rotation to that key was interrupted: \
                 finish it first"
            )));
        }
        let mut report = RotationReport { remaining: remaining_keys(&counts, &new_id), ..Default::default() };
        let mut idle_batches = 0;
        loop {
            let keys = self.store.keys_wrapped_by_other(&new_id, batch).await?;
            if keys.is_empty() {
                break;
            }
            let mut moved = 0;
            for record in &keys {
                let Some(wrapped) = &record.wrapped_key else { continue };
                let (tenant_id, customer_ref) = (&record.tenant_id, &record.customer_ref);
                if record.master_key_id != old_id {
                    return Err(internal(format!(
                        "the data key of customer {customer_ref} of tenant {tenant_id} is wrapped by master key {}, \
                         which is neither the current master key ({old_id}) nor the new one ({new_id}); an earlier \
                         rotation to that key was interrupted: finish it first",
                        record.master_key_id
                    )));
                }
                let aad = customer_key_aad(tenant_id, customer_ref);
                let key = old.unwrap(wrapped, &aad).map_err(|e| {
                    internal(format!(
                        "cannot unwrap the data key of customer {customer_ref} of tenant {tenant_id}: {e}"
                    ))
                })?;
                let rewrapped = new.wrap(&key, &aad);
                // Refused if the key was shredded (or moved) since it was listed.
                if self.store.rewrap_customer_key(tenant_id, customer_ref, wrapped, &rewrapped, &new_id).await? {
                    moved += 1;
                }
            }
            report.rewrapped += moved;
            report.remaining = report.remaining.saturating_sub(keys.len() as u64);
            // Rows that could not be moved are listed again only if they changed
            // under us; twice in a row means something else keeps changing them.
            idle_batches = if moved == 0 { idle_batches + 1 } else { 0 };
            if idle_batches >= 2 {
                return Err(internal("customer keys keep changing during the rotation; run it again".into()));
            }
            if progress(&report).is_break() {
                report.remaining = remaining_keys(&self.store.count_keys_by_master_key().await?, &new_id);
                return Ok(report);
            }
        }
        report.remaining = 0;

        report.resealed = self.reseal_master_secrets(new).await?;
        if self.store.master_key_check().await?.as_deref() != Some(new_check.as_slice())
            && !self.store.set_master_key_check(&old_check, &new_check).await?
        {
            return Err(internal("the master key check value changed during the rotation; run it again".into()));
        }
        report.remaining = remaining_keys(&self.store.count_keys_by_master_key().await?, &new_id);
        report.complete = report.remaining == 0;
        tracing::info!(
            master_key_id = %new_id,
            rewrapped = report.rewrapped,
            resealed = report.resealed,
            remaining = report.remaining,
            "master key rotated"
        );
        Ok(report)
    }

    /// Re-seals every value sealed directly under the current master key so it opens
    /// under `new`; values that already do are left alone. Returns how many moved.
    async fn reseal_master_secrets(&self, new: &MasterKey) -> EngineResult<u64> {
        let mut resealed = 0;
        for secret in self.store.sealed_secrets().await? {
            let aad = sealed_secret_aad(&secret.location);
            if new.open(&secret.sealed, &aad).is_ok() {
                continue;
            }
            let sealed = self.master_key.reseal_to(new, &secret.sealed, &aad).map_err(|e| {
                internal(format!("cannot open {} with the current master key: {e}", describe(&secret.location)))
            })?;
            // Refused if the row changed or went since it was listed; checked below.
            if self.store.reseal_secret(&secret.location, &secret.sealed, &sealed).await? {
                resealed += 1;
            }
        }
        // Everything must open under the new key before the database switches to it.
        for secret in self.store.sealed_secrets().await? {
            if new.open(&secret.sealed, &sealed_secret_aad(&secret.location)).is_err() {
                return Err(internal(format!(
                    "{} changed during the rotation and is not under the new master key; run the rotation again",
                    describe(&secret.location)
                )));
            }
        }
        Ok(resealed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::EngineError;
    use baton_domain::TenantName;
    use baton_store::{SqliteStore, Store};
    use serde_json::json;

    use super::*;
    use crate::{EngineConfig, KeyOwner, KeyRequest, ManualClock, StartupCheck, TenantInput};

    /// A directory removed when the test ends (this crate has no `tempfile`).
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Fixture {
        store: Arc<dyn Store>,
        engine: Engine,
        account_id: String,
        tenant_id: String,
        _dir: TempDir,
    }

    fn engine_with(store: Arc<dyn Store>, key: MasterKey) -> Engine {
        Engine::new(store, Arc::new(key), EngineConfig::default(), Arc::new(ManualClock::default()))
    }

    async fn fixture() -> Fixture {
        let dir = TempDir(std::env::temp_dir().join(format!("baton-engine-vault-{}", uuid::Uuid::new_v4().simple())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let store = SqliteStore::open(&dir.0.join("baton.db")).await.unwrap();
        store.migrate().await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let (key, _) = MasterKey::generate();
        let engine = engine_with(store.clone(), key);
        let account_id = engine.initialize().await.unwrap().account_id;
        let input = TenantInput { name: TenantName::parse(Some("Vault Tenant")).unwrap(), address: None };
        let tenant_id = engine.create_tenant(&account_id, input).await.unwrap().tenant_id;
        Fixture { store, engine, account_id, tenant_id, _dir: dir }
    }

    fn rejected_code(result: EngineResult<DataKey>) -> String {
        match result {
            Err(EngineError::Rejected(p)) => p.0[0].code.to_string(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn data_key_is_created_once_and_reused() {
        let f = fixture().await;
        let key = f.engine.customer_data_key(&f.tenant_id, "cust-1").await.unwrap();
        let sealed = key.seal(b"4111111111111111", b"fi-1");
        let again = f.engine.customer_data_key(&f.tenant_id, "cust-1").await.unwrap();
        assert_eq!(again.open(&sealed, b"fi-1").unwrap(), b"4111111111111111");
        // Another customer, or the same ref in another tenant, has its own key.
        let other = f.engine.customer_data_key(&f.tenant_id, "cust-2").await.unwrap();
        assert!(other.open(&sealed, b"fi-1").is_err());
        let record = f.store.customer_key(&f.tenant_id, "cust-1").await.unwrap().unwrap();
        assert_eq!(record.master_key_id, f.engine.master_key.key_id());
        // Concurrent first uses agree on one key.
        let engine = Arc::new(f.engine);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (engine, tenant) = (engine.clone(), f.tenant_id.clone());
                tokio::spawn(async move { engine.customer_data_key(&tenant, "cust-race").await.unwrap() })
            })
            .collect();
        let mut keys = Vec::new();
        for t in tasks {
            keys.push(t.await.unwrap());
        }
        let sealed = keys[0].seal(b"x", b"y");
        assert!(keys.iter().all(|k| k.open(&sealed, b"y").is_ok()));
    }

    #[tokio::test]
    async fn shredding_makes_the_data_unreadable_for_good() {
        let f = fixture().await;
        let key = f.engine.customer_data_key(&f.tenant_id, "cust-1").await.unwrap();
        let sealed = key.seal(b"GB33BUKB20201555555555", b"fi-1");
        drop(key);
        assert!(f.engine.shred_customer(&f.tenant_id, "cust-1").await.unwrap());
        assert!(!f.engine.shred_customer(&f.tenant_id, "cust-1").await.unwrap(), "already shredded");
        assert_eq!(rejected_code(f.engine.customer_data_key(&f.tenant_id, "cust-1").await), "CUSTOMER_ERASED");
        let record = f.store.customer_key(&f.tenant_id, "cust-1").await.unwrap().unwrap();
        assert_eq!(record.wrapped_key, None);
        assert!(!sealed.is_empty());
        // A customer erased before having a key stays erased too.
        assert!(!f.engine.shred_customer(&f.tenant_id, "never-seen").await.unwrap());
        assert_eq!(rejected_code(f.engine.customer_data_key(&f.tenant_id, "never-seen").await), "CUSTOMER_ERASED");
        // Others are unaffected.
        f.engine.customer_data_key(&f.tenant_id, "cust-2").await.unwrap();
    }

    #[tokio::test]
    async fn rotation_moves_keys_and_secrets_and_resumes() {
        let f = fixture().await;
        let mut sealed = Vec::new();
        for i in 0..7 {
            let customer = format!("cust-{i}");
            let key = f.engine.customer_data_key(&f.tenant_id, &customer).await.unwrap();
            sealed.push((customer, key.seal(format!("pan {i}").as_bytes(), b"fi")));
        }
        assert!(f.engine.shred_customer(&f.tenant_id, "cust-6").await.unwrap());
        let owner = KeyOwner::Tenant { account_id: f.account_id.clone(), tenant_id: f.tenant_id.clone() };
        let roles = vec!["tenant-admin".to_string()];
        f.engine.create_api_key(owner, KeyRequest { name: None, roles }).await.unwrap();
        f.engine.install_app(&f.account_id, &f.tenant_id, "SANDBOX_CARD", None).await.unwrap();
        f.engine.configure_app(&f.tenant_id, "SANDBOX_CARD", &json!({"apiKey": "sk_test_123"})).await.unwrap();
        f.engine.rotate_signing_key().await.unwrap();

        let (new, _) = MasterKey::generate();
        // Interrupted after the first batch of two.
        let mut calls = 0;
        let first = f
            .engine
            .rotate_master_key_with(&new, 2, |_| {
                calls += 1;
                ControlFlow::Break(())
            })
            .await
            .unwrap();
        assert_eq!((calls, first), (1, RotationReport { rewrapped: 2, remaining: 4, resealed: 0, complete: false }));
        // Nothing else moved yet: the database still expects the old key.
        assert_eq!(f.engine.check_startup().await.unwrap(), StartupCheck::Initialized);

        // Resumed: the rest, in batches, then the sealed values and the check value.
        let mut batches = Vec::new();
        let rest = f
            .engine
            .rotate_master_key_with(&new, 2, |r| {
                batches.push(*r);
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(batches.iter().map(|r| r.rewrapped).collect::<Vec<_>>(), [2, 4]);
        // Two signing keys, the admin key and the tenant key, the app's secrets.
        assert_eq!(rest, RotationReport { rewrapped: 4, remaining: 0, resealed: 5, complete: true });
        assert!(f.engine.check_startup().await.is_err(), "the old key is refused now");
        assert_eq!(f.store.count_keys_by_master_key().await.unwrap(), [(new.key_id(), 6)]);

        // A node with the new key reads everything: data, app secrets, signing keys.
        let new_engine = engine_with(f.store.clone(), new);
        assert_eq!(new_engine.check_startup().await.unwrap(), StartupCheck::Initialized);
        for (customer, sealed) in &sealed[..6] {
            let key = new_engine.customer_data_key(&f.tenant_id, customer).await.unwrap();
            assert!(key.open(sealed, b"fi").unwrap().starts_with(b"pan "));
        }
        assert_eq!(rejected_code(new_engine.customer_data_key(&f.tenant_id, "cust-6").await), "CUSTOMER_ERASED");
        let view = new_engine.installed_app(&f.tenant_id, "SANDBOX_CARD").await.unwrap();
        assert!(view.configuration.is_some());
        let (_, record) = new_engine.installed_record(&f.tenant_id, "SANDBOX_CARD").await.unwrap();
        assert_eq!(new_engine.stored_config(&record).unwrap().secrets, json!({"apiKey": "sk_test_123"}));

        // Re-running the finished rotation (from either key) changes nothing.
        let again = new_engine.rotate_master_key(&new_engine.master_key, 2).await.unwrap();
        assert_eq!(again, RotationReport { rewrapped: 0, remaining: 0, resealed: 0, complete: true });
        let from_old = f.engine.rotate_master_key(&new_engine.master_key, 2).await.unwrap();
        assert_eq!(from_old, RotationReport { rewrapped: 0, remaining: 0, resealed: 0, complete: true });
    }

    #[tokio::test]
    async fn rotation_refuses_a_foreign_key_and_an_unfinished_earlier_rotation() {
        let f = fixture().await;
        f.engine.customer_data_key(&f.tenant_id, "cust-1").await.unwrap();
        f.engine.customer_data_key(&f.tenant_id, "cust-2").await.unwrap();
        // A node with some other key cannot rotate this database.
        let (stranger, _) = MasterKey::generate();
        let (target, _) = MasterKey::generate();
        assert!(engine_with(f.store.clone(), stranger).rotate_master_key(&target, 10).await.is_err());

        // Rotation to B interrupted; a rotation to C instead must not proceed.
        let (b, _) = MasterKey::generate();
        let stopped = f.engine.rotate_master_key_with(&b, 1, |_| ControlFlow::Break(())).await.unwrap();
        assert_eq!((stopped.rewrapped, stopped.remaining), (1, 1));
        let before = f.store.count_keys_by_master_key().await.unwrap();
        let err = f.engine.rotate_master_key(&target, 10).await.unwrap_err();
        assert!(format!("{err}").contains("interrupted"), "{err}");
        assert_eq!(f.store.count_keys_by_master_key().await.unwrap(), before, "nothing moved");
        assert_eq!(f.engine.check_startup().await.unwrap(), StartupCheck::Initialized);
        // Finishing the rotation to B works.
        assert!(f.engine.rotate_master_key(&b, 10).await.unwrap().complete);
    }
}
