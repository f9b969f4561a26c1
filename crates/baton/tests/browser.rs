//! Browser tests: Debian's headless Chromium, driven by Playwright from the Node scripts
//! in `tests/browser/`, against a real node (see `common/browser.rs` for the harness).
//! The pages are used as a customer would: typing, clicking, reading what is shown.

mod common;

use common::browser::Browser;
use common::TestApp;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn chromium_opens_a_baton_page() {
    let app = TestApp::spawn().await;
    let result = Browser::get().run("smoke.mjs", &app.base, &json!({})).await;
    assert_eq!(result["heading"], "Baton API reference", "{result}");
    assert_eq!(result["styled"], true, "{result}");
    assert!(result["userAgent"].as_str().unwrap().contains("HeadlessChrome"), "{result}");
    // Nothing but the node itself was asked for.
    for url in result["requested"].as_array().unwrap() {
        assert!(url.as_str().unwrap().starts_with(&app.base), "{url}");
    }
}

#[tokio::test]
async fn checkout_js_is_served_from_the_binary_with_a_revalidating_cache() {
    let app = TestApp::spawn().await;
    let reply = app.send(Method::GET, "/checkout.js", None, &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=86400"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert!(reply.text.contains("window.Baton = { mount: mount }"));
    let etag = reply.header("etag").expect("an ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 20, "{etag}");

    // A cached copy is confirmed without the body; a stale one gets the script again.
    for current in [etag.clone(), format!("W/{etag}"), format!("\"old\", {etag}"), "*".into()] {
        let reply = app.send(Method::GET, "/checkout.js", None, &[("if-none-match", &current)], None).await;
        assert_eq!(reply.status, 304, "If-None-Match: {current}");
        assert!(reply.text.is_empty());
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
    }
    let reply = app.send(Method::GET, "/checkout.js", None, &[("if-none-match", "\"old\"")], None).await;
    assert_eq!(reply.status, 200);
    assert!(reply.text.contains("Baton"));
}
