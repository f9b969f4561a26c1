//! Baton's connectors: the registry of apps that the marketplace lists and tenants install.
//!
//! Each app lives in its own module and declares one `const` [`AppDescriptor`]: its
//! capabilities (type, directions, payment methods, networks, transaction types,
//! countries, currencies), its icon and its configuration schema. Adding an app means
//! adding its module and one line to [`REGISTRY`]. Nothing here knows about tenants or
//! the HTTP API.
//!
//! Assets served by the HTTP layer (all self-contained SVG, no third-party URLs):
//! - an app's icon: [`AppDescriptor::icon_svg`];
//! - a payment method's icon: [`payment_method_icon_svg`];
//! - a sample reward's brand image at `/assets/rewards/<brandKey>.svg`:
//!   [`sandbox_rewards::brand_image_svg`].

pub mod config;
pub mod connector;
pub mod descriptor;
pub mod http_client;
mod icons;
pub mod rewards;
pub mod sandbox_bank;
pub mod sandbox_card;
pub mod sandbox_rewards;
pub mod stripe;

use baton_domain::AppId;

pub use config::{
    ConfigField, ConfigSchema, DefaultValue, FieldKind, MerchantAccountSetting, ValidConfig, MASK, MAX_STRING_CHARS,
};
pub use connector::{
    AppCredentials, CallContext, Connector, ConnectorError, DisputeAction, DisputeRequest, EvidenceDocument, FollowUp,
    IncomingNotification, Notification, NotificationError, Outcome, PaymentRequest, RefundRequest, RefundSyncRequest,
    SyncRequest, Tokenized,
};
pub use descriptor::{AppDescriptor, MarketplaceFilter, Network, PaymentMethod, Settlement};
pub use rewards::{Brand, BrandRequirements, CatalogReward, ImageUrl, RewardType, CREDENTIAL_TYPES, TEXT_LANGUAGE};

/// The developer of the built-in sandbox apps.
pub const BATON_DEVELOPER_ID: &str = "6f1c0a52-3e0b-4d8e-9a57-2b7c4e1d9f30";
pub const BATON_DEVELOPER_NAME: &str = "Baton";

/// Every app Baton knows, in marketplace order.
pub static REGISTRY: &[AppDescriptor] =
    &[sandbox_card::DESCRIPTOR, sandbox_bank::DESCRIPTOR, sandbox_rewards::DESCRIPTOR, stripe::DESCRIPTOR];

/// Every app Baton knows, in marketplace order.
pub fn registry() -> &'static [AppDescriptor] {
    REGISTRY
}

/// The app with this id (ids are normalised by [`AppId::parse`]: `sandbox-card` works).
pub fn find(app_id: &AppId) -> Option<&'static AppDescriptor> {
    find_str(app_id.as_str())
}

/// Like [`find`] for raw input: case-insensitive, `-` ≡ `_`.
pub fn find_str(app_id: &str) -> Option<&'static AppDescriptor> {
    let id = AppId::parse(app_id).ok()?;
    REGISTRY.iter().find(|a| a.app_id == id.as_str())
}

/// The connectors of the apps a node can run, by app id. The standard set implements
/// every registered app; tests may replace one (a PSP that blocks, say).
#[derive(Clone)]
pub struct Connectors {
    by_app: std::collections::BTreeMap<&'static str, std::sync::Arc<dyn Connector>>,
}

impl Connectors {
    /// The built-in connectors.
    pub fn standard() -> Self {
        let mut c = Self { by_app: Default::default() };
        c.insert(std::sync::Arc::new(sandbox_card::SandboxCard));
        c.insert(std::sync::Arc::new(sandbox_bank::SandboxBank));
        c.insert(std::sync::Arc::new(sandbox_rewards::SandboxRewards));
        c.insert(std::sync::Arc::new(stripe::Stripe::new()));
        c
    }

    /// Adds or replaces the connector of its descriptor's app.
    pub fn insert(&mut self, connector: std::sync::Arc<dyn Connector>) {
        self.by_app.insert(connector.descriptor().app_id, connector);
    }

    pub fn get(&self, app_id: &str) -> Option<&std::sync::Arc<dyn Connector>> {
        self.by_app.get(app_id)
    }
}

impl Default for Connectors {
    fn default() -> Self {
        Self::standard()
    }
}

/// The icon of a payment method offered by any registered app (`None` if no app offers
/// it): a generated badge. `method_id` matches case-insensitively (`-` ≡ `_`) and may carry
/// the `.svg` suffix.
pub fn payment_method_icon_svg(method_id: &str) -> Option<String> {
    let id = method_id.strip_suffix(".svg").unwrap_or(method_id);
    let method = REGISTRY.iter().find_map(|a| a.method(id))?;
    let short = match method.id {
        "VISA" => "VISA".to_string(),
        "MASTERCARD" => "MC".to_string(),
        "AMERICAN-EXPRESS" => "AMEX".to_string(),
        "DISCOVER" => "DISC".to_string(),
        "MAESTRO" => "MAES".to_string(),
        "PAYPAL" => "PP".to_string(),
        _ => icons::initials(method.name),
    };
    Some(icons::badge_svg(method.name, &short, method.id))
}

#[cfg(test)]
mod tests;
