//! First start: the account, its licence and its first admin key.

use baton_domain::{Address, Problem, Role, RoleSet};
use baton_store::{AccountRecord, ApiKeyRecord, Initialization, KeyOwner, LicenseRecord, StoreError};

use crate::identity::new_key_pair;
use crate::{new_id, Engine, EngineError, EngineResult};

/// The first admin key, shown once. `Debug` hides the private key.
#[derive(Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitialCredentials {
    pub account_id: String,
    pub public_key: String,
    pub private_key: String,
}

impl std::fmt::Debug for InitialCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialCredentials")
            .field("account_id", &self.account_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// What the database held when the node started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupCheck {
    /// Empty: nothing initialised yet.
    Empty,
    /// Initialised under the configured master key.
    Initialized,
}

impl Engine {
    /// Confirms that the configured master key is the one the database was
    /// initialised with, so a wrong key fails loudly at start instead of later.
    pub async fn check_startup(&self) -> EngineResult<StartupCheck> {
        match self.store.master_key_check().await? {
            None => Ok(StartupCheck::Empty),
            Some(stored) if stored == self.master_key.check_value() => {
                self.refresh_identity_caches().await?;
                Ok(StartupCheck::Initialized)
            }
            Some(_) => Err(EngineError::Internal(anyhow::anyhow!(
                "the configured master key is not the one this database was initialised with"
            ))),
        }
    }

    /// Creates the account (unlimited licence) and its first `account-admin` key.
    pub async fn initialize(&self) -> EngineResult<InitialCredentials> {
        let now = self.now_ms();
        let account_id = new_id();
        let (public_key, private_key) = new_key_pair();
        let sealed = self.master_key.seal(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &private_key).expect("own encoding"),
            public_key.as_bytes(),
        );
        let init = Initialization {
            master_key_check: self.master_key.check_value(),
            account: AccountRecord {
                account_id: account_id.clone(),
                account_ref: format!("BATON-{}", &uuid::Uuid::new_v4().simple().to_string()[..12].to_uppercase()),
                company_name: String::new(),
                billing_first_name: String::new(),
                billing_last_name: String::new(),
                billing_address: Address::default(),
                tenant_creation_requires_approval: false,
                created_at: now,
                updated_at: now,
            },
            license: LicenseRecord {
                license_id: new_id(),
                license_name: "Unlimited".into(),
                max_tenants: -1,
                max_transactions: -1,
                max_collect_apps: -1,
                max_payout_apps: -1,
                valid_from: now,
                valid_to: None,
            },
            admin_key: ApiKeyRecord {
                public_key: public_key.clone(),
                owner: KeyOwner::Account { account_id: account_id.clone() },
                name: "Initial admin key".into(),
                roles: RoleSet::new(vec![Role::AccountAdmin]),
                private_key_sealed: sealed,
                created_at: now,
                updated_at: now,
            },
            signing_key: self.new_signing_key(now),
        };
        match self.store.initialize(&init).await {
            Ok(()) => {}
            Err(StoreError::AlreadyInitialized) => {
                return Err(Problem::conflict("ALREADY_INITIALIZED")
                    .message("This database is already initialised; its account and keys were left unchanged.")
                    .into())
            }
            Err(e) => return Err(e.into()),
        }
        self.refresh_identity_caches().await?;
        Ok(InitialCredentials { account_id, public_key, private_key })
    }
}
