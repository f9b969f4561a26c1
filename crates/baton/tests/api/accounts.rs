//! The account, its licence, tenants and their approval, and API keys (SPEC §4.1–4.3),
//! through the real HTTP API.

use crate::common;

use common::{key_pair, with, KeyPair, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// The V3 body of SPEC §2, byte for byte (`ü` is `C3 BC`).
const V3_BODY: &str = r#"{"name":"Test tenant","streetAddress":"Bahnhofstrasse 1","extendedStreetAddress":"","locality":"Zürich","region":"ZH","postCode":"8001","country":"CH"}"#;

/// Sends `body` exactly as given, with the content type.
async fn send_raw(app: &TestApp, method: Method, path: &str, token: &str, content_type: &str, body: &str) -> Reply {
    let request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec());
    common::read(request.send().await.expect("request sent")).await
}

/// The tenants listed by `GET /v1/account/tenants`.
async fn tenants(app: &TestApp, token: &str) -> Vec<Value> {
    app.get("/v1/account/tenants", token).await.assert_status(200).as_array().expect("array").clone()
}

async fn tenant_count(app: &TestApp, token: &str) -> usize {
    tenants(app, token).await.len()
}

/// The `metadata.field` of the first error.
fn error_field(reply: &Reply) -> &str {
    reply.body["errors"][0]["metadata"]["field"].as_str().unwrap_or("")
}

/// A new account key and a token for it.
async fn account_key(app: &TestApp, admin: &str, roles: &[&str]) -> (KeyPair, String) {
    let key = app.create_account_key(admin, roles).await;
    let token = app.token(&key).await;
    (key, token)
}

