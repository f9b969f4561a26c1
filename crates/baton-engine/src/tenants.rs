//! Tenants and the approval workflow (SPEC §4.2).

use baton_domain::{Address, Problem, TenantName, TenantStatus};
use baton_store::{StoreError, TenantRecord};

use crate::{new_id, Engine, EngineResult};

pub type TenantView = TenantRecord;

/// A validated tenant create or update; `address: None` leaves the address as it is.
#[derive(Debug, Clone)]
pub struct TenantInput {
    pub name: TenantName,
    pub address: Option<Address>,
}

fn tenant_not_found() -> Problem {
    Problem::not_found("TENANT_NOT_FOUND").message("No such tenant in this account.")
}

fn name_taken() -> Problem {
    Problem::conflict("TENANT_NAME_ALREADY_EXISTS")
        .message("A tenant with this name already exists.")
        .detail("field", "name")
}

impl Engine {
    /// Creates a tenant: `ACTIVE`, or `PENDING_APPROVAL` when the account requires
    /// approval. Enforces the licence's `maxTenants` atomically.
    pub async fn create_tenant(&self, account_id: &str, input: TenantInput) -> EngineResult<TenantView> {
        let account = self.account(account_id).await?;
        let now = self.now_ms();
        let status = if account.account.tenant_creation_requires_approval {
            TenantStatus::PendingApproval
        } else {
            TenantStatus::Active
        };
        let record = TenantRecord {
            tenant_id: new_id(),
            account_id: account_id.to_string(),
            name: input.name.as_str().to_string(),
            name_key: input.name.key(),
            address: input.address.unwrap_or_default(),
            status,
            status_reason: None,
            created_at: now,
            updated_at: now,
        };
        // An account that approves its tenants hears of each new one (an account webhook).
        let mut events = Vec::new();
        if status == TenantStatus::PendingApproval {
            let data = serde_json::json!({ "tenant": {
                "tenantId": record.tenant_id, "name": record.name, "status": status.as_str() } });
            events.push(baton_store::EventRecord {
                event_id: new_id(),
                account_id: Some(account_id.to_string()),
                tenant_id: None,
                event_type: baton_domain::EventType::TenantApprovalRequested,
                ordering_key: Some(record.tenant_id.clone()),
                data: data.to_string(),
                created_at: now,
            });
        }
        match self.store.create_tenant_announced(&record, account.license.max_tenants, &events).await {
            Ok(()) => Ok(record),
            Err(StoreError::Conflict(_)) => Err(name_taken().into()),
            Err(StoreError::LimitExceeded) => Err(Problem::payment_required("LICENSE_LIMIT_EXCEEDED")
                .message("The licence allows at most {limit} tenants.")
                .detail("limit", account.license.max_tenants.to_string())
                .into()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn tenants(&self, account_id: &str, status: Option<TenantStatus>) -> EngineResult<Vec<TenantView>> {
        Ok(self.store.tenants(account_id, status).await?)
    }

    pub async fn tenant(&self, account_id: &str, tenant_id: &str) -> EngineResult<TenantView> {
        Ok(self.store.tenant(account_id, tenant_id).await?.ok_or_else(tenant_not_found)?)
    }

    pub async fn update_tenant(
        &self,
        account_id: &str,
        tenant_id: &str,
        input: TenantInput,
    ) -> EngineResult<TenantView> {
        let mut tenant = self.tenant(account_id, tenant_id).await?;
        tenant.name = input.name.as_str().to_string();
        tenant.name_key = input.name.key();
        if let Some(address) = input.address {
            tenant.address = address;
        }
        tenant.updated_at = self.now_ms();
        match self.store.update_tenant(&tenant).await {
            Ok(()) => Ok(tenant),
            Err(StoreError::Conflict(_)) => Err(name_taken().into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a tenant that never went live (pending or rejected).
    pub async fn delete_tenant(&self, account_id: &str, tenant_id: &str) -> EngineResult<()> {
        let tenant = self.tenant(account_id, tenant_id).await?;
        let deletable = [TenantStatus::PendingApproval, TenantStatus::Rejected];
        if !tenant.status.can_be_deleted() || !self.store.delete_tenant(account_id, tenant_id, &deletable).await? {
            return Err(Problem::bad_request("TENANT_CANNOT_BE_DELETED")
                .message("Only pending or rejected tenants can be deleted.")
                .into());
        }
        Ok(())
    }

    /// Approves (`approve = true`) or rejects a pending tenant.
    pub async fn decide_tenant(
        &self,
        account_id: &str,
        tenant_id: &str,
        approve: bool,
        reason: Option<String>,
    ) -> EngineResult<TenantView> {
        self.tenant(account_id, tenant_id).await?;
        let to = if approve { TenantStatus::Active } else { TenantStatus::Rejected };
        let moved = self
            .store
            .transition_tenant(
                account_id,
                tenant_id,
                TenantStatus::PendingApproval,
                to,
                reason.as_deref(),
                self.now_ms(),
            )
            .await?;
        if !moved {
            return Err(Problem::bad_request("TENANT_NOT_PENDING_APPROVAL")
                .message("The tenant is not pending approval.")
                .into());
        }
        self.tenant(account_id, tenant_id).await
    }
}
