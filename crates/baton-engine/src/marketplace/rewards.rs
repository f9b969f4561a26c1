//! REWARD apps: their funding accounts (SPEC §4.5), reward groups (§4.7) and the
//! catalogue (§4.8).

use std::collections::HashMap;

use baton_connectors::{sandbox_rewards, AppDescriptor, CatalogReward};
use baton_domain::{fits_amount, Amount, AppType, Country, Currency, MatchType, Problem};
use baton_store::{RewardAccountRecord, RewardGroupMember, RewardGroupRecord, StoreError};
use rust_decimal::Decimal;
use serde_json::Value;

use super::apps::{app_not_installed, registered_app};
use crate::{new_id, Engine, EngineError, EngineResult};

/// The currency of new reward accounts.
pub const ACCOUNT_CURRENCY: Currency = Currency::USD;
/// The largest single deposit, in major units.
pub const MAX_DEPOSIT: i64 = 1_000_000_000;
/// The longest customer or account identifier.
pub const MAX_IDENTIFIER: usize = 100;
/// The longest reward group name.
pub const MAX_GROUP_NAME: usize = 100;

/// `POST …/account`: identifiers of an existing provider account to reuse; blank or
/// absent ones are generated.
#[derive(Debug, Clone, Default)]
pub struct RewardAccountRequest {
    pub customer_identifier: Option<String>,
    pub account_identifier: Option<String>,
}

/// A REWARD app's funding account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardAccountView {
    pub app_id: String,
    pub customer_identifier: String,
    pub account_identifier: String,
    pub balance: Amount,
}

/// A reward group create or update as sent: `rewards` is the raw JSON list, whose
/// entries are `{rewardId, enabled}` objects or plain reward ids (enabled).
#[derive(Debug, Clone, Default)]
pub struct RewardGroupInput {
    pub name: Option<String>,
    pub rewards: Option<Value>,
}

pub type RewardGroupView = RewardGroupRecord;

/// `GET /v1/catalog/search`, parsed: the app is required, the rest narrows the result.
#[derive(Debug, Clone, Default)]
pub struct CatalogSearch {
    pub app_id: Option<String>,
    /// Case-insensitive substring of the brand name.
    pub brand_name: Option<String>,
    /// Any overlap with a reward's countries; empty = any.
    pub countries: Vec<Country>,
    /// Membership of a reward's currency; empty = any.
    pub currencies: Vec<Currency>,
    /// Matched by the `Exact` rule.
    pub amount: Option<Decimal>,
    pub show_inactive: bool,
}

/// The catalogue of a REWARD app (empty for apps without one).
pub fn app_catalog(app: &AppDescriptor) -> &'static [CatalogReward] {
    if app.app_id == sandbox_rewards::APP_ID {
        sandbox_rewards::catalog()
    } else {
        &[]
    }
}

fn not_a_reward_app(app: &AppDescriptor) -> Problem {
    Problem::bad_request("NOT_A_REWARD_APP")
        .message("The app {appId} is not a REWARD app.")
        .detail("appId", app.app_id)
        .detail("appType", app.app_type.as_str())
}

fn account_not_found(app_id: &str) -> Problem {
    Problem::not_found("ACCOUNT_NOT_FOUND").message("The app {appId} has no account yet.").detail("appId", app_id)
}

fn group_not_found() -> Problem {
    Problem::not_found("REWARD_GROUP_NOT_FOUND").message("No such reward group.")
}

fn group_name_taken() -> Problem {
    Problem::conflict("REWARD_GROUP_NAME_ALREADY_EXISTS")
        .message("A reward group with this name already exists.")
        .detail("field", "name")
}

/// An identifier to reuse, or `None` to generate one.
fn identifier(input: Option<&str>, code: &'static str, field: &str) -> Result<Option<String>, Problem> {
    let Some(s) = input.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    let ok = s.chars().count() <= MAX_IDENTIFIER
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(Some(s.to_string()))
    } else {
        Err(Problem::invalid_field(code, field, "{field} must be 1 to {limit} letters, digits or . _ : -.")
            .detail("limit", MAX_IDENTIFIER.to_string()))
    }
}

