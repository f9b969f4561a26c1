//! Roles and access (SPEC §1 headers, §2 tokens, §3 roles), checked by walking the
//! route table itself: a route added later without a declared role, or with a role
//! that does not hold, fails here without anyone having to remember to test it.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use baton_domain::Role;
use baton_http::routes::{specs, RouteSpec};
use baton_http::Access;
use common::{KeyPair, Reply, TestApp};
use reqwest::Method;
use serde_json::json;

/// The account roles, each held alone by one key of the fixture.
const ACCOUNT_ROLES: [Role; 4] =
    [Role::AccountTenantRead, Role::AccountTenantWrite, Role::AccountTenantApproval, Role::AccountAdmin];

/// The tenant roles held alone by keys of the fixture: the admin, the role of
/// `GET /v1/tenant`, and one that no route of the table accepts yet.
const TENANT_ROLES: [Role; 3] = [Role::TenantAdmin, Role::TenantManagement, Role::TenantAppRead];

/// Bearer tokens for every role above, on one node with two tenants.
struct Fixture {
    app: TestApp,
    /// The tenant named in paths and `x-tenant-id`; the tenant tokens belong to it.
    tenant: String,
    /// Another tenant of the same account.
    other_tenant: String,
    account_tokens: BTreeMap<Role, String>,
    tenant_tokens: BTreeMap<Role, String>,
}

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, "Roles tenant").await;
        let other_tenant = app.create_tenant(&admin, "Other tenant").await;
        let mut account_tokens = BTreeMap::new();
        for role in ACCOUNT_ROLES {
            let key = app.create_account_key(&admin, &[role.as_str()]).await;
            account_tokens.insert(role, app.token(&key).await);
        }
        let mut tenant_tokens = BTreeMap::new();
        for role in TENANT_ROLES {
            let key = app.create_tenant_key(&admin, &tenant, &[role.as_str()]).await;
            tenant_tokens.insert(role, app.token(&key).await);
        }
        Self { app, tenant, other_tenant, account_tokens, tenant_tokens }
    }

    fn account(&self, role: Role) -> &str {
        &self.account_tokens[&role]
    }

    fn tenant_token(&self, role: Role) -> &str {
        &self.tenant_tokens[&role]
    }

    /// Calls the route as `token` (or with the raw `authorization` value), sending
    /// `{}` to PUT and POST routes.
    async fn call(&self, spec: &RouteSpec, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let method = Method::from_bytes(spec.method.as_str().as_bytes()).expect("HTTP method");
        let body = (method == Method::POST || method == Method::PUT).then(|| json!({}));
        self.app.send(method, path, token, headers, body.as_ref()).await
    }
}

/// The route's path with its parameters filled in: the fixture's tenant and a
/// fresh public key. A parameter this test does not know fails loudly.
fn concrete_path(spec: &RouteSpec, tenant: &str) -> String {
    fill_path(spec, spec.path, tenant)
}

/// [`concrete_path`] for `path`, a spelling of `spec`'s path with some parameters
/// already filled in.
fn fill_path(spec: &RouteSpec, path: &str, tenant: &str) -> String {
    let path = path.replace("{tenantId}", tenant).replace("{publicKey}", &uuid::Uuid::new_v4().to_string());
    // Apps (any spelling), reward groups: a real app and an unknown group.
    let path = path.replace("{appId}", "sandbox-rewards").replace("{rewardGroupId}", &uuid::Uuid::new_v4().to_string());
    // Schemes and drafts: unknown ids.
    let path = path
        .replace("{schemeId}", &uuid::Uuid::new_v4().to_string())
        .replace("{draftId}", &uuid::Uuid::new_v4().to_string());
    // Customer vault: a customer and an unknown instrument.
    let path =
        path.replace("{customerRef}", "C-roles").replace("{financialInstrumentId}", &uuid::Uuid::new_v4().to_string());
    // Orders and instructions: unknown refs.
    let path = path.replace("{orderRef}", "O-roles").replace("{instructionRef}", "I-roles");
    // Reward claims: an unknown transaction.
    let path = path.replace("{transactionId}", &uuid::Uuid::new_v4().to_string());
    // Refunds and chargebacks: an unknown refund ref and chargeback id.
    let path = path.replace("{refundRef}", "R-roles").replace("{chargebackId}", &uuid::Uuid::new_v4().to_string());
    let path = path
        .replace("{webhookId}", &uuid::Uuid::new_v4().to_string())
        .replace("{deliveryId}", &uuid::Uuid::new_v4().to_string());
    // Pay-by-links: an unknown link id.
    let path = path.replace("{payByLinkId}", "AAAAAAAAAAAAAAAAAAAAAA");
    // Checkout sessions and tokens, assets: unknown ones.
    let path = path.replace("{sessionId}", &uuid::Uuid::new_v4().simple().to_string());
    let path = path.replace("{token}", "unknown-token").replace("{file}", "unknown.svg");
    assert!(!path.contains('{'), "{} {}: unknown path parameter; teach this test about it", spec.method, spec.path);
    path
}