/// The public keys of a key list, sorted: keys created within the same
/// millisecond have no defined order.
fn public_keys(list: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> =
        list.as_array().expect("array").iter().map(|k| k["publicKey"].as_str().expect("publicKey")).collect();
    keys.sort_unstable();
    keys
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// No key in a list or single-key body carries its private key.
#[track_caller]
fn assert_no_private_keys(body: &Value) {
    let keys = body.as_array().cloned().unwrap_or_else(|| vec![body.clone()]);
    for key in keys {
        assert!(key.get("privateKey").is_none(), "privateKey leaked: {key}");
    }
}

/// The account fields a successful `PUT /v1/account` needs.
fn billing(first: &str, last: &str) -> Value {
    json!({ "billingContactFirstName": first, "billingContactLastName": last })
}

/// One request of a race: method, path, JSON body and bearer token.
type Racer = (Method, String, Option<Value>, String);

/// Sends the requests at the same time (each on its own task) and returns the
/// replies in request order.
async fn concurrently(app: &TestApp, requests: Vec<Racer>) -> Vec<Reply> {
    let mut tasks = Vec::new();
    for (method, path, body, token) in requests {
        let mut request = app.client.request(method, app.url(&path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        tasks.push(tokio::spawn(async move { common::read(request.send().await.expect("request sent")).await }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("request task"));
    }
    replies
}

/// How many replies have each status.
fn statuses(replies: &[Reply]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in replies {
        *counts.entry(r.status.as_u16()).or_insert(0) += 1;
    }
    counts
}

fn is_iso_millis(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 24
        && s.ends_with('Z')
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
}

// ---------------------------------------------------------------------------
// Account and licence
// ---------------------------------------------------------------------------

#[tokio::test]
async fn account_is_read_and_updated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    // A fresh account: empty billing details, unlimited licence, no approval.
    let account = app.get("/v1/account", &admin).await.assert_status(200).clone();
    assert_eq!(account["accountId"], app.account_id.as_str());
    assert!(account["imburseAccountRef"].as_str().is_some_and(|r| !r.is_empty()), "{account}");
    assert_eq!(account["companyName"], "");
    assert_eq!(account["billingContactFirstName"], "");
    assert_eq!(account["billingContactLastName"], "");
    assert!(account["billingContactAddress"].is_object(), "{account}");
    assert_eq!(account["tenantCreationRequiresApproval"], false);
    let license = &account["license"];
    assert!(license["licenseId"].as_str().is_some_and(|id| !id.is_empty()), "{license}");
    assert!(license["licenseName"].is_string(), "{license}");
    for limit in ["maxTenants", "maxTransactions", "maxCollectApps", "maxPayoutApps"] {
        assert_eq!(license[limit], -1, "{limit}");
    }

    // Every field updated; `extendedAddress` is accepted for `extendedStreetAddress`
    // and the country is normalised.
    let update = with(
        billing("Ada", "Lovelace"),
        json!({
            "companyName": "Analytical Engines Ltd",
            "billingContactAddress": {
                "streetAddress": "1 Main Street",
                "extendedAddress": "Floor 2",
                "locality": "London",
                "region": "Greater London",
                "postCode": "EC1A 1BB",
                "country": "uk",
            },
        }),
    );
    let updated = app.put("/v1/account", &admin, &update).await.assert_status(200).clone();
    assert_eq!(updated["companyName"], "Analytical Engines Ltd");
    assert_eq!(updated["billingContactFirstName"], "Ada");
    assert_eq!(updated["billingContactLastName"], "Lovelace");
    assert_eq!(
        updated["billingContactAddress"],
        json!({
            "streetAddress": "1 Main Street",
            "extendedStreetAddress": "Floor 2",
            "locality": "London",
            "region": "Greater London",
            "postCode": "EC1A 1BB",
            "country": "GB",
        })
    );
    assert_eq!(updated["accountId"], account["accountId"]);
    assert_eq!(updated["imburseAccountRef"], account["imburseAccountRef"]);
    assert_eq!(updated["license"], account["license"]);
    assert_eq!(app.get("/v1/account", &admin).await.assert_status(200), &updated);

    // Refused updates change nothing.
    let reply =
        app.put("/v1/account", &admin, &json!({ "billingContactLastName": "Byron", "companyName": "Changed" })).await;
    reply.assert_error(400, "FIELD_REQUIRED");
    assert_eq!(error_field(&reply), "billingContactFirstName");
    let bad_country = with(billing("Ada", "Byron"), json!({ "billingContactAddress": { "country": "XX" } }));
    let reply = app.put("/v1/account", &admin, &bad_country).await;
    reply.assert_error(400, "INVALID_COUNTRY");
    assert_eq!(error_field(&reply), "billingContactAddress.country");
    assert_eq!(app.get("/v1/account", &admin).await.assert_status(200), &updated);

    // Property names are matched ignoring case; absent optional fields are kept.
    let reply = app
        .put("/v1/account", &admin, &json!({ "BILLINGCONTACTFIRSTNAME": "Augusta", "billingcontactlastname": "King" }))
        .await;
    let body = reply.assert_status(200);
    assert_eq!(body["billingContactFirstName"], "Augusta");
    assert_eq!(body["billingContactLastName"], "King");
    assert_eq!(body["companyName"], "Analytical Engines Ltd");
    assert_eq!(body["billingContactAddress"], updated["billingContactAddress"]);

    // The licence, and its history: one entry, open-ended.
    let current = app.get("/v1/account/license", &admin).await.assert_status(200).clone();
    assert_eq!(current, account["license"]);
    let history = app.get("/v1/account/license-history", &admin).await.assert_status(200).clone();
    let history = history.as_array().expect("array");
    assert_eq!(history.len(), 1, "{history:?}");
    let entry = &history[0];
    assert_eq!(entry["licenseId"], current["licenseId"]);
    assert_eq!(entry["maxTenants"], -1);
    assert!(entry["validFrom"].as_str().is_some_and(is_iso_millis), "{entry}");
    assert!(entry["validTo"].is_null(), "{entry}");
}

#[tokio::test]
async fn licence_limits_the_number_of_tenants() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.execute_sql("UPDATE licenses SET max_tenants = 1").await;
    assert_eq!(app.get("/v1/account/license", &admin).await.assert_status(200)["maxTenants"], 1);

    app.create_tenant(&admin, "The only one").await;
    let reply = app.post("/v1/account/tenants", &admin, &json!({ "name": "One too many" })).await;
    reply.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    assert_eq!(reply.body["errors"][0]["metadata"]["limit"], "1");
    assert_eq!(tenant_count(&app, &admin).await, 1);
}

// Creations racing for the last licence slots, or for one name, are decided one
// at a time: exactly the allowed number succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tenant_creation_respects_the_licence_and_unique_names() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.execute_sql("UPDATE licenses SET max_tenants = 3").await;
    let create =
        |name: String| (Method::POST, "/v1/account/tenants".to_string(), Some(json!({ "name": name })), admin.clone());
    let replies = concurrently(&app, (0..8).map(|i| create(format!("T{i}"))).collect()).await;
    assert_eq!(statuses(&replies), [(201, 3), (402, 5)].into(), "{replies:?}");
    for r in replies.iter().filter(|r| r.status.as_u16() == 402) {
        r.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    }
    assert_eq!(tenant_count(&app, &admin).await, 3);

    app.execute_sql("UPDATE licenses SET max_tenants = -1").await;
    let names = ["Same", "SAME", "same", "Same", "sAmE", "Same"];
    let replies = concurrently(&app, names.map(|n| create(n.to_string())).into()).await;
    assert_eq!(statuses(&replies), [(201, 1), (409, 5)].into(), "{replies:?}");
    for r in replies.iter().filter(|r| r.status.as_u16() == 409) {
        r.assert_error(409, "TENANT_NAME_ALREADY_EXISTS");
    }
    assert_eq!(tenant_count(&app, &admin).await, 4);
}

// ---------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tenants_are_created_in_the_documented_forms() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    // The documented flat form, exactly as SPEC §2 V3 sends it.
    let reply =
        send_raw(&app, Method::POST, "/v1/account/tenants", &admin, "application/json; charset=utf-8", V3_BODY).await;
    let tenant = reply.assert_status(201).clone();
    let id = tenant["tenantId"].as_str().expect("tenantId").to_string();
    assert_eq!(tenant["id"], id.as_str());
    assert_eq!(reply.header("location"), Some(format!("/v1/account/tenants/{id}").as_str()));
    assert_eq!(tenant["accountId"], app.account_id.as_str());
    assert_eq!(tenant["name"], "Test tenant");
    assert_eq!(tenant["status"], "ACTIVE");
    assert_eq!(
        tenant["address"],
        json!({
            "streetAddress": "Bahnhofstrasse 1",
            "extendedStreetAddress": "",
            "locality": "Zürich",
            "region": "ZH",
            "postCode": "8001",
            "country": "CH",
        })
    );
    assert!(tenant["createdAt"].as_str().is_some_and(is_iso_millis), "{tenant}");
    assert_eq!(app.get(&format!("/v1/account/tenants/{id}"), &admin).await.assert_status(200), &tenant);

    // Control characters in an address line are refused, by field; NUL before anything.
    for (line, code) in
        [("a\u{1b}[2J", "CONTROL_CHARACTER_NOT_ALLOWED"), ("two\nlines", "CONTROL_CHARACTER_NOT_ALLOWED")]
    {
        let body = json!({ "name": "Controlled", "streetAddress": line, "country": "DE" });
        let reply = app.post("/v1/account/tenants", &admin, &body).await;
        reply.assert_error(400, code);
        assert!(reply.codes().contains(&(code.to_string(), "streetAddress".to_string())), "{}", reply.text);
    }
    let body = json!({ "name": "Controlled", "streetAddress": "a\u{0}b", "country": "DE" });
    app.post("/v1/account/tenants", &admin, &body).await.assert_error(400, "CONTROL_CHARACTER_NOT_ALLOWED");
    let listed = tenants(&app, &admin).await;
    assert!(listed.iter().all(|t| t["name"] != "Controlled"), "nothing was created: {listed:?}");

    // The nested form; `UK` is stored as `GB`.
    let nested = json!({
        "name": "Nested",
        "address": { "streetAddress": "1 High St", "locality": "London", "region": "LDN", "postCode": "EC1A 1BB", "country": "UK" },
    });
    let body = app.post("/v1/account/tenants", &admin, &nested).await.assert_status(201).clone();
    assert_eq!(body["address"]["country"], "GB");
    assert_eq!(body["address"]["locality"], "London");
    assert_eq!(body["status"], "ACTIVE");

    // Property names in any case; unknown fields ignored.
    let shouty = json!({ "NAME": "Shouty", "Country": "de", "LOCALITY": "Berlin", "ExtendedAddress": "Hinterhaus", "colour": "blue", "extra": { "a": [1] } });
    let body = app.post("/v1/account/tenants", &admin, &shouty).await.assert_status(201).clone();
    assert_eq!(body["name"], "Shouty");
    assert_eq!(body["address"]["country"], "DE");
    assert_eq!(body["address"]["locality"], "Berlin");
    // `extendedAddress` is an alias of `extendedStreetAddress`, in any case too.
    assert_eq!(body["address"]["extendedStreetAddress"], "Hinterhaus");
    assert!(body.get("colour").is_none());

    let names: Vec<Value> = tenants(&app, &admin).await.iter().map(|t| t["name"].clone()).collect();
    let names: Vec<&str> = names.iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(sorted(names), vec!["Nested", "Shouty", "Test tenant"]);
}

