//! The look and data collection of the hosted page for a tenant.
//!
//! Until tenants can save theme templates (`/v1/whitelabel/theme-template`), every
//! tenant gets the built-in default below; [`page_theme`] is the one place that asks
//! for a tenant's theme, so the saved one plugs in here.

use baton_engine::Engine;

/// What the page needs of a tenant's theme.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageTheme {
    /// The tenant's stylesheet (already sanitised: nothing that loads or runs anything),
    /// applied after the default one. Empty for the default look.
    pub stylesheet: String,
    /// `ccDataCollectionOptions.cardholderName`.
    pub collect_cardholder_name: bool,
    /// `ccDataCollectionOptions.billingAddress`.
    pub collect_billing_address: bool,
    /// Origins allowed to embed the page (`frame-ancestors`) and to receive its messages.
    pub allowed_origins: Vec<String>,
}

/// The built-in theme: the default look, the card holder's name asked for, no billing
/// address, embeddable by Baton's own pages only.
pub fn default_theme() -> PageTheme {
    PageTheme {
        stylesheet: String::new(),
        collect_cardholder_name: true,
        collect_billing_address: false,
        allowed_origins: Vec::new(),
    }
}

/// The theme of `tenant_id`'s pages: the saved theme template, or the default when
/// none is saved (or it cannot be read, which is logged).
pub async fn page_theme(engine: &Engine, tenant_id: &str) -> PageTheme {
    match engine.checkout_theme(tenant_id).await {
        Ok(theme) => PageTheme {
            stylesheet: theme.style_sheet,
            collect_cardholder_name: theme.cc_data_collection_options.cardholder_name,
            collect_billing_address: theme.cc_data_collection_options.billing_address,
            allowed_origins: theme.allowed_origins,
        },
        Err(e) => {
            tracing::error!(tenant_id, error = %e, "theme template unreadable; the default theme is used");
            default_theme()
        }
    }
}