/// The names of a route's path parameters, in order.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')).collect()
}

/// A token of the fixture that the route admits, if it takes one.
fn admitted_token<'a>(f: &'a Fixture, spec: &RouteSpec) -> Option<&'a str> {
    let tenant = |roles: &[Role]| TENANT_ROLES.into_iter().find(|r| grants_any(*r, roles)).map(|r| f.tenant_token(r));
    let account = |roles: &[Role]| ACCOUNT_ROLES.into_iter().find(|r| grants_any(*r, roles)).map(|r| f.account(r));
    match spec.access {
        Access::Tenant(roles) | Access::AccountOrTenant { tenant: roles, .. } => tenant(roles),
        Access::Account(roles) => account(roles),
        Access::Public | Access::Hmac => None,
    }
}

/// One of `candidates` that grants none of `required`, if any.
fn role_lacking(candidates: &[Role], required: &[Role]) -> Option<Role> {
    candidates.iter().copied().find(|held| !required.iter().any(|r| held.grants(*r)))
}

fn grants_any(held: Role, required: &[Role]) -> bool {
    required.iter().any(|r| held.grants(*r))
}

/// A caller with a sufficient role must get past authentication and authorisation
/// and reach a real handler: anything but 401/403, an unrouted path or a crash.
/// (`{}` bodies and random keys may well be answered 400/404.)
#[track_caller]
fn assert_admitted(reply: &Reply, what: &str) {
    let status = reply.status.as_u16();
    assert!(
        status != 401 && status != 403 && status != 405 && status < 500 && reply.code() != "ROUTE_NOT_FOUND",
        "{what}: expected the handler to answer, got {status}: {}",
        reply.text
    );
}

