//! API keys of the account and of tenants (SPEC §4.1, §4.3).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use baton_domain::{KeyKind, Problem, RoleSet};
use baton_store::{ApiKeyRecord, KeyChange, KeyOwner, StoreError};

use crate::identity::new_key_pair;
use crate::{Engine, EngineResult};

pub const DEFAULT_KEY_NAME: &str = "API Key";
pub const MAX_KEY_NAME: usize = 100;

/// A key create or update as requested: the roles are checked against the kind of
/// key (account or tenant) they are for.
#[derive(Debug, Clone, Default)]
pub struct KeyRequest {
    pub name: Option<String>,
    pub roles: Vec<String>,
}

/// A key as shown to its owner: never the private key.
#[derive(Debug, Clone)]
pub struct ApiKeyView {
    pub account_id: String,
    pub tenant_id: Option<String>,
    pub name: String,
    pub public_key: String,
    pub roles: RoleSet,
}

/// A key just created: the only time its private key is returned.
#[derive(Clone)]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    pub private_key: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey").field("key", &self.key).field("private_key", &"[redacted]").finish()
    }
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(r: ApiKeyRecord) -> Self {
        Self {
            account_id: r.owner.account_id().to_string(),
            tenant_id: r.owner.tenant_id().map(str::to_string),
            name: r.name,
            public_key: r.public_key,
            roles: r.roles,
        }
    }
}

fn key_not_found() -> Problem {
    Problem::not_found("API_KEY_NOT_FOUND").message("No such API key.")
}

fn last_admin_key() -> Problem {
    Problem::bad_request("LAST_ADMIN_KEY")
        .message("The account must keep at least one API key with the account-admin role.")
}

fn kind_of(owner: &KeyOwner) -> KeyKind {
    match owner {
        KeyOwner::Account { .. } => KeyKind::Account,
        KeyOwner::Tenant { .. } => KeyKind::Tenant,
    }
}

/// Validates the name (default "API Key") and the roles for the owner's kind of key.
fn parse_request(req: &KeyRequest, owner: &KeyOwner) -> Result<(String, RoleSet), Vec<Problem>> {
    let mut problems = Vec::new();
    let name = req.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).unwrap_or(DEFAULT_KEY_NAME);
    if name.chars().count() > MAX_KEY_NAME || name.chars().any(char::is_control) {
        problems.push(
            Problem::invalid_field("INVALID_KEY_NAME", "name", "{field} must be at most {limit} printable characters.")
                .detail("limit", MAX_KEY_NAME.to_string()),
        );
    }
    let roles = RoleSet::parse_for(&req.roles, kind_of(owner)).map_err(|p| problems.push(p)).ok();
    match roles {
        Some(roles) if problems.is_empty() => Ok((name.to_string(), roles)),
        _ => Err(problems),
    }
}

impl Engine {
    /// Checks that a tenant-owned key's tenant belongs to the account.
    async fn ensure_owner_exists(&self, owner: &KeyOwner) -> EngineResult<()> {
        if let KeyOwner::Tenant { account_id, tenant_id } = owner {
            self.tenant(account_id, tenant_id).await?;
        }
        Ok(())
    }

    pub async fn create_api_key(&self, owner: KeyOwner, req: KeyRequest) -> EngineResult<CreatedApiKey> {
        self.ensure_owner_exists(&owner).await?;
        let (name, roles) = parse_request(&req, &owner)?;
        let (public_key, private_key) = new_key_pair();
        let now = self.now_ms();
        let raw = B64.decode(&private_key).expect("own encoding");
        let record = ApiKeyRecord {
            private_key_sealed: self.master_key.seal(&raw, public_key.as_bytes()),
            public_key,
            owner,
            name,
            roles,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_api_key(&record).await?;
        Ok(CreatedApiKey { key: record.into(), private_key })
    }

    pub async fn api_keys(&self, owner: KeyOwner) -> EngineResult<Vec<ApiKeyView>> {
        self.ensure_owner_exists(&owner).await?;
        Ok(self.store.api_keys(&owner).await?.into_iter().map(Into::into).collect())
    }

    pub async fn api_key(&self, owner: KeyOwner, public_key: &str) -> EngineResult<ApiKeyView> {
        self.ensure_owner_exists(&owner).await?;
        Ok(self.store.api_key(&owner, public_key).await?.ok_or_else(key_not_found)?.into())
    }

    pub async fn update_api_key(&self, owner: KeyOwner, public_key: &str, req: KeyRequest) -> EngineResult<ApiKeyView> {
        self.ensure_owner_exists(&owner).await?;
        let (name, roles) = parse_request(&req, &owner)?;
        match self.store.update_api_key(&owner, public_key, &name, &roles, self.now_ms()).await {
            Ok(true) => {
                self.note_key_change(KeyChange { public_key: public_key.to_string(), roles, deleted: false });
                self.api_key(owner, public_key).await
            }
            Ok(false) => Err(key_not_found().into()),
            Err(StoreError::LastAdminKey) => Err(last_admin_key().into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a key; tokens issued for it are refused from now on, on every node.
    /// (Changing a key's roles likewise retires tokens that carry the old roles.)
    pub async fn delete_api_key(&self, owner: KeyOwner, public_key: &str) -> EngineResult<()> {
        self.ensure_owner_exists(&owner).await?;
        match self.store.delete_api_key(&owner, public_key, self.now_ms()).await {
            Ok(true) => {
                self.note_key_change(KeyChange {
                    public_key: public_key.to_string(),
                    roles: RoleSet::default(),
                    deleted: true,
                });
                Ok(())
            }
            Ok(false) => Err(key_not_found().into()),
            Err(StoreError::LastAdminKey) => Err(last_admin_key().into()),
            Err(e) => Err(e.into()),
        }
    }
}
