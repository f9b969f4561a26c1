//! The EXT listings (`GET /v1/order-management`, `GET /v1/instructions`) end to end:
//! effective values identical to the single reads, every filter, keyset pagination with
//! inserts between pages, the 400 codes with their fields, roles and tenant isolation.
//! On SQLite by default, on PostgreSQL when `BATON_TEST_DATABASE_URL` is set.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{instruction, with, KeyPair, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const IBAN: &str = "DE89370400440532013000";

/// A tenant with an admin key, a key holding only `tenant-transaction-read`, SANDBOX_BANK
/// installed and one collect and one payout scheme.
struct Fx {
    app: TestApp,
    admin: String,
    key: KeyPair,
    token: String,
    reader_key: KeyPair,
    reader: String,
    collect: String,
    payout: String,
}

impl Fx {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, "Listing tenant").await;
        let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
        let token = app.token(&key).await;
        let reader_key = app.create_tenant_key(&admin, &tenant, &["tenant-transaction-read"]).await;
        let reader = app.token(&reader_key).await;
        let reply = app.send(Method::POST, "/v1/marketplace/apps/SANDBOX_BANK/install", Some(&token), &[], None).await;
        reply.assert_status(200);
        let scheme = |name: &str| json!({ "name": name, "rules": [{ "apps": [{ "appId": "SANDBOX_BANK" }] }] });
        let collect = app.post("/v1/schemes/collect", &token, &scheme("Collect")).await;
        let collect = collect.assert_status(201)["schemeId"].as_str().unwrap().to_string();
        let payout = app.post("/v1/schemes/payout", &token, &scheme("Payout")).await;
        let payout = payout.assert_status(201)["schemeId"].as_str().unwrap().to_string();
        Self { app, admin, key, token, reader_key, reader, collect, payout }
    }

    /// Moves the clock on (so creation times differ) and renews the tokens.
    async fn advance(&mut self, by: Duration) {
        self.app.clock.advance(by);
        self.token = self.app.token(&self.key).await;
        self.reader = self.app.token(&self.reader_key).await;
    }

    /// A GET with the read-only key.
    async fn read(&self, path: &str) -> Reply {
        self.app.get(path, &self.reader).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.app.post(path, &self.token, body).await
    }

    async fn fi(&self, customer: &str) -> String {
        let body = json!({ "type": "BANK_ACCOUNT", "details": { "accountHolderName": "Jane Doe", "iban": IBAN } });
        let reply = self.post(&format!("/v1/customer-vault/{customer}/financial-instruments"), &body).await;
        reply.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string()
    }

    /// Creates an order (with instructions or not), 1 ms after the previous one.
    async fn order(&self, body: Value) -> Value {
        self.app.clock.advance(Duration::from_millis(1));
        let reply = self.post("/v1/order-management", &body).await;
        assert!(matches!(reply.status.as_u16(), 201 | 202), "{}", reply.text);
        reply.body.clone()
    }

    /// A page of a listing, as read by the read-only key.
    async fn page(&self, path: &str) -> Value {
        self.read(path).await.assert_status(200).clone()
    }

    /// The instruction refs of `GET /v1/instructions?{query}` (one page of up to 200).
    async fn instruction_refs(&self, query: &str) -> Vec<String> {
        let page = self.page(&format!("/v1/instructions?limit=200&{query}")).await;
        assert_eq!(page["nextCursor"], Value::Null);
        page["items"].as_array().unwrap().iter().map(|i| i["instructionRef"].as_str().unwrap().to_string()).collect()
    }

    /// The order refs of `GET /v1/order-management?{query}` (one page of up to 200).
    async fn order_refs(&self, query: &str) -> Vec<String> {
        let page = self.page(&format!("/v1/order-management?limit=200&{query}")).await;
        assert_eq!(page["nextCursor"], Value::Null);
        page["items"].as_array().unwrap().iter().map(|o| o["orderRef"].as_str().unwrap().to_string()).collect()
    }
}

fn refs(items: &Value, key: &str) -> Vec<String> {
    items.as_array().unwrap().iter().map(|i| i[key].as_str().unwrap().to_string()).collect()
}

/// The `YYYY-MM-DD` (UTC) of an ISO-8601 `createdAt`.
fn day(created_at: &Value) -> String {
    created_at.as_str().unwrap()[..10].to_string()
}

