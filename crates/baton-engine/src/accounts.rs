//! The account and its licence (SPEC §4.1).

use baton_domain::{Address, Problem, Role};
use baton_store::{AccountRecord, LicenseRecord};

use crate::{Engine, EngineError, EngineResult};

pub type LicenseView = LicenseRecord;

#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: AccountRecord,
    pub license: LicenseRecord,
}

/// A validated `PUT /v1/account`. Absent optional fields keep their values.
#[derive(Debug, Clone)]
pub struct AccountUpdate {
    pub company_name: Option<String>,
    pub billing_first_name: String,
    pub billing_last_name: String,
    pub billing_address: Option<Address>,
    pub tenant_creation_requires_approval: Option<bool>,
}

fn no_current_license(account_id: &str) -> EngineError {
    EngineError::Internal(anyhow::anyhow!("account {account_id} has no current licence"))
}

fn account_not_found() -> Problem {
    Problem::not_found("ACCOUNT_NOT_FOUND")
}

impl Engine {
    pub async fn account(&self, account_id: &str) -> EngineResult<AccountView> {
        let (account, license) = self.store.account_with_license(account_id).await?.ok_or_else(account_not_found)?;
        let license = license.ok_or_else(|| no_current_license(account_id))?;
        Ok(AccountView { account, license })
    }

    pub async fn license(&self, account_id: &str) -> EngineResult<LicenseRecord> {
        self.store.current_license(account_id).await?.ok_or_else(|| no_current_license(account_id))
    }

    pub async fn license_history(&self, account_id: &str) -> EngineResult<Vec<LicenseRecord>> {
        Ok(self.store.license_history(account_id).await?)
    }

    /// Updates the account. Requiring tenant approval needs someone who can approve:
    /// a live account key holding `account-tenant-approval` (`NO_TENANT_APPROVER`).
    pub async fn update_account(&self, account_id: &str, update: AccountUpdate) -> EngineResult<AccountView> {
        let mut account = self.store.account(account_id).await?.ok_or_else(account_not_found)?;
        if update.tenant_creation_requires_approval == Some(true)
            && !account.tenant_creation_requires_approval
            && self.store.count_account_keys_with_role(account_id, Role::AccountTenantApproval).await? == 0
        {
            return Err(Problem::bad_request("NO_TENANT_APPROVER")
                .message("Tenant approval needs at least one API key with the account-tenant-approval role.")
                .into());
        }
        if let Some(name) = update.company_name {
            account.company_name = name;
        }
        account.billing_first_name = update.billing_first_name;
        account.billing_last_name = update.billing_last_name;
        if let Some(address) = update.billing_address {
            account.billing_address = address;
        }
        if let Some(flag) = update.tenant_creation_requires_approval {
            account.tenant_creation_requires_approval = flag;
        }
        account.updated_at = self.now_ms();
        self.store.update_account(&account).await?;
        self.account(account_id).await
    }
}
