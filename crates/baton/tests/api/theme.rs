//! Theme templates (SPEC §4.11): the white-label document is validated, its
//! stylesheet stripped of what loads or runs anything and minified, and the result
//! styles the pay-by-link pages. SQLite, and PostgreSQL with `BATON_TEST_DATABASE_URL`.

use crate::common;

use common::{Payments, TestApp};
use serde_json::json;

const THEME: &str = "/v1/whitelabel/theme-template";

async fn tenant_token(app: &TestApp, roles: &[&str]) -> (String, String) {
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Theme tenant").await;
    let key = app.create_tenant_key(&admin, &tenant, roles).await;
    (tenant, app.token(&key).await)
}

#[tokio::test]
async fn the_document_is_validated_sanitised_and_minified() {
    let app = TestApp::spawn().await;
    let (_, token) = tenant_token(&app, &["tenant-app-write"]).await;

    // Before anything is saved: the defaults.
    let defaults = app.get(THEME, &token).await.assert_status(200).clone();
    assert_eq!(defaults["styleSheet"], "");
    assert_eq!(defaults["ccDataCollectionOptions"], json!({"cardholderName": true, "billingAddress": false}));
    assert_eq!(defaults["allowedOrigins"], json!([]));
    assert!(defaults["updatedAt"].is_null());

    // The docs' spellings: `stylesheet`, `.css` for `.cvv`, any case.
    let doc = json!({
        "stylesheet": "@import url(https://cdn.evil.example/x.css);\n\
            body { font-family: 'Inter', sans-serif; }\n\
            .payment-method-visa { background: url(https://tracker.evil.example/p.gif) no-repeat; color: #123456 }\n\
            .invalid { color: #b00020; width: expression(alert(1)) }\n\
            #number.braintree-hosted-fields-focused { outline: 2px solid #0b5cad }\n\
            .x { behavior: url(x.htc) }\n\
            .y { content: \"</style><script>alert(1)</script>\" }",
        "InputFieldStyles": [
            {"styleName": "input", "styles": [{"key": "font-size", "value": "16px"}, {"key": "opacity", "value": 0.9}]},
            {"styleName": ".CSS", "styles": [{"key": "color", "value": "#333"}]}
        ],
        "ccDataCollectionOptions": {"cardholderName": false, "billingAddress": true},
        "allowedOrigins": ["https://shop.example", "https://Portal.Example:8443/"],
        "brandColor": "#7A1F5C"
    });
    let saved = app.put(THEME, &token, &doc).await.assert_status(200).clone();
    let css = saved["styleSheet"].as_str().unwrap();
    assert_eq!(
        css,
        "body{font-family:\"Inter\",sans-serif}.payment-method-visa{color:#123456}.invalid{color:#b00020}\
         #number.braintree-hosted-fields-focused{outline:2px solid #0b5cad}.y{content:\"\\3c /style\\3e \\3c script\\3e alert(1)\\3c /script\\3e \"}"
    );
    for gone in ["@import", "evil", "expression", "behavior", "</"] {
        assert!(!css.contains(gone), "{gone} in {css}");
    }
    assert_eq!(
        saved["inputFieldStyles"],
        json!([
            {"styleName": "input", "styles": [{"key": "font-size", "value": "16px"}, {"key": "opacity", "value": "0.9"}]},
            {"styleName": ".cvv", "styles": [{"key": "color", "value": "#333"}]}
        ])
    );
    assert_eq!(saved["ccDataCollectionOptions"], json!({"cardholderName": false, "billingAddress": true}));
    assert_eq!(saved["allowedOrigins"], json!(["https://shop.example", "https://portal.example:8443"]));
    assert_eq!(saved["brandColor"], "#7a1f5c");
    assert!(saved["updatedAt"].is_string());
    let read = app.get(THEME, &token).await.assert_status(200).clone();
    assert_eq!(read, saved);
}

#[tokio::test]
async fn a_bad_document_names_every_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = tenant_token(&app, &["tenant-app-write"]).await;
    app.put(THEME, &token, &json!({"brandColor": "#112233"})).await.assert_status(200);
    let before = app.get(THEME, &token).await.assert_status(200).clone();

    let bad = json!({
        "styleSheet": ".a{color:red}",
        "inputFieldStyles": [
            {"styleName": ".name", "styles": [{"key": "color", "value": "red"}]},
            {"styleName": "input", "styles": [
                {"key": "background-image", "value": "red"},
                {"key": "color", "value": "red; background: url(https://evil.example/x)"}
            ]}
        ],
        "allowedOrigins": ["http://shop.example", "https://*.example", "https://shop.example/checkout"],
        "brandColor": "blue"
    });
    let reply = app.put(THEME, &token, &bad).await;
    reply.assert_error(400, "INVALID_STYLE_NAME");
    assert_eq!(
        reply.codes(),
        [
            ("INVALID_STYLE_NAME".to_string(), "inputFieldStyles[0].styleName".to_string()),
            ("INVALID_STYLE_KEY".into(), "inputFieldStyles[1].styles[0].key".into()),
            ("INVALID_STYLE_VALUE".into(), "inputFieldStyles[1].styles[1].value".into()),
            ("INVALID_ALLOWED_ORIGIN".into(), "allowedOrigins[0]".into()),
            ("INVALID_ALLOWED_ORIGIN".into(), "allowedOrigins[1]".into()),
            ("INVALID_ALLOWED_ORIGIN".into(), "allowedOrigins[2]".into()),
            ("INVALID_BRAND_COLOR".into(), "brandColor".into()),
        ]
    );
    let too_big = json!({"styleSheet": "a{color:red}".repeat(6000)});
    app.put(THEME, &token, &too_big).await.assert_error(400, "STYLESHEET_TOO_LARGE");
    assert_eq!(app.get(THEME, &token).await.assert_status(200).clone(), before, "nothing changed");
}

