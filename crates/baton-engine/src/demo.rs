//! Demo data (`baton init --demo`): besides the account, a tenant ready to take payments
//! in the sandbox, so that a new user can create an order and execute it at once.
//!
//! Everything is made through the same use cases the API calls: the tenant, the three
//! sandbox apps installed and configured, a funded reward account, a reward group, a
//! published collect scheme and payout scheme, and a tenant key with every tenant role.

use baton_connectors::sandbox_rewards;
use baton_domain::{KeyKind, Role, SchemeKind, TenantName, TenantStatus};
use baton_store::KeyOwner;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use crate::marketplace::rewards::{RewardAccountRequest, RewardGroupInput as GroupInput};
use crate::schemes::{AppEntryInput, DraftInput, RewardGroupInput, RuleInput};
use crate::{Engine, EngineResult, InitialCredentials, KeyRequest, TenantInput};

/// The demo tenant's name.
pub const DEMO_TENANT_NAME: &str = "Demo";
/// What the demo reward account is funded with, in USD.
pub const DEMO_REWARD_FUNDS: i64 = 10_000;

/// The demo tenant and its key, shown once. `Debug` hides the private key.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoTenant {
    pub tenant_id: String,
    pub public_key: String,
    pub private_key: String,
    pub collect_scheme_id: String,
    pub payout_scheme_id: String,
    pub reward_group_id: String,
}

impl std::fmt::Debug for DemoTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoTenant")
            .field("tenant_id", &self.tenant_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"[redacted]")
            .field("collect_scheme_id", &self.collect_scheme_id)
            .field("payout_scheme_id", &self.payout_scheme_id)
            .field("reward_group_id", &self.reward_group_id)
            .finish()
    }
}

/// `baton init --demo --json`: `{accountId, publicKey, privateKey, tenant: {…}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoCredentials {
    #[serde(flatten)]
    pub account: InitialCredentials,
    pub tenant: DemoTenant,
}

fn rule(apps: &[&str], reward_group_id: Option<&str>) -> RuleInput {
    RuleInput {
        apps: apps
            .iter()
            .enumerate()
            .map(|(i, app)| AppEntryInput {
                app_id: Some(app.to_string()),
                priority: Some(i as i64 + 1),
                ..Default::default()
            })
            .collect(),
        reward_groups: reward_group_id
            .map(|id| vec![RewardGroupInput { reward_group_id: Some(id.to_string()), exclusions: Vec::new() }])
            .unwrap_or_default(),
        ..Default::default()
    }
}

impl Engine {
    /// Initialises the database (see [`Engine::initialize`]) and adds the demo tenant.
    pub async fn initialize_demo(&self) -> EngineResult<DemoCredentials> {
        let account = self.initialize().await?;
        let tenant = self.create_demo_tenant(&account.account_id).await?;
        Ok(DemoCredentials { account, tenant })
    }

    /// Creates the demo tenant in `account_id` (approving it if the account requires
    /// approval), ready to collect and pay out in the sandbox.
    pub async fn create_demo_tenant(&self, account_id: &str) -> EngineResult<DemoTenant> {
        let name = TenantName::parse(Some(DEMO_TENANT_NAME))?;
        let tenant = self.create_tenant(account_id, TenantInput { name, address: None }).await?;
        let tenant_id = tenant.tenant_id.as_str();
        if tenant.status == TenantStatus::PendingApproval {
            self.decide_tenant(account_id, tenant_id, true, None).await?;
        }

        let card = baton_connectors::sandbox_card::APP_ID;
        let bank = baton_connectors::sandbox_bank::APP_ID;
        let rewards = sandbox_rewards::APP_ID;
        self.install_app(account_id, tenant_id, card, Some(&json!({"merchantName": "Baton Demo"}))).await?;
        let bank_config = json!({"creditorName": "Baton Demo", "creditorId": "DE98ZZZ09999999999"});
        self.install_app(account_id, tenant_id, bank, Some(&bank_config)).await?;
        self.install_app(account_id, tenant_id, rewards, Some(&json!({"accountName": "Baton Demo rewards"}))).await?;
        self.create_reward_account(tenant_id, rewards, RewardAccountRequest::default()).await?;
        self.deposit_funds(tenant_id, rewards, Decimal::from(DEMO_REWARD_FUNDS)).await?;

        let active: Vec<&str> =
            sandbox_rewards::catalog().iter().filter(|r| r.status_active).map(|r| r.reward_id.as_str()).collect();
        let group = self
            .create_reward_group(
                tenant_id,
                GroupInput { name: Some("Demo rewards".into()), rewards: Some(json!(active)) },
            )
            .await?;

        let collect = DraftInput {
            name: Some("Demo collect".into()),
            code: Some("DEMO-COLLECT".into()),
            rules: vec![rule(&[card, bank], None)],
        };
        let collect_scheme_id = self.create_published_scheme(tenant_id, SchemeKind::Collect, collect).await?;
        let payout = DraftInput {
            name: Some("Demo payout".into()),
            code: Some("DEMO-PAYOUT".into()),
            rules: vec![rule(&[card, bank, rewards], Some(&group.reward_group_id))],
        };
        let payout_scheme_id = self.create_published_scheme(tenant_id, SchemeKind::Payout, payout).await?;

        let roles = Role::ALL.iter().filter(|r| r.kind() == Some(KeyKind::Tenant)).map(|r| r.as_str().to_string());
        let key = self
            .create_api_key(
                KeyOwner::Tenant { account_id: account_id.to_string(), tenant_id: tenant_id.to_string() },
                KeyRequest { name: Some("Demo key".into()), roles: roles.collect() },
            )
            .await?;
        tracing::info!(tenant_id, "demo tenant created");
        Ok(DemoTenant {
            tenant_id: tenant_id.to_string(),
            public_key: key.key.public_key,
            private_key: key.private_key,
            collect_scheme_id,
            payout_scheme_id,
            reward_group_id: group.reward_group_id,
        })
    }

    /// Creates a scheme with `draft` and publishes it; returns the scheme's id.
    async fn create_published_scheme(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        draft: DraftInput,
    ) -> EngineResult<String> {
        let scheme = self.create_scheme(tenant_id, kind, draft).await?;
        let draft_id = scheme.drafts.first().map(|d| d.draft_id.clone()).unwrap_or_default();
        self.publish_draft(tenant_id, kind, &scheme.scheme_id, &draft_id).await?;
        Ok(scheme.scheme_id)
    }
}