#[tokio::test]
async fn invalid_tenant_requests_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "Test tenant").await;
    app.create_tenant(&admin, "Zürich Re").await;
    let before = tenants(&app, &admin).await;

    let refusals = [
        (json!({ "name": "Test tenant" }), 409, "TENANT_NAME_ALREADY_EXISTS", "name"),
        (json!({ "name": "  TEST TENANT " }), 409, "TENANT_NAME_ALREADY_EXISTS", "name"),
        (json!({ "name": "ZÜRICH RE" }), 409, "TENANT_NAME_ALREADY_EXISTS", "name"),
        (json!({ "country": "CH" }), 400, "TENANT_NAME_REQUIRED", "name"),
        (json!({ "name": "   " }), 400, "TENANT_NAME_REQUIRED", "name"),
        (json!({ "name": "Bad country", "country": "XX" }), 400, "INVALID_COUNTRY", "country"),
        (json!({ "name": "Bad nested", "address": { "country": "XX" } }), 400, "INVALID_COUNTRY", "address.country"),
        (json!({ "name": 5 }), 400, "INVALID_REQUEST_BODY", "name"),
        (json!({ "name": "x".repeat(101) }), 400, "INVALID_TENANT_NAME", "name"),
    ];
    for (body, status, code, field) in &refusals {
        let reply = app.post("/v1/account/tenants", &admin, body).await;
        reply.assert_error(*status, code);
        assert_eq!(error_field(&reply), *field, "{body}");
        assert_eq!(tenants(&app, &admin).await, before, "after {body}");
    }

    let reply = send_raw(&app, Method::POST, "/v1/account/tenants", &admin, "application/json", r#"{"name":"#).await;
    reply.assert_error(400, "INVALID_JSON");
    let reply = send_raw(&app, Method::POST, "/v1/account/tenants", &admin, "text/plain", r#"{"name":"Text"}"#).await;
    reply.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(tenants(&app, &admin).await, before);
}

#[tokio::test]
async fn tenants_are_listed_read_updated_and_not_deleted_while_active() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let first = app.create_tenant(&admin, "First").await;
    let second = app.create_tenant(&admin, "Second").await;

    // Listing, with a status filter (any case) and a bad one.
    let all = tenants(&app, &admin).await;
    let ids: Vec<&str> = all.iter().map(|t| t["tenantId"].as_str().unwrap()).collect();
    assert_eq!(sorted(ids), sorted(vec![first.as_str(), second.as_str()]));
    let active = app.get("/v1/account/tenants?status=ACTIVE", &admin).await;
    assert_eq!(active.assert_status(200).as_array().unwrap().len(), 2);
    let active = app.get("/v1/account/tenants?status=active", &admin).await;
    assert_eq!(active.assert_status(200).as_array().unwrap().len(), 2);
    let pending = app.get("/v1/account/tenants?status=PENDING_APPROVAL", &admin).await;
    assert_eq!(pending.assert_status(200), &json!([]));
    let reply = app.get("/v1/account/tenants?status=bogus", &admin).await;
    reply.assert_error(400, "INVALID_TENANT_STATUS");
    assert_eq!(error_field(&reply), "status");

    // Reading one; unknown ids are 404 whatever their shape.
    assert_eq!(app.get(&format!("/v1/account/tenants/{first}"), &admin).await.assert_status(200)["name"], "First");
    let unknown = uuid::Uuid::new_v4();
    app.get(&format!("/v1/account/tenants/{unknown}"), &admin).await.assert_error(404, "TENANT_NOT_FOUND");
    app.get("/v1/account/tenants/not-a-guid", &admin).await.assert_error(404, "TENANT_NOT_FOUND");

    // Updating: rename and readdress; a taken name is refused and changes nothing;
    // re-casing a tenant's own name is not a clash.
    let update = json!({ "name": "First renamed", "address": { "locality": "Geneva", "country": "ch" } });
    let body = app.put(&format!("/v1/account/tenants/{first}"), &admin, &update).await.assert_status(200).clone();
    assert_eq!(body["name"], "First renamed");
    assert_eq!(body["address"]["locality"], "Geneva");
    assert_eq!(body["address"]["country"], "CH");
    assert_eq!(body["tenantId"], first.as_str());
    assert_eq!(body["status"], "ACTIVE");
    assert_eq!(app.get(&format!("/v1/account/tenants/{first}"), &admin).await.assert_status(200), &body);
    let before = tenants(&app, &admin).await;
    let reply = app.put(&format!("/v1/account/tenants/{first}"), &admin, &json!({ "name": "second" })).await;
    reply.assert_error(409, "TENANT_NAME_ALREADY_EXISTS");
    assert_eq!(tenants(&app, &admin).await, before);
    let reply = app.put(&format!("/v1/account/tenants/{first}"), &admin, &json!({ "name": "" })).await;
    reply.assert_error(400, "TENANT_NAME_REQUIRED");
    assert_eq!(tenants(&app, &admin).await, before);
    let recased = app.put(&format!("/v1/account/tenants/{second}"), &admin, &json!({ "name": "SECOND" })).await;
    assert_eq!(recased.assert_status(200)["name"], "SECOND");
    let reply = app.put(&format!("/v1/account/tenants/{unknown}"), &admin, &json!({ "name": "Ghost" })).await;
    reply.assert_error(404, "TENANT_NOT_FOUND");
    // A rename alone keeps the address; address fields replace it.
    let renamed = app.put(&format!("/v1/account/tenants/{first}"), &admin, &json!({ "name": "First again" })).await;
    assert_eq!(renamed.assert_status(200)["address"], body["address"]);
    let moved = app
        .put(&format!("/v1/account/tenants/{first}"), &admin, &json!({ "name": "First again", "country": "AT" }))
        .await;
    assert_eq!(moved.assert_status(200)["address"]["country"], "AT");
    assert_eq!(moved.body["address"]["locality"], "", "flat address fields replace the whole address");

    // Active tenants cannot be deleted.
    let count = tenant_count(&app, &admin).await;
    app.delete(&format!("/v1/account/tenants/{first}"), &admin).await.assert_error(400, "TENANT_CANNOT_BE_DELETED");
    app.get(&format!("/v1/account/tenants/{first}"), &admin).await.assert_status(200);
    assert_eq!(tenant_count(&app, &admin).await, count);
    app.delete(&format!("/v1/account/tenants/{unknown}"), &admin).await.assert_error(404, "TENANT_NOT_FOUND");
}

