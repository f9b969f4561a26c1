//! Health, readiness, metrics, the OpenAPI document and reference page, and HTTPS.

use crate::common;

use common::{Options, TestApp};
use reqwest::Method;

#[tokio::test]
async fn health_and_readiness() {
    let app =
        TestApp::spawn_with(Options { environment: baton_domain::Environment::Production, ..Options::default() }).await;
    let health = app.send(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(health.assert_status(200)["environment"], "production");
    let ready = app.send(Method::GET, "/readyz", None, &[], None).await;
    let expected = if app.pg.is_some() { "postgres" } else { "sqlite" };
    assert_eq!(ready.assert_status(200)["database"], expected);
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.node.as_ref().unwrap().engine.close().await;
    app.send(Method::GET, "/readyz", None, &[], None).await.assert_error(503, "DATABASE_UNAVAILABLE");
    // Liveness does not depend on the database.
    app.send(Method::GET, "/healthz", None, &[], None).await.assert_status(200);
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    app.get("/v1/account", &token).await.assert_status(200);
    app.get("/v1/account/tenants/11111111-1111-1111-1111-111111111111", &token).await.assert_status(404);
    let text = app.send(Method::GET, "/metrics", None, &[], None).await.text;
    assert!(text.contains(r#"baton_http_requests_total{method="GET",route="/v1/account",status="200"} 1"#), "{text}");
    // Route templates, never raw ids, keep the label set bounded.
    assert!(text.contains(r#"route="/v1/account/tenants/{tenantId}",status="404""#), "{text}");
    assert!(!text.contains("11111111-1111"));
    assert!(text.contains("baton_http_request_duration_seconds_bucket"));
    assert!(text.contains(r#"route="/identity/v1/hmac/management",status="200""#));
}

#[tokio::test]
async fn openapi_documents_every_route_with_its_roles() {
    let app = TestApp::spawn().await;
    let doc = app.send(Method::GET, "/v1/openapi.json", None, &[], None).await;
    let doc = doc.assert_status(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let undocumented_ok = ["/v1/openapi.json", "/docs", "/docs/reference.css"];
    for spec in baton_http::routes::specs() {
        if undocumented_ok.contains(&spec.path) {
            continue;
        }
        let op = &doc["paths"][spec.path][spec.method.as_str().to_lowercase()];
        assert!(op.is_object(), "{} {} is not in the OpenAPI document", spec.method, spec.path);
        for role in spec.access.roles() {
            let description = op["description"].as_str().unwrap_or("");
            assert!(description.contains(role.as_str()), "{} {} does not document role {role}", spec.method, spec.path);
        }
        if let Some(canonical) = spec.alias_of {
            assert_eq!(op["summary"], format!("Alias of {canonical}"), "{} {}", spec.method, spec.path);
        }
        if spec.access.needs_token() {
            assert_eq!(op["security"][0]["bearer"], serde_json::json!([]), "{} {}", spec.method, spec.path);
        }
    }
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
}

#[tokio::test]
async fn reference_page_is_self_contained() {
    let app = TestApp::spawn().await;
    let page = app.send(Method::GET, "/docs", None, &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"));
    assert!(page.text.contains("/v1/account/tenants"));
    assert!(page.text.contains("account-tenant-write"));
    // No third-party assets: every src/href stays on this server.
    for attr in ["src=\"", "href=\""] {
        for rest in page.text.split(attr).skip(1) {
            let target = rest.split('"').next().unwrap();
            assert!(target.starts_with('/') || target.starts_with('#'), "external reference {target}");
        }
    }
    let css = app.send(Method::GET, "/docs/reference.css", None, &[], None).await;
    assert_eq!(css.status, 200);
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut app = TestApp::spawn_with(Options { tls: Some((cert_path, key_path)), ..Options::default() }).await;
    app.client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(app.base.starts_with("https://"));
    let token = app.admin_token().await;
    app.get("/v1/account", &token).await.assert_status(200);
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::get(format!("http://{}/healthz", app.addr)).await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    app.node.take().unwrap().shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_stops_accepting() {
    let mut app = TestApp::spawn().await;
    let token = app.admin_token().await;
    app.get("/v1/account", &token).await.assert_status(200);
    app.node.take().unwrap().shutdown().await.unwrap();
    assert!(reqwest::Client::new().get(app.url("/healthz")).send().await.is_err(), "no longer accepting");
}