#[tokio::test]
async fn listed_items_carry_the_same_effective_values_as_the_single_reads() {
    let fx = Fx::new().await;
    let fi = fx.fi("C1").await;
    fx.order(json!({
        "orderRef": "A",
        "metadata": { "k": "v" },
        "customerDefaults": { "C1": {
            "financialInstrument": { "financialInstrumentId": fi },
            "scheme": { "schemeId": fx.payout },
            "metadata": { "a": "1", "b": "2" } } },
        "instructions": [
            with(instruction("I1", "C1", "CREDIT"), json!({ "metadata": { "b": "9" } })),
            with(instruction("I2", "C1", "CREDIT"), json!({ "settledByDate": "2021-01-15" })),
        ],
    }))
    .await;
    fx.order(json!({ "orderRef": "B", "instructions": [
        with(instruction("I1", "C2", "DEBIT"), json!({ "schemeId": fx.collect, "currency": "USD" })) ] }))
        .await;
    // A later change of the default reaches the listing exactly as the single read.
    fx.app
        .put("/v1/order-management/A/customer-defaults/C1/metadata", &fx.token, &json!({ "metadata": { "c": "3" } }))
        .await
        .assert_status(200);
    // A voided instruction keeps what it had inherited when it was voided.
    fx.app.delete("/v1/order-management/A/instruction/I2", &fx.token).await.assert_status(200);

    let page = fx.page("/v1/instructions").await;
    assert_eq!(page["nextCursor"], Value::Null);
    let items = page["items"].as_array().unwrap();
    let listed: Vec<(&str, &str)> =
        items.iter().map(|i| (i["orderRef"].as_str().unwrap(), i["instructionRef"].as_str().unwrap())).collect();
    assert_eq!(listed, [("A", "I1"), ("A", "I2"), ("B", "I1")]);
    for item in items {
        let (order_ref, instruction_ref) =
            (item["orderRef"].as_str().unwrap(), item["instructionRef"].as_str().unwrap());
        let single = fx.read(&format!("/v1/order-management/{order_ref}/instruction/{instruction_ref}")).await;
        let mut expected = single.assert_status(200).clone();
        expected["orderRef"] = json!(order_ref);
        assert_eq!(item, &expected);
    }
    assert_eq!(items[0]["status"], "READY");
    assert_eq!(items[0]["metadata"], json!({ "c": "3", "b": "9" }));
    assert_eq!(items[0]["scheme"]["source"], "CUSTOMER_DEFAULT");
    assert_eq!(items[1]["status"], "VOID");
    assert_eq!(items[1]["metadata"], json!({ "c": "3" }));

    // Orders: the single read without `instructions`.
    let page = fx.page("/v1/order-management").await;
    assert_eq!(page["nextCursor"], Value::Null);
    let items = page["items"].as_array().unwrap();
    assert_eq!(refs(&page["items"], "orderRef"), ["A", "B"]);
    for item in items {
        let single = fx.read(&format!("/v1/order-management/{}", item["orderRef"].as_str().unwrap())).await;
        let mut expected = single.assert_status(200).clone();
        expected.as_object_mut().unwrap().remove("instructions");
        assert_eq!(item, &expected);
    }
    assert_eq!(items[0]["customerDefaults"]["C1"]["metadata"], json!({ "c": "3" }));
}

