//! The route table: every endpoint with the access it requires, in one place.
//!
//! The router is built from this table (`crate::router`), the OpenAPI document is
//! annotated from it, and a test walks it to check that every route refuses callers
//! without the declared roles.

use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};
use baton_domain::Role::{self, *};

use crate::auth::Access::{self, *};
use crate::handlers::{account, api_keys, health, identity, tenants};
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
}

fn route(
    method: &'static Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> (RouteSpec, MethodRouter<AppState>) {
    (RouteSpec { method, path, access }, handler)
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
        // Identity (SPEC §2)
        route(&M::POST, "/identity/v1/hmac/management", Hmac, post(identity::issue_token)),
        route(&M::POST, "/identity/v1/hmac/collect", Hmac, post(identity::issue_token_collect)),
        route(&M::POST, "/identity/v1/hmac/payout", Hmac, post(identity::issue_token_payout)),
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
        // -- end of marketplace routes --
        // Collect and payout schemes (SPEC §4.6)
        // -- end of scheme routes --
    ]
}

/// The table without handlers.
pub fn specs() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}