#[tokio::test]
async fn every_token_route_refuses_callers_without_the_declared_role() {
    let f = Fixture::new().await;
    let account_id_upper = f.app.account_id.to_uppercase();
    let other_account = uuid::Uuid::new_v4().to_string();
    let mut token_routes = 0;
    // Routes where every account role is accepted, so no account token can be refused.
    let mut open_to_every_account_role = Vec::new();
    let mut role_refusals = 0;

    for spec in specs().iter().filter(|s| s.access.needs_token()) {
        token_routes += 1;
        let route = format!("{} {}", spec.method, spec.path);
        let path = concrete_path(spec, &f.tenant);

        // Authentication comes first, whatever the route.
        f.call(spec, &path, None, &[]).await.assert_error(401, "TOKEN_MISSING");
        f.call(spec, &path, None, &[("authorization", "Bearer garbage")]).await.assert_error(401, "TOKEN_INVALID");

        match spec.access {
            Access::Account(roles) => {
                for role in TENANT_ROLES {
                    let reply = f.call(spec, &path, Some(f.tenant_token(role)), &[]).await;
                    assert_eq!(reply.code(), "ACCOUNT_KEY_REQUIRED", "{route} as {role}");
                    reply.assert_error(403, "ACCOUNT_KEY_REQUIRED");
                }
                if role_lacking(&ACCOUNT_ROLES, roles).is_none() {
                    open_to_every_account_role.push(route.clone());
                }
                for role in ACCOUNT_ROLES {
                    let reply = f.call(spec, &path, Some(f.account(role)), &[]).await;
                    if grants_any(role, roles) {
                        assert_admitted(&reply, &format!("{route} as {role}"));
                    } else {
                        assert_eq!(reply.code(), "ROLE_REQUIRED", "{route} as {role}");
                        reply.assert_error(403, "ROLE_REQUIRED");
                        role_refusals += 1;
                    }
                }
            }
            Access::Tenant(roles) => {
                for role in ACCOUNT_ROLES {
                    let token = Some(f.account(role));
                    let reply = f.call(spec, &path, token, &[]).await;
                    assert_eq!(reply.code(), "TENANT_ID_IS_REQUIRED", "{route} as {role}");
                    reply.assert_error(400, "TENANT_ID_IS_REQUIRED");
                    let reply = f.call(spec, &path, token, &[("x-tenant-id", &f.tenant)]).await;
                    assert_eq!(reply.code(), "TENANT_KEY_REQUIRED", "{route} as {role}");
                    reply.assert_error(403, "TENANT_KEY_REQUIRED");
                }
                assert!(role_lacking(&TENANT_ROLES, roles).is_some(), "{route}: open to every tenant role?");
                for role in TENANT_ROLES {
                    let reply = f.call(spec, &path, Some(f.tenant_token(role)), &[]).await;
                    if grants_any(role, roles) {
                        assert_admitted(&reply, &format!("{route} as {role}"));
                    } else {
                        assert_eq!(reply.code(), "ROLE_REQUIRED", "{route} as {role}");
                        reply.assert_error(403, "ROLE_REQUIRED");
                        role_refusals += 1;
                    }
                }
            }
            Access::AccountOrTenant { account, tenant } => {
                if role_lacking(&ACCOUNT_ROLES, account).is_none() {
                    open_to_every_account_role.push(route.clone());
                }
                for role in ACCOUNT_ROLES {
                    let reply = f.call(spec, &path, Some(f.account(role)), &[]).await;
                    if grants_any(role, account) {
                        assert_admitted(&reply, &format!("{route} as {role}"));
                    } else {
                        assert_eq!(reply.code(), "ROLE_REQUIRED", "{route} as {role}");
                        reply.assert_error(403, "ROLE_REQUIRED");
                        role_refusals += 1;
                    }
                }
                assert!(role_lacking(&TENANT_ROLES, tenant).is_some(), "{route}: open to every tenant role?");
                for role in TENANT_ROLES {
                    let reply = f.call(spec, &path, Some(f.tenant_token(role)), &[]).await;
                    if grants_any(role, tenant) {
                        assert_admitted(&reply, &format!("{route} as {role}"));
                    } else {
                        assert_eq!(reply.code(), "ROLE_REQUIRED", "{route} as {role}");
                        reply.assert_error(403, "ROLE_REQUIRED");
                        role_refusals += 1;
                    }
                }
            }
            Access::Public | Access::Hmac => unreachable!("filtered out"),
        }

        // Context headers (SPEC §1): a caller that may use the route is still refused
        // when a header names another account or tenant, and admitted when it names
        // its own (GUIDs compared ignoring case).
        let account_holder = match spec.access {
            Access::Account(roles) | Access::AccountOrTenant { account: roles, .. } => {
                Some(ACCOUNT_ROLES.into_iter().find(|r| grants_any(*r, roles)).expect("some account key can call it"))
            }
            _ => None,
        };
        let tenant_holder = match spec.access {
            Access::Tenant(roles) | Access::AccountOrTenant { tenant: roles, .. } => {
                Some(TENANT_ROLES.into_iter().find(|r| grants_any(*r, roles)).expect("some tenant key can call it"))
            }
            _ => None,
        };
        let tenant_upper = f.tenant.to_uppercase();
        if let Some(role) = account_holder {
            let token = Some(f.account(role));
            let reply = f.call(spec, &path, token, &[("x-account-id", &other_account)]).await;
            assert_eq!(reply.code(), "ACCOUNT_ID_MISMATCH", "{route} as {role}");
            reply.assert_error(403, "ACCOUNT_ID_MISMATCH");
            let reply = f.call(spec, &path, token, &[("x-account-id", &account_id_upper)]).await;
            assert_admitted(&reply, &format!("{route} as {role} naming its account"));
        }
        if let Some(role) = tenant_holder {
            let token = Some(f.tenant_token(role));
            let reply = f.call(spec, &path, token, &[("x-account-id", &other_account)]).await;
            assert_eq!(reply.code(), "ACCOUNT_ID_MISMATCH", "{route} as {role}");
            reply.assert_error(403, "ACCOUNT_ID_MISMATCH");
            let reply = f.call(spec, &path, token, &[("x-tenant-id", &f.other_tenant)]).await;
            assert_eq!(reply.code(), "TENANT_ID_MISMATCH", "{route} as {role}");
            reply.assert_error(403, "TENANT_ID_MISMATCH");
            let own = [("x-account-id", account_id_upper.as_str()), ("x-tenant-id", tenant_upper.as_str())];
            let reply = f.call(spec, &path, token, &own).await;
            assert_admitted(&reply, &format!("{route} as {role} naming its account and tenant"));
        }
    }

    // The table is not empty, and role refusals were actually exercised.
    assert!(token_routes >= 20, "only {token_routes} token routes in the table");
    assert!(role_refusals >= 20, "only {role_refusals} ROLE_REQUIRED checks ran");
    // Only reads may be open to every account role: a mutating route that any
    // account key can call is almost certainly a missing role declaration.
    eprintln!("{token_routes} token routes, {role_refusals} ROLE_REQUIRED checks; open to every account role: {open_to_every_account_role:?}");
    for route in &open_to_every_account_role {
        assert!(route.starts_with("GET "), "{route} accepts every account role");
    }
}