fn generated_identifier(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

fn account_view(r: RewardAccountRecord) -> EngineResult<RewardAccountView> {
    let currency = r.currency.parse::<Currency>().map_err(|_| {
        EngineError::Internal(anyhow::anyhow!("reward account of tenant {} has currency {:?}", r.tenant_id, r.currency))
    })?;
    Ok(RewardAccountView {
        app_id: r.app_id,
        customer_identifier: r.customer_identifier,
        account_identifier: r.account_identifier,
        balance: Amount { minor: r.balance_minor, currency },
    })
}

/// Looks up a key of a JSON object ignoring case (`null` counts as absent).
fn get_ci<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter().find(|(k, v)| k.trim().eq_ignore_ascii_case(name) && !v.is_null()).map(|(_, v)| v)
}

/// Parses a group name, pushing its problems.
fn group_name(input: Option<&str>, problems: &mut Vec<Problem>) -> Option<String> {
    let name = input.unwrap_or("").trim();
    if name.is_empty() {
        problems.push(Problem::invalid_field("REWARD_GROUP_NAME_REQUIRED", "name", "{field} is required."));
        None
    } else if name.chars().count() > MAX_GROUP_NAME || name.chars().any(char::is_control) {
        problems.push(
            Problem::invalid_field(
                "INVALID_REWARD_GROUP_NAME",
                "name",
                "{field} must be at most {limit} printable characters.",
            )
            .detail("limit", MAX_GROUP_NAME.to_string()),
        );
        None
    } else {
        Some(name.to_string())
    }
}

/// Parses a group's rewards against the rewards offered by the tenant's installed
/// REWARD apps, pushing one problem per bad entry. Blank entries are dropped.
fn group_members(
    input: Option<&Value>,
    offered: &HashMap<String, &'static CatalogReward>,
    problems: &mut Vec<Problem>,
) -> Vec<RewardGroupMember> {
    let required = || Problem::invalid_field("REWARDS_REQUIRED", "rewards", "{field} must list at least one reward.");
    let entries = match input {
        None => {
            problems.push(required());
            return Vec::new();
        }
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            problems.push(Problem::invalid_field(
                "INVALID_REWARDS",
                "rewards",
                "{field} must be a list of reward ids or {rewardId, enabled} objects.",
            ));
            return Vec::new();
        }
    };
    let before = problems.len();
    let mut members = Vec::new();
    // Canonical reward id → index of the entry that listed it first.
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("rewards[{i}]");
        let invalid = |field: String| {
            Problem::invalid_field(
                "INVALID_REWARD_ENTRY",
                field,
                "{field} must be a reward id or a {rewardId, enabled} object.",
            )
        };
        let (raw_id, id_path, enabled) = match entry {
            Value::Null => continue,
            Value::String(s) if s.trim().is_empty() => continue,
            Value::String(s) => (s.trim().to_string(), path.clone(), true),
            Value::Object(obj) => {
                let id_path = format!("{path}.rewardId");
                let enabled_path = format!("{path}.enabled");
                let id = match get_ci(obj, "rewardId") {
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                    None | Some(Value::String(_)) => {
                        problems.push(Problem::invalid_field(
                            "REWARD_ID_REQUIRED",
                            id_path.clone(),
                            "{field} is required.",
                        ));
                        None
                    }
                    Some(_) => {
                        problems.push(invalid(id_path.clone()));
                        None
                    }
                };
                let enabled = match get_ci(obj, "enabled") {
                    Some(Value::Bool(b)) => Some(*b),
                    Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Some(true),
                    Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Some(false),
                    None => {
                        problems.push(Problem::invalid_field(
                            "REWARD_ENABLED_REQUIRED",
                            enabled_path,
                            "{field} is required.",
                        ));
                        None
                    }
                    Some(_) => {
                        problems.push(Problem::invalid_field(
                            "INVALID_REWARD_ENTRY",
                            enabled_path,
                            "{field} must be true or false.",
                        ));
                        None
                    }
                };
                match (id, enabled) {
                    (Some(id), Some(enabled)) => (id, id_path, enabled),
                    _ => continue,
                }
            }
            _ => {
                problems.push(invalid(path));
                continue;
            }
        };
        let Some(&reward) = offered.get(&raw_id.to_ascii_lowercase()) else {
            problems.push(
                Problem::invalid_field(
                    "REWARD_NOT_FOUND",
                    id_path,
                    "{field}: no installed reward app offers the reward {rewardId}.",
                )
                .detail("rewardId", raw_id.chars().take(64).collect::<String>()),
            );
            continue;
        };
        if let Some(first) = seen.get(reward.reward_id.as_str()) {
            problems.push(
                Problem::invalid_field("DUPLICATE_REWARD", id_path, "{field} repeats the reward of {duplicateOf}.")
                    .detail("duplicateOf", format!("rewards[{first}]")),
            );
            continue;
        }
        seen.insert(&reward.reward_id, i);
        members.push(RewardGroupMember { reward_id: reward.reward_id.clone(), enabled });
    }
    if members.is_empty() && problems.len() == before {
        problems.push(required());
    }
    members
}

