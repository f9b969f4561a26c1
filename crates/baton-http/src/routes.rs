//! The route table: every endpoint with the access it requires, in one place.
//!
//! The router is built from this table (`crate::router`), the OpenAPI document is
//! annotated from it, and a test walks it to check that every route refuses callers
//! without the declared roles.

use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};
use baton_domain::Role::{self, *};

use crate::auth::Access::{self, *};
use crate::handlers::marketplace;
use crate::handlers::{account, api_keys, component, health, identity, tenants, webhooks};
use crate::{docs, AppState};

/// Every account role: for endpoints open to any account key.
const ANY_ACCOUNT_ROLE: &[Role] = &[AccountAdmin, AccountTenantRead, AccountTenantWrite, AccountTenantApproval];
const ACCOUNT_ADMIN: &[Role] = &[AccountAdmin];
const TENANT_READERS: &[Role] = &[AccountTenantRead, AccountTenantApproval];
const TENANT_WRITERS: &[Role] = &[AccountTenantWrite];
const TENANT_APPROVERS: &[Role] = &[AccountTenantApproval];
const TENANT_ADMIN: &[Role] = &[TenantAdmin];

/// One endpoint: method, path template and who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static Method,
    pub path: &'static str,
    pub access: Access,
    /// For an alias kept for older clients: the canonical path it serves exactly as.
    pub alias_of: Option<&'static str>,
}

fn route(
    method: &'static Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> (RouteSpec, MethodRouter<AppState>) {
    (RouteSpec { method, path, access, alias_of: None }, handler)
}