#[tokio::test]
async fn unauthenticated_routes_are_exactly_the_expected_set() {
    let public: BTreeSet<(String, &str)> =
        specs().iter().filter(|s| s.access == Access::Public).map(|s| (s.method.to_string(), s.path)).collect();
    let expected_public: BTreeSet<(String, &str)> = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
        "/docs",
        "/docs/reference.css",
        "/checkout.js",
        "/assets/apps/{file}",
        "/assets/payment-methods/{file}",
        "/assets/rewards/{file}",
    ]
    .into_iter()
    .map(|p| ("GET".to_string(), p))
    .collect();
    // PSP notifications carry the PSP's own signature instead of a token (tests/chargebacks.rs).
    let psp_events = ("POST".to_string(), "/v1/psp-events/{tenantId}/{appId}");
    let public_posts: BTreeSet<(String, &str)> = [psp_events].into_iter().collect();
    // A pay-by-link's page: its unguessable id is the capability (tests/pay_by_link.rs).
    let pay_page = ("GET".to_string(), "/pay/{payByLinkId}");
    // The hosted checkout's pages: the checkout token, then the session id in the path,
    // is the customer's capability; forms also carry a CSRF token (tests/checkout.rs).
    let checkout_pages: BTreeSet<(String, &str)> = [
        ("GET", "/checkout"),
        ("GET", "/checkout/{token}"),
        ("GET", "/checkout/assets/{file}"),
        ("GET", "/checkout/session/{sessionId}"),
        ("GET", "/checkout/session/{sessionId}/paypal"),
        ("POST", "/checkout/session/{sessionId}/card"),
        ("POST", "/checkout/session/{sessionId}/bank"),
        ("POST", "/checkout/session/{sessionId}/paypal"),
        ("POST", "/checkout/session/{sessionId}/challenge"),
        ("POST", "/checkout/session/{sessionId}/cancel"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p))
    .collect();
    let expected_all: BTreeSet<(String, &str)> =
        expected_public.iter().chain(&public_posts).chain(&checkout_pages).chain([&pay_page]).cloned().collect();
    assert_eq!(public, expected_all);

    let hmac: BTreeSet<(String, &str)> =
        specs().iter().filter(|s| s.access == Access::Hmac).map(|s| (s.method.to_string(), s.path)).collect();
    let expected_hmac: BTreeSet<(String, &str)> =
        ["/identity/v1/hmac/management", "/identity/v1/hmac/collect", "/identity/v1/hmac/payout"]
            .into_iter()
            .map(|p| ("POST".to_string(), p))
            .collect();
    assert_eq!(hmac, expected_hmac);

    // Each (method, path) is declared once, so the walk above sees every route.
    let all: Vec<(String, &str)> = specs().iter().map(|s| (s.method.to_string(), s.path)).collect();
    let distinct: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), distinct.len(), "duplicate routes in the table");

    // The public routes really answer without a token, and the token endpoints
    // refuse an unsigned request as an authentication failure.
    let app = TestApp::spawn().await;
    for (_, path) in &expected_public {
        // Asset routes are asked for a file they have.
        let path = &path
            .replace("/apps/{file}", "/apps/sandbox-card.svg")
            .replace("/payment-methods/{file}", "/payment-methods/visa.svg")
            .replace("/rewards/{file}", "/rewards/amazon-de.svg");
        let reply = app.send(Method::GET, path, None, &[], None).await;
        assert_eq!(reply.status.as_u16(), 200, "GET {path}: {}", reply.text);
    }
    // An unknown link gets its page, not an API error.
    let reply =
        app.send(Method::GET, &pay_page.1.replace("{payByLinkId}", "AAAAAAAAAAAAAAAAAAAAAA"), None, &[], None).await;
    assert_eq!(reply.status.as_u16(), 404);
    assert!(reply.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{}", reply.text);
    for (_, path) in &expected_hmac {
        app.send(Method::POST, path, None, &[], None).await.assert_error(401, "HMAC_MALFORMED");
    }
    // Checkout pages answer without a token, as pages (an unknown session is a page too).
    for (method, path) in &checkout_pages {
        let path = path
            .replace("{token}", "bearerToken=unknown")
            .replace("{file}", "checkout.css")
            .replace("{sessionId}", "AAAAAAAAAAAAAAAAAAAAAA");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = app.send(method.clone(), &path, None, &[], None).await;
        let status = reply.status.as_u16();
        assert!(status != 401 && status != 403 && status < 500, "{method} {path}: {status}");
        assert!(reply.header("content-type").unwrap_or("").starts_with("text/"), "{method} {path}: {}", reply.text);
    }
}

