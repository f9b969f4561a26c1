//! Browser tests: Debian's headless Chromium, driven by Playwright from the Node scripts
//! in `tests/browser/`, against a real node (see `common/browser.rs` for the harness).
//! The pages are used as a customer would: typing, clicking, reading what is shown.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::browser::{Browser, Site};
use common::{KeyPair, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn example_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/checkout-embed")
}

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

// -- the hosted checkout ------------------------------------------------------------------------

/// The demo tenant of `baton serve --demo` ("Demo": SANDBOX_CARD and SANDBOX_BANK behind
/// one published collect scheme) and a token holding every tenant role.
struct Shop {
    app: TestApp,
    key: KeyPair,
    token: String,
    scheme: String,
}

impl Shop {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let demo = app.engine().create_demo_tenant(&app.account_id).await.expect("the demo tenant");
        let key = KeyPair { public_key: demo.public_key, private_key: demo.private_key };
        let token = app.token(&key).await;
        Shop { app, key, token, scheme: demo.collect_scheme_id }
    }

    /// Order `order_ref` with one 25.00 EUR premium `I1` of customer `CUST-1`, who has
    /// no means of payment on file yet: the checkout is how they pay.
    async fn order(&self, order_ref: &str) {
        let body = json!({ "orderRef": order_ref, "instructions": [{
            "instructionRef": "I1", "customerRef": "CUST-1", "direction": "DEBIT", "amount": "25.00",
            "currency": "EUR", "country": "DE", "schemeId": self.scheme }] });
        self.app.post("/v1/order-management", &self.token, &body).await.assert_status(202);
    }

    /// A checkout token for the order's `I1`.
    async fn grant(&self, order_ref: &str, extra: Value) -> String {
        let body = common::with(json!({ "orderRef": order_ref, "instructionRef": "I1" }), extra);
        let reply = self.app.post("/v1/whitelabel-customer/grants", &self.token, &body).await;
        reply.assert_status(201)["accessToken"].as_str().expect("accessToken").to_string()
    }

    /// The hosted page for a token.
    fn checkout_url(&self, token: &str, language: Option<&str>) -> String {
        let mut url = self.app.url(&format!("/checkout?bearerToken={token}"));
        if let Some(language) = language {
            url.push_str(&format!("&language={language}"));
        }
        url
    }

    async fn instruction(&self, order_ref: &str) -> Value {
        let reply = self.app.get(&format!("/v1/order-management/{order_ref}/instruction/I1"), &self.token).await;
        reply.assert_status(200).clone()
    }

    async fn transactions(&self, order_ref: &str) -> Vec<Value> {
        let path = format!("/v1/order-management/{order_ref}/instruction/I1/transactions");
        self.app.get(&path, &self.token).await.assert_status(200).as_array().unwrap().clone()
    }

    /// Lets embedding pages of `origins` frame the checkout (the theme's `allowedOrigins`).
    async fn allow_origins(&self, origins: &[&str]) {
        let body = json!({ "allowedOrigins": origins });
        self.app.put("/v1/whitelabel/theme-template", &self.token, &body).await.assert_status(200);
    }

    /// Moves the clock and renews the API token (which would expire too).
    async fn advance(&mut self, by: Duration) {
        self.app.clock.advance(by);
        self.token = self.app.token(&self.key).await;
    }
}

/// A merchant's site with the pages the checkout sends customers back to.
async fn merchant_site() -> Site {
    let page =
        |title: &str| format!("<!doctype html><html lang=\"en\"><title>{title}</title><h1>{title}</h1>").into_bytes();
    Site::serve(vec![
        ("/paid".into(), page("Thank you")),
        ("/failed".into(), page("Payment failed")),
        ("/cancelled".into(), page("Payment cancelled")),
    ])
    .await
}

fn callbacks(site: &Site) -> Value {
    json!({ "callbacks": { "success": site.url("/paid"), "failed": site.url("/failed"),
        "cancelled": site.url("/cancelled") } })
}

/// axe-core found no serious or critical violation in any of the states checked.
#[track_caller]
fn assert_accessible(violations: &Value) {
    let found: Vec<&Value> = match violations {
        Value::Array(list) => list.iter().collect(),
        Value::Object(states) => states.values().flat_map(|v| v.as_array().unwrap().iter()).collect(),
        other => panic!("violations: {other}"),
    };
    assert!(found.is_empty(), "accessibility violations: {}", serde_json::to_string_pretty(&found).unwrap());
}

