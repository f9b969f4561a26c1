//! The marketplace, installed apps, reward accounts, reward groups and the rewards
//! catalog (SPEC §4.4, §4.5, §4.7, §4.8), through the real HTTP API.

use crate::common;

use std::collections::BTreeSet;

use baton::config::Database;
use common::{Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// A node with one tenant and a `tenant-admin` token for it.
struct Ctx {
    app: TestApp,
    /// An account-admin token.
    admin: String,
    tenant: String,
    /// A tenant-admin token of `tenant`.
    token: String,
}

async fn setup() -> Ctx {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Marketplace tenant").await;
    let token = tenant_token(&app, &admin, &tenant, &["tenant-admin"]).await;
    Ctx { app, admin, tenant, token }
}

async fn tenant_token(app: &TestApp, admin: &str, tenant: &str, roles: &[&str]) -> String {
    let key = app.create_tenant_key(admin, tenant, roles).await;
    app.token(&key).await
}

/// `(errorCode, metadata.field)` of every error entry, in order.
fn problems(reply: &Reply) -> Vec<(String, String)> {
    reply.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let code = e["errorCode"].as_str().unwrap_or("").to_string();
                    (code, e["metadata"]["field"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(c, f)| (c.to_string(), f.to_string())).collect()
}

/// Asserts a 400 carrying exactly these `(code, field)` problems, in any order.
#[track_caller]
fn assert_problems(reply: &Reply, expected: &[(&str, &str)]) {
    reply.assert_error(400, expected[0].0);
    let got: BTreeSet<(String, String)> = problems(reply).into_iter().collect();
    let want: BTreeSet<(String, String)> = pairs(expected).into_iter().collect();
    assert_eq!(got, want, "body: {}", reply.text);
    assert_eq!(problems(reply).len(), expected.len(), "one problem per bad field: {}", reply.text);
}

fn app_ids(list: &Value) -> Vec<&str> {
    list.as_array().expect("array").iter().map(|a| a["appId"].as_str().expect("appId")).collect()
}

fn reward_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["rewards"]
        .as_array()
        .expect("rewards")
        .iter()
        .map(|r| r["rewardName"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

const CARD: &str = "SANDBOX_CARD";
const BANK: &str = "SANDBOX_BANK";
const REWARDS: &str = "SANDBOX_REWARDS";
const STRIPE: &str = "STRIPE";

impl Ctx {
    async fn get(&self, path: &str) -> Reply {
        self.app.get(path, &self.token).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.app.post(path, &self.token, body).await
    }

    /// Posts without any body.
    async fn post_empty(&self, path: &str) -> Reply {
        self.app.send(Method::POST, path, Some(&self.token), &[], None).await
    }

    async fn install(&self, app_id: &str) -> Value {
        self.post_empty(&format!("/v1/marketplace/apps/{app_id}/install")).await.assert_status(200).clone()
    }

    /// Installed app ids, sorted: installs within one millisecond have no defined order.
    async fn installed(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            app_ids(self.get("/v1/apps/installed").await.assert_status(200)).into_iter().map(String::from).collect();
        ids.sort();
        ids
    }

    async fn marketplace(&self, query: &str) -> Vec<String> {
        let reply = self.get(&format!("/v1/marketplace/apps{query}")).await;
        app_ids(reply.assert_status(200)).into_iter().map(String::from).collect()
    }

    /// The whole catalogue of the sandbox reward app (installed by the caller).
    async fn full_catalog(&self) -> Vec<Value> {
        let reply = self.get("/v1/catalog/search?appId=sandbox-rewards&showInactive=true").await;
        reply.assert_status(200)["rewards"].as_array().unwrap().clone()
    }

    async fn reward_id(&self, name: &str) -> String {
        let all = self.full_catalog().await;
        let reward = all.iter().find(|r| r["rewardName"] == name).unwrap_or_else(|| panic!("no reward {name}"));
        reward["rewardId"].as_str().unwrap().to_string()
    }

    async fn groups(&self) -> Vec<Value> {
        self.get("/v1/reward-groups").await.assert_status(200).as_array().unwrap().clone()
    }

    /// A scheme of `kind` with one draft referencing `target` (`APP` or `REWARD_GROUP`),
    /// published or not: arranged in the database, as the scheme API is another area.
    async fn arrange_draft_reference(&self, kind: &str, reference: &str, target: &str, published: bool) -> String {
        let scheme = uuid::Uuid::new_v4().to_string();
        let draft = uuid::Uuid::new_v4().to_string();
        let tenant = &self.tenant;
        let published = if published { format!("'{draft}'") } else { "NULL".into() };
        self.app
            .execute_sql(&format!(
                "INSERT INTO schemes (scheme_id, tenant_id, kind, published_draft_id, created_at, updated_at) \
                 VALUES ('{scheme}', '{tenant}', '{kind}', {published}, 0, 0)"
            ))
            .await;
        self.app
            .execute_sql(&format!(
                "INSERT INTO scheme_drafts (draft_id, scheme_id, tenant_id, name, name_key, code, rules, created_at, last_modified) \
                 VALUES ('{draft}', '{scheme}', '{tenant}', 'Draft', 'draft', NULL, '[]', 0, 0)"
            ))
            .await;
        self.app
            .execute_sql(&format!(
                "INSERT INTO draft_references (draft_id, tenant_id, kind, target_id) \
                 VALUES ('{draft}', '{tenant}', '{reference}', '{target}')"
            ))
            .await;
        scheme
    }
}

#[tokio::test]
async fn marketplace_lists_the_apps_with_their_capabilities() {
    let ctx = setup().await;
    let list = ctx.get("/v1/marketplace/apps").await;
    let list = list.assert_status(200);
    assert_eq!(app_ids(list), [CARD, BANK, REWARDS, STRIPE]);

    let card = &list[0];
    assert_eq!(card["developerName"], "Baton");
    assert!(card["developerId"].as_str().is_some_and(|d| d.len() == 36));
    assert_eq!(card["name"], "Sandbox Card");
    assert_eq!(card["iconUrl"], "/assets/apps/sandbox-card.svg");
    assert!(card["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(card["tags"], json!(["sandbox", "cards", "wallet"]));
    assert_eq!(card["appType"], "PAYMENT");
    assert_eq!(card["directions"], json!(["DEBIT", "CREDIT"]));
    assert_eq!(card["transactionTypes"], json!(["CIT", "MIT"]));
    assert_eq!(card["networks"], json!(["VISA", "MASTERCARD", "AMERICAN_EXPRESS", "DISCOVER"]));
    assert_eq!(card["supportedCountries"].as_array().unwrap().len(), 40);
    assert_eq!(card["supportedCurrencies"].as_array().unwrap().len(), 10);
    assert_eq!(card["installed"], false);
    let methods = card["supportedPaymentMethods"].as_array().unwrap();
    let ids: Vec<&str> = methods.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER", "MAESTRO", "PAYPAL"]);
    let amex = &methods[2];
    assert_eq!(
        amex,
        &json!({
            "id": "AMERICAN-EXPRESS", "name": "American Express", "iconUrl": "/assets/payment-methods/american-express.svg",
            "tags": ["card", "credit-card"], "isCreditCard": true, "supportsDirectSale": true, "supportsRecurring": true,
            "providerWarningRequired": true, "directions": ["DEBIT", "CREDIT"],
        })
    );
    assert_eq!(methods[5]["isCreditCard"], false);

    let rewards = &list[2];
    assert_eq!(rewards["appType"], "REWARD");
    assert_eq!(rewards["directions"], json!(["CREDIT"]));
    assert_eq!(rewards["networks"], json!([]));

    // One app, by any spelling of its id, with GET or POST (as the tutorial's curl).
    for id in ["sandbox-card", "SANDBOX_CARD", "Sandbox_Card", " sandbox-CARD"] {
        let reply = ctx.get(&format!("/v1/marketplace/apps/{id}")).await;
        assert_eq!(reply.assert_status(200), card, "{id}");
    }
    let reply = ctx.post_empty("/v1/marketplace/apps/sandbox-rewards").await;
    assert_eq!(reply.assert_status(200)["appId"], REWARDS);
    for id in ["nope", "TANGOCARD", "braintree-sdk", "no%20spaces", "%E2%82%AC"] {
        ctx.get(&format!("/v1/marketplace/apps/{id}")).await.assert_error(404, "APP_NOT_FOUND");
        ctx.post_empty(&format!("/v1/marketplace/apps/{id}")).await.assert_error(404, "APP_NOT_FOUND");
    }
}

#[tokio::test]
async fn marketplace_filters_or_within_and_across() {
    let ctx = setup().await;
    let cases: &[(&str, &[&str])] = &[
        ("", &[CARD, BANK, REWARDS, STRIPE]),
        ("?appType=REWARD", &[REWARDS]),
        ("?appType=payment", &[CARD, BANK, STRIPE]),
        ("?appType=PAYMENT,reward", &[CARD, BANK, REWARDS, STRIPE]),
        ("?direction=DEBIT", &[CARD, BANK, STRIPE]),
        ("?direction=credit", &[CARD, BANK, REWARDS]),
        ("?transactionType=CIT", &[CARD, REWARDS, STRIPE]),
        ("?transactionType=MIT", &[CARD, BANK, REWARDS, STRIPE]),
        ("?networks=VISA", &[CARD, STRIPE]),
        ("?networks=amex", &[CARD, STRIPE]),
        ("?networks=american-express,DISCOVER", &[CARD, STRIPE]),
        ("?paymentMethods=direct-debit", &[BANK]),
        ("?paymentMethods=PAYPAL,gift_card", &[CARD, REWARDS]),
        ("?paymentMethods=american_express", &[CARD, STRIPE]),
        ("?paymentMethods=BANK_TRANSFER,DONATION", &[BANK, REWARDS]),
        // AND across filters.
        ("?appType=PAYMENT&transactionType=CIT", &[CARD, STRIPE]),
        ("?direction=DEBIT&paymentMethods=GIFT_CARD", &[]),
        ("?appType=PAYMENT&direction=CREDIT&networks=VISA", &[CARD]),
        ("?appType=REWARD&direction=DEBIT", &[]),
        ("?direction=DEBIT&transactionType=MIT&paymentMethods=DIRECT_DEBIT,VISA", &[CARD, BANK, STRIPE]),
        // Repeated parameters add values; names match ignoring case; blanks are ignored.
        ("?appType=REWARD&appType=PAYMENT&networks=VISA", &[CARD, STRIPE]),
        ("?APPTYPE=reward", &[REWARDS]),
        ("?AppType=&networks=&direction=,", &[CARD, BANK, REWARDS, STRIPE]),
    ];
    for (query, expected) in cases {
        assert_eq!(ctx.marketplace(query).await, *expected, "{query}");
    }

    // Unknown values: 400 with a code per filter and the filter as the field, all reported.
    let refusals: &[(&str, &[(&str, &str)])] = &[
        ("?appType=OTHER", &[("INVALID_APP_TYPE", "appType")]),
        ("?direction=UP", &[("INVALID_DIRECTION", "direction")]),
        ("?paymentMethods=VISA,BITCOIN", &[("INVALID_PAYMENT_METHOD", "paymentMethods")]),
        ("?transactionType=MOTO", &[("INVALID_TRANSACTION_TYPE", "transactionType")]),
        ("?networks=JCB", &[("INVALID_NETWORK", "networks")]),
        (
            "?appType=x&direction=y&networks=VISA,z",
            &[("INVALID_APP_TYPE", "appType"), ("INVALID_DIRECTION", "direction"), ("INVALID_NETWORK", "networks")],
        ),
    ];
    for (query, expected) in refusals {
        let reply = ctx.get(&format!("/v1/marketplace/apps{query}")).await;
        assert_problems(&reply, expected);
        let reply = ctx.post_empty(&format!("/v1/marketplace/apps{query}")).await;
        assert_problems(&reply, expected);
    }

    // POST, as the tutorial's curl: no body, or the filters as JSON (csv strings or arrays).
    let list = |reply: Reply| app_ids(reply.assert_status(200)).into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(list(ctx.post_empty("/v1/marketplace/apps").await), [CARD, BANK, REWARDS, STRIPE]);
    assert_eq!(list(ctx.post("/v1/marketplace/apps", &json!({})).await), [CARD, BANK, REWARDS, STRIPE]);
    assert_eq!(list(ctx.post("/v1/marketplace/apps", &json!({ "AppType": "REWARD" })).await), [REWARDS]);
    let body = json!({ "networks": ["VISA"], "direction": "DEBIT,CREDIT", "transactionType": null });
    assert_eq!(list(ctx.post("/v1/marketplace/apps", &body).await), [CARD, STRIPE]);
    let body = json!({ "paymentMethods": ["DIRECT_DEBIT", "GIFT_CARD"] });
    assert_eq!(list(ctx.post("/v1/marketplace/apps?appType=PAYMENT", &body).await), [BANK]);
    let reply = ctx.post("/v1/marketplace/apps", &json!({ "networks": ["JCB"], "appType": 7 })).await;
    assert_problems(&reply, &[("INVALID_APP_TYPE", "appType"), ("INVALID_NETWORK", "networks")]);
    ctx.post("/v1/marketplace/apps", &json!(["REWARD"])).await.assert_error(400, "INVALID_REQUEST_BODY");
}

#[tokio::test]
async fn install_configure_and_uninstall() {
    let ctx = setup().await;

    // Install without a configuration.
    let installed = ctx.install("sandbox-card").await;
    assert_eq!(installed["appId"], CARD);
    assert_eq!(installed["installed"], true);
    assert_eq!(installed["configured"], false);
    assert_eq!(installed["configuration"], Value::Null);
    assert_eq!(installed["supportedPaymentMethods"].as_array().unwrap().len(), 6);
    let installed_at = installed["installedAt"].as_str().unwrap().to_string();
    assert!(installed_at.ends_with('Z') && installed_at.len() == 24, "{installed_at}");

    let market = ctx.get("/v1/marketplace/apps").await;
    let flags: Vec<bool> =
        market.assert_status(200).as_array().unwrap().iter().map(|a| a["installed"].as_bool().unwrap()).collect();
    assert_eq!(flags, [true, false, false, false]);
    assert_eq!(ctx.get("/v1/marketplace/apps/sandbox-card").await.assert_status(200)["installed"], true);

    // Once per tenant, whatever the spelling.
    for path in ["/v1/marketplace/apps/SANDBOX-CARD/install", "/marketplace/apps/sandbox_card/install"] {
        ctx.post_empty(path).await.assert_error(409, "APP_ALREADY_INSTALLED");
    }
    ctx.post_empty("/v1/marketplace/apps/nope/install").await.assert_error(404, "APP_NOT_FOUND");
    let list = ctx.get("/v1/apps/installed").await;
    assert_eq!(
        list.assert_status(200),
        &json!([{ "appId": CARD, "name": "Sandbox Card", "configured": false, "installedAt": installed_at }])
    );

    // Configure: canonical names out, codes upper-cased, secrets masked.
    let config = json!({
        "MerchantName": " Acme ",
        "apiKey": "sk_live_very_secret",
        "settings": [{ "currency": "eur", "countries": ["de", "UK"], "merchantAccountId": "acme-eur" }],
        "unknown": 1,
    });
    let reply = ctx.post("/v1/apps/installed/sandbox-card/configuration", &config).await;
    let expected = json!({
        "merchantName": "Acme",
        "apiKey": "********",
        "settings": [{ "currency": "EUR", "countries": ["DE", "GB"], "merchantAccountId": "acme-eur" }],
    });
    assert_eq!(reply.assert_status(200), &expected);
    assert!(!reply.text.contains("sk_live_very_secret"));
    let one = ctx.get("/v1/apps/installed/Sandbox-Card").await;
    let one_body = one.assert_status(200);
    assert_eq!(one_body["configured"], true);
    assert_eq!(one_body["configuration"], expected);
    assert_eq!(one_body["appId"], CARD);
    assert_eq!(one_body["installedAt"], installed_at.as_str());
    assert!(!one.text.contains("sk_live_very_secret"));
    assert_eq!(ctx.get("/v1/apps/installed").await.assert_status(200)[0]["configured"], true);
    assert_secret_not_stored_in_plaintext(&ctx.app, "sk_live_very_secret", "acme-eur");

    // Validation: one problem per bad field, with its JSON path; nothing changes.
    let bad = json!({
        "merchantName": 5,
        "settings": [
            { "currency": "XXX", "merchantAccountId": "" },
            { "currency": "EUR", "countries": ["ZZ", "FR"], "merchantAccountId": "m" },
            { "currency": "GBP", "merchantAccountId": "a" },
            { "currency": "GBP", "merchantAccountId": "b" },
        ],
    });
    let reply = ctx.post("/v1/apps/installed/sandbox-card/configuration", &bad).await;
    assert_problems(
        &reply,
        &[
            ("INVALID_CONFIGURATION_FIELD", "merchantName"),
            ("INVALID_CURRENCY", "settings[0].currency"),
            ("CONFIGURATION_FIELD_REQUIRED", "settings[0].merchantAccountId"),
            ("INVALID_COUNTRY", "settings[1].countries[0]"),
            ("DUPLICATE_MERCHANT_ACCOUNT_SETTING", "settings[3]"),
        ],
    );
    let reply = ctx.post("/v1/apps/installed/sandbox-card/configuration", &json!(["not", "an", "object"])).await;
    reply.assert_error(400, "INVALID_CONFIGURATION");
    assert_eq!(ctx.get("/v1/apps/installed/sandbox-card").await.assert_status(200)["configuration"], expected);

    // The mask sent back keeps the stored secret; leaving the secret out removes it.
    let reply = ctx
        .post(
            "/v1/apps/installed/sandbox-card/configuration",
            &json!({ "merchantName": "Acme 2", "apiKey": "********" }),
        )
        .await;
    assert_eq!(reply.assert_status(200), &json!({ "merchantName": "Acme 2", "apiKey": "********", "settings": [] }));
    assert_secret_not_stored_in_plaintext(&ctx.app, "sk_live_very_secret", "Acme 2");
    let reply = ctx.post("/v1/apps/installed/sandbox-card/configuration", &json!({ "merchantName": "Acme 3" })).await;
    assert_eq!(reply.assert_status(200), &json!({ "merchantName": "Acme 3", "settings": [] }));
    // With nothing stored, the mask counts as absent.
    let reply = ctx.post("/v1/apps/installed/sandbox-card/configuration", &json!({ "apiKey": "********" })).await;
    assert_eq!(reply.assert_status(200), &json!({ "settings": [] }));
    let reply = ctx.post("/v1/apps/installed/sandbox-card/configuration", &json!({ "apiKey": "new-secret" })).await;
    assert_eq!(reply.assert_status(200), &json!({ "apiKey": "********", "settings": [] }));

    // The documented aliases configure the same app.
    for (i, path) in [
        "/v1/marketplace/installed/SANDBOX-CARD/configuration",
        "/v1/marketplace/installed/sandbox_card/configure",
        "/marketplace/installed/sandbox-card/configuration",
        "/marketplace/installed/Sandbox-Card/configure",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("Alias {i}");
        let reply = ctx.post(path, &json!({ "merchantName": name, "apiKey": "********" })).await;
        assert_eq!(reply.assert_status(200)["merchantName"], name.as_str(), "{path}");
        let stored = ctx.get("/v1/apps/installed/sandbox-card").await;
        let stored = stored.assert_status(200);
        assert_eq!(stored["configuration"]["merchantName"], name.as_str(), "{path}");
        assert_eq!(stored["configuration"]["apiKey"], "********", "{path}");
    }

    // Not installed (or unknown): 404 APP_NOT_INSTALLED on every installed-app route.
    for path in [
        "/v1/apps/installed/sandbox-bank/configuration",
        "/v1/marketplace/installed/sandbox-bank/configure",
        "/v1/apps/installed/nope/configuration",
        "/v1/apps/installed/sandbox-bank/uninstall",
        "/marketplace/installed/sandbox-bank/uninstall",
    ] {
        ctx.post(path, &json!({})).await.assert_error(404, "APP_NOT_INSTALLED");
    }
    ctx.get("/v1/apps/installed/sandbox-bank").await.assert_error(404, "APP_NOT_INSTALLED");
    ctx.get("/v1/apps/installed/nope").await.assert_error(404, "APP_NOT_INSTALLED");

    // Install with a configuration: validated first, so a bad one installs nothing.
    let reply = ctx.post("/v1/marketplace/apps/sandbox-bank/install", &json!({ "creditorName": " " })).await;
    assert_problems(
        &reply,
        &[("CONFIGURATION_FIELD_REQUIRED", "creditorName"), ("CONFIGURATION_FIELD_REQUIRED", "creditorId")],
    );
    let reply = ctx
        .post("/v1/marketplace/apps/sandbox-bank/install", &json!({ "creditorName": "Acme", "creditorId": "DE 98" }))
        .await;
    assert_problems(&reply, &[("INVALID_CONFIGURATION_FIELD", "creditorId")]);
    assert_eq!(ctx.installed().await, [CARD]);
    let reply = ctx
        .post(
            "/marketplace/apps/sandbox-bank/install",
            &json!({ "creditorName": "Acme", "creditorId": "DE98ZZZ09999999999" }),
        )
        .await;
    let bank = reply.assert_status(200);
    assert_eq!(bank["appId"], BANK);
    assert_eq!(bank["configured"], true);
    assert_eq!(
        bank["configuration"],
        json!({ "creditorName": "Acme", "creditorId": "DE98ZZZ09999999999", "settlementDelaySeconds": 2 })
    );
    // An empty object is a (valid) configuration for an app without required fields.
    let reply = ctx.post("/v1/marketplace/apps/sandbox-rewards/install", &json!({})).await;
    assert_eq!(reply.assert_status(200)["configured"], true);
    assert_eq!(reply.body["configuration"], json!({}));
    assert_eq!(ctx.installed().await, [BANK, CARD, REWARDS]);

    // Uninstall, through each path.
    let reply = ctx.post_empty("/v1/apps/installed/SANDBOX-BANK/uninstall").await;
    let body = reply.assert_status(200);
    assert_eq!((body["appId"].as_str(), body["installed"].as_bool()), (Some(BANK), Some(false)));
    ctx.get("/v1/apps/installed/sandbox-bank").await.assert_error(404, "APP_NOT_INSTALLED");
    ctx.post_empty("/v1/apps/installed/sandbox-bank/uninstall").await.assert_error(404, "APP_NOT_INSTALLED");
    ctx.post_empty("/v1/marketplace/installed/sandbox_rewards/uninstall").await.assert_status(200);
    ctx.post_empty("/marketplace/installed/sandbox-card/uninstall").await.assert_status(200);
    assert!(ctx.installed().await.is_empty());
    assert_eq!(ctx.marketplace("").await, [CARD, BANK, REWARDS, STRIPE]);

    // Reinstalling starts unconfigured: the old configuration went with the app.
    let again = ctx.install("sandbox-card").await;
    assert_eq!((again["configured"].as_bool(), &again["configuration"]), (Some(false), &Value::Null));
    ctx.get("/v1/apps/installed/sandbox-card").await.assert_status(200);
}

/// On SQLite, no byte of the database files holds the secret (it is sealed), while the
/// public part of the same configuration is found there (so the scan sees the rows).
#[track_caller]
fn assert_secret_not_stored_in_plaintext(app: &TestApp, secret: &str, public: &str) {
    let Database::Sqlite { path } = &app.config.store.database else { return };
    let contains = |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    let mut public_seen = false;
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", path.display());
        let Ok(bytes) = std::fs::read(&file) else { continue };
        assert!(!contains(&bytes, secret), "{file} holds the secret in plaintext");
        public_seen |= contains(&bytes, public);
    }
    assert!(public_seen, "the public configuration {public:?} is in neither database file");
}

#[tokio::test]
async fn licence_limits_collect_and_payout_apps_across_the_account() {
    let ctx = setup().await;
    let other = ctx.app.create_tenant(&ctx.admin, "Second tenant").await;
    let other = Ctx {
        token: tenant_token(&ctx.app, &ctx.admin, &other, &["tenant-app-write"]).await,
        tenant: other,
        admin: ctx.admin.clone(),
        app: copy_app(&ctx.app),
    };

    ctx.app.execute_sql("UPDATE licenses SET max_collect_apps = 1").await;
    // The card app collects and pays out: the first collect app.
    ctx.install("sandbox-card").await;
    // The bank collects too: refused, with the configuration unchecked and nothing stored.
    let reply = ctx
        .post("/v1/marketplace/apps/sandbox-bank/install", &json!({ "creditorName": "A", "creditorId": "B1" }))
        .await;
    reply.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    assert_eq!(reply.body["errors"][0]["metadata"]["limit"], "1 collect apps");
    // The reward app only pays out: payout apps are unlimited.
    ctx.install("sandbox-rewards").await;
    assert_eq!(ctx.installed().await, [CARD, REWARDS]);
    // The limit is the account's, not the tenant's.
    other.post_empty("/v1/marketplace/apps/sandbox-bank/install").await.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    other.post_empty("/marketplace/apps/sandbox-card/install").await.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    assert!(other.installed().await.is_empty());

    // Two payout apps exist now (card and rewards).
    ctx.app.execute_sql("UPDATE licenses SET max_collect_apps = -1, max_payout_apps = 2").await;
    other.post_empty("/v1/marketplace/apps/sandbox-rewards/install").await.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    other.post_empty("/v1/marketplace/apps/sandbox-bank/install").await.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    assert!(other.installed().await.is_empty());
    // Uninstalling frees a place.
    ctx.post_empty("/v1/apps/installed/sandbox-card/uninstall").await.assert_status(200);
    other.install("sandbox-bank").await;
    assert_eq!(other.installed().await, [BANK]);
    assert_eq!(ctx.installed().await, [REWARDS]);
    // A limit of 0 refuses any app of that direction; already installed is checked first.
    ctx.app.execute_sql("UPDATE licenses SET max_payout_apps = 0").await;
    ctx.post_empty("/v1/marketplace/apps/sandbox-card/install").await.assert_error(402, "LICENSE_LIMIT_EXCEEDED");
    ctx.post_empty("/v1/marketplace/apps/sandbox-rewards/install").await.assert_error(409, "APP_ALREADY_INSTALLED");
}

/// A second handle on the same node (for a second tenant's calls).
fn copy_app(app: &TestApp) -> TestApp {
    TestApp {
        base: app.base.clone(),
        addr: app.addr,
        client: app.client.clone(),
        account_id: app.account_id.clone(),
        admin: app.admin.clone(),
        clock: app.clock.clone(),
        config: app.config.clone(),
        node: None,
        data_dir: tempfile::tempdir().unwrap(),
        pg: app.pg.clone(),
    }
}

#[tokio::test]
async fn an_app_used_by_a_scheme_draft_cannot_be_uninstalled() {
    let ctx = setup().await;
    ctx.install("sandbox-card").await;
    ctx.install("sandbox-bank").await;
    let scheme = ctx.arrange_draft_reference("collect", "APP", CARD, false).await;
    for path in [
        "/v1/apps/installed/sandbox-card/uninstall",
        "/v1/marketplace/installed/SANDBOX_CARD/uninstall",
        "/marketplace/installed/sandbox-card/uninstall",
    ] {
        let reply = ctx.post_empty(path).await;
        reply.assert_error(400, "APP_IN_USE");
        assert_eq!(reply.body["errors"][0]["metadata"]["appId"], CARD);
    }
    assert_eq!(ctx.installed().await, [BANK, CARD]);
    // Other apps are free to go; once no draft references the card, it goes too.
    ctx.post_empty("/v1/apps/installed/sandbox-bank/uninstall").await.assert_status(200);
    ctx.app.execute_sql(&format!("DELETE FROM draft_references WHERE draft_id IN (SELECT draft_id FROM scheme_drafts WHERE scheme_id = '{scheme}')")).await;
    ctx.post_empty("/v1/apps/installed/sandbox-card/uninstall").await.assert_status(200);
    assert!(ctx.installed().await.is_empty());
}

#[tokio::test]
async fn reward_app_accounts_open_report_and_take_deposits() {
    let ctx = setup().await;
    let account = "/v1/apps/installed/sandbox-rewards/account";
    let deposit = "/v1/apps/installed/sandbox-rewards/deposit-funds";

    // Only for installed REWARD apps.
    ctx.post_empty(account).await.assert_error(404, "APP_NOT_INSTALLED");
    ctx.get(account).await.assert_error(404, "APP_NOT_INSTALLED");
    ctx.post(deposit, &json!({ "amount": 10 })).await.assert_error(404, "APP_NOT_INSTALLED");
    ctx.post_empty("/v1/apps/installed/TANGOCARD/account").await.assert_error(404, "APP_NOT_INSTALLED");
    ctx.install("sandbox-card").await;
    for (method, path) in [
        (Method::POST, "/v1/apps/installed/sandbox-card/account"),
        (Method::GET, "/v1/apps/installed/sandbox-card/account"),
        (Method::GET, "/v1/apps/installed/sandbox-bank/account"),
    ] {
        let reply = ctx.app.send(method, path, Some(&ctx.token), &[], None).await;
        reply.assert_error(400, "NOT_A_REWARD_APP");
    }
    ctx.post("/v1/apps/installed/sandbox-card/deposit-funds", &json!({ "amount": 1 }))
        .await
        .assert_error(400, "NOT_A_REWARD_APP");

    ctx.install("sandbox-rewards").await;
    ctx.get(account).await.assert_error(404, "ACCOUNT_NOT_FOUND");
    ctx.post(deposit, &json!({ "amount": 10 })).await.assert_error(404, "ACCOUNT_NOT_FOUND");

    // A new account: generated identifiers, zero balance in USD.
    let created = ctx.post_empty(account).await;
    let created = created.assert_status(200).clone();
    assert!(created["customerIdentifier"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(created["accountIdentifier"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!((&created["currentBalance"], &created["currency"]), (&json!(0), &json!("USD")));
    assert_eq!(ctx.get("/v1/apps/installed/SANDBOX_REWARDS/account").await.assert_status(200), &created);
    let reply = ctx.post(account, &json!({ "customerIdentifier": "other" })).await;
    reply.assert_error(409, "ACCOUNT_ALREADY_EXISTS");
    assert_eq!(ctx.get(account).await.assert_status(200), &created);

    // Deposits: numbers or numeric strings, > 0, at most 2 decimals.
    let reply = ctx.post(deposit, &json!({ "amount": 100 })).await;
    assert_eq!(reply.assert_status(200)["currentBalance"], json!(100));
    let reply = ctx.post("/v1/apps/installed/sandbox_rewards/deposit-funds", &json!({ "Amount": "50.25" })).await;
    assert_eq!(reply.assert_status(200)["currentBalance"], json!(150.25));
    assert_eq!(reply.body["customerIdentifier"], created["customerIdentifier"]);
    let reply = ctx.post(deposit, &json!({ "amount": 0.75 })).await;
    assert_eq!(reply.assert_status(200)["currentBalance"], json!(151));
    let refusals: [(Value, &str); 10] = [
        (json!({ "amount": 0 }), "INVALID_AMOUNT"),
        (json!({ "amount": "0.00" }), "INVALID_AMOUNT"),
        (json!({ "amount": -5 }), "INVALID_AMOUNT"),
        (json!({ "amount": 1.234 }), "INVALID_AMOUNT_PRECISION"),
        (json!({ "amount": "10.001" }), "INVALID_AMOUNT_PRECISION"),
        (json!({ "amount": "abc" }), "INVALID_AMOUNT"),
        (json!({ "amount": true }), "INVALID_AMOUNT"),
        (json!({ "amount": "1e3" }), "INVALID_AMOUNT"),
        (json!({ "amount": "" }), "AMOUNT_REQUIRED"),
        (json!({}), "AMOUNT_REQUIRED"),
    ];
    for (body, code) in &refusals {
        let reply = ctx.post(deposit, body).await;
        reply.assert_error(400, code);
        assert_eq!(problems(&reply), pairs(&[(code, "amount")]), "{body}");
    }
    assert_eq!(ctx.get(account).await.assert_status(200)["currentBalance"], json!(151));

    // Reusing an existing provider account's identifiers (another tenant).
    let second = ctx.app.create_tenant(&ctx.admin, "Second tenant").await;
    let second = Ctx {
        token: tenant_token(&ctx.app, &ctx.admin, &second, &["tenant-app-write"]).await,
        tenant: second,
        admin: ctx.admin.clone(),
        app: copy_app(&ctx.app),
    };
    second.install("sandbox-rewards").await;
    second.get(account).await.assert_error(404, "ACCOUNT_NOT_FOUND");
    let bad = json!({ "customerIdentifier": "has space", "accountIdentifier": "x".repeat(101) });
    let reply = second.post(account, &bad).await;
    assert_problems(
        &reply,
        &[("INVALID_CUSTOMER_IDENTIFIER", "customerIdentifier"), ("INVALID_ACCOUNT_IDENTIFIER", "accountIdentifier")],
    );
    second.get(account).await.assert_error(404, "ACCOUNT_NOT_FOUND");
    let reply =
        second.post(account, &json!({ "CustomerIdentifier": "acme-corp", "accountIdentifier": "acme:main" })).await;
    assert_eq!(
        reply.assert_status(200),
        &json!({ "customerIdentifier": "acme-corp", "accountIdentifier": "acme:main", "currentBalance": 0, "currency": "USD" })
    );
    // Each tenant sees its own account.
    assert_eq!(ctx.get(account).await.assert_status(200)["currentBalance"], json!(151));

    // Uninstalling the app hides its account.
    ctx.post_empty("/v1/apps/installed/sandbox-rewards/uninstall").await.assert_status(200);
    ctx.get(account).await.assert_error(404, "APP_NOT_INSTALLED");
}

#[tokio::test]
async fn reward_groups_are_created_read_updated_and_deleted() {
    let ctx = setup().await;
    // A real reward id, before any reward app is installed: not offered.
    ctx.install("sandbox-rewards").await;
    let starbucks_15 = ctx.reward_id("Starbucks €15 Gift Card").await;
    let starbucks_10 = ctx.reward_id("Starbucks €10 Gift Card").await;
    let nero = ctx.reward_id("Caffè Nero Gift Card (EUR)").await;
    let amazon_de = ctx.reward_id("Amazon.de Gift Card (EUR)").await;
    let amazon_fr = ctx.reward_id("Amazon.fr Gift Card (EUR)").await;
    let inactive = ctx.reward_id("Costa Coffee £10 Gift Card").await;
    ctx.post_empty("/v1/apps/installed/sandbox-rewards/uninstall").await.assert_status(200);
    let reply = ctx.post("/v1/reward-groups", &json!({ "name": "Early", "rewards": [amazon_de] })).await;
    assert_problems(&reply, &[("REWARD_NOT_FOUND", "rewards[0]")]);
    assert_eq!(reply.body["errors"][0]["metadata"]["rewardId"], amazon_de.as_str());
    ctx.install("sandbox-rewards").await;

    // Objects with `enabled`.
    let body = json!({
        "name": "Coffee Shops",
        "rewards": [{ "rewardId": starbucks_15, "enabled": true }, { "RewardId": nero, "Enabled": false }],
    });
    let reply = ctx.post("/v1/reward-groups", &body).await;
    let coffee = reply.assert_status(201).clone();
    let coffee_id = coffee["rewardGroupId"].as_str().unwrap().to_string();
    assert_eq!(coffee["id"], coffee_id.as_str());
    assert_eq!(reply.header("location"), Some(format!("/v1/reward-groups/{coffee_id}").as_str()));
    assert_eq!(coffee["name"], "Coffee Shops");
    assert_eq!(
        coffee["rewards"],
        json!([{ "rewardId": starbucks_15, "enabled": true }, { "rewardId": nero, "enabled": false }])
    );

    // The tutorial's form: plain ids (enabled), any case, blank entries dropped; inactive
    // rewards may be listed.
    let body = json!({ "Name": "  Amazon ", "Rewards": [amazon_de.to_uppercase(), "", null, amazon_fr, inactive] });
    let reply = ctx.post("/v1/reward-groups", &body).await;
    let amazon = reply.assert_status(201).clone();
    let amazon_id = amazon["rewardGroupId"].as_str().unwrap().to_string();
    assert_eq!(amazon["name"], "Amazon");
    assert_eq!(
        amazon["rewards"],
        json!([
            { "rewardId": amazon_de, "enabled": true },
            { "rewardId": amazon_fr, "enabled": true },
            { "rewardId": inactive, "enabled": true },
        ])
    );

    // Refusals change nothing.
    let refusals: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (json!({}), vec![("REWARD_GROUP_NAME_REQUIRED", "name"), ("REWARDS_REQUIRED", "rewards")]),
        (
            json!({ "name": " ", "rewards": [] }),
            vec![("REWARD_GROUP_NAME_REQUIRED", "name"), ("REWARDS_REQUIRED", "rewards")],
        ),
        (json!({ "name": "x", "rewards": ["", null] }), vec![("REWARDS_REQUIRED", "rewards")]),
        (json!({ "name": "x", "rewards": "abc" }), vec![("INVALID_REWARDS", "rewards")]),
        (json!({ "name": "x".repeat(101), "rewards": [amazon_de] }), vec![("INVALID_REWARD_GROUP_NAME", "name")]),
        (json!({ "name": "a\u{7}b", "rewards": [amazon_de] }), vec![("INVALID_REWARD_GROUP_NAME", "name")]),
        (
            json!({ "name": "x", "rewards": [
                { "rewardId": "nope", "enabled": true },
                { "enabled": true },
                { "rewardId": amazon_de },
                5,
                starbucks_10,
                starbucks_10.to_uppercase(),
                { "rewardId": amazon_fr, "enabled": "maybe" },
                { "rewardId": 42, "enabled": true },
            ] }),
            vec![
                ("REWARD_NOT_FOUND", "rewards[0].rewardId"),
                ("REWARD_ID_REQUIRED", "rewards[1].rewardId"),
                ("REWARD_ENABLED_REQUIRED", "rewards[2].enabled"),
                ("INVALID_REWARD_ENTRY", "rewards[3]"),
                ("DUPLICATE_REWARD", "rewards[5]"),
                ("INVALID_REWARD_ENTRY", "rewards[6].enabled"),
                ("INVALID_REWARD_ENTRY", "rewards[7].rewardId"),
            ],
        ),
    ];
    for (body, expected) in &refusals {
        let reply = ctx.post("/v1/reward-groups", body).await;
        assert_problems(&reply, expected);
    }
    let reply = ctx.post("/v1/reward-groups", &json!({ "name": "coffee SHOPS", "rewards": [amazon_de] })).await;
    reply.assert_error(409, "REWARD_GROUP_NAME_ALREADY_EXISTS");
    assert_eq!(reply.body["errors"][0]["metadata"]["field"], "name");
    assert_eq!(ctx.groups().await, [coffee.clone(), amazon.clone()]);

    // Read.
    assert_eq!(ctx.get(&format!("/v1/reward-groups/{}", coffee_id.to_uppercase())).await.assert_status(200), &coffee);
    let unknown = format!("/v1/reward-groups/{}", uuid::Uuid::new_v4());
    ctx.get(&unknown).await.assert_error(404, "REWARD_GROUP_NOT_FOUND");

    // Update: rename only keeps the rewards; rewards only keep the name.
    let path = format!("/v1/reward-groups/{coffee_id}");
    let reply = ctx.app.put(&path, &ctx.token, &json!({ "name": "Coffee" })).await;
    let renamed = reply.assert_status(200).clone();
    assert_eq!((renamed["name"].as_str(), &renamed["rewards"]), (Some("Coffee"), &coffee["rewards"]));
    assert_eq!(renamed["createdAt"], coffee["createdAt"]);
    let body = json!({ "rewards": [{ "rewardId": starbucks_10, "enabled": false }, starbucks_15] });
    let reply = ctx.app.put(&path, &ctx.token, &body).await;
    let updated = reply.assert_status(200).clone();
    assert_eq!(updated["name"], "Coffee");
    assert_eq!(
        updated["rewards"],
        json!([{ "rewardId": starbucks_10, "enabled": false }, { "rewardId": starbucks_15, "enabled": true }])
    );
    // A change of case of its own name is no conflict; another group's name is.
    let reply = ctx.app.put(&path, &ctx.token, &json!({ "name": "COFFEE" })).await;
    assert_eq!(reply.assert_status(200)["name"], "COFFEE");
    ctx.app
        .put(&path, &ctx.token, &json!({ "name": "amazon" }))
        .await
        .assert_error(409, "REWARD_GROUP_NAME_ALREADY_EXISTS");
    let reply = ctx.app.put(&path, &ctx.token, &json!({ "name": "", "rewards": ["nope"] })).await;
    assert_problems(&reply, &[("REWARD_GROUP_NAME_REQUIRED", "name"), ("REWARD_NOT_FOUND", "rewards[0]")]);
    ctx.app.put(&path, &ctx.token, &json!({ "rewards": [] })).await.assert_error(400, "REWARDS_REQUIRED");
    ctx.app.put(&unknown, &ctx.token, &json!({ "name": "Ghost" })).await.assert_error(404, "REWARD_GROUP_NOT_FOUND");
    let current = ctx.get(&path).await.assert_status(200).clone();
    assert_eq!((current["name"].as_str(), &current["rewards"]), (Some("COFFEE"), &updated["rewards"]));

    // Delete.
    ctx.app
        .delete(&path.to_uppercase().replace("/V1/REWARD-GROUPS/", "/v1/reward-groups/"), &ctx.token)
        .await
        .assert_status(204);
    ctx.get(&path).await.assert_error(404, "REWARD_GROUP_NOT_FOUND");
    ctx.app.delete(&path, &ctx.token).await.assert_error(404, "REWARD_GROUP_NOT_FOUND");
    assert_eq!(ctx.groups().await, [amazon]);
    // The freed name can be taken again.
    let body = json!({ "name": "Coffee", "rewards": [starbucks_15] });
    ctx.post("/v1/reward-groups", &body).await.assert_status(201);
    assert_eq!(amazon_id.len(), 36);
}

#[tokio::test]
async fn a_reward_group_in_a_published_payout_draft_cannot_be_deleted() {
    let ctx = setup().await;
    ctx.install("sandbox-rewards").await;
    let reward = ctx.reward_id("Amazon.de Gift Card (EUR)").await;
    let reply = ctx.post("/v1/reward-groups", &json!({ "name": "Amazon", "rewards": [reward] })).await;
    let group = reply.assert_status(201)["rewardGroupId"].as_str().unwrap().to_string();
    let reply = ctx.post("/v1/reward-groups", &json!({ "name": "Draft only", "rewards": [reward] })).await;
    let draft_only = reply.assert_status(201)["rewardGroupId"].as_str().unwrap().to_string();

    let scheme = ctx.arrange_draft_reference("payout", "REWARD_GROUP", &group, true).await;
    ctx.arrange_draft_reference("payout", "REWARD_GROUP", &draft_only, false).await;
    let reply = ctx.app.delete(&format!("/v1/reward-groups/{group}"), &ctx.token).await;
    reply.assert_error(400, "REWARD_GROUP_IN_USE");
    assert_eq!(reply.body["errors"][0]["metadata"]["rewardGroupId"], group.as_str());
    ctx.get(&format!("/v1/reward-groups/{group}")).await.assert_status(200);
    // Editing stays allowed; only deletion is refused.
    let reply = ctx.app.put(&format!("/v1/reward-groups/{group}"), &ctx.token, &json!({ "name": "Amazon EU" })).await;
    reply.assert_status(200);
    // A group referenced by an unpublished draft only can go.
    ctx.app.delete(&format!("/v1/reward-groups/{draft_only}"), &ctx.token).await.assert_status(204);
    // Once the draft is no longer published, the group can go too.
    ctx.app.execute_sql(&format!("UPDATE schemes SET published_draft_id = NULL WHERE scheme_id = '{scheme}'")).await;
    ctx.app.delete(&format!("/v1/reward-groups/{group}"), &ctx.token).await.assert_status(204);
    assert!(ctx.groups().await.is_empty());
}

#[tokio::test]
async fn catalog_lists_and_searches_the_installed_reward_apps() {
    let ctx = setup().await;
    assert_eq!(ctx.get("/v1/catalog").await.assert_status(200), &json!({ "rewards": [] }));
    let reply = ctx.get("/v1/catalog/search?appId=sandbox-rewards").await;
    assert_problems(&reply, &[("APP_NOT_FOUND", "appId")]);
    for query in ["", "?appId=", "?appId=%20&brandName=amazon"] {
        let reply = ctx.get(&format!("/v1/catalog/search{query}")).await;
        assert_problems(&reply, &[("APP_ID_IS_REQUIRED", "appId")]);
    }

    ctx.install("sandbox-card").await;
    ctx.install("sandbox-rewards").await;
    let all = ctx.full_catalog().await;
    assert_eq!(all.len(), 48);
    let active: Vec<&Value> = all.iter().filter(|r| r["status"] == "active").collect();
    assert_eq!(active.len(), 45);
    let catalog = ctx.get("/v1/catalog").await;
    let listed = catalog.assert_status(200)["rewards"].as_array().unwrap();
    assert_eq!(listed.len(), 45);
    assert!(listed.iter().all(|r| r["status"] == "active" && r["appId"] == REWARDS));

    // The CatalogReward shape.
    let starbucks = listed.iter().find(|r| r["rewardName"] == "Starbucks €15 Gift Card").unwrap();
    assert_eq!(starbucks["brandName"], "Starbucks");
    assert_eq!(starbucks["appName"], "Sandbox Rewards");
    assert_eq!(starbucks["rewardType"], "gift card");
    assert_eq!(starbucks["countries"], json!(["DE", "AT"]));
    assert_eq!(starbucks["currencyCode"], "EUR");
    assert_eq!(starbucks["isWholeAmountValueRequired"], false);
    assert_eq!(starbucks["valueType"], "FIXED_VALUE");
    assert_eq!(
        (&starbucks["fixedValue"], &starbucks["minValue"], &starbucks["maxValue"]),
        (&json!(15), &Value::Null, &Value::Null)
    );
    assert_eq!(starbucks["imageUrl"], "/assets/rewards/starbucks.svg");
    assert!(starbucks["rewardId"].as_str().is_some_and(|id| id.len() == 64));
    let brand = &starbucks["brand"];
    assert_eq!((brand["brandKey"].as_str(), brand["status"].as_str()), (Some("starbucks"), Some("active")));
    for text in ["description", "shortDescription", "disclaimer", "terms"] {
        assert_eq!(brand[text][0]["languageCode"], "en", "{text}");
        assert!(brand[text][0]["text"].as_str().is_some_and(|t| !t.is_empty()), "{text}");
    }
    let image = &brand["imageUrls"][0];
    for field in ["ppi", "url", "width", "ratioHeight", "ratioWidth"] {
        assert!(!image[field].is_null(), "{field}");
    }
    assert!(brand["requirements"]["alwaysShowDisclaimer"].is_boolean());
    let variable = listed.iter().find(|r| r["rewardName"] == "Amazon.com Gift Card (USD)").unwrap();
    assert_eq!(
        (&variable["fixedValue"], &variable["minValue"], &variable["maxValue"]),
        (&Value::Null, &json!(1), &json!(2000))
    );

    let search = |query: String| {
        let ctx = &ctx;
        async move { ctx.get(&format!("/v1/catalog/search?appId=sandbox-rewards{query}")).await }
    };
    let names_of = |rewards: &[&Value]| {
        let mut names: Vec<String> = rewards.iter().map(|r| r["rewardName"].as_str().unwrap().to_string()).collect();
        names.sort();
        names
    };

    // No optional filter: the active catalogue; showInactive adds the others; empty
    // parameters are ignored; names match ignoring case.
    assert_eq!(reward_names(search(String::new()).await.assert_status(200)), names_of(&active));
    assert_eq!(reward_names(search("&showInactive=TRUE".into()).await.assert_status(200)).len(), 48);
    assert_eq!(reward_names(search("&showInactive=false".into()).await.assert_status(200)).len(), 45);
    let reply = search("&brandName=&countries=&currencies=&amount=&showInactive=".into()).await;
    assert_eq!(reward_names(reply.assert_status(200)).len(), 45);
    let reply = ctx.get("/v1/catalog/search?APPID=SANDBOX_REWARDS&BrandName=starbucks").await;
    assert_eq!(reward_names(reply.assert_status(200)).len(), 8);

    // Each filter agrees with its rule applied to the whole catalogue.
    let filter =
        |keep: &dyn Fn(&Value) -> bool| names_of(&active.iter().copied().filter(|r| keep(r)).collect::<Vec<_>>());
    let has_country =
        |r: &Value, cs: &[&str]| r["countries"].as_array().unwrap().iter().any(|c| cs.contains(&c.as_str().unwrap()));
    let brand_has = |r: &Value, s: &str| r["brandName"].as_str().unwrap().to_lowercase().contains(s);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("&brandName=AMAZON", filter(&|r| brand_has(r, "amazon"))),
        ("&brandName=%20caff", filter(&|r| brand_has(r, "caff"))),
        ("&brandName=zzz", vec![]),
        ("&countries=GB", filter(&|r| has_country(r, &["GB"]))),
        ("&countries=uk", filter(&|r| has_country(r, &["GB"]))),
        ("&countries=CH,za", filter(&|r| has_country(r, &["CH", "ZA"]))),
        ("&countries=CH&countries=ZA", filter(&|r| has_country(r, &["CH", "ZA"]))),
        ("&currencies=EUR,gbp", filter(&|r| r["currencyCode"] == "EUR" || r["currencyCode"] == "GBP")),
        ("&currencies=BRL", vec!["Brasa Burgers R$50 Gift Card".to_string()]),
        ("&countries=DE&currencies=CHF", vec!["Sandbox Prepaid Mastercard CHF\u{a0}100 Card".to_string()]),
    ];
    for (query, expected) in &cases {
        assert!(!expected.is_empty() || query.contains("zzz"), "{query} tests nothing");
        assert_eq!(&reward_names(search(query.to_string()).await.assert_status(200)), expected, "{query}");
    }

    // Amount, by the Exact rule: a fixed value must equal it, a range must contain it, and a
    // whole amount is needed where required.
    let fifteen = reward_names(search("&amount=15".into()).await.assert_status(200));
    for name in [
        "Starbucks €15 Gift Card",
        "Amazon.de Gift Card (EUR)",
        "Cinemagic €15 Gift Card",
        "Caffè Nero Gift Card (GBP)",
    ] {
        assert!(fifteen.contains(&name.to_string()), "{name} carries 15");
    }
    for name in
        ["Starbucks €10 Gift Card", "Fresh Market Gift Card (EUR)", "Starbucks €25 Gift Card", "Starbucks £5 Gift Card"]
    {
        assert!(!fifteen.contains(&name.to_string()), "{name} does not carry 15");
    }
    let amount_rule = |r: &Value, amount: f64| {
        let whole_ok = !r["isWholeAmountValueRequired"].as_bool().unwrap() || amount.fract() == 0.0;
        whole_ok
            && match r["valueType"].as_str().unwrap() {
                "FIXED_VALUE" => r["fixedValue"].as_f64() == Some(amount),
                _ => r["minValue"].as_f64().unwrap() <= amount && amount <= r["maxValue"].as_f64().unwrap(),
            }
    };
    assert_eq!(fifteen, filter(&|r| amount_rule(r, 15.0)));
    let fifteen_fifty = reward_names(search("&amount=15.50".into()).await.assert_status(200));
    assert_eq!(fifteen_fifty, filter(&|r| amount_rule(r, 15.5)));
    assert!(fifteen_fifty.contains(&"Amazon.de Gift Card (EUR)".to_string()));
    assert!(!fifteen_fifty.contains(&"Caffè Nero Gift Card (GBP)".to_string()), "whole amounts only");
    // Filters combine (AND).
    let reply = search("&brandName=starbucks&currencies=EUR&amount=15.00&countries=AT".into()).await;
    assert_eq!(reward_names(reply.assert_status(200)), ["Starbucks €15 Gift Card"]);
    let reply = search("&brandName=costa&currencies=GBP&amount=10&showInactive=true".into()).await;
    assert_eq!(reward_names(reply.assert_status(200)), ["Costa Coffee Gift Card (GBP)", "Costa Coffee £10 Gift Card"]);
    let reply = search("&brandName=costa&currencies=GBP&amount=10".into()).await;
    assert_eq!(reward_names(reply.assert_status(200)), ["Costa Coffee Gift Card (GBP)"]);

    // Bad parameters: one problem each, with the parameter as the field.
    let refusals: &[(&str, &[(&str, &str)])] = &[
        ("&countries=XX", &[("INVALID_COUNTRY", "countries")]),
        ("&currencies=EUR,ABC", &[("INVALID_CURRENCY", "currencies")]),
        ("&amount=abc", &[("INVALID_AMOUNT", "amount")]),
        ("&amount=-1", &[("INVALID_AMOUNT", "amount")]),
        ("&amount=0", &[("INVALID_AMOUNT", "amount")]),
        ("&amount=1.234", &[("INVALID_AMOUNT_PRECISION", "amount")]),
        ("&showInactive=maybe", &[("INVALID_SHOW_INACTIVE", "showInactive")]),
        (
            "&countries=XX&currencies=YY&amount=z",
            &[("INVALID_COUNTRY", "countries"), ("INVALID_CURRENCY", "currencies"), ("INVALID_AMOUNT", "amount")],
        ),
    ];
    for (query, expected) in refusals {
        assert_problems(&search(query.to_string()).await, expected);
    }
    let reply = ctx.get("/v1/catalog/search?appId=nope").await;
    assert_problems(&reply, &[("APP_NOT_FOUND", "appId")]);
    let reply = ctx.get("/v1/catalog/search?appId=sandbox-bank").await;
    assert_problems(&reply, &[("APP_NOT_FOUND", "appId")]);
    let reply = ctx.get("/v1/catalog/search?appId=SANDBOX-CARD").await;
    assert_problems(&reply, &[("NOT_A_REWARD_APP", "appId")]);
}

#[tokio::test]
async fn icons_and_images_are_served_without_a_token() {
    let ctx = setup().await;
    ctx.install("sandbox-rewards").await;
    let mut urls: BTreeSet<String> = BTreeSet::new();
    for app in ctx.get("/v1/marketplace/apps").await.assert_status(200).as_array().unwrap() {
        urls.insert(app["iconUrl"].as_str().unwrap().to_string());
        for m in app["supportedPaymentMethods"].as_array().unwrap() {
            urls.insert(m["iconUrl"].as_str().unwrap().to_string());
        }
    }
    for reward in ctx.full_catalog().await {
        urls.insert(reward["imageUrl"].as_str().unwrap().to_string());
        for image in reward["brand"]["imageUrls"].as_array().unwrap() {
            urls.insert(image["url"].as_str().unwrap().to_string());
        }
    }
    assert!(urls.len() > 30, "{urls:?}");
    for url in &urls {
        assert!(url.starts_with("/assets/") && url.ends_with(".svg"), "{url}");
        let reply = ctx.app.send(Method::GET, url, None, &[], None).await;
        assert_eq!(reply.status, 200, "{url}: {}", reply.text);
        assert_eq!(reply.header("content-type"), Some("image/svg+xml"), "{url}");
        assert!(reply.text.starts_with("<svg") && reply.text.trim_end().ends_with("</svg>"), "{url}");
        assert!(!reply.text.contains("http://") || reply.text.contains("http://www.w3.org/2000/svg"), "{url}");
    }
    // Other spellings of ids work; unknown files are 404 in the error envelope.
    for url in [
        "/assets/apps/SANDBOX_CARD.svg",
        "/assets/apps/sandbox-rewards",
        "/assets/payment-methods/AMERICAN_EXPRESS.svg",
    ] {
        assert_eq!(ctx.app.send(Method::GET, url, None, &[], None).await.status, 200, "{url}");
    }
    for url in [
        "/assets/apps/nope.svg",
        "/assets/payment-methods/bitcoin.svg",
        "/assets/rewards/nope.svg",
        "/assets/apps/%20.svg",
    ] {
        ctx.app.send(Method::GET, url, None, &[], None).await.assert_error(404, "ASSET_NOT_FOUND");
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_apps_groups_and_accounts() {
    let a = setup().await;
    a.install("sandbox-card").await;
    a.install("sandbox-rewards").await;
    a.post("/v1/apps/installed/sandbox-card/configuration", &json!({ "merchantName": "A" })).await.assert_status(200);
    a.post_empty("/v1/apps/installed/sandbox-rewards/account").await.assert_status(200);
    let reward = a.reward_id("Amazon.de Gift Card (EUR)").await;
    let reply = a.post("/v1/reward-groups", &json!({ "name": "Shared name", "rewards": [reward] })).await;
    let group = reply.assert_status(201)["rewardGroupId"].as_str().unwrap().to_string();

    let b_tenant = a.app.create_tenant(&a.admin, "Tenant B").await;
    let b = Ctx {
        token: tenant_token(&a.app, &a.admin, &b_tenant, &["tenant-admin"]).await,
        tenant: b_tenant,
        admin: a.admin.clone(),
        app: copy_app(&a.app),
    };
    assert!(b.installed().await.is_empty());
    let flags: Vec<Value> = b
        .get("/v1/marketplace/apps")
        .await
        .assert_status(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["installed"].clone())
        .collect();
    assert_eq!(flags, [false, false, false, false]);
    b.get("/v1/apps/installed/sandbox-card").await.assert_error(404, "APP_NOT_INSTALLED");
    b.post("/v1/apps/installed/sandbox-card/configuration", &json!({})).await.assert_error(404, "APP_NOT_INSTALLED");
    b.post_empty("/v1/apps/installed/sandbox-card/uninstall").await.assert_error(404, "APP_NOT_INSTALLED");
    b.get("/v1/apps/installed/sandbox-rewards/account").await.assert_error(404, "APP_NOT_INSTALLED");
    assert!(b.groups().await.is_empty());
    let path = format!("/v1/reward-groups/{group}");
    b.get(&path).await.assert_error(404, "REWARD_GROUP_NOT_FOUND");
    b.app.put(&path, &b.token, &json!({ "name": "Taken over" })).await.assert_error(404, "REWARD_GROUP_NOT_FOUND");
    b.app.delete(&path, &b.token).await.assert_error(404, "REWARD_GROUP_NOT_FOUND");
    assert_eq!(b.get("/v1/catalog").await.assert_status(200), &json!({ "rewards": [] }));
    b.get("/v1/catalog/search?appId=sandbox-rewards").await.assert_error(400, "APP_NOT_FOUND");
    let reply = b.post("/v1/reward-groups", &json!({ "name": "Shared name", "rewards": [reward] })).await;
    assert_problems(&reply, &[("REWARD_NOT_FOUND", "rewards[0]")]);

    // B installs the same apps independently; names are unique per tenant only.
    b.install("sandbox-rewards").await;
    b.post_empty("/v1/apps/installed/sandbox-rewards/account").await.assert_status(200);
    b.post("/v1/reward-groups", &json!({ "name": "Shared name", "rewards": [reward] })).await.assert_status(201);
    b.post_empty("/v1/apps/installed/sandbox-rewards/uninstall").await.assert_status(200);

    // A's things are untouched.
    assert_eq!(a.installed().await, [CARD, REWARDS]);
    assert_eq!(a.get("/v1/apps/installed/sandbox-card").await.assert_status(200)["configuration"]["merchantName"], "A");
    assert_eq!(a.get(&path).await.assert_status(200)["name"], "Shared name");
    assert_eq!(a.get("/v1/catalog").await.assert_status(200)["rewards"].as_array().unwrap().len(), 45);
    assert_eq!(a.groups().await.len(), 1);
}

#[tokio::test]
async fn roles_gate_reads_and_writes() {
    let ctx = setup().await;
    let (app, admin, tenant) = (&ctx.app, &ctx.admin, &ctx.tenant);
    let app_read = tenant_token(app, admin, tenant, &["tenant-app-read"]).await;
    let app_write = tenant_token(app, admin, tenant, &["tenant-app-write"]).await;
    let rg_read = tenant_token(app, admin, tenant, &["tenant-reward-group-read"]).await;
    let rg_write = tenant_token(app, admin, tenant, &["tenant-reward-group-write"]).await;
    let ps_read = tenant_token(app, admin, tenant, &["tenant-payout-scheme-read"]).await;

    app.get("/v1/marketplace/apps", &app_read).await.assert_status(200);
    app.post("/v1/marketplace/apps", &app_read, &json!({})).await.assert_status(200);
    app.post("/v1/marketplace/apps/sandbox-rewards/install", &app_read, &json!({}))
        .await
        .assert_error(403, "ROLE_REQUIRED");
    assert!(ctx.installed().await.is_empty());
    // Write implies read.
    app.post("/v1/marketplace/apps/sandbox-rewards/install", &app_write, &json!({})).await.assert_status(200);
    app.get("/v1/apps/installed", &app_write).await.assert_status(200);
    let reply = app.post("/v1/apps/installed/sandbox-rewards/configuration", &app_read, &json!({})).await;
    reply.assert_error(403, "ROLE_REQUIRED");
    app.post("/v1/apps/installed/sandbox-rewards/account", &app_read, &json!({}))
        .await
        .assert_error(403, "ROLE_REQUIRED");
    app.get("/v1/apps/installed/sandbox-rewards/account", &app_read).await.assert_error(404, "ACCOUNT_NOT_FOUND");

    // Reward groups and the catalog.
    app.get("/v1/reward-groups", &app_read).await.assert_error(403, "ROLE_REQUIRED");
    app.get("/v1/reward-groups", &rg_read).await.assert_status(200);
    let reward = ctx.reward_id("Amazon.de Gift Card (EUR)").await;
    let body = json!({ "name": "G", "rewards": [reward] });
    app.post("/v1/reward-groups", &rg_read, &body).await.assert_error(403, "ROLE_REQUIRED");
    app.post("/v1/reward-groups", &rg_write, &body).await.assert_status(201);
    for token in [&rg_read, &ps_read] {
        app.get("/v1/catalog", token).await.assert_status(200);
        app.get("/v1/catalog/search?appId=sandbox-rewards", token).await.assert_status(200);
    }
    app.get("/v1/catalog", &app_read).await.assert_error(403, "ROLE_REQUIRED");
    app.get("/v1/marketplace/apps", &rg_write).await.assert_error(403, "ROLE_REQUIRED");

    // Tenant objects need a tenant token.
    let headers = [("x-tenant-id", tenant.as_str())];
    let reply = app.send(Method::GET, "/v1/apps/installed", Some(admin), &headers, None).await;
    reply.assert_error(403, "TENANT_KEY_REQUIRED");
    app.get("/v1/marketplace/apps", admin).await.assert_error(400, "TENANT_ID_IS_REQUIRED");
}
