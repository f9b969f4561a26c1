//! The look and data collection of the hosted page for a tenant.
//!
//! [`page_theme`] is the one place that asks for a tenant's theme: the template saved
//! with `PUT /v1/whitelabel/theme-template` (sanitised on save), or the built-in
//! default below when none is.

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

/// The theme of `tenant_id`'s pages: the brand colour as the page's accent, the card
/// field styles, then the tenant's stylesheet (last, so it wins). A theme that cannot
/// be read falls back to the default look rather than failing the payment.
pub async fn page_theme(engine: &Engine, tenant_id: &str) -> PageTheme {
    let theme = match engine.checkout_theme(tenant_id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(tenant_id, error = %e, "the tenant's theme cannot be read; the default applies");
            return default_theme();
        }
    };
    let mut stylesheet = String::new();
    if theme.brand_color != baton_engine::theme::DEFAULT_BRAND_COLOR {
        stylesheet.push_str(&format!(":root{{--accent:{}}}", theme.brand_color));
    }
    stylesheet.push_str(&theme.input_field_css("#card-form"));
    stylesheet.push_str(&theme.style_sheet);
    PageTheme {
        stylesheet,
        collect_cardholder_name: theme.cc_data_collection_options.cardholder_name,
        collect_billing_address: theme.cc_data_collection_options.billing_address,
        allowed_origins: theme.allowed_origins,
    }
}