#[tokio::test]
async fn guids_in_paths_match_in_either_case() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Casing").await;
    assert_eq!(tenant, tenant.to_lowercase(), "ids are issued in lower case");
    let upper = tenant.to_uppercase();

    let body = app.get(&format!("/v1/account/tenants/{upper}"), &admin).await.assert_status(200).clone();
    assert_eq!(body["tenantId"], tenant.as_str());
    let renamed = app.put(&format!("/v1/account/tenants/{upper}"), &admin, &json!({ "name": "Casing 2" })).await;
    assert_eq!(renamed.assert_status(200)["tenantId"], tenant.as_str());

    // Tenant keys: created under the upper-cased id, found under both.
    let reply = app.post(&format!("/v1/tenant/{upper}/keys"), &admin, &json!({ "roles": ["tenant-admin"] })).await;
    let created = reply.assert_status(201).clone();
    assert_eq!(created["tenantId"], tenant.as_str());
    let key = key_pair(&created);
    assert_eq!(reply.header("location"), Some(format!("/v1/tenant/{tenant}/keys/{}", key.public_key).as_str()));
    let pk_upper = key.public_key.to_uppercase();
    for path in [format!("/v1/tenant/{upper}/keys/{pk_upper}"), format!("/v1/tenant/{tenant}/keys/{}", key.public_key)]
    {
        assert_eq!(app.get(&path, &admin).await.assert_status(200)["publicKey"], key.public_key.as_str(), "{path}");
    }
    assert_eq!(public_keys(app.get(&format!("/v1/tenant/{upper}/keys"), &admin).await.assert_status(200)).len(), 1);

    // The tenant's own token, with the upper-cased id in the path and the header.
    let tenant_token = app.token(&key).await;
    let reply = app
        .send(Method::GET, &format!("/v1/tenant/{upper}/keys"), Some(&tenant_token), &[("x-tenant-id", &upper)], None)
        .await;
    assert_eq!(public_keys(reply.assert_status(200)), vec![key.public_key.as_str()]);

    // Account keys too.
    let (other, _) = account_key(&app, &admin, &["account-tenant-read"]).await;
    let path = format!("/v1/account/keys/{}", other.public_key.to_uppercase());
    assert_eq!(app.get(&path, &admin).await.assert_status(200)["publicKey"], other.public_key.as_str());
}

