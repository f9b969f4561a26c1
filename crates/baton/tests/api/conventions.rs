//! API conventions (SPEC §1): the error envelope everywhere, correlation ids,
//! JSON handling, idempotency keys, rate limits and the body limit.

use crate::common;

use axum::routing::get;
use baton_http::{AppState, HttpSettings};
use common::{Options, TestApp};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn every_error_is_an_envelope() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    app.send(Method::GET, "/v1/nothing-here", Some(&token), &[], None).await.assert_error(404, "ROUTE_NOT_FOUND");
    let reply = app.send(Method::PATCH, "/v1/account", Some(&token), &[], None).await;
    reply.assert_error(405, "METHOD_NOT_ALLOWED");
    assert!(reply.header("allow").is_some_and(|a| a.contains("GET")));

    // Not JSON.
    let bearer = format!("Bearer {token}");
    let form = [("authorization", bearer.as_str()), ("content-type", "application/x-www-form-urlencoded")];
    app.post_raw("/v1/account/tenants", &form, "name=Acme").await.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");

    // Malformed JSON and wrong types name what is wrong.
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json; charset=utf-8")];
    app.post_raw("/v1/account/tenants", &json, "{\"name\": ").await.assert_error(400, "INVALID_JSON");
    let reply = app.post("/v1/account/tenants", &token, &json!({"name": ["Acme"]})).await;
    reply.assert_error(400, "INVALID_REQUEST_BODY");
    assert_eq!(reply.body["errors"][0]["metadata"]["field"], "name");
    let reply = app.post("/v1/account/tenants", &token, &json!({"name": "Acme", "country": "Atlantis"})).await;
    reply.assert_error(400, "INVALID_COUNTRY");
    assert_eq!(reply.body["errors"][0]["metadata"]["field"], "country");
    // Nothing was created by any of them.
    assert_eq!(app.get("/v1/account/tenants", &token).await.assert_status(200).as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn several_bad_fields_are_reported_together() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let reply = app.put("/v1/account", &token, &json!({"billingContactAddress": {"country": "ZZ"}})).await;
    reply.assert_error(400, "FIELD_REQUIRED");
    let fields: Vec<&str> =
        reply.body["errors"].as_array().unwrap().iter().map(|e| e["metadata"]["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["billingContactFirstName", "billingContactLastName", "billingContactAddress.country"]);
}

#[tokio::test]
async fn correlation_ids_outer_and_inner() {
    let app = TestApp::spawn().await;
    // Without a caller id: both are the platform id, which is echoed.
    let reply = app.send(Method::GET, "/v1/account", None, &[], None).await;
    let outer = reply.body["correlationId"].as_str().unwrap().to_string();
    assert_eq!(reply.body["errors"][0]["metadata"]["correlationId"], outer.as_str());
    assert_eq!(reply.header("x-correlation-id"), Some(outer.as_str()));
    let (prefix, counter) = outer.split_once(':').unwrap();
    assert_eq!((prefix.len(), counter.len()), (13, 8), "platform id {outer}");
    // The message fills the template, as documented.
    assert_eq!(reply.body["errors"][0]["messageTemplate"], "An 'Authorization: Bearer <token>' header is required.");

    // With one: inner is the caller's, outer stays the platform's; the caller's is echoed.
    let reply = app.send(Method::GET, "/v1/account", None, &[("x-correlation-id", "my-trace-42")], None).await;
    assert_eq!(reply.body["errors"][0]["metadata"]["correlationId"], "my-trace-42");
    let outer2 = reply.body["correlationId"].as_str().unwrap();
    assert_ne!(outer2, "my-trace-42");
    assert_ne!(outer2, outer, "each request gets its own platform id");
    assert_eq!(reply.header("x-correlation-id"), Some("my-trace-42"));
    // An over-long caller id is ignored rather than echoed.
    let long = "x".repeat(129);
    let reply = app.send(Method::GET, "/healthz", None, &[("x-correlation-id", &long)], None).await;
    assert_ne!(reply.header("x-correlation-id"), Some(long.as_str()));

    // The documented support message shows the id in brackets.
    let reply = app.send(Method::GET, "/nope", None, &[], None).await;
    let id = reply.body["correlationId"].as_str().unwrap();
    let unknown_method = app.send(Method::DELETE, "/healthz", None, &[], None).await;
    let id2 = unknown_method.body["correlationId"].as_str().unwrap();
    assert_eq!(
        unknown_method.body["errors"][0]["message"],
        format!("Please reference [{id2}] when contacting support.")
    );
    assert!(!id.is_empty());
}

#[tokio::test]
async fn request_bodies_over_the_limit_are_refused() {
    let app = TestApp::spawn_with(Options { body_limit: 4096, ..Options::default() }).await;
    let token = app.admin_token().await;
    let big = json!({"name": "x".repeat(5000)});
    app.post("/v1/account/tenants", &token, &big).await.assert_error(413, "PAYLOAD_TOO_LARGE");
    // Also on the token endpoint, which reads the raw body.
    let body = vec![b'a'; 5000];
    let h = app.hmac(&app.admin, &body);
    app.post_raw("/identity/v1/hmac/management", &[("authorization", &h)], body)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn property_names_match_in_any_case() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let reply = app
        .post(
            "/v1/account/tenants",
            &token,
            &json!({"NAME": "Case Co", "Country": "uk", "POSTCODE": "SW1", "whatever": true}),
        )
        .await;
    let body = reply.assert_status(201);
    assert_eq!(body["name"], "Case Co");
    assert_eq!(body["address"]["country"], "GB");
    assert_eq!(body["address"]["postCode"], "SW1");
}

#[tokio::test]
async fn idempotency_keys_replay_and_conflict() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let body = json!({"name": "Once Ltd"});
    let first =
        app.send(Method::POST, "/v1/account/tenants", Some(&token), &[("idempotency-key", "k-1")], Some(&body)).await;
    first.assert_status(201);
    let again =
        app.send(Method::POST, "/v1/account/tenants", Some(&token), &[("idempotency-key", "k-1")], Some(&body)).await;
    again.assert_status(201);
    assert_eq!(again.body, first.body, "the stored response is replayed");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.get("/v1/account/tenants", &token).await.body.as_array().unwrap().len(), 1, "created once");

    // Same key, different body.
    let other = json!({"name": "Twice Ltd"});
    app.send(Method::POST, "/v1/account/tenants", Some(&token), &[("idempotency-key", "k-1")], Some(&other))
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // Same key, other endpoint.
    app.send(Method::POST, "/v1/account/keys", Some(&token), &[("idempotency-key", "k-1")], Some(&body))
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");

    // A refused request does not consume its key: fixed and retried, it runs.
    let dup =
        app.send(Method::POST, "/v1/account/tenants", Some(&token), &[("idempotency-key", "k-2")], Some(&body)).await;
    dup.assert_error(409, "TENANT_NAME_ALREADY_EXISTS");
    let dup_again =
        app.send(Method::POST, "/v1/account/tenants", Some(&token), &[("idempotency-key", "k-2")], Some(&body)).await;
    dup_again.assert_error(409, "TENANT_NAME_ALREADY_EXISTS");

    // Keys belong to their caller: a tenant's key space is not the account's.
    let tenant_id = first.body["tenantId"].as_str().unwrap();
    let tkey = app.create_tenant_key(&token, tenant_id, &["tenant-admin"]).await;
    let ttoken = app.token(&tkey).await;
    let reply = app
        .send(
            Method::POST,
            &format!("/v1/tenant/{tenant_id}/keys"),
            Some(&ttoken),
            &[("idempotency-key", "k-1")],
            Some(&json!({"roles": ["tenant-app-read"]})),
        )
        .await;
    reply.assert_status(201);

    // Keys are kept for at least 24 hours.
    app.clock.advance(std::time::Duration::from_secs(23 * 3600));
    let fresh = app.admin_token().await;
    let later =
        app.send(Method::POST, "/v1/account/tenants", Some(&fresh), &[("idempotency-key", "k-1")], Some(&body)).await;
    assert_eq!(later.header("idempotent-replayed"), Some("true"));

    // Malformed keys are refused.
    let long = "k".repeat(300);
    app.send(Method::POST, "/v1/account/tenants", Some(&fresh), &[("idempotency-key", &long)], Some(&other))
        .await
        .assert_error(400, "INVALID_IDEMPOTENCY_KEY");
}