/// A webhook receiver on 127.0.0.1: the event types and instruction statuses it got.
struct Hooks {
    site: tokio::task::JoinHandle<()>,
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Hooks {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = got.clone();
        let handler = move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "received"
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let site = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hooks { site, url, got }
    }

    /// `(eventType, orderRef, instruction status)` of every delivery.
    fn events(&self) -> Vec<(String, String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    text(&e["eventType"]),
                    text(&e["data"]["order"]["orderRef"]),
                    text(&e["data"]["instruction"]["status"]),
                )
            })
            .collect()
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.site.abort();
    }
}

const CARD: &str = "4242424242424242";

#[tokio::test]
async fn a_link_paid_by_card_settles_and_is_announced() {
    let shop = Shop::new().await;
    let hooks = Hooks::start().await;
    let endpoint = json!({ "url": hooks.url, "events": ["instruction.settled", "instruction.failed"] });
    shop.app.post("/v1/notifications/webhooks", &shop.token, &endpoint).await.assert_status(201);
    shop.order("POLICY-1").await;
    let body = json!({ "orderRef": "POLICY-1", "instructionRef": "I1", "expirySeconds": "6000" });
    let reply = shop.app.post("/v1/whitelabel-customer/session/checkout/pay-by-link", &shop.token, &body).await;
    let link = reply.assert_status(201)["link"].as_str().unwrap().to_string();

    let input = json!({ "url": link, "card": { "number": CARD, "expiry": "1234", "cvc": "123" },
        "shots": { "form": "card-form", "result": "success" } });
    let seen = Browser::get().run("pay.mjs", &shop.app.base, &input).await;
    assert!(seen["opened"].as_str().unwrap().starts_with(&shop.app.url("/checkout/session/")), "{seen}");
    assert_eq!(seen["summary"]["merchant"], "Demo", "{seen}");
    assert_eq!(seen["summary"]["amount"], "€25.00", "{seen}");
    assert!(seen["summary"]["lang"].as_str().unwrap().starts_with("en"), "{seen}");
    assert_eq!(seen["challenge"], false);
    assert_eq!(seen["result"]["outcome"], "succeeded", "{seen}");
    assert_accessible(&seen["violations"]);

    // The insurer sees the premium settled, through the API and through its webhook.
    assert_eq!(shop.instruction("POLICY-1").await["status"], "SETTLED");
    let attempts = shop.transactions("POLICY-1").await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        (attempts[0]["appId"].as_str(), attempts[0]["status"].as_str()),
        (Some("SANDBOX_CARD"), Some("SETTLED"))
    );
    shop.app.tick().await;
    assert_eq!(hooks.events(), [("instruction.settled".into(), "POLICY-1".into(), "SETTLED".into())]);
}

#[tokio::test]
async fn a_declined_card_shows_the_failure_and_another_card_pays() {
    let shop = Shop::new().await;
    shop.order("POLICY-2").await;
    let token = shop.grant("POLICY-2", json!({})).await;
    let input = json!({ "url": shop.checkout_url(&token, None),
        "card": { "number": "4000000000000002", "expiry": "1234", "cvc": "123" },
        "retryCard": { "number": CARD, "expiry": "1234", "cvc": "123" }, "shots": { "result": "failure" } });
    let seen = Browser::get().run("pay.mjs", &shop.app.base, &input).await;
    assert_eq!(seen["result"]["outcome"], "failed", "{seen}");
    assert_eq!(seen["result"]["retry"], true, "the customer may try another card: {seen}");
    let message = seen["result"]["message"].as_str().unwrap();
    assert!(message.contains("declined") && !message.contains("PAYMENT_DECLINED"), "a plain message: {message}");
    assert_accessible(&seen["violations"]);
    // The same session takes the second card.
    assert_eq!(seen["retried"]["result"]["outcome"], "succeeded", "{seen}");
    assert!(seen["retried"]["url"].as_str().unwrap().starts_with(seen["opened"].as_str().unwrap()), "{seen}");

    let attempts = shop.transactions("POLICY-2").await;
    let statuses: Vec<&str> = attempts.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), 2, "{attempts:?}");
    assert!(statuses.contains(&"FAILED") && statuses.contains(&"SETTLED"), "{attempts:?}");
    assert_eq!(shop.instruction("POLICY-2").await["status"], "SETTLED");
}