#[tokio::test]
async fn every_filter_narrows_the_listings() {
    let mut fx = Fx::new().await;
    let fi = fx.fi("C1").await;
    fx.order(json!({
        "orderRef": "A",
        "customerDefaults": { "C1": { "financialInstrumentId": fi, "schemeId": fx.payout } },
        "instructions": [ with(instruction("I1", "C1", "CREDIT"), json!({ "settledByDate": "2020-12-31" })) ],
    }))
    .await;
    fx.order(json!({ "orderRef": "B", "instructions": [
        with(instruction("I2", "C2", "DEBIT"), json!({ "currency": "USD", "settledByDate": "2021-01-15" })),
        instruction("I3", "C1", "DEBIT") ] }))
        .await;
    fx.app.delete("/v1/order-management/B/instruction/I3", &fx.token).await.assert_status(200);
    fx.order(json!({ "orderRef": "D", "customerDefaults": { "C7": {} } })).await;
    let first_day = day(&fx.page("/v1/instructions?limit=1").await["items"][0]["createdAt"]);
    // Two days later (UTC days): a third order.
    fx.advance(Duration::from_secs(2 * 86_400)).await;
    let later = fx.order(json!({ "orderRef": "E", "instructions": [ instruction("I4", "C3", "CREDIT") ] })).await;
    let later_day = day(&later["createdAt"]);
    assert!(later_day > first_day);

    assert_eq!(fx.instruction_refs("").await, ["I1", "I2", "I3", "I4"]);
    // Statuses: a comma-separated list, any case, and repeated parameters add up.
    assert_eq!(fx.instruction_refs("status=READY").await, ["I1"]);
    assert_eq!(fx.instruction_refs("status=ready,%20void").await, ["I1", "I3"]);
    assert_eq!(fx.instruction_refs("status=VOID&status=INCOMPLETE").await, ["I2", "I3", "I4"]);
    assert!(fx.instruction_refs("status=SETTLED").await.is_empty());
    assert_eq!(fx.instruction_refs("customerRef=C1").await, ["I1", "I3"]);
    assert!(fx.instruction_refs("customerRef=C7").await.is_empty());
    assert_eq!(fx.instruction_refs("direction=debit").await, ["I2", "I3"]);
    assert_eq!(fx.instruction_refs("direction=CREDIT").await, ["I1", "I4"]);
    assert_eq!(fx.instruction_refs("currency=usd").await, ["I2"]);
    assert_eq!(fx.instruction_refs("currency=EUR").await, ["I1", "I3", "I4"]);
    // Settle-by days are inclusive; instructions without one never match a bound.
    assert_eq!(fx.instruction_refs("settledByFrom=2021-01-01").await, ["I2"]);
    assert_eq!(fx.instruction_refs("settledByTo=2020-12-31").await, ["I1"]);
    assert_eq!(fx.instruction_refs("settledByFrom=2020-12-31&settledByTo=2021-01-15").await, ["I1", "I2"]);
    assert!(fx.instruction_refs("settledByFrom=2021-01-16").await.is_empty());
    // Creation days are inclusive UTC days.
    assert_eq!(fx.instruction_refs(&format!("createdTo={first_day}")).await, ["I1", "I2", "I3"]);
    assert_eq!(fx.instruction_refs(&format!("createdFrom={later_day}")).await, ["I4"]);
    assert_eq!(fx.instruction_refs(&format!("createdFrom={later_day}&createdTo={later_day}")).await, ["I4"]);
    assert_eq!(
        fx.instruction_refs(&format!("createdFrom={first_day}&createdTo={later_day}")).await,
        ["I1", "I2", "I3", "I4"]
    );
    // Filters combine.
    assert_eq!(fx.instruction_refs("customerRef=C1&direction=DEBIT&status=VOID").await, ["I3"]);
    assert!(fx.instruction_refs("customerRef=C1&currency=USD").await.is_empty());

    // Orders: `customerRef` matches instructions or customer defaults; creation days.
    assert_eq!(fx.order_refs("").await, ["A", "B", "D", "E"]);
    assert_eq!(fx.order_refs("customerRef=C1").await, ["A", "B"]);
    assert_eq!(fx.order_refs("customerRef=C2").await, ["B"]);
    assert_eq!(fx.order_refs("customerRef=C7").await, ["D"], "a customer default alone counts");
    assert!(fx.order_refs("customerRef=C9").await.is_empty());
    assert_eq!(fx.order_refs(&format!("createdFrom={later_day}")).await, ["E"]);
    assert_eq!(fx.order_refs(&format!("createdTo={first_day}")).await, ["A", "B", "D"]);
    // Instruction filters do not apply to orders.
    assert_eq!(fx.order_refs("status=VOID").await, ["A", "B", "D", "E"]);
}

/// Walks a listing `limit` at a time, calling `between` after each page; returns every
/// ref seen, in order, and checks that only the last page has no `nextCursor`.
async fn walk(fx: &Fx, path: &str, key: &str, limit: usize, mut between: impl AsyncFnMut(usize)) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 1.. {
        let query = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = fx.page(&query).await;
        let items = refs(&page["items"], key);
        assert!(items.len() <= limit);
        seen.extend(items.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "a page before the last one is full");
                cursor = Some(next.to_string());
            }
            None => break,
        }
        between(round).await;
        assert!(round < 50, "the walk ends");
    }
    seen
}