impl Engine {
    /// The tenant's installed REWARD apps, in installation order.
    pub(crate) async fn installed_reward_apps(&self, tenant_id: &str) -> EngineResult<Vec<&'static AppDescriptor>> {
        Ok(self
            .store
            .installed_apps(tenant_id)
            .await?
            .iter()
            .filter_map(|r| baton_connectors::find_str(&r.app_id))
            .filter(|a| a.app_type == AppType::Reward)
            .collect())
    }

    /// Every reward (active or not) offered by the tenant's installed REWARD apps, by
    /// lowercase reward id.
    pub(crate) async fn offered_rewards(
        &self,
        tenant_id: &str,
    ) -> EngineResult<HashMap<String, &'static CatalogReward>> {
        let apps = self.installed_reward_apps(tenant_id).await?;
        Ok(apps.into_iter().flat_map(app_catalog).map(|r| (r.reward_id.to_ascii_lowercase(), r)).collect())
    }

    /// The installed REWARD app named by a path id: `400 NOT_A_REWARD_APP` for other
    /// apps, `404 APP_NOT_INSTALLED` when not installed (or unknown).
    async fn installed_reward_app(&self, tenant_id: &str, app_id: &str) -> EngineResult<&'static AppDescriptor> {
        let app = registered_app(app_id).map_err(|_| app_not_installed(app_id))?;
        if app.app_type != AppType::Reward {
            return Err(not_a_reward_app(app).into());
        }
        self.store.installed_app(tenant_id, app.app_id).await?.ok_or_else(|| app_not_installed(app.app_id))?;
        Ok(app)
    }

    /// Opens the REWARD app's funding account: zero balance, in USD. `409
    /// ACCOUNT_ALREADY_EXISTS` if the tenant has one for this app.
    pub async fn create_reward_account(
        &self,
        tenant_id: &str,
        app_id: &str,
        request: RewardAccountRequest,
    ) -> EngineResult<RewardAccountView> {
        let app = self.installed_reward_app(tenant_id, app_id).await?;
        let customer =
            identifier(request.customer_identifier.as_deref(), "INVALID_CUSTOMER_IDENTIFIER", "customerIdentifier");
        let account =
            identifier(request.account_identifier.as_deref(), "INVALID_ACCOUNT_IDENTIFIER", "accountIdentifier");
        let (customer, account) = match (customer, account) {
            (Ok(c), Ok(a)) => (c, a),
            (c, a) => return Err(c.err().into_iter().chain(a.err()).collect::<Vec<_>>().into()),
        };
        let now = self.now_ms();
        let record = RewardAccountRecord {
            tenant_id: tenant_id.to_string(),
            app_id: app.app_id.to_string(),
            customer_identifier: customer.unwrap_or_else(|| generated_identifier("customer")),
            account_identifier: account.unwrap_or_else(|| generated_identifier("account")),
            currency: ACCOUNT_CURRENCY.as_str().to_string(),
            balance_minor: 0,
            created_at: now,
            updated_at: now,
        };
        match self.store.create_reward_account(&record).await {
            Ok(()) => account_view(record),
            Err(StoreError::Conflict(_)) => Err(Problem::conflict("ACCOUNT_ALREADY_EXISTS")
                .message("The app {appId} already has an account.")
                .detail("appId", app.app_id)
                .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The REWARD app's funding account (`404 ACCOUNT_NOT_FOUND`).
    pub async fn reward_account(&self, tenant_id: &str, app_id: &str) -> EngineResult<RewardAccountView> {
        let app = self.installed_reward_app(tenant_id, app_id).await?;
        let record =
            self.store.reward_account(tenant_id, app.app_id).await?.ok_or_else(|| account_not_found(app.app_id))?;
        account_view(record)
    }

    /// Adds `amount` (> 0, at most the currency's decimals) to the account's balance.
    pub async fn deposit_funds(
        &self,
        tenant_id: &str,
        app_id: &str,
        amount: Decimal,
    ) -> EngineResult<RewardAccountView> {
        if amount <= Decimal::ZERO {
            return Err(Problem::invalid_field("INVALID_AMOUNT", "amount", "{field} must be greater than zero.").into());
        }
        if amount > Decimal::from(MAX_DEPOSIT) {
            return Err(Problem::invalid_field("INVALID_AMOUNT", "amount", "{field} must be at most {limit}.")
                .detail("limit", MAX_DEPOSIT.to_string())
                .into());
        }
        let account = self.reward_account(tenant_id, app_id).await?;
        let deposit = Amount::from_decimal(amount, account.balance.currency, "amount")?;
        let balance = self
            .store
            .adjust_reward_balance(tenant_id, &account.app_id, deposit.minor, self.now_ms())
            .await?
            .ok_or_else(|| account_not_found(&account.app_id))?;
        Ok(RewardAccountView { balance: Amount { minor: balance, ..account.balance }, ..account })
    }

    /// Validates a group's name and rewards; every reward must be offered by an installed
    /// REWARD app (`400 REWARD_NOT_FOUND`). `rewards: None` keeps `current` as it is.
    async fn parse_group(
        &self,
        tenant_id: &str,
        name: Option<&str>,
        rewards: Option<&Value>,
        current: Option<&[RewardGroupMember]>,
    ) -> EngineResult<(String, Vec<RewardGroupMember>)> {
        let mut problems = Vec::new();
        let name = group_name(name, &mut problems);
        let members = match (rewards, current) {
            (None, Some(current)) => current.to_vec(),
            (rewards, _) => group_members(rewards, &self.offered_rewards(tenant_id).await?, &mut problems),
        };
        match name {
            Some(name) if problems.is_empty() => Ok((name, members)),
            _ => Err(problems.into()),
        }
    }

    /// Creates a reward group (`409 REWARD_GROUP_NAME_ALREADY_EXISTS`; names compare
    /// ignoring case).
    pub async fn create_reward_group(&self, tenant_id: &str, input: RewardGroupInput) -> EngineResult<RewardGroupView> {
        let (name, members) = self.parse_group(tenant_id, input.name.as_deref(), input.rewards.as_ref(), None).await?;
        let now = self.now_ms();
        let record = RewardGroupRecord {
            reward_group_id: new_id(),
            tenant_id: tenant_id.to_string(),
            name_key: name.to_lowercase(),
            name,
            members,
            created_at: now,
            updated_at: now,
        };
        match self.store.create_reward_group(&record).await {
            Ok(()) => Ok(record),
            Err(StoreError::Conflict(_)) => Err(group_name_taken().into()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn reward_groups(&self, tenant_id: &str) -> EngineResult<Vec<RewardGroupView>> {
        Ok(self.store.reward_groups(tenant_id).await?)
    }

    /// One reward group (`404 REWARD_GROUP_NOT_FOUND`).
    pub async fn reward_group(&self, tenant_id: &str, reward_group_id: &str) -> EngineResult<RewardGroupView> {
        Ok(self.store.reward_group(tenant_id, reward_group_id).await?.ok_or_else(group_not_found)?)
    }

    /// Renames a group and/or replaces its rewards; an absent field keeps its value.
    pub async fn update_reward_group(
        &self,
        tenant_id: &str,
        reward_group_id: &str,
        input: RewardGroupInput,
    ) -> EngineResult<RewardGroupView> {
        let mut group = self.reward_group(tenant_id, reward_group_id).await?;
        let name = input.name.as_deref().unwrap_or(&group.name).to_string();
        let (name, members) =
            self.parse_group(tenant_id, Some(&name), input.rewards.as_ref(), Some(&group.members)).await?;
        group.name_key = name.to_lowercase();
        group.name = name;
        group.members = members;
        group.updated_at = self.now_ms();
        match self.store.update_reward_group(&group).await {
            Ok(true) => Ok(group),
            Ok(false) => Err(group_not_found().into()),
            Err(StoreError::Conflict(_)) => Err(group_name_taken().into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a group: `400 REWARD_GROUP_IN_USE` while a published payout draft
    /// references it.
    pub async fn delete_reward_group(&self, tenant_id: &str, reward_group_id: &str) -> EngineResult<()> {
        match self.store.delete_reward_group(tenant_id, reward_group_id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(group_not_found().into()),
            Err(StoreError::InUse(_)) => Err(Problem::bad_request("REWARD_GROUP_IN_USE")
                .message("The reward group is used by a published payout scheme draft.")
                .detail("rewardGroupId", reward_group_id)
                .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The active rewards of the tenant's installed REWARD apps.
    pub async fn catalog(&self, tenant_id: &str) -> EngineResult<Vec<&'static CatalogReward>> {
        let apps = self.installed_reward_apps(tenant_id).await?;
        Ok(apps.into_iter().flat_map(app_catalog).filter(|r| r.status_active).collect())
    }

    /// Searches one installed REWARD app's catalogue (`400 APP_ID_IS_REQUIRED`,
    /// `400 APP_NOT_FOUND`, `400 NOT_A_REWARD_APP`).
    pub async fn search_catalog(
        &self,
        tenant_id: &str,
        search: &CatalogSearch,
    ) -> EngineResult<Vec<&'static CatalogReward>> {
        let app_id = search
            .app_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Problem::invalid_field("APP_ID_IS_REQUIRED", "appId", "{field} is required."))?;
        let not_found = || {
            Problem::invalid_field("APP_NOT_FOUND", "appId", "{field}: no installed app has the id {appId}.")
                .detail("appId", app_id.chars().take(64).collect::<String>())
        };
        let app = registered_app(app_id).map_err(|_| not_found())?;
        if self.store.installed_app(tenant_id, app.app_id).await?.is_none() {
            return Err(not_found().into());
        }
        if app.app_type != AppType::Reward {
            return Err(not_a_reward_app(app).detail("field", "appId").into());
        }
        let brand = search.brand_name.as_deref().map(|b| b.trim().to_lowercase()).filter(|b| !b.is_empty());
        Ok(app_catalog(app)
            .iter()
            .filter(|r| search.show_inactive || r.status_active)
            .filter(|r| brand.as_ref().is_none_or(|b| r.brand_name.to_lowercase().contains(b.as_str())))
            .filter(|r| search.countries.is_empty() || r.countries.iter().any(|c| search.countries.contains(c)))
            .filter(|r| search.currencies.is_empty() || search.currencies.contains(&r.currency))
            .filter(|r| search.amount.is_none_or(|a| fits_amount(&r.terms(), a, MatchType::Exact)))
            .collect())
    }
}