// ---------------------------------------------------------------------------
// Approval
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tenant_approval_workflow() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let require_approval = with(billing("Ada", "Lovelace"), json!({ "tenantCreationRequiresApproval": true }));

    // Approval cannot be switched on while no key could approve (the admin key's
    // implied role does not count: someone must hold the role itself).
    app.put("/v1/account", &admin, &require_approval).await.assert_error(400, "NO_TENANT_APPROVER");
    let account = app.get("/v1/account", &admin).await;
    assert_eq!(account.assert_status(200)["tenantCreationRequiresApproval"], false);
    assert_eq!(account.body["billingContactFirstName"], "");

    // A deleted approval key does not count; a key holding the role among others does.
    let (gone, _) = account_key(&app, &admin, &["account-tenant-approval"]).await;
    app.delete(&format!("/v1/account/keys/{}", gone.public_key), &admin).await.assert_status(204);
    app.put("/v1/account", &admin, &require_approval).await.assert_error(400, "NO_TENANT_APPROVER");
    let (_, approver) = account_key(&app, &admin, &["account-tenant-read", "account-tenant-approval"]).await;
    let reply = app.put("/v1/account", &admin, &require_approval).await;
    assert_eq!(reply.assert_status(200)["tenantCreationRequiresApproval"], true);

    // A new tenant waits for approval; its keys exist but cannot sign in yet.
    let pending = app.create_tenant(&admin, "Awaiting approval").await;
    let path = format!("/v1/account/tenants/{pending}");
    assert_eq!(app.get(&path, &admin).await.assert_status(200)["status"], "PENDING_APPROVAL");
    let listed = app.get("/v1/account/tenants?status=PENDING_APPROVAL", &approver).await;
    assert_eq!(listed.assert_status(200).as_array().unwrap().len(), 1);
    let key = app.create_tenant_key(&admin, &pending, &["tenant-management"]).await;
    app.token_request(&app.hmac(&key, b""), &[]).await.assert_error(403, "TENANT_NOT_ACTIVE");

    // Approval makes it ACTIVE, and then the key's tokens work.
    let reply = app.post(&format!("{path}/approve"), &approver, &json!({ "reason": "Looks good" })).await;
    let approved = reply.assert_status(200).clone();
    assert_eq!(approved["status"], "ACTIVE");
    assert_eq!(approved["tenantId"], pending.as_str());
    assert_eq!(app.get(&path, &admin).await.assert_status(200)["status"], "ACTIVE");
    let tenant_token = app.token(&key).await;
    let me = app.get("/v1/tenant", &tenant_token).await;
    assert_eq!(me.assert_status(200)["tenantId"], pending.as_str());
    assert_eq!(me.body["name"], "Awaiting approval");
    assert_eq!(me.body["status"], "ACTIVE");

    // A decided tenant cannot be decided again.
    app.post(&format!("{path}/approve"), &approver, &json!({})).await.assert_error(400, "TENANT_NOT_PENDING_APPROVAL");
    app.post(&format!("{path}/reject"), &approver, &json!({})).await.assert_error(400, "TENANT_NOT_PENDING_APPROVAL");
    assert_eq!(app.get(&path, &admin).await.assert_status(200)["status"], "ACTIVE");
    let unknown = uuid::Uuid::new_v4();
    let reply = app.post(&format!("/v1/account/tenants/{unknown}/approve"), &approver, &json!({})).await;
    reply.assert_error(404, "TENANT_NOT_FOUND");

    // Rejection, with a reason; a rejected tenant stays shut and can be deleted,
    // after which its name is free again.
    let rejected = app.create_tenant(&admin, "To be rejected").await;
    let rejected_key = app.create_tenant_key(&admin, &rejected, &["tenant-admin"]).await;
    let rpath = format!("/v1/account/tenants/{rejected}");
    let reply = app.post(&format!("{rpath}/reject"), &approver, &json!({ "reason": "Duplicate business unit" })).await;
    let body = reply.assert_status(200);
    assert_eq!(body["status"], "REJECTED");
    assert_eq!(body["statusReason"], "Duplicate business unit");
    app.token_request(&app.hmac(&rejected_key, b""), &[]).await.assert_error(403, "TENANT_NOT_ACTIVE");
    app.post(&format!("{rpath}/approve"), &approver, &json!({})).await.assert_error(400, "TENANT_NOT_PENDING_APPROVAL");
    let listed = app.get("/v1/account/tenants?status=REJECTED", &admin).await;
    assert_eq!(listed.assert_status(200).as_array().unwrap().len(), 1);
    let reply = app.delete(&rpath, &admin).await;
    reply.assert_status(204);
    assert_eq!(reply.text, "");
    app.get(&rpath, &admin).await.assert_error(404, "TENANT_NOT_FOUND");
    app.token_request(&app.hmac(&rejected_key, b""), &[]).await.assert_error(401, "API_KEY_NOT_FOUND");
    let reborn = app.create_tenant(&admin, "To be rejected").await;
    assert_ne!(reborn, rejected);

    // A tenant still pending can be deleted outright (and the approval call needs
    // no body).
    app.delete(&format!("/v1/account/tenants/{reborn}"), &admin).await.assert_status(204);
    app.get(&format!("/v1/account/tenants/{reborn}"), &admin).await.assert_error(404, "TENANT_NOT_FOUND");
    let last = app.create_tenant(&admin, "Bodyless approval").await;
    let reply =
        app.send(Method::POST, &format!("/v1/account/tenants/{last}/approve"), Some(&approver), &[], None).await;
    assert_eq!(reply.assert_status(200)["status"], "ACTIVE");

    let statuses: Vec<Value> = tenants(&app, &admin).await.iter().map(|t| t["status"].clone()).collect();
    assert_eq!(statuses, vec![json!("ACTIVE"), json!("ACTIVE")]);

    // Switching approval off: new tenants are ACTIVE at once.
    let off = with(billing("Ada", "Lovelace"), json!({ "tenantCreationRequiresApproval": false }));
    app.put("/v1/account", &admin, &off).await.assert_status(200);
    let direct = app.create_tenant(&admin, "Direct").await;
    assert_eq!(app.get(&format!("/v1/account/tenants/{direct}"), &admin).await.assert_status(200)["status"], "ACTIVE");
}