#[tokio::test]
async fn key_roles_must_fit_the_kind_of_key() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Keys tenant").await;
    let tenant_keys = format!("/v1/tenant/{tenant}/keys");
    let account_key_count = app.get("/v1/account/keys", &admin).await.assert_status(200).as_array().unwrap().len();

    // A role of the other kind, or no role at all, is refused with the field named.
    let refusals: [(&str, serde_json::Value, &str); 8] = [
        ("/v1/account/keys", json!({ "roles": ["tenant-admin"] }), "INVALID_ROLE"),
        ("/v1/account/keys", json!({ "roles": ["account-admin", "nope"] }), "INVALID_ROLE"),
        ("/v1/account/keys", json!({ "roles": ["platform-admin"] }), "INVALID_ROLE"),
        ("/v1/account/keys", json!({ "roles": [] }), "ROLES_REQUIRED"),
        ("/v1/account/keys", json!({ "name": "no roles" }), "ROLES_REQUIRED"),
        (tenant_keys.as_str(), json!({ "roles": ["account-admin"] }), "INVALID_ROLE"),
        (tenant_keys.as_str(), json!({ "roles": ["nope"] }), "INVALID_ROLE"),
        (tenant_keys.as_str(), json!({ "roles": [""] }), "ROLES_REQUIRED"),
    ];
    for (path, body, code) in &refusals {
        let reply = app.post(path, &admin, body).await;
        reply.assert_error(400, code);
        assert_eq!(reply.body["errors"][0]["metadata"]["field"], "roles", "{path} {body}");
    }
    let reply = app.post("/v1/account/keys", &admin, &json!({ "roles": ["nope"] })).await;
    reply.assert_error(400, "INVALID_ROLE");
    assert_eq!(reply.body["errors"][0]["metadata"]["role"], "nope");

    // Nothing was created by the refused requests.
    let after = app.get("/v1/account/keys", &admin).await;
    assert_eq!(after.assert_status(200).as_array().unwrap().len(), account_key_count);
    assert_eq!(app.get(&tenant_keys, &admin).await.assert_status(200), &json!([]));

    // Role names are matched ignoring case and stored canonically.
    let reply = app.post("/v1/account/keys", &admin, &json!({ "roles": ["Account-Tenant-Read"] })).await;
    assert_eq!(reply.assert_status(201)["roles"], json!(["account-tenant-read"]));
}