/// An alias of `canonical` (same method, same handler, same access), documented as such.
fn alias(
    method: &'static Method,
    path: &'static str,
    canonical: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> (RouteSpec, MethodRouter<AppState>) {
    (RouteSpec { method, path, access, alias_of: Some(canonical) }, handler)
}

/// The whole API.
pub fn table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Method as M;
    vec![
        // Operations
        route(&M::GET, "/healthz", Public, get(health::healthz)),
        route(&M::GET, "/readyz", Public, get(health::readyz)),
        route(&M::GET, "/metrics", Public, get(health::metrics)),
        route(&M::GET, "/v1/openapi.json", Public, get(docs::openapi_json)),
        route(&M::GET, "/docs", Public, get(docs::reference_page)),
        route(&M::GET, "/docs/reference.css", Public, get(docs::stylesheet)),
        // The embeddable checkout component (SPEC §4.11)
        route(&M::GET, "/checkout.js", Public, get(component::checkout_js)),
        // Identity (SPEC §2)
        route(&M::POST, "/identity/v1/hmac/management", Hmac, post(identity::issue_token)),
        alias(&M::POST, "/identity/v1/hmac/collect", "/identity/v1/hmac/management", Hmac, post(identity::issue_token)),
        alias(&M::POST, "/identity/v1/hmac/payout", "/identity/v1/hmac/management", Hmac, post(identity::issue_token)),
        // Account (SPEC §4.1, §5.6)
        route(&M::GET, "/v1/account", Account(ANY_ACCOUNT_ROLE), get(account::get_account)),
        route(&M::PUT, "/v1/account", Account(ACCOUNT_ADMIN), put(account::update_account)),
        route(&M::GET, "/v1/account/license", Account(ANY_ACCOUNT_ROLE), get(account::get_license)),
        route(&M::GET, "/v1/account/license-history", Account(ACCOUNT_ADMIN), get(account::license_history)),
        route(&M::POST, "/v1/account/keys", Account(ACCOUNT_ADMIN), post(api_keys::create_account_key)),
        route(&M::GET, "/v1/account/keys", Account(ACCOUNT_ADMIN), get(api_keys::list_account_keys)),
        route(&M::GET, "/v1/account/keys/{publicKey}", Account(ACCOUNT_ADMIN), get(api_keys::get_account_key)),
        route(&M::PUT, "/v1/account/keys/{publicKey}", Account(ACCOUNT_ADMIN), put(api_keys::update_account_key)),
        route(&M::DELETE, "/v1/account/keys/{publicKey}", Account(ACCOUNT_ADMIN), delete(api_keys::delete_account_key)),
        // Tenants (SPEC §4.2)
        route(&M::POST, "/v1/account/tenants", Account(TENANT_WRITERS), post(tenants::create_tenant)),
        route(&M::GET, "/v1/account/tenants", Account(TENANT_READERS), get(tenants::list_tenants)),
        route(&M::GET, "/v1/account/tenants/{tenantId}", Account(TENANT_READERS), get(tenants::get_tenant)),
        route(&M::PUT, "/v1/account/tenants/{tenantId}", Account(TENANT_WRITERS), put(tenants::update_tenant)),
        route(&M::DELETE, "/v1/account/tenants/{tenantId}", Account(TENANT_WRITERS), delete(tenants::delete_tenant)),
        route(
            &M::POST,
            "/v1/account/tenants/{tenantId}/approve",
            Account(TENANT_APPROVERS),
            post(tenants::approve_tenant),
        ),
        route(
            &M::POST,
            "/v1/account/tenants/{tenantId}/reject",
            Account(TENANT_APPROVERS),
            post(tenants::reject_tenant),
        ),
        route(&M::GET, "/v1/tenant", Tenant(&[TenantManagement]), get(tenants::current_tenant)),
        // Tenant API keys (SPEC §4.3)
        route(
            &M::POST,
            "/v1/tenant/{tenantId}/keys",
            AccountOrTenant { account: TENANT_WRITERS, tenant: TENANT_ADMIN },
            post(api_keys::create_tenant_key),
        ),
        route(
            &M::GET,
            "/v1/tenant/{tenantId}/keys",
            AccountOrTenant { account: TENANT_READERS, tenant: TENANT_ADMIN },
            get(api_keys::list_tenant_keys),
        ),
        route(
            &M::GET,
            "/v1/tenant/{tenantId}/keys/{publicKey}",
            AccountOrTenant { account: TENANT_READERS, tenant: TENANT_ADMIN },
            get(api_keys::get_tenant_key),
        ),
        route(
            &M::PUT,
            "/v1/tenant/{tenantId}/keys/{publicKey}",
            Account(TENANT_WRITERS),
            put(api_keys::update_tenant_key),
        ),
        route(
            &M::DELETE,
            "/v1/tenant/{tenantId}/keys/{publicKey}",
            AccountOrTenant { account: TENANT_WRITERS, tenant: TENANT_ADMIN },
            delete(api_keys::delete_tenant_key),
        ),
        // Marketplace, installed apps, reward groups and catalog (SPEC §4.4, §4.5, §4.7, §4.8)
        route(&M::GET, "/v1/marketplace/apps", Tenant(&[TenantAppRead]), get(marketplace::apps::list_apps)),
        route(&M::POST, "/v1/marketplace/apps", Tenant(&[TenantAppRead]), post(marketplace::apps::list_apps_post)),
        route(&M::GET, "/v1/marketplace/apps/{appId}", Tenant(&[TenantAppRead]), get(marketplace::apps::get_app)),
        route(
            &M::POST,
            "/v1/marketplace/apps/{appId}",
            Tenant(&[TenantAppRead]),
            post(marketplace::apps::get_app_post),
        ),
        route(
            &M::POST,
            "/v1/marketplace/apps/{appId}/install",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::install_app),
        ),
        alias(
            &M::POST,
            "/marketplace/apps/{appId}/install",
            "/v1/marketplace/apps/{appId}/install",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::install_app),
        ),
        route(&M::GET, "/v1/apps/installed", Tenant(&[TenantAppRead]), get(marketplace::apps::installed_apps)),
        route(&M::GET, "/v1/apps/installed/{appId}", Tenant(&[TenantAppRead]), get(marketplace::apps::installed_app)),
        route(
            &M::POST,
            "/v1/apps/installed/{appId}/configuration",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::configure_app),
        ),
        alias(
            &M::POST,
            "/v1/marketplace/installed/{appId}/configuration",
            "/v1/apps/installed/{appId}/configuration",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::configure_app),
        ),
        alias(
            &M::POST,
            "/v1/marketplace/installed/{appId}/configure",
            "/v1/apps/installed/{appId}/configuration",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::configure_app),
        ),
        alias(
            &M::POST,
            "/marketplace/installed/{appId}/configuration",
            "/v1/apps/installed/{appId}/configuration",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::configure_app),
        ),
        alias(
            &M::POST,
            "/marketplace/installed/{appId}/configure",
            "/v1/apps/installed/{appId}/configuration",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::configure_app),
        ),
        route(
            &M::POST,
            "/v1/apps/installed/{appId}/uninstall",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::uninstall_app),
        ),
        alias(
            &M::POST,
            "/v1/marketplace/installed/{appId}/uninstall",
            "/v1/apps/installed/{appId}/uninstall",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::uninstall_app),
        ),
        alias(
            &M::POST,
            "/marketplace/installed/{appId}/uninstall",
            "/v1/apps/installed/{appId}/uninstall",
            Tenant(&[TenantAppWrite]),
            post(marketplace::apps::uninstall_app),
        ),
        route(
            &M::POST,
            "/v1/apps/installed/{appId}/account",
            Tenant(&[TenantAppWrite]),
            post(marketplace::rewards::create_account),
        ),
        route(
            &M::GET,
            "/v1/apps/installed/{appId}/account",
            Tenant(&[TenantAppRead]),
            get(marketplace::rewards::get_account),
        ),
        route(
            &M::POST,
            "/v1/apps/installed/{appId}/deposit-funds",
            Tenant(&[TenantAppWrite]),
            post(marketplace::rewards::deposit_funds),
        ),
        route(
            &M::POST,
            "/v1/reward-groups",
            Tenant(&[TenantRewardGroupWrite]),
            post(marketplace::rewards::create_reward_group),
        ),
        route(
            &M::GET,
            "/v1/reward-groups",
            Tenant(&[TenantRewardGroupRead]),
            get(marketplace::rewards::list_reward_groups),
        ),
        route(
            &M::GET,
            "/v1/reward-groups/{rewardGroupId}",
            Tenant(&[TenantRewardGroupRead]),
            get(marketplace::rewards::get_reward_group),
        ),
        route(
            &M::PUT,
            "/v1/reward-groups/{rewardGroupId}",
            Tenant(&[TenantRewardGroupWrite]),
            put(marketplace::rewards::update_reward_group),
        ),
        route(
            &M::DELETE,
            "/v1/reward-groups/{rewardGroupId}",
            Tenant(&[TenantRewardGroupWrite]),
            delete(marketplace::rewards::delete_reward_group),
        ),
        route(
            &M::GET,
            "/v1/catalog",
            Tenant(&[TenantRewardGroupRead, TenantPayoutSchemeRead]),
            get(marketplace::rewards::catalog),
        ),
        route(
            &M::GET,
            "/v1/catalog/search",
            Tenant(&[TenantRewardGroupRead, TenantPayoutSchemeRead]),
            get(marketplace::rewards::search_catalog),
        ),
        route(&M::GET, "/assets/apps/{file}", Public, get(marketplace::assets::app_icon)),
        route(&M::GET, "/assets/payment-methods/{file}", Public, get(marketplace::assets::payment_method_icon)),
        route(&M::GET, "/assets/rewards/{file}", Public, get(marketplace::assets::reward_image)),
        // -- end of marketplace routes --
        // Collect and payout schemes (SPEC §4.6)
        route(
            &M::POST,
            "/v1/schemes/collect",
            Tenant(crate::handlers::schemes::COLLECT_WRITE),
            post(crate::handlers::schemes::collect::create_scheme),
        ),
        route(
            &M::GET,
            "/v1/schemes/collect",
            Tenant(crate::handlers::schemes::COLLECT_READ),
            get(crate::handlers::schemes::collect::list_schemes),
        ),
        route(
            &M::GET,
            "/v1/schemes/collect/{schemeId}",
            Tenant(crate::handlers::schemes::COLLECT_READ),
            get(crate::handlers::schemes::collect::get_scheme),
        ),
        route(
            &M::DELETE,
            "/v1/schemes/collect/{schemeId}",
            Tenant(crate::handlers::schemes::COLLECT_WRITE),
            delete(crate::handlers::schemes::collect::delete_scheme),
        ),
        route(
            &M::GET,
            "/v1/schemes/collect/{schemeId}/options",
            Tenant(crate::handlers::schemes::COLLECT_OPTIONS),
            get(crate::handlers::schemes::collect_options),
        ),
        route(
            &M::GET,
            "/v1/schemes/collect/{schemeId}/drafts/published",
            Tenant(crate::handlers::schemes::COLLECT_READ),
            get(crate::handlers::schemes::collect::published_draft),
        ),
        route(
            &M::POST,
            "/v1/schemes/collect/{schemeId}/drafts",
            Tenant(crate::handlers::schemes::COLLECT_WRITE),
            post(crate::handlers::schemes::collect::create_draft),
        ),
        route(
            &M::GET,
            "/v1/schemes/collect/{schemeId}/drafts/{draftId}",
            Tenant(crate::handlers::schemes::COLLECT_READ),
            get(crate::handlers::schemes::collect::get_draft),
        ),
        route(
            &M::PUT,
            "/v1/schemes/collect/{schemeId}/drafts/{draftId}",
            Tenant(crate::handlers::schemes::COLLECT_WRITE),
            put(crate::handlers::schemes::collect::update_draft),
        ),
        route(
            &M::DELETE,
            "/v1/schemes/collect/{schemeId}/drafts/{draftId}",
            Tenant(crate::handlers::schemes::COLLECT_WRITE),
            delete(crate::handlers::schemes::collect::delete_draft),
        ),
        route(
            &M::POST,
            "/v1/schemes/collect/{schemeId}/drafts/{draftId}/publish",
            Tenant(crate::handlers::schemes::COLLECT_WRITE),
            post(crate::handlers::schemes::collect::publish_draft),
        ),
        route(
            &M::POST,
            "/v1/schemes/collect/{schemeId}/drafts/{draftId}/simulate",
            Tenant(crate::handlers::schemes::COLLECT_READ),
            post(crate::handlers::schemes::collect::simulate_draft),
        ),
        route(
            &M::POST,
            "/v1/schemes/payout",
            Tenant(crate::handlers::schemes::PAYOUT_WRITE),
            post(crate::handlers::schemes::payout::create_scheme),
        ),
        route(
            &M::GET,
            "/v1/schemes/payout",
            Tenant(crate::handlers::schemes::PAYOUT_READ),
            get(crate::handlers::schemes::payout::list_schemes),
        ),
        route(
            &M::GET,
            "/v1/schemes/payout/{schemeId}",
            Tenant(crate::handlers::schemes::PAYOUT_READ),
            get(crate::handlers::schemes::payout::get_scheme),
        ),
        route(
            &M::DELETE,
            "/v1/schemes/payout/{schemeId}",
            Tenant(crate::handlers::schemes::PAYOUT_WRITE),
            delete(crate::handlers::schemes::payout::delete_scheme),
        ),
        route(
            &M::GET,
            "/v1/schemes/payout/{schemeId}/options",
            Tenant(crate::handlers::schemes::PAYOUT_OPTIONS),
            get(crate::handlers::schemes::payout_options),
        ),
        route(
            &M::GET,
            "/v1/schemes/payout/{schemeId}/drafts/published",
            Tenant(crate::handlers::schemes::PAYOUT_READ),
            get(crate::handlers::schemes::payout::published_draft),
        ),
        route(
            &M::POST,
            "/v1/schemes/payout/{schemeId}/drafts",
            Tenant(crate::handlers::schemes::PAYOUT_WRITE),
            post(crate::handlers::schemes::payout::create_draft),
        ),
        route(
            &M::GET,
            "/v1/schemes/payout/{schemeId}/drafts/{draftId}",
            Tenant(crate::handlers::schemes::PAYOUT_READ),
            get(crate::handlers::schemes::payout::get_draft),
        ),
        route(
            &M::PUT,
            "/v1/schemes/payout/{schemeId}/drafts/{draftId}",
            Tenant(crate::handlers::schemes::PAYOUT_WRITE),
            put(crate::handlers::schemes::payout::update_draft),
        ),
        route(
            &M::DELETE,
            "/v1/schemes/payout/{schemeId}/drafts/{draftId}",
            Tenant(crate::handlers::schemes::PAYOUT_WRITE),
            delete(crate::handlers::schemes::payout::delete_draft),
        ),
        route(
            &M::POST,
            "/v1/schemes/payout/{schemeId}/drafts/{draftId}/publish",
            Tenant(crate::handlers::schemes::PAYOUT_WRITE),
            post(crate::handlers::schemes::payout::publish_draft),
        ),
        route(
            &M::POST,
            "/v1/schemes/payout/{schemeId}/drafts/{draftId}/simulate",
            Tenant(crate::handlers::schemes::PAYOUT_READ),
            post(crate::handlers::schemes::payout::simulate_draft),
        ),
        // -- end of scheme routes --
        // Customer vault (SPEC §5.4)
        route(
            &M::POST,
            "/v1/customer-vault/{customerRef}/financial-instruments",
            Tenant(crate::handlers::vault::VAULT_WRITE),
            post(crate::handlers::vault::create_instrument),
        ),
        route(
            &M::GET,
            "/v1/customer-vault/{customerRef}/financial-instruments",
            Tenant(crate::handlers::vault::VAULT_READ),
            get(crate::handlers::vault::list_instruments),
        ),
        route(
            &M::GET,
            "/v1/customer-vault/{customerRef}/financial-instruments/{financialInstrumentId}",
            Tenant(crate::handlers::vault::VAULT_READ),
            get(crate::handlers::vault::get_instrument),
        ),
        route(
            &M::PUT,
            "/v1/customer-vault/{customerRef}/financial-instruments/{financialInstrumentId}/state",
            Tenant(crate::handlers::vault::VAULT_WRITE),
            put(crate::handlers::vault::change_state),
        ),
        route(
            &M::DELETE,
            "/v1/customer-vault/{customerRef}",
            Tenant(crate::handlers::vault::VAULT_ERASE),
            delete(crate::handlers::vault::erase_customer),
        ),
        // Orders and instructions (SPEC §4.9)
        route(
            &M::POST,
            "/v1/order-management",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::orders::create_order),
        ),
        route(
            &M::GET,
            "/v1/order-management",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::orders::list_orders),
        ),
        route(
            &M::GET,
            "/v1/instructions",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::orders::list_instructions),
        ),
        route(
            &M::GET,
            "/v1/order-management/{orderRef}",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::orders::get_order),
        ),
        route(
            &M::PUT,
            "/v1/order-management/{orderRef}/metadata",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            put(crate::handlers::orders::put_order_metadata),
        ),
        route(
            &M::DELETE,
            "/v1/order-management/{orderRef}/metadata",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            delete(crate::handlers::orders::delete_order_metadata),
        ),
        route(
            &M::PUT,
            "/v1/order-management/{orderRef}/customer-defaults",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            put(crate::handlers::orders::put_customer_defaults),
        ),
        route(
            &M::PUT,
            "/v1/order-management/{orderRef}/customer-defaults/{customerRef}/financial-instrument",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            put(crate::handlers::orders::put_default_instrument),
        ),
        route(
            &M::PUT,
            "/v1/order-management/{orderRef}/customer-defaults/{customerRef}/scheme",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            put(crate::handlers::orders::put_default_scheme),
        ),
        route(
            &M::PUT,
            "/v1/order-management/{orderRef}/customer-defaults/{customerRef}/metadata",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            put(crate::handlers::orders::put_default_metadata),
        ),
        route(
            &M::DELETE,
            "/v1/order-management/{orderRef}/customer-defaults/{customerRef}",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            delete(crate::handlers::orders::delete_customer_default),
        ),
        route(
            &M::POST,
            "/v1/order-management/{orderRef}/instruction",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::orders::create_instruction),
        ),
        route(
            &M::GET,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::orders::get_instruction),
        ),
        route(
            &M::PUT,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            put(crate::handlers::orders::update_instruction),
        ),
        route(
            &M::DELETE,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            delete(crate::handlers::orders::void_instruction),
        ),
        // Webhooks (SPEC §5.1)
        route(
            &M::GET,
            "/v1/notifications/event-types",
            AccountOrTenant { account: ACCOUNT_ADMIN, tenant: TENANT_ADMIN },
            get(webhooks::event_types),
        ),
        route(&M::POST, "/v1/notifications/webhooks", Tenant(TENANT_ADMIN), post(webhooks::create_webhook)),
        alias(
            &M::POST,
            "/management/v1/notifications/webhooks",
            "/v1/notifications/webhooks",
            Tenant(TENANT_ADMIN),
            post(webhooks::create_webhook),
        ),
        route(&M::GET, "/v1/notifications/webhooks", Tenant(TENANT_ADMIN), get(webhooks::list_webhooks)),
        route(&M::GET, "/v1/notifications/webhooks/{webhookId}", Tenant(TENANT_ADMIN), get(webhooks::get_webhook)),
        route(&M::PUT, "/v1/notifications/webhooks/{webhookId}", Tenant(TENANT_ADMIN), put(webhooks::update_webhook)),
        route(
            &M::DELETE,
            "/v1/notifications/webhooks/{webhookId}",
            Tenant(TENANT_ADMIN),
            delete(webhooks::delete_webhook),
        ),
        route(
            &M::POST,
            "/v1/notifications/webhooks/{webhookId}/rotate-secret",
            Tenant(TENANT_ADMIN),
            post(webhooks::rotate_secret),
        ),
        route(
            &M::POST,
            "/v1/notifications/webhooks/{webhookId}/test",
            Tenant(TENANT_ADMIN),
            post(webhooks::test_webhook),
        ),
        route(
            &M::GET,
            "/v1/notifications/webhooks/{webhookId}/deliveries",
            Tenant(TENANT_ADMIN),
            get(webhooks::list_deliveries),
        ),
        route(
            &M::POST,
            "/v1/notifications/webhooks/deliveries/{deliveryId}/redeliver",
            Tenant(TENANT_ADMIN),
            post(webhooks::redeliver),
        ),
        route(
            &M::POST,
            "/v1/account/notifications/webhooks",
            Account(ACCOUNT_ADMIN),
            post(webhooks::create_account_webhook),
        ),
        route(
            &M::GET,
            "/v1/account/notifications/webhooks",
            Account(ACCOUNT_ADMIN),
            get(webhooks::list_account_webhooks),
        ),
        route(
            &M::GET,
            "/v1/account/notifications/webhooks/{webhookId}",
            Account(ACCOUNT_ADMIN),
            get(webhooks::get_account_webhook),
        ),
        route(
            &M::PUT,
            "/v1/account/notifications/webhooks/{webhookId}",
            Account(ACCOUNT_ADMIN),
            put(webhooks::update_account_webhook),
        ),
        route(
            &M::DELETE,
            "/v1/account/notifications/webhooks/{webhookId}",
            Account(ACCOUNT_ADMIN),
            delete(webhooks::delete_account_webhook),
        ),
        route(
            &M::POST,
            "/v1/account/notifications/webhooks/{webhookId}/rotate-secret",
            Account(ACCOUNT_ADMIN),
            post(webhooks::rotate_account_secret),
        ),
        route(
            &M::POST,
            "/v1/account/notifications/webhooks/{webhookId}/test",
            Account(ACCOUNT_ADMIN),
            post(webhooks::test_account_webhook),
        ),
        route(
            &M::GET,
            "/v1/account/notifications/webhooks/{webhookId}/deliveries",
            Account(ACCOUNT_ADMIN),
            get(webhooks::list_account_deliveries),
        ),
        route(
            &M::POST,
            "/v1/account/notifications/webhooks/deliveries/{deliveryId}/redeliver",
            Account(ACCOUNT_ADMIN),
            post(webhooks::redeliver_account),
        ),
        // -- end of webhook routes --
        // Execution (extensions of SPEC §4.9)
        route(
            &M::POST,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}/execute",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::execution::execute_instruction),
        ),
        route(
            &M::GET,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}/transactions",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::execution::list_transactions),
        ),
        // Reward claims (SPEC §4.10)
        route(
            &M::POST,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}/claim-reward",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::claims::claim_reward),
        ),
        route(
            &M::GET,
            "/v1/customer-vault/{customerRef}/reward/{financialInstrumentId}/transaction/{transactionId}",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::claims::claim_status),
        ),
        // Refunds (SPEC §5.2)
        route(
            &M::POST,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}/refunds",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::refunds::create_refund),
        ),
        route(
            &M::GET,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}/refunds",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::refunds::list_refunds),
        ),
        route(
            &M::GET,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}/refunds/{refundRef}",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::refunds::get_refund),
        ),
        // -- end of refund routes --
        // Chargebacks (SPEC §5.3)
        route(
            &M::GET,
            "/v1/chargebacks",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::chargebacks::list_chargebacks),
        ),
        route(
            &M::GET,
            "/v1/chargebacks/{chargebackId}",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::chargebacks::get_chargeback),
        ),
        route(
            &M::POST,
            "/v1/chargebacks/{chargebackId}/evidence",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::chargebacks::submit_evidence),
        ),
        route(
            &M::POST,
            "/v1/chargebacks/{chargebackId}/accept",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::chargebacks::accept_chargeback),
        ),
        route(
            &M::GET,
            "/v1/order-management/{orderRef}/instruction/{instructionRef}/chargebacks",
            Tenant(crate::handlers::orders::ORDERS_READ),
            get(crate::handlers::chargebacks::instruction_chargebacks),
        ),
        // -- end of chargeback routes --
        // PSP notifications: no token, the app's connector verifies the PSP's signature
        route(&M::POST, "/v1/psp-events/{tenantId}/{appId}", Public, post(crate::handlers::psp_events::receive)),
        // Sandbox simulators (404 outside sandbox deployments)
        route(
            &M::POST,
            "/v1/sandbox/chargebacks",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::sandbox::simulate_chargeback),
        ),
        route(
            &M::POST,
            "/v1/sandbox/bank-collections/settle",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::sandbox::settle_bank_collection),
        ),
        route(
            &M::POST,
            "/v1/sandbox/bank-collections/fail",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::sandbox::fail_bank_collection),
        ),
        route(
            &M::POST,
            "/v1/sandbox/reward-claims/advance",
            Tenant(crate::handlers::orders::ORDERS_WRITE),
            post(crate::handlers::sandbox::advance_reward_claim),
        ),
        // -- end of sandbox routes --
        // White-label checkout (SPEC §4.11)
        route(
            &M::POST,
            "/v1/whitelabel-customer/grants",
            Tenant(crate::handlers::checkout::CHECKOUT_WRITE),
            post(crate::handlers::checkout::create_grant),
        ),
        // Hosted checkout pages: public, the session id in the path is the capability
        route(&M::GET, "/checkout", Public, get(crate::checkout::open)),
        route(&M::GET, "/checkout/{token}", Public, get(crate::checkout::open_path)),
        route(&M::GET, "/checkout/assets/{file}", Public, get(crate::checkout::asset)),
        route(&M::GET, "/checkout/session/{sessionId}", Public, get(crate::checkout::session_page)),
        route(&M::POST, "/checkout/session/{sessionId}/card", Public, post(crate::checkout::pay_card)),
        route(&M::POST, "/checkout/session/{sessionId}/bank", Public, post(crate::checkout::pay_bank)),
        route(&M::GET, "/checkout/session/{sessionId}/paypal", Public, get(crate::checkout::paypal_page)),
        route(&M::POST, "/checkout/session/{sessionId}/paypal", Public, post(crate::checkout::paypal_decision)),
        route(&M::POST, "/checkout/session/{sessionId}/challenge", Public, post(crate::checkout::challenge_decision)),
        route(&M::POST, "/checkout/session/{sessionId}/cancel", Public, post(crate::checkout::cancel)),
        // -- end of checkout routes --
        // Pay-by-link and the white-label settings (SPEC §4.11, §5.7)
        route(
            &M::POST,
            "/v1/whitelabel-customer/session/checkout/pay-by-link",
            Tenant(crate::handlers::pay_by_link::LINKS_WRITE),
            post(crate::handlers::pay_by_link::create_link),
        ),
        route(
            &M::GET,
            "/v1/whitelabel-customer/session/checkout/pay-by-link/{payByLinkId}",
            Tenant(crate::handlers::pay_by_link::LINKS_READ),
            get(crate::handlers::pay_by_link::get_link),
        ),
        route(
            &M::DELETE,
            "/v1/whitelabel-customer/session/checkout/pay-by-link/{payByLinkId}",
            Tenant(crate::handlers::pay_by_link::LINKS_WRITE),
            delete(crate::handlers::pay_by_link::cancel_link),
        ),
        route(
            &M::POST,
            "/v1/whitelabel-customer/session/checkout/pay-by-link/{payByLinkId}/send",
            Tenant(crate::handlers::pay_by_link::LINKS_WRITE),
            post(crate::handlers::pay_by_link::send_link),
        ),
        route(&M::GET, "/pay/{payByLinkId}", Public, get(crate::handlers::pay_by_link::open_link)),
        route(
            &M::GET,
            "/v1/whitelabel/theme-template",
            Tenant(crate::handlers::whitelabel::WHITELABEL_READ),
            get(crate::handlers::whitelabel::get_theme),
        ),
        route(
            &M::PUT,
            "/v1/whitelabel/theme-template",
            Tenant(crate::handlers::whitelabel::WHITELABEL_WRITE),
            put(crate::handlers::whitelabel::put_theme),
        ),
        route(
            &M::GET,
            "/v1/whitelabel/delivery-settings",
            Tenant(crate::handlers::whitelabel::WHITELABEL_READ),
            get(crate::handlers::whitelabel::get_delivery_settings),
        ),
        route(
            &M::PUT,
            "/v1/whitelabel/delivery-settings",
            Tenant(crate::handlers::whitelabel::WHITELABEL_WRITE),
            put(crate::handlers::whitelabel::put_delivery_settings),
        ),
        // -- end of pay-by-link routes --
    ]
}

/// The table without handlers.
pub fn specs() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}
