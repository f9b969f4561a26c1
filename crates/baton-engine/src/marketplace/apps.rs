//! The marketplace and installed apps (SPEC §4.4, §4.5).

use std::collections::HashSet;

use baton_connectors::{AppDescriptor, MarketplaceFilter, ValidConfig};
use baton_domain::{AppId, Direction, Problem};
use baton_store::{AppLimits, InstalledAppRecord, StoreError};
use serde_json::{Map, Value};

use crate::{Engine, EngineError, EngineResult};

/// An app as the marketplace shows it to one tenant.
#[derive(Debug, Clone, Copy)]
pub struct MarketplaceApp {
    pub app: &'static AppDescriptor,
    /// Whether the calling tenant has installed it.
    pub installed: bool,
}

/// One line of `GET /v1/apps/installed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledAppSummary {
    pub app_id: String,
    pub name: String,
    pub configured: bool,
    pub installed_at: i64,
}

/// An installed app with its configuration as clients may see it.
#[derive(Debug, Clone)]
pub struct InstalledAppView {
    pub app: &'static AppDescriptor,
    pub configured: bool,
    pub installed_at: i64,
    pub updated_at: i64,
    /// The configuration with every secret replaced by [`baton_connectors::MASK`];
    /// `None` until the app is configured.
    pub configuration: Option<Value>,
}

/// `404 APP_NOT_FOUND`: no app of the marketplace has this id.
pub(crate) fn app_not_found(app_id: &str) -> Problem {
    Problem::not_found("APP_NOT_FOUND")
        .message("No app of the marketplace has the id {appId}.")
        .detail("appId", app_id.chars().take(64).collect::<String>())
}

/// `404 APP_NOT_INSTALLED`: the tenant has not installed this app.
pub(crate) fn app_not_installed(app_id: &str) -> Problem {
    Problem::not_found("APP_NOT_INSTALLED")
        .message("The app {appId} is not installed.")
        .detail("appId", app_id.chars().take(64).collect::<String>())
}

/// The registered app with this (client-supplied) id, or `404 APP_NOT_FOUND`.
pub(crate) fn registered_app(app_id: &str) -> Result<&'static AppDescriptor, Problem> {
    AppId::parse(app_id).ok().and_then(|id| baton_connectors::find(&id)).ok_or_else(|| app_not_found(app_id))
}

/// What the master key binds sealed secrets to: the owning tenant and app, so that a
/// ciphertext copied to another row does not open.
fn secrets_aad(tenant_id: &str, app_id: &str) -> Vec<u8> {
    format!("installed-app:{tenant_id}:{app_id}").into_bytes()
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_none_or(Map::is_empty)
}

impl Engine {
    /// The apps of the marketplace that pass `filter`, in marketplace order, each marked
    /// installed or not for the tenant.
    pub async fn marketplace_apps(
        &self,
        tenant_id: &str,
        filter: &MarketplaceFilter,
    ) -> EngineResult<Vec<MarketplaceApp>> {
        let installed: HashSet<String> =
            self.store.installed_apps(tenant_id).await?.into_iter().map(|r| r.app_id).collect();
        Ok(baton_connectors::registry()
            .iter()
            .filter(|app| app.matches(filter))
            .map(|app| MarketplaceApp { app, installed: installed.contains(app.app_id) })
            .collect())
    }

    /// One app of the marketplace (`404 APP_NOT_FOUND`).
    pub async fn marketplace_app(&self, tenant_id: &str, app_id: &str) -> EngineResult<MarketplaceApp> {
        let app = registered_app(app_id)?;
        let installed = self.store.installed_app(tenant_id, app.app_id).await?.is_some();
        Ok(MarketplaceApp { app, installed })
    }