#[tokio::test]
async fn write_implies_read_and_admin_implies_approval() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    // account-tenant-write can read tenants (write implies read)...
    let writer: KeyPair = app.create_account_key(&admin, &["account-tenant-write"]).await;
    let writer = app.token(&writer).await;
    let tenant = app.create_tenant(&writer, "Written").await;
    let listed = app.get("/v1/account/tenants", &writer).await;
    assert_eq!(listed.assert_status(200).as_array().unwrap().len(), 1);
    assert_eq!(app.get(&format!("/v1/account/tenants/{tenant}"), &writer).await.assert_status(200)["name"], "Written");
    // ...but does not approve, and reading does not imply writing.
    let pending_path = format!("/v1/account/tenants/{tenant}/approve");
    app.post(&pending_path, &writer, &json!({})).await.assert_error(403, "ROLE_REQUIRED");
    let reader = app.create_account_key(&admin, &["account-tenant-read"]).await;
    let reader = app.token(&reader).await;
    let reply = app.post("/v1/account/tenants", &reader, &json!({ "name": "Not by a reader" })).await;
    reply.assert_error(403, "ROLE_REQUIRED");

    // account-admin implies account-tenant-approval: with approval required, the
    // admin token approves a pending tenant.
    let approver = app.create_account_key(&admin, &["account-tenant-approval"]).await;
    let body = json!({
        "billingContactFirstName": "Ada",
        "billingContactLastName": "Lovelace",
        "tenantCreationRequiresApproval": true,
    });
    app.put("/v1/account", &admin, &body).await.assert_status(200);
    let pending = app.create_tenant(&admin, "Awaiting").await;
    let reply = app.post(&format!("/v1/account/tenants/{pending}/approve"), &admin, &json!({})).await;
    assert_eq!(reply.assert_status(200)["status"], "ACTIVE");
    // The approval key alone cannot manage the account or create tenants.
    let approver = app.token(&approver).await;
    app.get("/v1/account/keys", &approver).await.assert_error(403, "ROLE_REQUIRED");
    app.post("/v1/account/tenants", &approver, &json!({ "name": "x" })).await.assert_error(403, "ROLE_REQUIRED");
}

/// A NUL (or another control character) in a path parameter is an id that cannot
/// exist: every route answers it exactly as it answers another id that cannot exist
/// (`a~b`: well-formed as a URL, malformed as a Baton id or ref), on every backend —
/// never a 500 because PostgreSQL cannot hold NUL.
#[tokio::test]
async fn a_control_character_in_any_path_parameter_is_answered_like_any_impossible_id() {
    let f = Fixture::new().await;
    let mut probes = 0;
    for spec in &specs() {
        let route = format!("{} {}", spec.method, spec.path);
        let token = admitted_token(&f, spec);
        for parameter in path_parameters(spec.path) {
            let placeholder = format!("{{{parameter}}}");
            let impossible = fill_path(spec, &spec.path.replace(&placeholder, "a~b"), &f.tenant);
            let expected = f.call(spec, &impossible, token, &[]).await;
            assert!(expected.status.as_u16() < 500, "{route} with {parameter}=a~b: {}", expected.text);
            for control in ["a%00b", "%00", "a%0Ab", "a%7Fb", "a%C2%85b"] {
                let path = fill_path(spec, &spec.path.replace(&placeholder, control), &f.tenant);
                let reply = f.call(spec, &path, token, &[]).await;
                assert_eq!(
                    (reply.status, reply.code()),
                    (expected.status, expected.code()),
                    "{route} with {parameter}={control}: {} (for a~b: {})",
                    reply.text,
                    expected.text
                );
                probes += 1;
            }
        }
    }
    assert!(probes >= 300, "only {probes} probes ran");
}