#[tokio::test]
async fn a_declined_card_returns_the_customer_to_the_merchant_with_the_payload() {
    let shop = Shop::new().await;
    let site = merchant_site().await;
    shop.order("POLICY-3").await;
    let token = shop.grant("POLICY-3", callbacks(&site)).await;
    let input = json!({ "url": shop.checkout_url(&token, None),
        "card": { "number": "4000000000000002", "expiry": "1234", "cvc": "123" },
        "callbackPrefix": site.url("/failed") });
    let seen = Browser::get().run("pay.mjs", &shop.app.base, &input).await;
    assert_eq!(seen["result"]["outcome"], "failed", "{seen}");
    assert_accessible(&seen["violations"]);

    // Back at the merchant's failed page with the SPEC's base64 payload.
    let payload = &seen["payload"];
    assert_eq!(payload["messageType"], "imburse_payment_failed", "{seen}");
    assert_eq!(payload["bearerToken"], token.as_str());
    assert_eq!(payload["providerName"], "Sandbox Card", "the app's name: {payload}");
    assert!(payload["messageDescription"].as_str().is_some_and(|d| !d.is_empty()), "{payload}");

    // The attempt is recorded as failed; the premium can still be paid.
    let attempts = shop.transactions("POLICY-3").await;
    assert_eq!(attempts.iter().map(|a| a["status"].as_str().unwrap()).collect::<Vec<_>>(), ["FAILED"]);
    assert_ne!(shop.instruction("POLICY-3").await["status"], "FAILED");
}

#[tokio::test]
async fn the_authentication_challenge_card_asks_the_customer_first() {
    let shop = Shop::new().await;
    let card = json!({ "number": "4000000000003220", "expiry": "1234", "cvc": "123" });
    shop.order("POLICY-4").await;
    let token = shop.grant("POLICY-4", json!({})).await;
    let input = json!({ "url": shop.checkout_url(&token, None), "card": card, "challenge": "approve",
        "shots": { "challenge": "challenge" } });
    let seen = Browser::get().run("pay.mjs", &shop.app.base, &input).await;
    assert_eq!(
        (seen["challenge"].as_bool(), seen["result"]["outcome"].as_str()),
        (Some(true), Some("succeeded")),
        "{seen}"
    );
    assert_accessible(&seen["violations"]);
    assert_eq!(shop.instruction("POLICY-4").await["status"], "SETTLED");

    // Failing the challenge is a failed payment; nothing settles.
    shop.order("POLICY-5").await;
    let token = shop.grant("POLICY-5", json!({})).await;
    let input = json!({ "url": shop.checkout_url(&token, None), "card": card, "challenge": "fail" });
    let seen = Browser::get().run("pay.mjs", &shop.app.base, &input).await;
    assert_eq!(
        (seen["challenge"].as_bool(), seen["result"]["outcome"].as_str()),
        (Some(true), Some("failed")),
        "{seen}"
    );
    assert_ne!(shop.instruction("POLICY-5").await["status"], "SETTLED");
}

#[tokio::test]
async fn used_expired_and_forged_tokens_get_a_clear_page() {
    let mut shop = Shop::new().await;
    let site = merchant_site().await;
    shop.order("POLICY-5").await;
    let used = shop.grant("POLICY-5", callbacks(&site)).await;
    let expiring = shop.grant("POLICY-5", json!({ "expirySeconds": 60 })).await;
    let mut forged = used.clone();
    forged.replace_range(10..14, if &used[10..14] == "AAAA" { "BBBB" } else { "AAAA" });

    let input = json!({ "visits": [
        { "url": shop.checkout_url(&used, None) },
        // The same token again, from another browser: already used, and the merchant
        // learns it through the failed callback.
        { "url": shop.checkout_url(&used, None), "axe": true, "callbackPrefix": site.url("/failed") },
        { "url": shop.checkout_url(&forged, None), "shot": "invalid-token", "axe": true },
        { "url": shop.checkout_url("not-a-token", Some("de-DE")) },
    ] });
    shop.advance(Duration::from_secs(61)).await;
    let seen = Browser::get().run("visit.mjs", &shop.app.base, &input).await;
    let visits = seen["visits"].as_array().unwrap();
    assert_eq!(visits[0]["form"], true, "the first opening shows the pay page: {}", visits[0]);
    for visit in &visits[1..] {
        assert_eq!(visit["form"], false, "{visit}");
        assert_eq!(visit["result"]["outcome"], "invalid", "{visit}");
    }
    assert_accessible(&visits[1]["violations"]);
    assert_accessible(&visits[2]["violations"]);
    assert_eq!(visits[1]["payload"]["messageType"], "imburse_invalid_token", "{}", visits[1]);
    assert_eq!(visits[1]["payload"]["bearerToken"], used.as_str());
    assert!(visits[3]["lang"].as_str().unwrap().starts_with("de"), "{}", visits[3]);

    // A token opened after its expiry.
    let input = json!({ "visits": [{ "url": shop.checkout_url(&expiring, None) }] });
    let seen = Browser::get().run("visit.mjs", &shop.app.base, &input).await;
    let visit = &seen["visits"][0];
    assert_eq!(
        (visit["form"].as_bool(), visit["result"]["outcome"].as_str()),
        (Some(false), Some("invalid")),
        "{visit}"
    );
    // Nothing was paid.
    assert!(shop.transactions("POLICY-5").await.is_empty());
}