#[tokio::test]
async fn rate_limits_apply_per_key_with_retry_after() {
    let app = TestApp::spawn_with(Options { rate_limit_per_second: 5, ..Options::default() }).await;
    let token = app.admin_token().await;
    let admin = app.admin_token().await;
    let other_key = app.create_account_key(&admin, &["account-tenant-read"]).await;
    let mut limited = None;
    for _ in 0..20 {
        let reply = app.get("/v1/account", &token).await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
        reply.assert_status(200);
    }
    let reply = limited.expect("a burst of 20 at 5/s is limited");
    reply.assert_error(429, "RATE_LIMITED");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    // Another key has its own budget.
    let other = app.token(&other_key).await;
    app.get("/v1/account", &other).await.assert_status(200);
}

#[tokio::test]
async fn panics_become_opaque_500_envelopes() {
    let app = TestApp::spawn().await;
    let state = AppState::new(app.node.as_ref().unwrap().engine.clone(), HttpSettings::default());
    let routes = axum::Router::new().route("/boom", get(|| async { panic!("secret detail") as &'static str }));
    let router = baton_http::with_conventions(routes, state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let reply = common::read(reqwest::get(format!("http://{addr}/boom")).await.unwrap()).await;
    reply.assert_error(500, "INTERNAL_SERVER_ERROR");
    assert!(!reply.text.contains("secret detail"), "internals never reach the client");
}

#[tokio::test]
async fn blank_context_headers_fall_back_to_the_token() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    // Absent or blank x-account-id: taken from the token.
    app.send(Method::GET, "/v1/account", Some(&token), &[("x-account-id", "")], None).await.assert_status(200);
    let account = app.account_id.clone();
    app.send(Method::GET, "/v1/account", Some(&token), &[("x-account-id", &account)], None).await.assert_status(200);
    app.send(Method::GET, "/v1/account", Some(&token), &[("x-account-id", "other")], None)
        .await
        .assert_error(403, "ACCOUNT_ID_MISMATCH");
}
