//! Hosted checkout (SPEC §4.11): grants and checkout tokens, the hosted page and the
//! customer's payment, driven over HTTP as a browser without JavaScript would.

use crate::common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use baton_engine::checkout::TokenError;
use common::{Payments, Reply};
use serde_json::{json, Value};

const GRANTS: &str = "/v1/whitelabel-customer/grants";

/// An order `order_ref` with one DEBIT instruction `I1` of 49.90 EUR for customer C1,
/// under the tenant's collect scheme, without a financial instrument (INCOMPLETE).
async fn unpaid_order(p: &Payments, order_ref: &str) {
    let order = json!({ "orderRef": order_ref, "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "schemeId": p.scheme,
        "amount": "49.90", "currency": "EUR", "country": "DE" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
}

async fn grant(p: &Payments, body: &Value) -> Reply {
    p.app.post(GRANTS, &p.token, body).await
}

/// A checkout token for `order_ref`/I1.
async fn token_for(p: &Payments, order_ref: &str) -> String {
    let reply = grant(p, &json!({ "orderRef": order_ref, "instructionRef": "I1" })).await;
    reply.assert_status(201)["accessToken"].as_str().unwrap().to_string()
}

async fn instruction_status(p: &Payments, order_ref: &str) -> String {
    let reply = p.app.get(&format!("/v1/order-management/{order_ref}/instruction/I1"), &p.token).await;
    reply.assert_status(200)["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn grants_mint_sealed_expiring_tokens() {
    let p = Payments::new().await;
    unpaid_order(&p, "G-1").await;
    let before = p.app.now_ms();

    // Default lifetime: an hour; `expires` in Unix ms as a string, as for access tokens.
    let reply = grant(&p, &json!({ "orderRef": "G-1", "instructionRef": "I1" })).await;
    let body = reply.assert_status(201);
    let token = body["accessToken"].as_str().unwrap();
    let expires: i64 = body["expires"].as_str().unwrap().parse().unwrap();
    assert!((expires - (before + 3_600_000)).abs() < 5_000, "{expires} vs {before}");
    // Opaque: base64url of ciphertext, not a readable JWT.
    assert!(!token.contains('.') && !token.contains('='), "{token}");
    let raw = URL_SAFE_NO_PAD.decode(token).expect("base64url");
    assert!(!String::from_utf8_lossy(&raw).contains("G-1"));

    let claims = p.app.engine().open_checkout_token(token).expect("opens");
    assert_eq!((claims.order_ref.as_str(), claims.instruction_ref.as_str()), ("G-1", "I1"));
    assert_eq!((claims.amount, claims.currency.as_str(), claims.country.as_str()), (4990, "EUR", "DE"));
    assert_eq!(claims.tenant_id, p.tenant);
    assert_eq!(claims.scheme_id, p.scheme);
    assert_eq!(claims.exp * 1000, expires);
    assert_eq!(uuid::Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 4);

    // `expirySeconds` as a string (as the documented example sends it) or a number;
    // every token has its own id.
    let reply = grant(&p, &json!({ "orderRef": "G-1", "instructionRef": "I1", "expirySeconds": "6000" })).await;
    let other = reply.assert_status(201)["accessToken"].as_str().unwrap().to_string();
    let other_claims = p.app.engine().open_checkout_token(&other).unwrap();
    assert_ne!(other_claims.jti, claims.jti);
    assert!((other_claims.exp - (before / 1000 + 6000)).abs() < 5);
    let reply = grant(&p, &json!({ "OrderRef": "G-1", "InstructionRef": "I1", "ExpirySeconds": 60 })).await;
    let short = reply.assert_status(201)["accessToken"].as_str().unwrap().to_string();

    // Expired once the clock passes `exp`; tampered and garbage tokens never open.
    p.app.clock.advance(Duration::from_secs(61));
    assert!(matches!(p.app.engine().open_checkout_token(&short), Err(TokenError::Expired(_))));
    assert!(p.app.engine().open_checkout_token(token).is_ok());
    let mut tampered = raw.clone();
    tampered[20] ^= 0x80;
    let tampered = URL_SAFE_NO_PAD.encode(&tampered);
    assert_eq!(p.app.engine().open_checkout_token(&tampered), Err(TokenError::Invalid));
    for garbage in ["", "garbage", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", &token[..token.len() - 2]] {
        assert_eq!(p.app.engine().open_checkout_token(garbage), Err(TokenError::Invalid), "{garbage}");
    }
    // A token of another deployment (another master key) does not open here.
    let q = Payments::new().await;
    unpaid_order(&q, "G-1").await;
    let foreign = token_for(&q, "G-1").await;
    assert_eq!(p.app.engine().open_checkout_token(&foreign), Err(TokenError::Invalid));
}

#[tokio::test]
async fn grants_refuse_bad_input_and_unpayable_instructions() {
    let p = Payments::new().await;
    unpaid_order(&p, "B-1").await;

    // Bad fields, each with its own code and field.
    let reply = grant(&p, &json!({})).await;
    reply.assert_error(400, "FIELD_REQUIRED");
    assert_eq!(
        reply.codes(),
        [("FIELD_REQUIRED".into(), "orderRef".into()), ("FIELD_REQUIRED".into(), "instructionRef".into())]
    );
    for seconds in [json!(59), json!("2592001"), json!("soon"), json!(1.5), json!(-60)] {
        let body = json!({ "orderRef": "B-1", "instructionRef": "I1", "expirySeconds": seconds });
        let reply = grant(&p, &body).await;
        reply.assert_error(400, "INVALID_EXPIRY_SECONDS");
        assert_eq!(reply.codes()[0].1, "expirySeconds");
    }
    for (which, url) in [
        ("success", "http://shop.example/ok"),
        ("failed", "javascript:alert(1)"),
        ("cancelled", "/relative"),
        ("success", "https://user:secret@shop.example/"),
    ] {
        let body = json!({ "orderRef": "B-1", "instructionRef": "I1", "callbacks": { which: url } });
        let reply = grant(&p, &body).await;
        reply.assert_error(400, "INVALID_CALLBACK_URL");
        assert_eq!(reply.codes()[0].1, format!("callbacks.{which}"));
    }
    // https anywhere; plain http only to this machine, in the sandbox.
    let body = json!({ "orderRef": "B-1", "instructionRef": "I1", "callbacks": {
        "success": "https://shop.example/ok", "failed": "http://127.0.0.1:9/failed", "cancelled": "" } });
    let reply = grant(&p, &body).await;
    let token = reply.assert_status(201)["accessToken"].as_str().unwrap().to_string();
    let callbacks = p.app.engine().open_checkout_token(&token).unwrap().callbacks.unwrap();
    assert_eq!(callbacks.success.as_deref(), Some("https://shop.example/ok"));
    assert_eq!(callbacks.failed.as_deref(), Some("http://127.0.0.1:9/failed"));
    assert_eq!(callbacks.cancelled, None);

    // Unknown order or instruction.
    grant(&p, &json!({ "orderRef": "NOPE", "instructionRef": "I1" })).await.assert_error(404, "ORDER_NOT_FOUND");
    grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I9" })).await.assert_error(404, "INSTRUCTION_NOT_FOUND");

    // A payout (CREDIT) instruction is not paid by the customer.
    let body = json!({ "instructionRef": "I2", "customerRef": "C1", "direction": "CREDIT",
        "amount": "5.00", "currency": "EUR", "country": "DE" });
    p.app.post("/v1/order-management/B-1/instruction", &p.token, &body).await.assert_status(201);
    grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I2" })).await.assert_error(400, "NOT_A_DEBIT_INSTRUCTION");

    // A DEBIT instruction without a scheme cannot offer any method.
    let body = json!({ "instructionRef": "I3", "customerRef": "C1", "direction": "DEBIT",
        "amount": "5.00", "currency": "EUR", "country": "DE" });
    p.app.post("/v1/order-management/B-1/instruction", &p.token, &body).await.assert_status(201);
    grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I3" })).await.assert_error(400, "SCHEME_REQUIRED");

    // Settled, failed, void: no longer payable.
    p.settled("B-2", "4242424242424242", "10.00").await;
    let reply = grant(&p, &json!({ "orderRef": "B-2", "instructionRef": "I1" })).await;
    reply.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    assert_eq!(reply.body["errors"][0]["metadata"]["status"], "SETTLED");
    p.order("B-3", "4000000000000002", "10.00").await;
    p.execute("B-3").await.assert_error(402, "PAYMENT_DECLINED");
    grant(&p, &json!({ "orderRef": "B-3", "instructionRef": "I1" }))
        .await
        .assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    p.app.delete("/v1/order-management/B-1/instruction/I1", &p.token).await.assert_status(200);
    let reply = grant(&p, &json!({ "orderRef": "B-1", "instructionRef": "I1" })).await;
    reply.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    assert_eq!(reply.body["errors"][0]["metadata"]["status"], "VOID");

    // A LATE instruction can still be paid through the checkout.
    let order = json!({ "orderRef": "B-4", "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "schemeId": p.scheme,
        "amount": "10.00", "currency": "EUR", "country": "DE", "settledByDate": "2021-01-01" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
    p.app.tick().await;
    assert_eq!(instruction_status(&p, "B-4").await, "LATE");
    grant(&p, &json!({ "orderRef": "B-4", "instructionRef": "I1" })).await.assert_status(201);

    // Another tenant's order is not found; reading roles cannot mint tokens.
    let reader = p.token_with(&["tenant-transaction-read"]).await;
    let reply = p.app.post(GRANTS, &reader, &json!({ "orderRef": "B-4", "instructionRef": "I1" })).await;
    reply.assert_error(403, "ROLE_REQUIRED");
    let writer = p.token_with(&["tenant-transaction-write"]).await;
    p.app.post(GRANTS, &writer, &json!({ "orderRef": "B-4", "instructionRef": "I1" })).await.assert_status(201);
}

// -- the hosted page ---------------------------------------------------------------------

/// A customer's browser without JavaScript: follows nothing by itself, so that each
/// answer (303s included) can be looked at.
struct Browser {
    client: reqwest::Client,
    base: String,
}

/// A page as the browser got it.
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn location(&self) -> &str {
        self.header("location")
    }

    /// The value of the first `name="csrf"` hidden field.
    fn csrf(&self) -> String {
        let at = self.text.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        self.text[at..].split('"').next().unwrap().to_string()
    }

    /// `data-outcome` of `#result`.
    fn outcome(&self) -> &str {
        let at = self.text.find("id=\"result\"").unwrap_or_else(|| panic!("no #result in {}", self.text));
        let rest = &self.text[at..];
        let at = rest.find("data-outcome=\"").unwrap() + 14;
        rest[at..].split('"').next().unwrap()
    }

    /// The attribute `name` of `<body>`, unescaped.
    fn body_attr(&self, name: &str) -> Option<String> {
        let body = &self.text[self.text.find("<body").unwrap()..];
        let tag = &body[..body.find('>').unwrap()];
        let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let raw = tag[at..].split('"').next().unwrap();
        Some(raw.replace("&quot;", "\"").replace("&#x27;", "'").replace("&amp;", "&").replace("&#x2f;", "/"))
    }

    /// The message reported to an embedding page.
    fn message(&self) -> Value {
        serde_json::from_str(&self.body_attr("data-message").expect("data-message")).expect("JSON message")
    }
}

impl Browser {
    fn new(p: &Payments) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: p.app.base.clone() }
    }

    async fn read(response: reqwest::Response) -> Got {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Got { status, headers, text: response.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Got {
        Self::read(self.client.get(format!("{}{path}", self.base)).send().await.unwrap()).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Got {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Got {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Self::read(response).await
    }

    /// Opens `token` and returns the session page's path.
    async fn open(&self, token: &str, extra: &str) -> String {
        let got = self.get(&format!("/checkout?bearerToken={token}{extra}")).await;
        assert_eq!(got.status, 303, "{}", got.text);
        let location = got.location().to_string();
        assert!(location.starts_with("/checkout/session/") && location.len() == 18 + 22, "{location}");
        location
    }

    /// Submits the card form of the session page at `session`.
    async fn pay_card(&self, session: &str, number: &str, expiry: &str, cvc: &str, name: &str) -> Got {
        // As a customer would after a failure: "try another card".
        let page = self.get(&format!("{session}?retry=1")).await;
        let csrf = page.csrf();
        self.post(
            &format!("{session}/card"),
            &[("csrf", &csrf), ("cardNumber", number), ("expiry", expiry), ("cvc", cvc), ("cardholderName", name)],
        )
        .await
    }
}

/// A tenant whose collect scheme routes cards (and PayPal) to SANDBOX_CARD and direct
/// debits to SANDBOX_BANK, with an unpaid order `O-1`.
async fn shop() -> Payments {
    let p = Payments::new().await;
    let reply =
        p.app.send(reqwest::Method::POST, "/v1/marketplace/apps/SANDBOX_BANK/install", Some(&p.token), &[], None).await;
    reply.assert_status(200);
    let body = json!({ "name": "Checkout", "rules": [{ "apps": [
        { "appId": "SANDBOX_CARD", "priority": 1 }, { "appId": "SANDBOX_BANK", "priority": 2 }] }] });
    let scheme = p.app.post("/v1/schemes/collect", &p.token, &body).await.assert_status(201).clone();
    let scheme_id = scheme["schemeId"].as_str().unwrap().to_string();
    let publish =
        format!("/v1/schemes/collect/{scheme_id}/drafts/{}/publish", scheme["drafts"][0]["draftId"].as_str().unwrap());
    p.app.post(&publish, &p.token, &json!({})).await.assert_status(200);
    let p = Payments { scheme: scheme_id, ..p };
    unpaid_order(&p, "O-1").await;
    p
}

async fn token_with(p: &Payments, order_ref: &str, extra: Value) -> String {
    let body = common::with(json!({ "orderRef": order_ref, "instructionRef": "I1" }), extra);
    grant(p, &body).await.assert_status(201)["accessToken"].as_str().unwrap().to_string()
}

async fn instruction(p: &Payments, order_ref: &str) -> Value {
    p.app.get(&format!("/v1/order-management/{order_ref}/instruction/I1"), &p.token).await.assert_status(200).clone()
}

async fn transactions(p: &Payments, order_ref: &str) -> Vec<Value> {
    let path = format!("/v1/order-management/{order_ref}/instruction/I1/transactions");
    p.app.get(&path, &p.token).await.assert_status(200).as_array().unwrap().clone()
}

async fn instruments(p: &Payments, customer: &str) -> Vec<Value> {
    let path = format!("/v1/customer-vault/{customer}/financial-instruments");
    p.app.get(&path, &p.token).await.assert_status(200).as_array().unwrap().clone()
}

/// The `payload` of a failed-callback URL, decoded.
fn payload_of(url: &str) -> Value {
    let query = url.split_once('?').unwrap().1;
    let payload = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "payload").unwrap().1.into_owned();
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(payload).unwrap()).unwrap()
}

const FUTURE: &str = "12 / 39";

#[tokio::test]
async fn a_token_opens_once_into_a_secure_page_in_english_and_german() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let token = token_for(&p, "O-1").await;
    let session = browser.open(&token, "").await;

    let page = browser.get(&session).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text.contains("<html lang=\"en\">"));
    assert!(page.text.contains("Payments tenant") && page.text.contains("€49.90"), "{}", page.text);
    for hook in [
        r#"id="card-number""#,
        r#"autocomplete="cc-number""#,
        r#"autocomplete="cc-exp""#,
        r#"autocomplete="cc-csc""#,
        r#"inputmode="numeric""#,
        r#"id="cardholder-name""#,
        r#"id="pay-button""#,
        r#"id="iban""#,
        r#"id="account-holder""#,
        r#"id="mandate-consent""#,
        r#"id="paypal-button""#,
        r#"<label for="card-number">"#,
        r#"aria-describedby="card-number-hint card-number-error""#,
    ] {
        assert!(page.text.contains(hook), "{hook} missing");
    }
    // Security headers: strict CSP with a nonce, no referrer, no caching, no sniffing.
    let csp = page.header("content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self' 'nonce-",
        "style-src 'self' 'nonce-",
        "base-uri 'none'",
        "frame-ancestors 'self'",
        "form-action 'self'",
        "img-src 'self' data:",
    ] {
        assert!(csp.contains(part), "{part} not in {csp}");
    }
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    // Nothing is loaded from elsewhere, and the whole page stays small.
    for attr in ["src=\"", "href=\"", "action=\""] {
        for rest in page.text.split(attr).skip(1) {
            let target = rest.split('"').next().unwrap();
            assert!(target.starts_with('/') || target.starts_with('#'), "external reference {target}");
        }
    }
    let css = browser.get("/checkout/assets/checkout.css").await;
    let js = browser.get("/checkout/assets/checkout.js").await;
    assert_eq!((css.status, js.status), (200, 200));
    assert!(js.header("content-type").starts_with("text/javascript"));
    let weight = page.text.len() + css.text.len() + js.text.len();
    assert!(weight < 100 * 1024, "page weight {weight} bytes");
    eprintln!("page weight: {weight} bytes (HTML {}, CSS {}, JS {})", page.text.len(), css.text.len(), js.text.len());

    // The page can be reloaded; the token cannot be opened again.
    assert_eq!(browser.get(&session).await.status, 200);
    let again = browser.get(&format!("/checkout?bearerToken={token}")).await;
    assert_eq!(again.status, 410);
    assert!(again.text.contains("already been used"));
    assert_eq!(again.outcome(), "invalid");
    assert_eq!(again.message()["messageType"], "imburse_invalid_token");

    // German, by parameter (also in the documented form without `?`) or by header.
    let de = token_for(&p, "O-1").await;
    let got = browser.get(&format!("/checkout/bearerToken={de}&language=de-DE")).await;
    assert_eq!(got.status, 303, "{}", got.text);
    let page = browser.get(got.location()).await;
    assert!(page.text.contains("<html lang=\"de\">"));
    assert!(page.text.contains("Kartennummer") && page.text.contains("49,90\u{a0}€"), "{}", page.text);
    assert!(page.text.contains("SEPA-Lastschriftmandat") && page.text.contains("Ich ermächtige Payments tenant"));
    // Repeated or unknown parameters change nothing: the first of each counts.
    let twice = token_for(&p, "O-1").await;
    let got =
        browser.get(&format!("/checkout?bearerToken={twice}&bearerToken=x&language=de-DE&language=en-GB&x=1")).await;
    assert_eq!(got.status, 303, "{}", got.text);
    assert!(browser.get(got.location()).await.text.contains("<html lang=\"de\">"));
    let by_header = token_for(&p, "O-1").await;
    let got = browser
        .get_with(&format!("/checkout?bearerToken={by_header}"), &[("accept-language", "de-CH, de;q=0.9")])
        .await;
    assert!(browser.get(got.location()).await.text.contains("Sichere Zahlung"));

    // Garbage, tampered and expired tokens: a clear page, in the customer's language.
    let garbage = browser.get("/checkout?bearerToken=not-a-token&language=de-DE").await;
    assert_eq!(garbage.status, 400);
    assert!(garbage.text.contains("Dieser Zahlungslink ist ungültig"));
    assert_eq!(garbage.header("content-type"), "text/html; charset=utf-8");
    let mut raw = URL_SAFE_NO_PAD.decode(&de).unwrap();
    raw[30] ^= 1;
    let tampered = browser.get(&format!("/checkout?bearerToken={}", URL_SAFE_NO_PAD.encode(raw))).await;
    assert_eq!(tampered.status, 400);
    assert!(browser.get("/checkout").await.text.contains("not valid"));
    assert_eq!(browser.get("/checkout/session/AAAAAAAAAAAAAAAAAAAAAA").await.status, 404);
    let short = token_with(
        &p,
        "O-1",
        json!({ "expirySeconds": 60,
        "callbacks": { "failed": "https://shop.example/failed" } }),
    )
    .await;
    p.app.clock.advance(Duration::from_secs(61));
    let expired = browser.get(&format!("/checkout?bearerToken={short}")).await;
    assert_eq!(expired.status, 410);
    assert!(expired.text.contains("has expired"));
    // With the token's `failed` callback, the page sends the customer back there.
    let redirect = expired.body_attr("data-redirect").unwrap();
    assert!(redirect.starts_with("https://shop.example/failed?payload="), "{redirect}");
    let payload = payload_of(&redirect);
    assert_eq!(payload["messageType"], "imburse_invalid_token");
    assert_eq!(payload["bearerToken"], short.as_str());
    // The script sends the customer on; the link does without it (no timed meta refresh,
    // which screen readers cannot stop: WCAG 2.2.1).
    assert!(!expired.text.contains("http-equiv=\"refresh\""));
    assert!(expired.text.contains("id=\"continue-link\""));

    // A session lives as long as its token: the first session above expires an hour on.
    p.app.clock.advance(Duration::from_secs(3600));
    let gone = browser.get(&session).await;
    assert_eq!((gone.status, gone.outcome()), (410, "invalid"));
}

#[tokio::test]
async fn a_card_payment_settles_the_instruction() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let token = token_with(
        &p,
        "O-1",
        json!({ "callbacks": {
        "success": "https://shop.example/paid?order=O-1", "failed": "https://shop.example/failed" } }),
    )
    .await;
    let session = browser.open(&token, "&parentOrigin=https://shop.example").await;
    assert_eq!(instruction(&p, "O-1").await["status"], "INCOMPLETE");

    let got = browser.pay_card(&session, "4242 4242 4242 4242", FUTURE, "123", "Jane Doe").await;
    assert_eq!(got.status, 303, "{}", got.text);
    assert_eq!(got.location(), session);

    let view = instruction(&p, "O-1").await;
    assert_eq!(view["status"], "SETTLED");
    assert_eq!(view["financialInstrument"]["source"], "CUSTOMER");
    let attempts = transactions(&p, "O-1").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0]["transactionType"].as_str(), attempts[0]["status"].as_str()),
        (Some("CIT"), Some("SETTLED"))
    );
    // The card is in the vault (display data only), stored by the customer.
    let fis = instruments(&p, "C1").await;
    assert_eq!(fis.len(), 1);
    assert_eq!(fis[0]["display"]["last4"], "4242");
    assert_eq!(fis[0]["financialInstrumentId"], view["financialInstrument"]["financialInstrumentId"]);

    let result = browser.get(&session).await;
    assert_eq!(result.outcome(), "succeeded");
    assert!(result.text.contains("Payment successful"));
    let message = result.message();
    assert_eq!(message["messageType"], "imburse_payment_succeeded");
    assert_eq!(message["bearerToken"], token.as_str());
    assert_eq!(message["providerName"], "Sandbox Card");
    // The page follows the success callback (and the CSP lets the page go there).
    assert_eq!(result.body_attr("data-redirect").unwrap(), "https://shop.example/paid?order=O-1");
    assert!(result.header("content-security-policy").contains("form-action 'self' https://shop.example"));
    // The parent origin the page was opened for is not one the tenant allows: no messages to it.
    assert_eq!(result.body_attr("data-parent-origin").as_deref(), Some(""));

    // A paid session takes no second payment.
    let again = browser
        .post(
            &format!("{session}/card"),
            &[
                ("csrf", &page_csrf(&p, &session)),
                ("cardNumber", "4242424242424242"),
                ("expiry", FUTURE),
                ("cvc", "123"),
            ],
        )
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(transactions(&p, "O-1").await.len(), 1);
}