// ---------------------------------------------------------------------------
// Account keys
// ---------------------------------------------------------------------------

#[tokio::test]
async fn account_keys_lifecycle() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    // Create: the private key is shown once; the name defaults to "API Key".
    let reply = app.post("/v1/account/keys", &admin, &json!({ "roles": ["account-tenant-read"] })).await;
    let created = reply.assert_status(201).clone();
    let key = key_pair(&created);
    assert_eq!(reply.header("location"), Some(format!("/v1/account/keys/{}", key.public_key).as_str()));
    assert_eq!(created["name"], "API Key");
    assert_eq!(created["accountId"], app.account_id.as_str());
    assert_eq!(created["roles"], json!(["account-tenant-read"]));
    assert!(created.get("tenantId").is_none(), "{created}");
    assert!(uuid::Uuid::parse_str(&key.public_key).is_ok());
    assert_eq!(key.private_key.len(), 44, "base64 of 32 bytes");
    let named =
        app.post("/v1/account/keys", &admin, &json!({ "name": " CI ", "roles": ["account-tenant-write"] })).await;
    assert_eq!(named.assert_status(201)["name"], "CI");
    let named = key_pair(&named.body);
    let too_long = json!({ "name": "k".repeat(101), "roles": ["account-tenant-read"] });
    let reply = app.post("/v1/account/keys", &admin, &too_long).await;
    reply.assert_error(400, "INVALID_KEY_NAME");
    assert_eq!(error_field(&reply), "name");

    // List and get never show private keys.
    let list = app.get("/v1/account/keys", &admin).await.assert_status(200).clone();
    assert_eq!(public_keys(&list), sorted(vec![app.admin.public_key.as_str(), &key.public_key, &named.public_key]));
    assert_no_private_keys(&list);
    let one = app.get(&format!("/v1/account/keys/{}", key.public_key), &admin).await.assert_status(200).clone();
    assert_no_private_keys(&one);
    let mut without_secret = created.clone();
    without_secret.as_object_mut().unwrap().remove("privateKey");
    assert_eq!(one, without_secret);

    // Update name and roles; new tokens carry the new roles.
    let path = format!("/v1/account/keys/{}", key.public_key);
    let update = json!({ "name": "Approver", "roles": ["account-tenant-approval"] });
    let updated = app.put(&path, &admin, &update).await.assert_status(200).clone();
    assert_eq!(updated["name"], "Approver");
    assert_eq!(updated["roles"], json!(["account-tenant-approval"]));
    assert_no_private_keys(&updated);
    assert_eq!(app.get(&path, &admin).await.assert_status(200), &updated);
    let reply = app.put(&path, &admin, &json!({ "roles": ["tenant-admin"] })).await;
    reply.assert_error(400, "INVALID_ROLE");
    assert_eq!(app.get(&path, &admin).await.assert_status(200), &updated);
    let token = app.token(&key).await;
    assert_eq!(app.get("/v1/account/tenants", &token).await.assert_status(200), &json!([]));
    app.post("/v1/account/tenants", &token, &json!({ "name": "x" })).await.assert_error(403, "ROLE_REQUIRED");

    // Delete: the key's tokens are revoked at once and no new ones are issued.
    let reply = app.delete(&path, &admin).await;
    reply.assert_status(204);
    assert_eq!(reply.text, "");
    app.get("/v1/account", &token).await.assert_error(401, "TOKEN_REVOKED");
    app.token_request(&app.hmac(&key, b""), &[]).await.assert_error(401, "API_KEY_NOT_FOUND");
    app.get(&path, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.delete(&path, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    let list = app.get("/v1/account/keys", &admin).await.assert_status(200).clone();
    assert_eq!(public_keys(&list), sorted(vec![app.admin.public_key.as_str(), &named.public_key]));

    // Unknown keys.
    let unknown = format!("/v1/account/keys/{}", uuid::Uuid::new_v4());
    app.get(&unknown, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.put(&unknown, &admin, &json!({ "roles": ["account-admin"] })).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.put(&unknown, &admin, &json!({ "roles": ["account-tenant-read"] }))
        .await
        .assert_error(404, "API_KEY_NOT_FOUND");
    app.delete(&unknown, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.get("/v1/account/keys/not-a-guid", &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
}

#[tokio::test]
async fn the_last_admin_key_cannot_be_removed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_path = format!("/v1/account/keys/{}", app.admin.public_key);
    let before = app.get(&admin_path, &admin).await.assert_status(200).clone();

    app.delete(&admin_path, &admin).await.assert_error(400, "LAST_ADMIN_KEY");
    let demote = json!({ "name": "Demoted", "roles": ["account-tenant-read"] });
    app.put(&admin_path, &admin, &demote).await.assert_error(400, "LAST_ADMIN_KEY");
    assert_eq!(app.get(&admin_path, &admin).await.assert_status(200), &before);
    // Renaming while keeping the role is fine.
    let renamed = app.put(&admin_path, &admin, &json!({ "name": "Root", "roles": ["account-admin"] })).await;
    assert_eq!(renamed.assert_status(200)["name"], "Root");

    // With a second admin key the first can be demoted; then the second is the last.
    let (second, second_token) = account_key(&app, &admin, &["account-admin"]).await;
    let reply = app.put(&admin_path, &second_token, &demote).await;
    assert_eq!(reply.assert_status(200)["roles"], json!(["account-tenant-read"]));
    let second_path = format!("/v1/account/keys/{}", second.public_key);
    app.delete(&second_path, &second_token).await.assert_error(400, "LAST_ADMIN_KEY");
    let demote_second = json!({ "roles": ["account-tenant-write", "account-tenant-approval"] });
    app.put(&second_path, &second_token, &demote_second).await.assert_error(400, "LAST_ADMIN_KEY");
    assert_eq!(app.get(&second_path, &second_token).await.assert_status(200)["roles"], json!(["account-admin"]));
    // Promoting the first again lets the second go.
    let promote = json!({ "roles": ["account-admin"] });
    app.put(&admin_path, &second_token, &promote).await.assert_status(200);
    app.delete(&second_path, &admin).await.assert_status(204);
    app.get(&second_path, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
}

// Two admin keys removed at the same time (deleted or demoted): one removal must
// be refused, so the account is never left without an admin key. Each key removes
// itself, so the loser is refused by the invariant rather than by a revoked token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_removals_keep_an_admin_key() {
    for (first_op, second_op) in [("delete", "delete"), ("demote", "delete"), ("demote", "demote")] {
        let app = TestApp::spawn().await;
        let first_token = app.admin_token().await;
        let (second, second_token) = account_key(&app, &first_token, &["account-admin"]).await;
        let request = |op: &str, public_key: &str, token: &str| {
            let path = format!("/v1/account/keys/{public_key}");
            match op {
                "delete" => (Method::DELETE, path, None, token.to_string()),
                _ => (Method::PUT, path, Some(json!({ "roles": ["account-tenant-read"] })), token.to_string()),
            }
        };
        let requests = vec![
            request(first_op, &app.admin.public_key, &first_token),
            request(second_op, &second.public_key, &second_token),
        ];
        let replies = concurrently(&app, requests).await;
        let race = format!("{first_op} + {second_op}: {replies:?}");
        assert_eq!(replies.iter().filter(|r| r.status.is_success()).count(), 1, "{race}");
        let refused: Vec<&Reply> = replies.iter().filter(|r| !r.status.is_success()).collect();
        refused[0].assert_error(400, "LAST_ADMIN_KEY");

        // Exactly one admin key is left (read with a token whose key survived).
        let mut list = app.get("/v1/account/keys", &first_token).await;
        if list.status.as_u16() == 401 {
            list = app.get("/v1/account/keys", &second_token).await;
        }
        let list = list.assert_status(200);
        let admins = list.as_array().unwrap().iter().filter(|k| k["roles"] == json!(["account-admin"])).count();
        assert_eq!(admins, 1, "{race}; keys now: {list}");
    }
}

// ---------------------------------------------------------------------------
// Tenant keys
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tenant_keys_through_an_account_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, writer) = account_key(&app, &admin, &["account-tenant-write"]).await;
    let (_, reader) = account_key(&app, &admin, &["account-tenant-read"]).await;
    let tenant = app.create_tenant(&writer, "Tenant A").await;
    let keys = format!("/v1/tenant/{tenant}/keys");

    let reply = app.post(&keys, &writer, &json!({ "name": "A admin", "roles": ["tenant-admin"] })).await;
    let created = reply.assert_status(201).clone();
    let key = key_pair(&created);
    let path = format!("{keys}/{}", key.public_key);
    assert_eq!(reply.header("location"), Some(path.as_str()));
    assert_eq!(created["tenantId"], tenant.as_str());
    assert_eq!(created["accountId"], app.account_id.as_str());
    assert_eq!(created["name"], "A admin");
    assert_eq!(created["roles"], json!(["tenant-admin"]));
    let default_named = app.post(&keys, &writer, &json!({ "roles": ["tenant-app-write"] })).await;
    assert_eq!(default_named.assert_status(201)["name"], "API Key");
    let second = key_pair(&default_named.body);

    // Readers list and get; nobody sees private keys.
    let list = app.get(&keys, &reader).await.assert_status(200).clone();
    assert_eq!(public_keys(&list), sorted(vec![key.public_key.as_str(), &second.public_key]));
    assert_no_private_keys(&list);
    let one = app.get(&path, &reader).await.assert_status(200).clone();
    assert_no_private_keys(&one);
    assert_eq!(one["tenantId"], tenant.as_str());
    // Tenant keys are not account keys.
    app.get(&format!("/v1/account/keys/{}", key.public_key), &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    assert!(
        !public_keys(app.get("/v1/account/keys", &admin).await.assert_status(200)).contains(&key.public_key.as_str())
    );

    // Update.
    let update = json!({ "name": "A manager", "roles": ["tenant-management", "TENANT-APP-READ"] });
    let updated = app.put(&path, &writer, &update).await.assert_status(200).clone();
    assert_eq!(updated["name"], "A manager");
    assert_eq!(updated["roles"], json!(["tenant-management", "tenant-app-read"]));
    assert_eq!(app.get(&path, &reader).await.assert_status(200), &updated);
    app.put(&path, &writer, &json!({ "roles": ["account-admin"] })).await.assert_error(400, "INVALID_ROLE");
    app.put(&path, &writer, &json!({ "roles": [] })).await.assert_error(400, "ROLES_REQUIRED");
    assert_eq!(app.get(&path, &reader).await.assert_status(200), &updated);

    // Delete revokes the key's tokens.
    let token = app.token(&key).await;
    app.get("/v1/tenant", &token).await.assert_status(200);
    app.delete(&path, &writer).await.assert_status(204);
    app.get("/v1/tenant", &token).await.assert_error(401, "TOKEN_REVOKED");
    app.get(&path, &reader).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.delete(&path, &writer).await.assert_error(404, "API_KEY_NOT_FOUND");
    assert_eq!(public_keys(app.get(&keys, &reader).await.assert_status(200)), vec![second.public_key.as_str()]);

    // An unknown tenant has no keys to list, create or read.
    let ghost = uuid::Uuid::new_v4();
    app.get(&format!("/v1/tenant/{ghost}/keys"), &reader).await.assert_error(404, "TENANT_NOT_FOUND");
    let reply = app.post(&format!("/v1/tenant/{ghost}/keys"), &writer, &json!({ "roles": ["tenant-admin"] })).await;
    reply.assert_error(404, "TENANT_NOT_FOUND");
    let reply = app.get(&format!("/v1/tenant/{ghost}/keys/{}", second.public_key), &reader).await;
    reply.assert_error(404, "TENANT_NOT_FOUND");
    let reply = app.delete(&format!("/v1/tenant/{ghost}/keys/{}", second.public_key), &writer).await;
    reply.assert_error(404, "TENANT_NOT_FOUND");
    app.get(&format!("{keys}/{}", second.public_key), &reader).await.assert_status(200);
}

#[tokio::test]
async fn tenant_keys_through_a_tenant_token_stay_in_their_tenant() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = app.create_tenant(&admin, "Tenant A").await;
    let b = app.create_tenant(&admin, "Tenant B").await;
    let a_keys = format!("/v1/tenant/{a}/keys");
    let b_keys = format!("/v1/tenant/{b}/keys");
    let a_admin_key = app.create_tenant_key(&admin, &a, &["tenant-admin"]).await;
    let a_admin = app.token(&a_admin_key).await;
    let b_key = app.create_tenant_key(&admin, &b, &["tenant-management"]).await;

    // tenant-admin manages its own tenant's keys.
    let reply =
        app.post(&a_keys, &a_admin, &json!({ "name": "Made by A", "roles": ["tenant-transaction-write"] })).await;
    let created = reply.assert_status(201).clone();
    let made = key_pair(&created);
    assert_eq!(created["tenantId"], a.as_str());
    let made_path = format!("{a_keys}/{}", made.public_key);
    assert_eq!(reply.header("location"), Some(made_path.as_str()));
    let list = app.get(&a_keys, &a_admin).await.assert_status(200).clone();
    assert_eq!(public_keys(&list), sorted(vec![a_admin_key.public_key.as_str(), &made.public_key]));
    assert_no_private_keys(&list);
    assert_eq!(app.get(&made_path, &a_admin).await.assert_status(200)["name"], "Made by A");
    let reply = app.post(&a_keys, &a_admin, &json!({ "roles": ["account-tenant-read"] })).await;
    reply.assert_error(400, "INVALID_ROLE");
    // Updating is for account tokens only.
    let reply = app.put(&made_path, &a_admin, &json!({ "name": "Renamed", "roles": ["tenant-admin"] })).await;
    reply.assert_error(403, "ACCOUNT_KEY_REQUIRED");
    assert_eq!(app.get(&made_path, &a_admin).await.assert_status(200)["name"], "Made by A");
    app.delete(&made_path, &a_admin).await.assert_status(204);
    app.get(&made_path, &a_admin).await.assert_error(404, "API_KEY_NOT_FOUND");

    // Tenant A's token cannot touch tenant B's keys by naming B in the path.
    let b_path = format!("{b_keys}/{}", b_key.public_key);
    app.get(&b_keys, &a_admin).await.assert_error(403, "TENANT_ID_MISMATCH");
    app.post(&b_keys, &a_admin, &json!({ "roles": ["tenant-admin"] })).await.assert_error(403, "TENANT_ID_MISMATCH");
    app.get(&b_path, &a_admin).await.assert_error(403, "TENANT_ID_MISMATCH");
    app.delete(&b_path, &a_admin).await.assert_error(403, "TENANT_ID_MISMATCH");
    assert_eq!(public_keys(app.get(&b_keys, &admin).await.assert_status(200)), vec![b_key.public_key.as_str()]);

    // Nor reach B's key, or an account key, under its own tenant's path.
    let b_under_a = format!("{a_keys}/{}", b_key.public_key);
    app.get(&b_under_a, &a_admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.delete(&b_under_a, &a_admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    let account_under_a = format!("{a_keys}/{}", app.admin.public_key);
    app.get(&account_under_a, &a_admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.delete(&account_under_a, &a_admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    // The same holds for account tokens.
    app.get(&b_under_a, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.put(&b_under_a, &admin, &json!({ "roles": ["tenant-admin"] })).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.delete(&b_under_a, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    app.get(&account_under_a, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");
    let reply = app.put(&account_under_a, &admin, &json!({ "roles": ["tenant-admin"] })).await;
    reply.assert_error(404, "API_KEY_NOT_FOUND");
    app.delete(&account_under_a, &admin).await.assert_error(404, "API_KEY_NOT_FOUND");

    // Everything refused above is intact: B's key still signs in, the admin key works.
    let b_token = app.token(&b_key).await;
    assert_eq!(app.get("/v1/tenant", &b_token).await.assert_status(200)["tenantId"], b.as_str());
    let b_one = app.get(&b_path, &admin).await;
    assert_eq!(b_one.assert_status(200)["roles"], json!(["tenant-management"]));
    app.get("/v1/account", &app.admin_token().await).await.assert_status(200);
}