    /// Installs an app for the tenant, optionally with its configuration (validated as
    /// for [`Engine::configure_app`]). `409 APP_ALREADY_INSTALLED`; `402
    /// LICENSE_LIMIT_EXCEEDED` when the account already has as many collect (DEBIT) or
    /// payout (CREDIT) apps as its licence allows.
    pub async fn install_app(
        &self,
        account_id: &str,
        tenant_id: &str,
        app_id: &str,
        configuration: Option<&Value>,
    ) -> EngineResult<InstalledAppView> {
        let app = registered_app(app_id)?;
        let valid = configuration.map(|c| app.validate_config(c)).transpose()?;
        if self.store.installed_app(tenant_id, app.app_id).await?.is_some() {
            return Err(already_installed(app).into());
        }
        let license = self.license(account_id).await?;
        let limits = AppLimits { max_collect_apps: license.max_collect_apps, max_payout_apps: license.max_payout_apps };
        let now = self.now_ms();
        let (config_public, config_secrets_sealed) = match &valid {
            Some(v) => {
                let (public, sealed) = self.seal_config(tenant_id, app, v)?;
                (Some(public), sealed)
            }
            None => (None, None),
        };
        let record = InstalledAppRecord {
            tenant_id: tenant_id.to_string(),
            app_id: app.app_id.to_string(),
            can_debit: app.supports(Direction::Debit),
            can_credit: app.supports(Direction::Credit),
            config_public,
            config_secrets_sealed,
            installed_at: now,
            updated_at: now,
        };
        match self.store.install_app(account_id, &record, limits).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(already_installed(app).into()),
            Err(StoreError::LimitExceeded) => return Err(license_limit(app, limits).into()),
            Err(e) => return Err(e.into()),
        }
        Ok(InstalledAppView {
            app,
            configured: valid.is_some(),
            installed_at: now,
            updated_at: now,
            configuration: valid.map(|v| v.masked()),
        })
    }

    /// The tenant's installed apps, in installation order.
    pub async fn installed_apps(&self, tenant_id: &str) -> EngineResult<Vec<InstalledAppSummary>> {
        Ok(self
            .store
            .installed_apps(tenant_id)
            .await?
            .into_iter()
            .map(|r| InstalledAppSummary {
                name: baton_connectors::find_str(&r.app_id).map_or_else(|| r.app_id.clone(), |a| a.name.to_string()),
                configured: r.config_public.is_some(),
                installed_at: r.installed_at,
                app_id: r.app_id,
            })
            .collect())
    }

    /// One installed app with its configuration, secrets masked (`404 APP_NOT_INSTALLED`).
    pub async fn installed_app(&self, tenant_id: &str, app_id: &str) -> EngineResult<InstalledAppView> {
        let (app, record) = self.installed_record(tenant_id, app_id).await?;
        let configuration = match &record.config_public {
            None => None,
            Some(_) => Some(self.stored_config(&record)?.masked()),
        };
        Ok(InstalledAppView {
            app,
            configured: record.config_public.is_some(),
            installed_at: record.installed_at,
            updated_at: record.updated_at,
            configuration,
        })
    }

    /// Replaces an installed app's configuration after validating it against the app's
    /// schema (one problem per bad field). A secret sent back as the mask keeps its
    /// stored value. Returns the new configuration, secrets masked.
    pub async fn configure_app(&self, tenant_id: &str, app_id: &str, configuration: &Value) -> EngineResult<Value> {
        let (app, record) = self.installed_record(tenant_id, app_id).await?;
        let previous = self.stored_config(&record)?.secrets;
        let valid = app.validate_config_update(configuration, &previous)?;
        let (public, sealed) = self.seal_config(tenant_id, app, &valid)?;
        if !self.store.configure_app(tenant_id, app.app_id, &public, sealed.as_deref(), self.now_ms()).await? {
            return Err(app_not_installed(app.app_id).into());
        }
        Ok(valid.masked())
    }

    /// Uninstalls an app: `400 APP_IN_USE` while any scheme draft references it.
    pub async fn uninstall_app(&self, tenant_id: &str, app_id: &str) -> EngineResult<MarketplaceApp> {
        let app = registered_app(app_id).map_err(|_| app_not_installed(app_id))?;
        match self.store.uninstall_app(tenant_id, app.app_id).await {
            Ok(true) => Ok(MarketplaceApp { app, installed: false }),
            Ok(false) => Err(app_not_installed(app.app_id).into()),
            Err(StoreError::InUse(_)) => Err(Problem::bad_request("APP_IN_USE")
                .message("The app {appId} is used by a scheme draft; remove it from every draft first.")
                .detail("appId", app.app_id)
                .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The registered app and its installation record (`404 APP_NOT_INSTALLED`, also for
    /// ids that name no app).
    pub(crate) async fn installed_record(
        &self,
        tenant_id: &str,
        app_id: &str,
    ) -> EngineResult<(&'static AppDescriptor, InstalledAppRecord)> {
        let app = registered_app(app_id).map_err(|_| app_not_installed(app_id))?;
        let record =
            self.store.installed_app(tenant_id, app.app_id).await?.ok_or_else(|| app_not_installed(app.app_id))?;
        Ok((app, record))
    }

    /// The stored configuration, secrets opened (both parts `{}` when unconfigured).
    pub(crate) fn stored_config(&self, record: &InstalledAppRecord) -> EngineResult<ValidConfig> {
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            EngineError::Internal(anyhow::anyhow!(
                "{what} of app {} of tenant {}: {e}",
                record.app_id,
                record.tenant_id
            ))
        };
        let public = match &record.config_public {
            Some(text) => serde_json::from_str(text).map_err(|e| internal("cannot read the configuration", &e))?,
            None => Value::Object(Map::new()),
        };
        let secrets = match &record.config_secrets_sealed {
            Some(sealed) => {
                let bytes = self
                    .master_key
                    .open(sealed, &secrets_aad(&record.tenant_id, &record.app_id))
                    .map_err(|e| internal("cannot open the secrets", &e))?;
                serde_json::from_slice(&bytes).map_err(|e| internal("cannot read the secrets", &e))?
            }
            None => Value::Object(Map::new()),
        };
        Ok(ValidConfig { public, secrets })
    }

    /// The public part as JSON text and the secrets sealed under the master key
    /// (`None` when there are none).
    fn seal_config(
        &self,
        tenant_id: &str,
        app: &AppDescriptor,
        valid: &ValidConfig,
    ) -> EngineResult<(String, Option<Vec<u8>>)> {
        let public = serde_json::to_string(&valid.public).map_err(|e| EngineError::Internal(e.into()))?;
        let sealed = if is_empty_object(&valid.secrets) {
            None
        } else {
            let bytes = serde_json::to_vec(&valid.secrets).map_err(|e| EngineError::Internal(e.into()))?;
            Some(self.master_key.seal(&bytes, &secrets_aad(tenant_id, app.app_id)))
        };
        Ok((public, sealed))
    }
}

fn already_installed(app: &AppDescriptor) -> Problem {
    Problem::conflict("APP_ALREADY_INSTALLED")
        .message("The app {appId} is already installed.")
        .detail("appId", app.app_id)
}

/// `402 LICENSE_LIMIT_EXCEEDED`, naming the limits that apply to the app.
fn license_limit(app: &AppDescriptor, limits: AppLimits) -> Problem {
    let mut parts = Vec::new();
    if app.supports(Direction::Debit) && limits.max_collect_apps >= 0 {
        parts.push(format!("{} collect apps", limits.max_collect_apps));
    }
    if app.supports(Direction::Credit) && limits.max_payout_apps >= 0 {
        parts.push(format!("{} payout apps", limits.max_payout_apps));
    }
    Problem::payment_required("LICENSE_LIMIT_EXCEEDED")
        .message("The licence allows at most {limit}.")
        .detail("limit", parts.join(" and "))
        .detail("appId", app.app_id)
        .detail("maxCollectApps", limits.max_collect_apps.to_string())
        .detail("maxPayoutApps", limits.max_payout_apps.to_string())
}