#[tokio::test]
async fn a_declined_card_leaves_the_instruction_payable_and_reports_the_failure() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let token = token_with(&p, "O-1", json!({ "callbacks": { "failed": "https://shop.example/failed?o=1" } })).await;
    let session = browser.open(&token, "").await;

    let got = browser.pay_card(&session, "4000 0000 0000 0002", FUTURE, "123", "Jane Doe").await;
    assert_eq!(got.status, 303, "{}", got.text);
    let view = instruction(&p, "O-1").await;
    assert_eq!(view["status"], "READY", "a customer-initiated decline is not terminal");
    let attempts = transactions(&p, "O-1").await;
    assert_eq!(
        (attempts[0]["status"].as_str(), attempts[0]["transactionType"].as_str()),
        (Some("FAILED"), Some("CIT"))
    );
    // Announced as a status change back to READY, with the failed attempt.
    let events = p.app.engine().outbox_events(&p.tenant).await.unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    assert!(!types.contains(&"instruction.failed"), "{types:?}");
    let last = events.iter().rev().find(|e| e.event.event_type.as_str() == "instruction.updated").unwrap();
    let data: Value = serde_json::from_str(&last.event.data).unwrap();
    assert_eq!(data["instruction"]["status"], "READY", "{data}");

    let result = browser.get(&session).await;
    assert_eq!(result.outcome(), "failed");
    assert!(result.text.contains("Your payment was declined"), "{}", result.text);
    assert!(!result.text.contains("PAYMENT_DECLINED") && !result.text.contains("card_declined"));
    assert!(result.text.contains("id=\"try-again\""));
    let redirect = result.body_attr("data-redirect").unwrap();
    assert!(redirect.starts_with("https://shop.example/failed?o=1&payload="), "{redirect}");
    let payload = payload_of(&redirect);
    assert_eq!(payload["messageType"], "imburse_payment_failed");
    assert_eq!(payload["bearerToken"], token.as_str());
    assert_eq!(payload["providerName"], "Sandbox Card");
    assert!(payload["messageDescription"].as_str().unwrap().contains("declined"));
    assert_eq!(result.message(), payload);

    // Another card, in the same session: paid.
    let retry = browser.get(&format!("{session}?retry=1")).await;
    assert!(retry.text.contains("id=\"card-form\"") && retry.text.contains("id=\"notice\""));
    let got = browser.pay_card(&session, "5555 5555 5555 4444", FUTURE, "123", "Jane Doe").await;
    assert_eq!(got.status, 303);
    assert_eq!(instruction(&p, "O-1").await["status"], "SETTLED");
    assert_eq!(browser.get(&session).await.outcome(), "succeeded");
    assert_eq!(transactions(&p, "O-1").await.len(), 2);

    // Past its date, a declined checkout leaves the instruction LATE.
    let order = json!({ "orderRef": "O-2", "instructions": [{ "instructionRef": "I1", "customerRef": "C1",
        "direction": "DEBIT", "schemeId": p.scheme, "amount": "49.90", "currency": "EUR", "country": "DE",
        "settledByDate": "2021-01-01" }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
    p.app.tick().await;
    let session = browser.open(&token_for(&p, "O-2").await, "").await;
    browser.pay_card(&session, "4000000000009995", FUTURE, "123", "Jane Doe").await;
    assert_eq!(instruction(&p, "O-2").await["status"], "LATE");
    assert!(browser.get(&session).await.text.contains("insufficient funds"));

    // Merchant-initiated payments still end FAILED.
    p.order("O-3", "4000000000000002", "10.00").await;
    p.execute("O-3").await.assert_error(402, "PAYMENT_DECLINED");
    assert_eq!(instruction(&p, "O-3").await["status"], "FAILED");
}

/// `days` from the test clock's today, as a `settledByDate`.
fn date_from_today(p: &Payments, days: i64) -> String {
    let now = time::OffsetDateTime::from_unix_timestamp(p.app.now_ms() / 1000 + days * 86_400).unwrap();
    baton_domain::dates::format_date(now.date())
}

#[tokio::test]
async fn a_card_left_by_an_unfinished_checkout_is_never_charged_without_the_customer() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let today = date_from_today(&p, 0);
    let unpaid_due_today = |order_ref: &str| {
        json!({ "orderRef": order_ref, "instructions": [{ "instructionRef": "I1", "customerRef": "C1",
            "direction": "DEBIT", "schemeId": p.scheme, "amount": "49.90", "currency": "EUR", "country": "DE",
            "settledByDate": today }] })
    };
    // One customer's card is declined; another's waits for the bank's challenge.
    p.app.post("/v1/order-management", &p.token, &unpaid_due_today("O-DECLINED")).await.assert_status(202);
    let session = browser.open(&token_for(&p, "O-DECLINED").await, "").await;
    browser.pay_card(&session, "4000000000009995", FUTURE, "123", "Jane Doe").await;
    p.app.post("/v1/order-management", &p.token, &unpaid_due_today("O-CHALLENGED")).await.assert_status(202);
    let session = browser.open(&token_for(&p, "O-CHALLENGED").await, "").await;
    browser.pay_card(&session, "4000000000003220", FUTURE, "123", "Jane Doe").await;
    for order_ref in ["O-DECLINED", "O-CHALLENGED"] {
        let view = instruction(&p, order_ref).await;
        assert_eq!(
            (view["status"].as_str(), view["financialInstrument"]["source"].as_str()),
            (Some("READY"), Some("CUSTOMER")),
            "{view}"
        );
    }
    // A merchant's own card due the same day is collected by the scheduler as before.
    let fi = p.card("C1", "4242424242424242").await;
    let order = json!({ "orderRef": "O-MERCHANT", "instructions": [{ "instructionRef": "I1", "customerRef": "C1",
        "direction": "DEBIT", "financialInstrumentId": fi, "schemeId": p.scheme, "amount": "49.90",
        "currency": "EUR", "country": "DE", "settledByDate": today }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);

    // On the due date the customers' cards are not charged as merchant-initiated payments.
    let report = p.app.tick().await;
    assert_eq!(report.collected, 1, "{report:?}");
    assert_eq!(instruction(&p, "O-MERCHANT").await["status"], "SETTLED");
    for order_ref in ["O-DECLINED", "O-CHALLENGED"] {
        let attempts = transactions(&p, order_ref).await;
        assert_eq!(attempts.len(), 1, "{order_ref}: {attempts:?}");
        assert_eq!(attempts[0]["transactionType"], "CIT");
        assert_eq!(instruction(&p, order_ref).await["status"], "READY");
    }
    // Unpaid the next day: missed, as any unpaid instruction.
    drop(browser);
    p.app.clock.advance(Duration::from_secs(86_400));
    let p = Payments { token: p.token_with(&["tenant-admin"]).await, ..p };
    let report = p.app.tick().await;
    assert_eq!((report.collected, report.marked_late), (0, 2), "{report:?}");
    for order_ref in ["O-DECLINED", "O-CHALLENGED"] {
        assert_eq!(instruction(&p, order_ref).await["status"], "LATE");
        assert_eq!(transactions(&p, order_ref).await.len(), 1);
    }
}

#[tokio::test]
async fn the_issuer_challenge_is_passed_or_failed_by_the_customer() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let session = browser.open(&token_for(&p, "O-1").await, "").await;

    let got = browser.pay_card(&session, "4000 0000 0000 3220", FUTURE, "123", "Jane Doe").await;
    assert_eq!(got.status, 303);
    let challenge = browser.get(&session).await;
    assert!(challenge.text.contains("id=\"challenge-approve\"") && challenge.text.contains("id=\"challenge-fail\""));
    assert_eq!(instruction(&p, "O-1").await["status"], "READY");

    // Failing the check: a failure the customer can retry.
    let csrf = challenge.csrf();
    let got = browser.post(&format!("{session}/challenge"), &[("csrf", &csrf), ("decision", "fail")]).await;
    assert_eq!(got.status, 303);
    let result = browser.get(&session).await;
    assert_eq!(result.outcome(), "failed");
    assert!(result.text.contains("Your bank could not confirm this payment"));

    // The same card again, and this time the customer passes the check.
    browser.pay_card(&session, "4000000000003220", FUTURE, "123", "Jane Doe").await;
    let challenge = browser.get(&session).await;
    let got =
        browser.post(&format!("{session}/challenge"), &[("csrf", &challenge.csrf()), ("decision", "approve")]).await;
    assert_eq!(got.status, 303);
    assert_eq!(instruction(&p, "O-1").await["status"], "SETTLED");
    assert_eq!(browser.get(&session).await.outcome(), "succeeded");
    let statuses: Vec<_> =
        transactions(&p, "O-1").await.iter().map(|t| t["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses, ["FAILED", "FAILED", "SETTLED"]);
    // A challenge answer without a challenge changes nothing.
    let csrf = page_csrf(&p, &session);
    let got = browser.post(&format!("{session}/challenge"), &[("csrf", &csrf), ("decision", "approve")]).await;
    assert_eq!(got.status, 303);
    assert_eq!(transactions(&p, "O-1").await.len(), 3);
}

#[tokio::test]
async fn a_direct_debit_and_a_paypal_payment() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let session = browser.open(&token_for(&p, "O-1").await, "").await;
    let page = browser.get(&session).await;
    let csrf = page.csrf();

    // Bad IBAN, no holder, no consent: refused with a message each, nothing stored.
    let got = browser
        .post(
            &format!("{session}/bank"),
            &[("csrf", &csrf), ("iban", "DE89 3704 0044 0532 0130 01"), ("accountHolder", "")],
        )
        .await;
    assert_eq!(got.status, 422, "{}", got.text);
    assert!(got.text.contains("Enter a valid IBAN.") && got.text.contains("Please accept the direct debit mandate."));
    assert!(got.text.contains(r#"id="iban-error" class="error" aria-live="polite">Enter a valid IBAN."#));
    assert!(!got.text.contains("0532 0130 01"), "the IBAN is not echoed");
    assert!(instruments(&p, "C1").await.is_empty());

    let got = browser
        .post(
            &format!("{session}/bank"),
            &[
                ("csrf", &csrf),
                ("iban", "DE89 3704 0044 0532 0130 00"),
                ("accountHolder", "Jane Doe"),
                ("mandateConsent", "yes"),
            ],
        )
        .await;
    assert_eq!(got.status, 303, "{}", got.text);
    assert_eq!(instruction(&p, "O-1").await["status"], "PROCESSING");
    let result = browser.get(&session).await;
    assert_eq!(result.outcome(), "succeeded");
    assert!(result.text.contains("data-pending=\"true\"") && result.text.contains("Payment submitted"));
    let fis = instruments(&p, "C1").await;
    assert_eq!(fis[0]["type"], "DIRECT_DEBIT_MANDATE");
    assert_eq!(fis[0]["display"]["scheme"], "SEPA");
    // The bank collects after its delay.
    p.app.clock.advance(Duration::from_secs(3));
    p.app.tick().await;
    assert_eq!(instruction(&p, "O-1").await["status"], "SETTLED");
    let result = browser.get(&session).await;
    assert_eq!(result.outcome(), "succeeded");
    assert!(!result.text.contains("data-pending") && result.text.contains("Payment successful"));

    // A collection the bank refuses later leaves the instruction payable, and the
    // session's page says the payment did not go through.
    unpaid_order(&p, "O-3").await;
    let session = browser.open(&token_for(&p, "O-3").await, "").await;
    let csrf = page_csrf(&p, &session);
    browser
        .post(
            &format!("{session}/bank"),
            &[
                ("csrf", &csrf),
                ("iban", "GB82 WEST 1234 5698 7654 32"),
                ("accountHolder", "Jane Doe"),
                ("mandateConsent", "yes"),
            ],
        )
        .await;
    assert_eq!(instruction(&p, "O-3").await["status"], "PROCESSING");
    p.app.clock.advance(Duration::from_secs(3));
    p.app.tick().await;
    assert_eq!(instruction(&p, "O-3").await["status"], "READY");
    assert_eq!(browser.get(&session).await.outcome(), "failed");

    // PayPal: the sandbox approval step, then paid.
    unpaid_order(&p, "O-2").await;
    let session = browser.open(&token_for(&p, "O-2").await, "").await;
    let approval = browser.get(&format!("{session}/paypal")).await;
    assert_eq!(approval.status, 200);
    assert!(approval.text.contains("id=\"paypal-approve\"") && approval.text.contains("id=\"paypal-cancel\""));
    let csrf = approval.csrf();
    let back = browser.post(&format!("{session}/paypal"), &[("csrf", &csrf), ("decision", "cancel")]).await;
    assert_eq!((back.status, back.location()), (303, format!("{session}?method=paypal").as_str()));
    assert_eq!(instruction(&p, "O-2").await["status"], "INCOMPLETE");
    let got = browser.post(&format!("{session}/paypal"), &[("csrf", &csrf), ("decision", "approve")]).await;
    assert_eq!(got.status, 303);
    assert_eq!(instruction(&p, "O-2").await["status"], "SETTLED");
    let wallet = instruments(&p, "C1").await.into_iter().find(|f| f["type"] == "WALLET").unwrap();
    assert_eq!(wallet["display"]["walletProvider"], "PAYPAL");
    assert_eq!(transactions(&p, "O-2").await[0]["paymentMethod"], "PAYPAL");
}

#[tokio::test]
async fn bad_input_is_refused_field_by_field_and_nothing_is_stored() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let session = browser.open(&token_for(&p, "O-1").await, "&language=de-DE").await;

    let got = browser.pay_card(&session, "4242 4242 4242 4241", "01 / 21", "12", "<script>alert(1)</script>").await;
    assert_eq!(got.status, 422, "{}", got.text);
    assert!(got.text.contains(
        r#"id="card-number-error" class="error" aria-live="polite">Geben Sie eine gültige Kartennummer ein."#
    ));
    assert!(
        got.text.contains("Diese Karte ist abgelaufen.")
            && got.text.contains("Geben Sie die Prüfnummer Ihrer Karte ein.")
    );
    assert!(got.text.contains(r#"aria-invalid="true""#) && got.text.contains(r#"role="alert""#));
    assert!(got.text.contains(r##"<a href="#card-number">"##));
    // Nothing typed is echoed but the name and expiry, and the name only as text.
    assert!(!got.text.contains("4242 4242 4242 4241") && !got.text.contains("4242424242424241"));
    assert!(got.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", got.text);
    assert!(!got.text.contains("<script>alert"));

    let long_name = "A".repeat(500);
    let got = browser.pay_card(&session, "4242424242424242", FUTURE, "123", &long_name).await;
    assert_eq!(got.status, 422);
    assert!(got.text.contains("bis zu 140 Zeichen"));
    let got = browser.pay_card(&session, &"4".repeat(5000), FUTURE, "123", "Jane").await;
    assert_eq!(got.status, 422);
    assert!(got.text.contains("Geben Sie eine gültige Kartennummer ein."));
    // A body over the limit is refused before it is read.
    let csrf = browser.get(&session).await.csrf();
    let huge = "x".repeat(20_000);
    let got = browser.post(&format!("{session}/card"), &[("csrf", &csrf), ("cardholderName", &huge)]).await;
    assert_eq!(got.status, 413);
    // A NUL in any field is refused before the form is read; another control character
    // is refused by the field itself.
    let got = browser.pay_card(&session, "4242424242424242", FUTURE, "123", "Jane\u{0}Doe").await;
    assert_eq!(got.status, 400, "{}", got.text);
    let got = browser.pay_card(&session, "4242424242424242", FUTURE, "123", "Jane\u{1b}[2J").await;
    assert_eq!(got.status, 422, "{}", got.text);

    assert!(instruments(&p, "C1").await.is_empty(), "nothing was stored");
    assert_eq!(instruction(&p, "O-1").await["status"], "INCOMPLETE");
    assert!(transactions(&p, "O-1").await.is_empty());

    // A cardholder name with markup is stored as text and the payment goes through.
    let got = browser.pay_card(&session, "4242424242424242", FUTURE, "123", "<script>alert(1)</script>").await;
    assert_eq!(got.status, 303, "{}", got.text);
    assert_eq!(instruction(&p, "O-1").await["status"], "SETTLED");
}

#[tokio::test]
async fn forms_need_the_session_csrf_token_and_submissions_are_rate_limited() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let session = browser.open(&token_for(&p, "O-1").await, "").await;
    let card = [("cardNumber", "4242424242424242"), ("expiry", FUTURE), ("cvc", "123"), ("cardholderName", "Jane")];

    let got = browser.post(&format!("{session}/card"), &card).await;
    assert_eq!(got.status, 403);
    assert!(got.text.contains("This form has expired"));
    let mut forged = vec![("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")];
    forged.extend(card);
    assert_eq!(browser.post(&format!("{session}/card"), &forged).await.status, 403);
    // Another session's token does not fit this one.
    let other = browser.open(&token_for(&p, "O-1").await, "").await;
    let mut foreign = vec![("csrf", browser.get(&other).await.csrf())];
    foreign.extend(card.iter().map(|(k, v)| (*k, v.to_string())));
    let foreign: Vec<(&str, &str)> = foreign.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post(&format!("{session}/card"), &foreign).await.status, 403);
    // Not a form at all.
    let json = browser.client.post(format!("{}{session}/card", browser.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(json.status(), 415);
    assert!(instruments(&p, "C1").await.is_empty());
    assert_eq!(instruction(&p, "O-1").await["status"], "INCOMPLETE");

    // Five submissions at once, then one every ten seconds per session.
    for _ in 0..5 {
        let got = browser.pay_card(&session, "4242424242424241", FUTURE, "123", "Jane").await;
        assert_eq!(got.status, 422);
    }
    let got = browser.pay_card(&session, "4242424242424242", FUTURE, "123", "Jane").await;
    assert_eq!(got.status, 429);
    assert!(got.text.contains("Too many attempts"));
    assert_eq!(got.header("retry-after"), "10");
    assert_eq!(instruction(&p, "O-1").await["status"], "INCOMPLETE");
    // Other sessions are not held up.
    let got = browser.pay_card(&other, "4242424242424242", FUTURE, "123", "Jane").await;
    assert_eq!(got.status, 303);
    assert_eq!(instruction(&p, "O-1").await["status"], "SETTLED");
}

#[tokio::test]
async fn the_customer_can_cancel_and_a_paid_instruction_is_not_offered_again() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let token = token_with(&p, "O-1", json!({ "callbacks": { "cancelled": "https://shop.example/cancelled" } })).await;
    let session = browser.open(&token, "").await;
    let csrf = browser.get(&session).await.csrf();
    let got = browser.post(&format!("{session}/cancel"), &[("csrf", &csrf)]).await;
    assert_eq!(got.status, 303);
    let result = browser.get(&session).await;
    assert_eq!(result.outcome(), "cancelled");
    assert_eq!(result.message()["messageType"], "imburse_payment_cancelled");
    assert_eq!(result.body_attr("data-redirect").unwrap(), "https://shop.example/cancelled");
    // A cancelled session takes no payment.
    let got = browser
        .post(
            &format!("{session}/card"),
            &[("csrf", &csrf), ("cardNumber", "4242424242424242"), ("expiry", FUTURE), ("cvc", "123")],
        )
        .await;
    assert_eq!(got.status, 303);
    assert_eq!(instruction(&p, "O-1").await["status"], "INCOMPLETE");

    // Paid through another session meanwhile: this one says so and offers nothing.
    let first = browser.open(&token_for(&p, "O-1").await, "").await;
    let second = browser.open(&token_for(&p, "O-1").await, "").await;
    browser.pay_card(&first, "4242424242424242", FUTURE, "123", "Jane").await;
    let page = browser.get(&second).await;
    assert_eq!(page.outcome(), "unavailable");
    assert!(page.text.contains("Already paid") && !page.text.contains("card-form"));
    let got = browser
        .post(
            &format!("{second}/card"),
            &[
                ("csrf", &page_csrf(&p, &second)),
                ("cardNumber", "4242424242424242"),
                ("expiry", FUTURE),
                ("cvc", "123"),
            ],
        )
        .await;
    assert_eq!(got.status, 303);
    assert_eq!(transactions(&p, "O-1").await.len(), 1, "money moves once");
}

/// The session's CSRF token, as any of its forms carries it (a result page has none).
fn page_csrf(p: &Payments, session: &str) -> String {
    p.app.engine().checkout_csrf_token(session.trim_start_matches("/checkout/session/"))
}

#[tokio::test]
async fn card_numbers_tokens_and_session_ids_never_reach_the_log() {
    let logs = common::LogCapture::start();
    let p = shop().await;
    let browser = Browser::new(&p);
    let token = token_for(&p, "O-1").await;
    let session = browser.open(&token, "").await;
    let session_id = session.trim_start_matches("/checkout/session/").to_string();
    browser.pay_card(&session, "4000 0000 0000 9995", FUTURE, "737", "Jane Logged").await;
    browser.pay_card(&session, "4242424242424241", FUTURE, "737", "Jane Logged").await;
    let csrf = page_csrf(&p, &session);
    browser
        .post(
            &format!("{session}/bank"),
            &[
                ("csrf", &csrf),
                ("iban", "DE89370400440532013000"),
                ("accountHolder", "Jane Logged"),
                ("mandateConsent", "yes"),
            ],
        )
        .await;
    browser.get(&format!("/checkout/bearerToken={token}")).await;

    let text = logs.text();
    assert!(text.contains("checkout token opened"), "the capture works");
    assert!(text.contains("/checkout/session/{sessionId}/card"), "requests are logged by route");
    for secret in [
        "4000000000009995",
        "4000 0000 0000 9995",
        "4242424242424241",
        "DE89370400440532013000",
        "Jane Logged",
        &token,
        &session_id,
    ] {
        assert!(!text.contains(secret), "{secret} reached the log");
    }
}

#[tokio::test]
async fn messages_go_only_to_an_allowed_parent_origin() {
    let p = shop().await;
    let browser = Browser::new(&p);
    // Baton's own origin may embed the page and receive its messages (`frame-ancestors 'self'`).
    let own = p.app.base.clone();
    let session = browser.open(&token_for(&p, "O-1").await, &format!("&parentOrigin={own}")).await;
    let page = browser.get(&session).await;
    assert_eq!(page.body_attr("data-parent-origin").unwrap(), own);
    // Anything else is kept but never written into the page.
    for other in ["https://evil.example", "javascript:alert(1)", "https://shop.example/path"] {
        let session = browser.open(&token_for(&p, "O-1").await, &format!("&parentOrigin={other}")).await;
        assert_eq!(browser.get(&session).await.body_attr("data-parent-origin").unwrap(), "", "{other}");
    }
}

#[tokio::test]
async fn submissions_are_also_limited_per_client_address() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let bad = [("cardNumber", "4242424242424241"), ("expiry", FUTURE), ("cvc", "123"), ("cardholderName", "Jane")];
    let mut sessions = Vec::new();
    for _ in 0..16 {
        sessions.push(browser.open(&token_for(&p, "O-1").await, "").await);
    }
    let started = std::time::Instant::now();
    // Fifty submissions from one address go through at once (five per session)…
    let mut statuses = Vec::new();
    for session in &sessions {
        let mut form = vec![("csrf", page_csrf(&p, session))];
        form.extend(bad.iter().map(|(k, v)| (*k, v.to_string())));
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for _ in 0..5 {
            statuses.push(browser.post(&format!("{session}/card"), &form).await.status);
        }
    }
    let elapsed = started.elapsed().as_secs();
    assert!(statuses[..50].iter().all(|s| *s == 422), "{statuses:?}");
    // …then one a second: the rest of the eighty were mostly refused.
    let admitted = statuses[50..].iter().filter(|s| **s == 422).count() as u64;
    assert!(statuses[50..].iter().all(|s| *s == 422 || *s == 429), "{statuses:?}");
    assert!(admitted <= elapsed + 1, "{admitted} more admitted in {elapsed} s: {statuses:?}");
    assert_eq!(instruction(&p, "O-1").await["status"], "INCOMPLETE");
}

#[tokio::test]
async fn a_theme_asking_for_the_billing_address_and_allowing_a_parent() {
    let p = shop().await;
    let doc = json!({ "ccDataCollectionOptions": { "cardholderName": true, "billingAddress": true },
        "allowedOrigins": ["https://shop.example"] });
    p.app.put("/v1/whitelabel/theme-template", &p.token, &doc).await.assert_status(200);
    let browser = Browser::new(&p);
    let session = browser.open(&token_for(&p, "O-1").await, "&parentOrigin=https://shop.example").await;
    let page = browser.get(&session).await;
    assert!(page.text.contains(r#"id="billing-post-code""#) && page.text.contains(r#"autocomplete="postal-code""#));
    // The allowed parent may frame the page and receives its messages.
    assert_eq!(page.body_attr("data-parent-origin").unwrap(), "https://shop.example");
    assert!(page.header("content-security-policy").contains("frame-ancestors 'self' https://shop.example"));

    let card = |street: &'static str, country: &'static str| {
        let csrf = page_csrf(&p, &session);
        let form: Vec<(&str, String)> = vec![
            ("csrf", csrf),
            ("cardNumber", "4242424242424242".into()),
            ("expiry", FUTURE.into()),
            ("cvc", "123".into()),
            ("cardholderName", "Jane Doe".into()),
            ("billingFirstName", "Jane".into()),
            ("billingLastName", "Doe".into()),
            ("billingStreet", street.into()),
            ("billingLocality", "Köln".into()),
            ("billingPostCode", "50667".into()),
            ("billingCountry", country.into()),
        ];
        form
    };
    // Missing street, unknown country: refused field by field, the typed lines kept.
    let form = card("", "XX");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let got = browser.post(&format!("{session}/card"), &form).await;
    assert_eq!(got.status, 422, "{}", got.text);
    assert!(got.text.contains(r#"id="billing-street-error" class="error" aria-live="polite">This field is required."#));
    assert!(got.text.contains(
        r#"id="billing-country-error" class="error" aria-live="polite">Enter a valid two-letter country code."#
    ));
    assert!(got.text.contains(r#"value="Köln""#));
    assert!(instruments(&p, "C1").await.is_empty());

    let form = card("Domkloster 4", "de");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let got = browser.post(&format!("{session}/card"), &form).await;
    assert_eq!(got.status, 303, "{}", got.text);
    assert_eq!(instruction(&p, "O-1").await["status"], "SETTLED");
    // The address is sealed with the card, never shown by the API.
    let fi = &instruments(&p, "C1").await[0];
    assert!(!fi.to_string().contains("Domkloster"));
    let secrets = p
        .app
        .engine()
        .instrument_secrets(&p.tenant, "C1", fi["financialInstrumentId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secrets.details["billingAddress"]["streetAddress"], "Domkloster 4");
    assert_eq!(secrets.details["billingAddress"]["country"], "DE");
    assert_eq!(secrets.details["cardholderName"], "Jane Doe");
    assert!(secrets.details.get("cvc").is_none() && !secrets.details.to_string().contains("123\""));
}

#[tokio::test]
async fn a_voided_instruction_ends_its_checkout_tokens_and_sessions_and_says_why() {
    let p = shop().await;
    let browser = Browser::new(&p);
    let callbacks = json!({ "callbacks": { "failed": "https://shop.example/failed" } });
    let unused = token_with(&p, "O-1", callbacks).await;
    let session = browser.open(&token_for(&p, "O-1").await, "&language=de-DE").await;
    let csrf = browser.get(&session).await.csrf();

    p.app.delete("/v1/order-management/O-1/instruction/I1", &p.token).await.assert_status(200);
    let withdrawn = |got: &Got, texts: &[&str]| {
        assert_eq!((got.status, got.outcome()), (410, "invalid"), "{}", got.text);
        assert!(!got.text.contains("id=\"card-form\""), "{}", got.text);
        for text in texts {
            assert!(got.text.contains(text), "{text} not in {}", got.text);
        }
    };
    // A token not yet opened opens nothing, and says why; its failed callback is honoured.
    let refused = browser.get(&format!("/checkout?bearerToken={unused}")).await;
    withdrawn(
        &refused,
        &["This payment request has been withdrawn", "Payments tenant has withdrawn this payment request."],
    );
    let redirect = refused.body_attr("data-redirect").unwrap();
    assert_eq!(payload_of(&redirect)["messageType"], "imburse_invalid_token");
    // A session opened before: its page says why, and a payment is refused with it.
    let german = ["Diese Zahlungsaufforderung wurde zurückgezogen", "Payments tenant hat diese Zahlungsaufforderung"];
    withdrawn(&browser.get(&session).await, &german);
    let form = [("csrf", csrf.as_str()), ("cardNumber", "4242424242424242"), ("expiry", FUTURE), ("cvc", "123")];
    withdrawn(&browser.post(&format!("{session}/card"), &form).await, &german);
    assert_eq!(instruction(&p, "O-1").await["status"], "VOID");
    assert!(transactions(&p, "O-1").await.is_empty(), "no PSP was asked");
    assert!(instruments(&p, "C1").await.is_empty(), "no card was stored");
}