#[tokio::test]
async fn reading_needs_app_read_and_writing_app_write() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Roles").await;
    let token = |roles: &'static [&'static str]| {
        let app = &app;
        let admin = admin.clone();
        let tenant = tenant.clone();
        async move { app.token(&app.create_tenant_key(&admin, &tenant, roles).await).await }
    };
    let reader = token(&["tenant-app-read"]).await;
    let writer = token(&["tenant-app-write"]).await;
    let payments = token(&["tenant-transaction-write"]).await;
    app.get(THEME, &reader).await.assert_status(200);
    app.put(THEME, &reader, &json!({})).await.assert_error(403, "ROLE_REQUIRED");
    app.get(THEME, &payments).await.assert_error(403, "ROLE_REQUIRED");
    app.put(THEME, &writer, &json!({})).await.assert_status(200);
    // Each tenant has its own.
    let other = app.create_tenant(&admin, "Other").await;
    let other = app.token(&app.create_tenant_key(&admin, &other, &["tenant-app-write"]).await).await;
    app.put(THEME, &writer, &json!({"brandColor": "#000000"})).await.assert_status(200);
    assert_eq!(app.get(THEME, &other).await.assert_status(200)["brandColor"], "#0b5cad");
}

#[tokio::test]
async fn the_theme_styles_the_link_pages_and_names_the_origins_that_may_frame_them() {
    let p = Payments::new().await;
    let doc = json!({"styleSheet": "main { border-radius: 0 }", "brandColor": "#7a1f5c",
        "allowedOrigins": ["https://shop.example"]});
    p.app.put(THEME, &p.token, &doc).await.assert_status(200);
    let order = json!({ "orderRef": "THEMED", "instructions": [{ "instructionRef": "I1", "customerRef": "C1",
        "direction": "DEBIT", "schemeId": p.scheme, "amount": "10.00", "currency": "EUR", "country": "DE" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
    let link = p
        .app
        .post(
            "/v1/whitelabel-customer/session/checkout/pay-by-link",
            &p.token,
            &json!({"orderRef": "THEMED", "instructionRef": "I1"}),
        )
        .await;
    let id = link.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    p.app.delete(&format!("/v1/whitelabel-customer/session/checkout/pay-by-link/{id}"), &p.token).await;
    let page = p.app.send(reqwest::Method::GET, &format!("/pay/{id}"), None, &[], None).await;
    assert_eq!(page.status.as_u16(), 410);
    assert!(
        page.text.contains("main{border-radius:0}") && page.text.contains("--baton-brand:#7a1f5c"),
        "{}",
        page.text
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'self' https://shop.example"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).and_then(|s| s.split('\'').next()).unwrap();
    assert!(page.text.contains(&format!("<style nonce=\"{nonce}\">")), "the page's one style block carries the nonce");
}

#[tokio::test]
async fn the_hosted_checkout_uses_the_saved_theme() {
    let p = Payments::new().await;
    let doc = json!({
        "styleSheet": ".amount { letter-spacing: 0.02em }",
        "inputFieldStyles": [{"styleName": ".number", "styles": [{"key": "font-size", "value": "18px"}]}],
        "ccDataCollectionOptions": {"cardholderName": false, "billingAddress": true},
        "allowedOrigins": ["https://shop.example"],
        "brandColor": "#7a1f5c"
    });
    p.app.put(THEME, &p.token, &doc).await.assert_status(200);
    let order = json!({ "orderRef": "THEMED-PAGE", "instructions": [{ "instructionRef": "I1", "customerRef": "C1",
        "direction": "DEBIT", "schemeId": p.scheme, "amount": "10.00", "currency": "EUR", "country": "DE" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
    let grant = p
        .app
        .post("/v1/whitelabel-customer/grants", &p.token, &json!({"orderRef": "THEMED-PAGE", "instructionRef": "I1"}))
        .await;
    let token = grant.assert_status(201)["accessToken"].as_str().unwrap().to_string();
    // The test client follows the redirect to the session's page.
    let page = p.app.send(reqwest::Method::GET, &format!("/checkout?bearerToken={token}"), None, &[], None).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.text);
    assert!(page.text.contains(".amount{letter-spacing:0.02em}"), "the tenant's stylesheet");
    assert!(page.text.contains("#card-form input.number{font-size:18px}"), "the card field styles");
    assert!(page.text.contains("--accent:#7a1f5c"), "the brand colour");
    assert!(!page.text.contains("name=\"cardholderName\""), "no cardholder name asked for");
    assert!(page.text.contains("name=\"billingStreet\""), "the billing address asked for");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'self' https://shop.example"), "{csp}");
}