#[tokio::test]
async fn pages_neither_repeat_nor_skip_rows_while_new_ones_arrive() {
    let fx = Fx::new().await;
    for k in 0..7 {
        fx.order(
            json!({ "orderRef": format!("O{k}"), "instructions": [ instruction(&format!("I{k}"), "C1", "DEBIT") ] }),
        )
        .await;
    }
    let originals: Vec<String> = (0..7).map(|k| format!("I{k}")).collect();
    let seen = walk(&fx, "/v1/instructions", "instructionRef", 3, async |round| {
        if round <= 2 {
            fx.order(json!({ "orderRef": format!("N{round}"),
                "instructions": [ instruction(&format!("N{round}"), "C1", "CREDIT") ] }))
                .await;
        }
    })
    .await;
    // The rows that existed came first, once each and in order; the new ones after.
    assert_eq!(seen[..7], originals[..], "{seen:?}");
    assert_eq!(seen[7..], ["N1", "N2"], "{seen:?}");

    // Orders: 9 now; pages of 3 end exactly on the last one (nextCursor null there).
    let seen = walk(&fx, "/v1/order-management", "orderRef", 3, async |_| {}).await;
    assert_eq!(seen, ["O0", "O1", "O2", "O3", "O4", "O5", "O6", "N1", "N2"]);
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
    let page = fx.page("/v1/order-management?limit=3").await;
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    let last = fx.page(&format!("/v1/order-management?limit=6&cursor={cursor}")).await;
    assert_eq!(refs(&last["items"], "orderRef"), ["O3", "O4", "O5", "O6", "N1", "N2"]);
    assert_eq!(last["nextCursor"], Value::Null);

    // Filters hold across pages; the default page is 50, the largest 200.
    let page = fx.page("/v1/instructions?direction=DEBIT&limit=4").await;
    assert_eq!(refs(&page["items"], "instructionRef"), ["I0", "I1", "I2", "I3"]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = fx.page(&format!("/v1/instructions?direction=DEBIT&limit=4&cursor={cursor}")).await;
    assert_eq!(refs(&rest["items"], "instructionRef"), ["I4", "I5", "I6"]);
    assert_eq!(rest["nextCursor"], Value::Null);
    assert_eq!(fx.page("/v1/instructions").await["items"].as_array().unwrap().len(), 9);
    assert_eq!(fx.page("/v1/instructions?limit=200").await["items"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn invalid_parameters_are_refused_with_their_code_and_field() {
    let fx = Fx::new().await;
    fx.order(json!({ "orderRef": "A", "instructions": [ instruction("I1", "C1", "DEBIT") ] })).await;
    fx.order(json!({ "orderRef": "B", "instructions": [ instruction("I2", "C1", "DEBIT") ] })).await;
    let order_cursor = fx.page("/v1/order-management?limit=1").await["nextCursor"].as_str().unwrap().to_string();
    let instruction_cursor = fx.page("/v1/instructions?limit=1").await["nextCursor"].as_str().unwrap().to_string();
    let forged = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("i:abc:0190")
    };

    let cases: Vec<(&str, &str, &str)> = vec![
        ("status=DONE", "INVALID_INSTRUCTION_STATUS", "status"),
        ("status=READY,DONE", "INVALID_INSTRUCTION_STATUS", "status"),
        ("direction=UP", "INVALID_DIRECTION", "direction"),
        ("currency=XXX", "INVALID_CURRENCY", "currency"),
        ("createdFrom=2021-13-01", "INVALID_DATE", "createdFrom"),
        ("createdTo=yesterday", "INVALID_DATE", "createdTo"),
        ("settledByFrom=2021-1-1", "INVALID_DATE", "settledByFrom"),
        ("settledByTo=2021-02-30", "INVALID_DATE", "settledByTo"),
        ("limit=0", "INVALID_LIMIT", "limit"),
        ("limit=201", "INVALID_LIMIT", "limit"),
        ("limit=-1", "INVALID_LIMIT", "limit"),
        ("limit=ten", "INVALID_LIMIT", "limit"),
        ("cursor=not-a-cursor!", "INVALID_CURSOR", "cursor"),
        ("cursor=bm9wZQ", "INVALID_CURSOR", "cursor"),
        ("customerRef=bad%20ref", "INVALID_CUSTOMER_REF", "customerRef"),
    ];
    let forged_case = format!("cursor={forged}");
    let foreign_case = format!("cursor={order_cursor}");
    let cases = cases.into_iter().chain([
        (forged_case.as_str(), "INVALID_CURSOR", "cursor"),
        (foreign_case.as_str(), "INVALID_CURSOR", "cursor"),
    ]);
    for (query, code, field) in cases {
        let reply = fx.read(&format!("/v1/instructions?{query}")).await;
        reply.assert_error(400, code);
        assert_eq!(reply.codes(), [(code.to_string(), field.to_string())], "{query}: {}", reply.text);
    }
    // Every problem is reported at once.
    let reply = fx.read("/v1/instructions?status=X&direction=Y&limit=0").await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    let all: BTreeSet<_> = reply.codes().into_iter().collect();
    let expected: BTreeSet<_> =
        [("INVALID_INSTRUCTION_STATUS", "status"), ("INVALID_DIRECTION", "direction"), ("INVALID_LIMIT", "limit")]
            .iter()
            .map(|(c, f)| (c.to_string(), f.to_string()))
            .collect();
    assert_eq!(all, expected);

    let order_cases = [
        ("createdFrom=2021-02-29".to_string(), "INVALID_DATE", "createdFrom"),
        ("createdTo=2021/01/01".to_string(), "INVALID_DATE", "createdTo"),
        ("limit=1000".to_string(), "INVALID_LIMIT", "limit"),
        ("cursor=%25%25".to_string(), "INVALID_CURSOR", "cursor"),
        (format!("cursor={instruction_cursor}"), "INVALID_CURSOR", "cursor"),
        ("customerRef=bad%20ref".to_string(), "INVALID_CUSTOMER_REF", "customerRef"),
    ];
    for (query, code, field) in order_cases {
        let reply = fx.read(&format!("/v1/order-management?{query}")).await;
        reply.assert_error(400, code);
        assert_eq!(reply.codes(), [(code.to_string(), field.to_string())], "{query}: {}", reply.text);
    }
    // Blank values are no filter.
    assert_eq!(fx.instruction_refs("status=&customerRef=&limit=&cursor=").await, ["I1", "I2"]);
}

#[tokio::test]
async fn each_tenant_lists_only_its_own_and_the_role_is_required() {
    let fx = Fx::new().await;
    fx.order(json!({ "orderRef": "A", "customerDefaults": { "C1": {} },
        "instructions": [ instruction("I1", "C1", "DEBIT"), instruction("I2", "C1", "DEBIT") ] }))
        .await;
    let other = fx.app.create_tenant(&fx.admin, "Other tenant").await;
    let other_key = fx.app.create_tenant_key(&fx.admin, &other, &["tenant-admin"]).await;
    let other_token = fx.app.token(&other_key).await;
    let get = |path: &str| {
        let (app, token) = (&fx.app, other_token.clone());
        let path = path.to_string();
        async move { app.get(&path, &token).await.assert_status(200).clone() }
    };
    // Nothing of the first tenant, whatever the filters.
    assert_eq!(get("/v1/instructions").await, json!({ "items": [], "nextCursor": null }));
    assert_eq!(get("/v1/order-management").await, json!({ "items": [], "nextCursor": null }));
    assert_eq!(get("/v1/instructions?customerRef=C1").await["items"], json!([]));
    assert_eq!(get("/v1/order-management?customerRef=C1").await["items"], json!([]));

    // The same refs in the other tenant: each sees only its own rows, even with the
    // other's cursor (a cursor is only a position).
    fx.app.clock.advance(Duration::from_millis(1));
    let body = json!({ "orderRef": "A", "instructions": [ instruction("I1", "C1", "CREDIT") ] });
    fx.app.post("/v1/order-management", &other_token, &body).await.assert_status(202);
    let mine = fx.page("/v1/instructions").await;
    assert_eq!(refs(&mine["items"], "instructionRef"), ["I1", "I2"]);
    assert!(mine["items"].as_array().unwrap().iter().all(|i| i["direction"] == "DEBIT"));
    let theirs = get("/v1/instructions").await;
    assert_eq!(refs(&theirs["items"], "instructionRef"), ["I1"]);
    assert_eq!(theirs["items"][0]["direction"], "CREDIT");
    let cursor = fx.page("/v1/instructions?limit=1").await["nextCursor"].as_str().unwrap().to_string();
    let with_foreign_cursor = get(&format!("/v1/instructions?cursor={cursor}")).await;
    assert_eq!(refs(&with_foreign_cursor["items"], "instructionRef"), ["I1"]);
    assert_eq!(with_foreign_cursor["items"][0]["direction"], "CREDIT");
    assert_eq!(refs(&get("/v1/order-management").await["items"], "orderRef"), ["A"]);
    assert_eq!(fx.order_refs("").await, ["A"]);

    // `tenant-transaction-read` alone is enough; a tenant key without it is refused.
    let app_reader = fx.app.create_tenant_key(&fx.admin, &other, &["tenant-app-read"]).await;
    let app_reader = fx.app.token(&app_reader).await;
    for path in ["/v1/instructions", "/v1/order-management"] {
        fx.read(path).await.assert_status(200);
        fx.app.get(path, &app_reader).await.assert_error(403, "ROLE_REQUIRED");
        let unauthenticated = fx.app.send(Method::GET, path, None, &[], None).await;
        assert_eq!(unauthenticated.status.as_u16(), 401);
    }
}