#[tokio::test]
async fn the_checkout_speaks_german() {
    let shop = Shop::new().await;
    shop.order("POLICY-6").await;
    let by_query = shop.grant("POLICY-6", json!({})).await;
    let by_browser = shop.grant("POLICY-6", json!({})).await;
    let input = json!({ "visits": [
        { "url": shop.checkout_url(&by_query, Some("de-DE")), "shot": "german", "axe": true },
        // No language asked for: the browser's own language decides.
        { "url": shop.checkout_url(&by_browser, None), "locale": "de-DE" },
    ] });
    let seen = Browser::get().run("visit.mjs", &shop.app.base, &input).await;
    for visit in seen["visits"].as_array().unwrap() {
        assert!(visit["lang"].as_str().unwrap().starts_with("de"), "{visit}");
        assert_eq!(visit["summary"]["amount"], "25,00\u{a0}€", "{visit}");
        let text = visit["text"].as_str().unwrap();
        assert!(text.contains("Kartennummer"), "{text}");
        assert!(!text.contains("Card number"), "{text}");
    }
    assert_accessible(&seen["visits"][0]["violations"]);
}

#[tokio::test]
async fn a_bank_payment_by_mandate_settles_after_the_banks_delay() {
    let mut shop = Shop::new().await;
    shop.order("POLICY-7").await;
    let token = shop.grant("POLICY-7", json!({})).await;
    let input = json!({ "url": shop.checkout_url(&token, None),
        "bank": { "iban": "DE89 3704 0044 0532 0130 00", "holder": "Jane Doe" }, "shots": { "form": "bank-form" } });
    let seen = Browser::get().run("pay.mjs", &shop.app.base, &input).await;
    assert_eq!(
        (seen["result"]["outcome"].as_str(), seen["result"]["pending"].as_bool()),
        (Some("succeeded"), Some(true)),
        "{seen}"
    );
    assert_accessible(&seen["violations"]);
    assert_eq!(shop.instruction("POLICY-7").await["status"], "PROCESSING");
    let attempts = shop.transactions("POLICY-7").await;
    assert_eq!(
        (attempts[0]["appId"].as_str(), attempts[0]["paymentMethod"].as_str()),
        (Some("SANDBOX_BANK"), Some("DIRECT_DEBIT"))
    );

    // The bank confirms after its delay.
    shop.advance(Duration::from_secs(3)).await;
    shop.app.tick().await;
    assert_eq!(shop.instruction("POLICY-7").await["status"], "SETTLED");
}

#[tokio::test]
async fn a_phone_sized_checkout_is_paid_with_the_keyboard_alone() {
    let shop = Shop::new().await;
    shop.order("POLICY-8").await;
    let token = shop.grant("POLICY-8", json!({})).await;
    let input = json!({ "url": shop.checkout_url(&token, None),
        "card": { "number": CARD, "expiry": "1234", "cvc": "123" }, "shot": "mobile" });
    let seen = Browser::get().run("keyboard.mjs", &shop.app.base, &input).await;
    assert_eq!(seen["overflow"], false, "no sideways scrolling on a phone: {seen}");
    assert_eq!(seen["result"]["outcome"], "succeeded", "{seen}");
    for (id, shown) in seen["focusVisible"].as_object().unwrap() {
        assert_eq!(shown, true, "#{id} shows no focus indicator");
    }
    let fields = &seen["fields"];
    assert_eq!(fields["card-number"]["value"], "4242 4242 4242 4242", "formatted as typed: {seen}");
    for (id, autocomplete) in [("card-number", "cc-number"), ("card-expiry", "cc-exp"), ("card-cvc", "cc-csc")] {
        assert_eq!(fields[id]["autocomplete"], autocomplete, "{id}");
        assert_eq!(fields[id]["inputmode"], "numeric", "{id}");
    }
    assert_accessible(&seen["violations"]);
    assert_eq!(shop.instruction("POLICY-8").await["status"], "SETTLED");
}