/// A NUL in any JSON string (or property name) of a request body is refused before the
/// handler reads it, with the field it is in, on every route that reads a JSON body
/// (those that answer a malformed body as such); no route answers one with a 500.
/// (Other control characters are refused by the field's own type: names, refs,
/// addresses, metadata.)
#[tokio::test]
async fn a_control_character_in_any_request_body_is_refused_before_anything_changes() {
    let f = Fixture::new().await;
    let (mut readers, mut refused) = (0, 0);
    let specs = specs();
    for spec in specs.iter().filter(|s| *s.method == axum::http::Method::POST || *s.method == axum::http::Method::PUT) {
        let route = format!("{} {}", spec.method, spec.path);
        let token = admitted_token(&f, spec);
        let path = concrete_path(spec, &f.tenant);
        let method = Method::from_bytes(spec.method.as_str().as_bytes()).unwrap();
        let mut malformed =
            f.app.client.request(method.clone(), f.app.url(&path)).header("content-type", "application/json");
        if let Some(token) = token {
            malformed = malformed.bearer_auth(token);
        }
        let malformed: serde_json::Value = malformed.body("{").send().await.unwrap().json().await.unwrap_or_default();
        let code = malformed["errors"][0]["errorCode"].as_str().unwrap_or("");
        let reads_json = code == "INVALID_JSON" || code == "INVALID_REQUEST_BODY";
        readers += usize::from(reads_json);
        for (body, field) in [
            (json!({ "description": "a\u{0}b" }), "description"),
            (json!({ "metadata": { "k": "v\u{0}" } }), "metadata.k"),
            (json!({ "metadata": { "a\u{0}b": "v" } }), "metadata"),
            (json!({ "list": ["ok", "\u{0}"] }), "list[1]"),
        ] {
            let reply = f.app.send(method.clone(), &path, token, &[], Some(&body)).await;
            assert!(reply.status.as_u16() < 500, "{route} with {body}: {}", reply.text);
            if reads_json {
                reply.assert_error(400, "CONTROL_CHARACTER_NOT_ALLOWED");
                assert_eq!(reply.body["errors"][0]["metadata"]["field"], field, "{route}: {}", reply.text);
                refused += 1;
            }
        }
    }
    assert!(readers >= 40, "only {readers} routes read a JSON body");
    assert_eq!(refused, readers * 4);
}

/// The same for a query string: a control character in a filter, a cursor or a page
/// size is answered as any other value that cannot match.
#[tokio::test]
async fn a_control_character_in_a_query_is_answered_like_any_impossible_value() {
    let f = Fixture::new().await;
    let mut probes = 0;
    let specs = specs();
    for spec in specs.iter().filter(|s| *s.method == axum::http::Method::GET) {
        let route = format!("{} {}", spec.method, spec.path);
        let token = admitted_token(&f, spec);
        let path = concrete_path(spec, &f.tenant);
        let query = |v: &str| {
            ["customerRef", "orderRef", "status", "eventType", "cursor", "limit", "appId", "lang"]
                .map(|name| format!("{name}={v}"))
                .join("&")
        };
        let expected = f.call(spec, &format!("{path}?{}", query("a~b")), token, &[]).await;
        let reply = f.call(spec, &format!("{path}?{}", query("a%00b")), token, &[]).await;
        assert!(reply.status.as_u16() < 500, "{route}: {}", reply.text);
        assert_eq!(
            (reply.status, reply.code()),
            (expected.status, expected.code()),
            "{route}: {} (for a~b: {})",
            reply.text,
            expected.text
        );
        probes += 1;
    }
    assert!(probes >= 40, "only {probes} probes ran");
}
