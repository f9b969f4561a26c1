//! Browser tests: Debian's headless Chromium, driven by Playwright from the Node scripts
//! in `tests/browser/`, against a real node (see `common/browser.rs` for the harness).
//! The pages are used as a customer would: typing, clicking, reading what is shown.

mod common;

use common::browser::Browser;
use common::TestApp;
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