#[tokio::test]
async fn the_component_embeds_the_checkout_and_trusts_only_its_own_frame() {
    let shop = Shop::new().await;
    let merchant = Site::serve_dir(&example_dir()).await;
    let elsewhere = Site::serve_dir(&example_dir()).await;
    let forger = Site::serve(vec![(
        "/forge.html".into(),
        br#"<!doctype html><title>forge</title><script>
            parent.postMessage({ source: "baton-checkout", type: "outcome",
                messageType: "imburse_payment_succeeded", bearerToken: "forged" }, "*");
            parent.postMessage({ source: "baton-checkout", type: "resize", height: 5 }, "*");
        </script>"#
            .to_vec(),
    )])
    .await;
    shop.allow_origins(&[&merchant.base]).await;
    shop.order("POLICY-9").await;
    let token = shop.grant("POLICY-9", json!({})).await;
    let blocked_token = shop.grant("POLICY-9", json!({})).await;
    shop.order("POLICY-10").await;
    let second_token = shop.grant("POLICY-10", json!({})).await;
    let host = |site: &Site, token: &str| format!("{}/?baton={}&token={token}", site.base, shop.app.base);

    let input = json!({ "host": host(&merchant, &token), "token": token, "forge": forger.url("/forge.html"),
        "card": { "number": CARD, "expiry": "1234", "cvc": "123" },
        "secondToken": second_token, "blockedHost": host(&elsewhere, &blocked_token), "shot": "embedded" });
    let seen = Browser::get().run("embed.mjs", &shop.app.base, &input).await;

    // The frame fits its content.
    assert!(seen["heights"]["iframe"].as_f64().unwrap() > 200.0, "{seen}");
    // Forged messages arrived from three places and changed nothing.
    let origins = seen["forged"]["origins"].as_array().unwrap();
    for origin in [&merchant.base, &forger.base, &shop.app.base] {
        assert!(origins.contains(&json!(origin)), "forged from {origin}: {seen}");
    }
    assert_eq!(seen["forged"]["events"], json!([]), "{seen}");
    assert_eq!(seen["forged"]["status"], "", "{seen}");
    assert!(seen["forged"]["height"].as_f64().unwrap() > 200.0, "{seen}");
    // The real outcome reached the merchant's callback.
    assert_eq!(seen["result"]["outcome"], "succeeded", "{seen}");
    assert_eq!(seen["events"], json!([{ "callback": "onSuccess", "messageType": "imburse_payment_succeeded" }]));
    let outcome = seen["raw"].as_array().unwrap().iter().find(|m| m["type"] == "outcome").expect("an outcome message");
    assert_eq!(outcome["source"], "baton-checkout");
    assert_eq!(outcome["messageType"], "imburse_payment_succeeded");
    assert_eq!(outcome["bearerToken"], token.as_str());
    assert_eq!(seen["unmounted"], true);
    assert_accessible(&seen["violations"]);
    assert_eq!(shop.instruction("POLICY-9").await["status"], "SETTLED");

    // Mounted again (in German): a decline calls onFailure, cancelling onCancel, each
    // with the outcome of that checkout.
    assert!(seen["second"]["lang"].as_str().unwrap().starts_with("de"), "{seen}");
    let calls = seen["second"]["calls"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> =
        calls.iter().map(|c| (c["callback"].as_str().unwrap(), c["messageType"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("onFailure", "imburse_payment_failed"), ("onCancel", "imburse_payment_cancelled")]);
    assert!(calls.iter().all(|c| c["bearerToken"] == second_token.as_str()), "{seen}");
    assert!(calls[0]["messageDescription"].as_str().is_some_and(|d| !d.is_empty()), "{seen}");
    assert_ne!(shop.instruction("POLICY-10").await["status"], "SETTLED");

    // A site the tenant does not list gets no checkout in its frame.
    assert_eq!(seen["blocked"]["form"], 0, "{seen}");
    assert_eq!(seen["blocked"]["events"], json!([]), "{seen}");
}
