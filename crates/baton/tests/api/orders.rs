//! Order management (SPEC §4.9) end to end: the orders tutorial's exact bodies (seed
//! 003), 201 vs 202, all-or-nothing creation, duplicates, validation, the inheritance
//! table with metadata merging, customer-default changes, the status machine (READY,
//! update rules, VOID) and tenant isolation. On SQLite by default, on PostgreSQL when
//! `BATON_TEST_DATABASE_URL` is set.

use crate::common;

use common::{instruction, with, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const IBAN: &str = "DE89370400440532013000";

/// A tenant with an admin token, SANDBOX_BANK installed, one collect and one payout scheme.
struct Fx {
    app: TestApp,
    admin: String,
    tenant: String,
    token: String,
    collect: String,
    payout: String,
}

impl Fx {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, "Orders tenant").await;
        let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
        let token = app.token(&key).await;
        let reply = app.send(Method::POST, "/v1/marketplace/apps/SANDBOX_BANK/install", Some(&token), &[], None).await;
        reply.assert_status(200);
        let scheme = |name: &str| json!({ "name": name, "rules": [{ "apps": [{ "appId": "SANDBOX_BANK" }] }] });
        let collect = app.post("/v1/schemes/collect", &token, &scheme("Collect")).await;
        let collect = collect.assert_status(201)["schemeId"].as_str().unwrap().to_string();
        let payout = app.post("/v1/schemes/payout", &token, &scheme("Payout")).await;
        let payout = payout.assert_status(201)["schemeId"].as_str().unwrap().to_string();
        Self { app, admin, tenant, token, collect, payout }
    }

    async fn get(&self, path: &str) -> Reply {
        self.app.get(path, &self.token).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.app.post(path, &self.token, body).await
    }

    async fn put(&self, path: &str, body: &Value) -> Reply {
        self.app.put(path, &self.token, body).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.app.delete(path, &self.token).await
    }

    /// Stores an ACTIVE bank account for `customer` and returns its id.
    async fn fi(&self, customer: &str) -> String {
        let body = json!({ "type": "BANK_ACCOUNT", "details": { "accountHolderName": "Jane Doe", "iban": IBAN } });
        let reply = self.post(&format!("/v1/customer-vault/{customer}/financial-instruments"), &body).await;
        reply.assert_status(201)["financialInstrumentId"].as_str().unwrap().to_string()
    }

    async fn order(&self, order_ref: &str) -> Value {
        self.get(&format!("/v1/order-management/{order_ref}")).await.assert_status(200).clone()
    }

    async fn instruction(&self, order_ref: &str, instruction_ref: &str) -> Value {
        let path = format!("/v1/order-management/{order_ref}/instruction/{instruction_ref}");
        self.get(&path).await.assert_status(200).clone()
    }
}

#[tokio::test]
async fn the_tutorial_bodies_work_and_an_instruction_becomes_ready() {
    let fx = Fx::new().await;
    // Step 1, exactly as documented: 201 Created.
    let reply = fx
        .app
        .post_raw(
            "/v1/order-management",
            &[("authorization", &format!("Bearer {}", fx.token)), ("content-type", "application/json")],
            "{\n\"orderRef\": \"REF1\",\n\"instructions\": [],\n\"metadata\": {\n\"someInternalRef2\": \"another-internal-ref\"\n},\n\"customerDefaults\": {\n}\n}",
        )
        .await;
    let order = reply.assert_status(201).clone();
    assert_eq!(reply.header("location"), Some("/v1/order-management/REF1"));
    assert_eq!(
        order,
        json!({ "orderRef": "REF1", "metadata": { "someInternalRef2": "another-internal-ref" },
                "customerDefaults": {}, "instructions": [], "createdAt": order["createdAt"] })
    );

    // Step 2, the documented body (its missing comma restored), with a real payout scheme.
    let body = format!(
        "{{\n\"instructionRef\": \"I01\",\n\"customerRef\": \"C01\",\n\"direction\": \"CREDIT\",\n\
         \"FinancialInstrumentId\": \"\",\n\"amount\": \"210.00\",\n\"currency\": \"EUR\",\n\"country\": \"DE\",\n\
         \"settledByDate\": \"2020-12-31\",\n\"scheme\": \"{}\",\n\"metadata\": []\n}}",
        fx.payout
    );
    let reply = fx
        .app
        .post_raw(
            "/v1/order-management/REF1/instruction",
            &[("authorization", &format!("Bearer {}", fx.token)), ("content-type", "application/json")],
            body,
        )
        .await;
    let created = reply.assert_status(201).clone();
    assert_eq!(reply.header("location"), Some("/v1/order-management/REF1/instruction/I01"));
    assert_eq!(
        created,
        json!({
            "instructionRef": "I01", "direction": "CREDIT", "status": "INCOMPLETE", "customerRef": "C01",
            "financialInstrument": { "financialInstrumentId": "", "source": "NONE", "canUpdate": true },
            "amount": 210, "currency": "EUR", "country": "DE", "settledByDate": "2020-12-31T00:00:00.000Z",
            "scheme": { "schemeId": fx.payout, "source": "TENANT", "canUpdate": true },
            "metadata": {}, "createdAt": created["createdAt"]
        })
    );
    assert_eq!(fx.instruction("REF1", "I01").await, created);
    assert_eq!(fx.order("REF1").await["instructions"], json!([created]));

    // Attaching an ACTIVE FI of the customer makes it READY; `schemeId` and `UK` work too.
    let fi = fx.fi("C01").await;
    let update = json!({ "customerRef": "C01", "direction": "CREDIT", "financialInstrumentId": fi.to_uppercase(),
        "amount": 210.5, "currency": "eur", "country": "UK", "schemeId": fx.payout, "settledByDate": "2021-01-02" });
    let updated = fx.put("/v1/order-management/REF1/instruction/I01", &update).await.assert_status(200).clone();
    assert_eq!(updated["status"], "READY");
    assert_eq!(
        updated["financialInstrument"],
        json!({ "financialInstrumentId": fi, "source": "TENANT", "canUpdate": true })
    );
    assert_eq!((updated["amount"].clone(), updated["country"].clone()), (json!(210.5), json!("GB")));
    assert_eq!(updated["currency"], "EUR");
    assert_eq!(updated["settledByDate"], "2021-01-02T00:00:00.000Z");

    // Clearing the FI (`""` is null) moves it back to INCOMPLETE.
    let cleared = fx
        .put("/v1/order-management/REF1/instruction/I01", &with(update, json!({ "financialInstrumentId": "" })))
        .await;
    assert_eq!(cleared.assert_status(200)["status"], "INCOMPLETE");
}

#[tokio::test]
async fn creation_with_instructions_is_accepted_and_all_or_nothing() {
    let fx = Fx::new().await;
    let fi = fx.fi("C1").await;
    let good = with(instruction("I1", "C1", "DEBIT"), json!({ "schemeId": fx.collect, "financialInstrumentId": fi }));
    let bad = with(instruction("I2", "C1", "DEBIT"), json!({ "amount": "-1" }));

    // One bad instruction: 400 with its field, nothing stored.
    let reply = fx.post("/v1/order-management", &json!({ "orderRef": "O1", "instructions": [good, bad] })).await;
    reply.assert_error(400, "INVALID_AMOUNT");
    assert_eq!(reply.codes(), [("INVALID_AMOUNT".to_string(), "instructions[1].amount".to_string())]);
    fx.get("/v1/order-management/O1").await.assert_error(404, "ORDER_NOT_FOUND");

    // Duplicate refs inside the request: 409, nothing stored.
    let reply = fx.post("/v1/order-management", &json!({ "orderRef": "O1", "instructions": [good, good] })).await;
    reply.assert_error(409, "INSTRUCTION_REF_ALREADY_EXISTS");
    fx.get("/v1/order-management/O1").await.assert_error(404, "ORDER_NOT_FOUND");

    // All valid: 202 with a Location, everything readable at once.
    let second = instruction("I2", "C1", "CREDIT");
    let reply = fx
        .post(
            "/v1/order-management",
            &json!({ "orderRef": "O1", "instructions": [good, second], "metadata": { "k": "v" } }),
        )
        .await;
    let order = reply.assert_status(202).clone();
    assert_eq!(reply.header("location"), Some("/v1/order-management/O1"));
    let statuses: Vec<_> = order["instructions"].as_array().unwrap().iter().map(|i| i["status"].clone()).collect();
    assert_eq!(statuses, [json!("READY"), json!("INCOMPLETE")]);
    assert_eq!(fx.order("O1").await, order);

    // Duplicates: the order ref per tenant, the instruction ref per order.
    fx.post("/v1/order-management", &json!({ "orderRef": "O1" })).await.assert_error(409, "ORDER_REF_ALREADY_EXISTS");
    fx.post("/v1/order-management/O1/instruction", &instruction("I1", "C1", "DEBIT"))
        .await
        .assert_error(409, "INSTRUCTION_REF_ALREADY_EXISTS");
    // The same instruction ref in another order is fine.
    fx.post("/v1/order-management", &json!({ "orderRef": "O2" })).await.assert_status(201);
    fx.post("/v1/order-management/O2/instruction", &instruction("I1", "C1", "DEBIT")).await.assert_status(201);
}

#[tokio::test]
async fn every_validation_code_stores_nothing() {
    let fx = Fx::new().await;
    fx.post("/v1/order-management", &json!({ "orderRef": "O1" })).await.assert_status(201);
    let fi = fx.fi("C1").await;
    let other_customers = fx.fi("C2").await;
    let inactive = fx.fi("C1").await;
    fx.put(
        &format!("/v1/customer-vault/C1/financial-instruments/{inactive}/state"),
        &json!({ "state": "INACTIVE", "reason": "EXPIRED" }),
    )
    .await
    .assert_status(200);
    let base = instruction("I1", "C1", "DEBIT");
    let ghost = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(base.clone(), json!({ "instructionRef": "" })), "INSTRUCTION_REF_REQUIRED", "instructionRef"),
        (with(base.clone(), json!({ "instructionRef": "bad ref" })), "INVALID_INSTRUCTION_REF", "instructionRef"),
        (with(base.clone(), json!({ "customerRef": null })), "CUSTOMER_REF_REQUIRED", "customerRef"),
        (with(base.clone(), json!({ "direction": "SIDEWAYS" })), "INVALID_DIRECTION", "direction"),
        (with(base.clone(), json!({ "direction": "" })), "FIELD_REQUIRED", "direction"),
        (with(base.clone(), json!({ "amount": "0" })), "INVALID_AMOUNT", "amount"),
        (with(base.clone(), json!({ "amount": -5 })), "INVALID_AMOUNT", "amount"),
        (with(base.clone(), json!({ "amount": "ten" })), "INVALID_AMOUNT", "amount"),
        (with(base.clone(), json!({ "amount": "1.234" })), "INVALID_AMOUNT_PRECISION", "amount"),
        (with(base.clone(), json!({ "amount": null })), "FIELD_REQUIRED", "amount"),
        (with(base.clone(), json!({ "currency": "XXX" })), "INVALID_CURRENCY", "currency"),
        (with(base.clone(), json!({ "country": "ZZ" })), "INVALID_COUNTRY", "country"),
        (with(base.clone(), json!({ "settledByDate": "31/12/2020" })), "INVALID_DATE", "settledByDate"),
        (with(base.clone(), json!({ "schemeId": ghost })), "SCHEME_NOT_FOUND", "schemeId"),
        (with(base.clone(), json!({ "schemeId": fx.payout })), "SCHEME_DIRECTION_MISMATCH", "schemeId"),
        (
            with(base.clone(), json!({ "direction": "CREDIT", "scheme": fx.collect })),
            "SCHEME_DIRECTION_MISMATCH",
            "schemeId",
        ),
        (
            with(base.clone(), json!({ "financialInstrumentId": ghost })),
            "FINANCIAL_INSTRUMENT_NOT_FOUND",
            "financialInstrumentId",
        ),
        (
            with(base.clone(), json!({ "financialInstrumentId": other_customers })),
            "FINANCIAL_INSTRUMENT_NOT_FOUND",
            "financialInstrumentId",
        ),
        (
            with(base.clone(), json!({ "financialInstrumentId": inactive })),
            "FINANCIAL_INSTRUMENT_NOT_ACTIVE",
            "financialInstrumentId",
        ),
        (with(base.clone(), json!({ "metadata": { "k": 1 } })), "INVALID_METADATA", "metadata"),
        (with(base.clone(), json!({ "metadata": { "k".repeat(41): "v" } })), "METADATA_LIMIT_EXCEEDED", "metadata"),
        // Control characters: none in a key; none but line breaks and tabs in a value.
        (with(base.clone(), json!({ "metadata": { "k\u{1b}": "v" } })), "INVALID_METADATA", "metadata"),
        (with(base.clone(), json!({ "metadata": { "k\n": "v" } })), "INVALID_METADATA", "metadata"),
        (with(base.clone(), json!({ "metadata": { "k": "v\u{1b}[2J" } })), "INVALID_METADATA", "metadata"),
        (with(base.clone(), json!({ "metadata": { "k": "v\u{85}" } })), "INVALID_METADATA", "metadata"),
        (with(base.clone(), json!({ "metadata": { "k": "a\u{0}b" } })), "CONTROL_CHARACTER_NOT_ALLOWED", "metadata.k"),
    ];
    for (body, code, field) in cases {
        let reply = fx.post("/v1/order-management/O1/instruction", &body).await;
        reply.assert_error(400, code);
        assert!(reply.codes().contains(&(code.to_string(), field.to_string())), "{code}: {}", reply.text);
    }
    let many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    fx.post("/v1/order-management", &json!({ "orderRef": "O2", "metadata": many }))
        .await
        .assert_error(400, "METADATA_LIMIT_EXCEEDED");
    fx.post("/v1/order-management", &json!({ "orderRef": "" })).await.assert_error(400, "ORDER_REF_REQUIRED");
    fx.put("/v1/order-management/O1/metadata", &json!({ "metadata": { "v": "x".repeat(501) } }))
        .await
        .assert_error(400, "METADATA_LIMIT_EXCEEDED");
    fx.put("/v1/order-management/O1/metadata", &json!({ "metadata": { "v": "a\u{7}" } }))
        .await
        .assert_error(400, "INVALID_METADATA");
    assert_eq!(fx.order("O1").await["instructions"], json!([]));
    assert_eq!(fx.order("O1").await["metadata"], json!({}));
    // Multi-line values are kept as they are.
    let reply = fx.put("/v1/order-management/O1/metadata", &json!({ "metadata": { "note": "two\nlines\tok" } })).await;
    assert_eq!(reply.assert_status(200)["metadata"]["note"], "two\nlines\tok");
    fx.delete("/v1/order-management/O1/metadata").await;
    fx.get("/v1/order-management/O2").await.assert_error(404, "ORDER_NOT_FOUND");
    // The valid instruction goes through.
    fx.post("/v1/order-management/O1/instruction", &with(base, json!({ "financialInstrumentId": fi })))
        .await
        .assert_status(201);
}

#[tokio::test]
async fn customer_defaults_are_inherited_and_their_changes_reach_only_unprocessed_non_overriding_instructions() {
    let fx = Fx::new().await;
    let fi_default = fx.fi("C1").await;
    let fi_own = fx.fi("C1").await;
    let order = json!({
        "orderRef": "O1",
        "customerDefaults": { "C1": {
            "financialInstrument": { "financialInstrumentId": fi_default, "source": "TENANT" },
            "scheme": { "schemeId": fx.payout },
            "metadata": { "a": "1", "b": "2" } } },
        "instructions": [
            with(instruction("I1", "C1", "CREDIT"), json!({ "metadata": { "b": "9" } })),
            with(instruction("I2", "C1", "CREDIT"), json!({ "financialInstrumentId": fi_own })),
            instruction("I3", "C1", "CREDIT"),
        ],
    });
    let created = fx.post("/v1/order-management", &order).await.assert_status(202).clone();
    assert_eq!(
        created["customerDefaults"],
        json!({ "C1": {
            "financialInstrument": { "financialInstrumentId": fi_default, "source": "TENANT", "canUpdate": true },
            "scheme": { "schemeId": fx.payout, "source": "TENANT", "canUpdate": true },
            "metadata": { "a": "1", "b": "2" } } })
    );
    let i1 = fx.instruction("O1", "I1").await;
    assert_eq!(i1["status"], "READY");
    assert_eq!(
        i1["financialInstrument"],
        json!({ "financialInstrumentId": fi_default, "source": "CUSTOMER_DEFAULT", "canUpdate": true })
    );
    assert_eq!(i1["scheme"], json!({ "schemeId": fx.payout, "source": "CUSTOMER_DEFAULT", "canUpdate": true }));
    assert_eq!(i1["metadata"], json!({ "a": "1", "b": "9" }));
    let i2 = fx.instruction("O1", "I2").await;
    assert_eq!(i2["financialInstrument"]["source"], "TENANT");
    assert_eq!(i2["financialInstrument"]["financialInstrumentId"], fi_own.as_str());

    // A customer outside the defaults is refused.
    fx.post("/v1/order-management/O1/instruction", &instruction("I9", "C9", "CREDIT"))
        .await
        .assert_error(400, "CUSTOMER_REF_NOT_IN_CUSTOMER_DEFAULTS");

    // Void I3 (frozen with what it inherited), then clear the default FI: I1 (inheriting)
    // becomes INCOMPLETE, I2 (own FI) stays READY, I3 keeps its frozen values.
    let voided = fx.delete("/v1/order-management/O1/instruction/I3").await.assert_status(200).clone();
    assert_eq!(voided["status"], "VOID");
    assert_eq!(
        voided["financialInstrument"],
        json!({ "financialInstrumentId": fi_default, "source": "CUSTOMER_DEFAULT", "canUpdate": false })
    );
    let reply = fx
        .put(
            "/v1/order-management/O1/customer-defaults/C1/financial-instrument",
            &json!({ "financialInstrumentId": "" }),
        )
        .await;
    let after = reply.assert_status(200).clone();
    let status = |r: &str| {
        after["instructions"].as_array().unwrap().iter().find(|i| i["instructionRef"] == r).unwrap()["status"].clone()
    };
    assert_eq!((status("I1"), status("I2"), status("I3")), (json!("INCOMPLETE"), json!("READY"), json!("VOID")));
    let i1 = fx.instruction("O1", "I1").await;
    assert_eq!(i1["financialInstrument"], json!({ "financialInstrumentId": "", "source": "NONE", "canUpdate": true }));
    assert_eq!(fx.instruction("O1", "I3").await, voided);

    // Setting it again (upper case accepted) makes I1 READY again; the default's
    // metadata and scheme changes are resolved on read.
    fx.put(
        "/v1/order-management/O1/customer-defaults/C1/financial-instrument",
        &json!({ "FinancialInstrumentId": fi_default.to_uppercase() }),
    )
    .await
    .assert_status(200);
    assert_eq!(fx.instruction("O1", "I1").await["status"], "READY");
    fx.put("/v1/order-management/O1/customer-defaults/C1/metadata", &json!({ "metadata": { "a": "7", "c": "3" } }))
        .await
        .assert_status(200);
    assert_eq!(fx.instruction("O1", "I1").await["metadata"], json!({ "a": "7", "b": "9", "c": "3" }));
    assert_eq!(fx.instruction("O1", "I3").await["metadata"], json!({ "a": "1", "b": "2" }));
    let reply = fx.put("/v1/order-management/O1/customer-defaults/C1/scheme", &json!({ "schemeId": "" })).await;
    reply.assert_status(200);
    assert_eq!(fx.instruction("O1", "I1").await["status"], "INCOMPLETE");
    assert_eq!(fx.instruction("O1", "I2").await["status"], "INCOMPLETE");
    fx.put("/v1/order-management/O1/customer-defaults/C1/scheme", &json!({ "scheme": fx.ghost_scheme() }))
        .await
        .assert_error(400, "SCHEME_NOT_FOUND");

    // Upsert of a whole default (flat form), for a new customer too.
    let fi_c2 = fx.fi("C2").await;
    let reply = fx
        .put(
            "/v1/order-management/O1/customer-defaults",
            &json!({ "C1": { "schemeId": fx.payout, "financialInstrumentId": fi_default },
                     "C2": { "financialInstrumentId": fi_c2 } }),
        )
        .await;
    let after = reply.assert_status(200).clone();
    assert_eq!(after["customerDefaults"]["C2"]["financialInstrument"]["financialInstrumentId"], fi_c2.as_str());
    assert_eq!(after["customerDefaults"]["C2"]["scheme"]["source"], "NONE");
    assert_eq!(fx.instruction("O1", "I1").await["status"], "READY");
    assert_eq!(fx.instruction("O1", "I1").await["metadata"], json!({ "b": "9" }));
    fx.put("/v1/order-management/O1/customer-defaults", &json!({ "C2": { "financialInstrumentId": fi_default } }))
        .await
        .assert_error(400, "FINANCIAL_INSTRUMENT_NOT_FOUND");

    // Deleting: refused while used, allowed when not; unknown defaults are 404.
    fx.delete("/v1/order-management/O1/customer-defaults/C1").await.assert_error(400, "CUSTOMER_DEFAULT_IN_USE");
    fx.delete("/v1/order-management/O1/customer-defaults/C2").await.assert_status(204);
    fx.delete("/v1/order-management/O1/customer-defaults/C2").await.assert_error(404, "CUSTOMER_DEFAULT_NOT_FOUND");
    fx.put("/v1/order-management/O1/customer-defaults/C2/scheme", &json!({ "schemeId": fx.payout }))
        .await
        .assert_error(404, "CUSTOMER_DEFAULT_NOT_FOUND");
}

impl Fx {
    fn ghost_scheme(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

#[tokio::test]
async fn update_rules_void_metadata_and_isolation() {
    let fx = Fx::new().await;
    fx.post("/v1/order-management", &json!({ "orderRef": "O1", "metadata": [] })).await.assert_status(201);
    fx.post("/v1/order-management/O1/instruction", &instruction("I1", "C1", "DEBIT")).await.assert_status(201);
    let path = "/v1/order-management/O1/instruction/I1";

    // The customer cannot change; other values can while INCOMPLETE/READY.
    fx.put(path, &instruction("I1", "C2", "DEBIT")).await.assert_error(400, "CUSTOMER_REF_NOT_UPDATABLE");
    let updated = fx.put(path, &with(instruction("I1", "C1", "DEBIT"), json!({ "amount": 12 }))).await;
    assert_eq!(updated.assert_status(200)["amount"], 12);

    // VOID, then nothing more: no update, no second void.
    assert_eq!(fx.delete(path).await.assert_status(200)["status"], "VOID");
    fx.put(path, &instruction("I1", "C1", "DEBIT")).await.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    fx.delete(path).await.assert_error(400, "INVALID_STATUS_TRANSITION");
    let voided = fx.instruction("O1", "I1").await;
    assert_eq!((voided["status"].clone(), voided["amount"].clone()), (json!("VOID"), json!(12)));
    assert_eq!(voided["scheme"]["canUpdate"], false);
    fx.get("/v1/order-management/O1/instruction/I9").await.assert_error(404, "INSTRUCTION_NOT_FOUND");

    // Order metadata: replace (wrapped or bare), clear.
    let reply = fx.put("/v1/order-management/O1/metadata", &json!({ "metadata": { "x": "1" } })).await;
    assert_eq!(reply.assert_status(200)["metadata"], json!({ "x": "1" }));
    let reply = fx.put("/v1/order-management/O1/metadata", &json!({ "y": "2" })).await;
    assert_eq!(reply.assert_status(200)["metadata"], json!({ "y": "2" }));
    fx.delete("/v1/order-management/O1/metadata").await.assert_status(204);
    assert_eq!(fx.order("O1").await["metadata"], json!({}));

    // Another tenant sees nothing of it, and may use the same refs.
    let other = fx.app.create_tenant(&fx.admin, "Other tenant").await;
    let key = fx.app.create_tenant_key(&fx.admin, &other, &["tenant-transaction-write"]).await;
    let token = fx.app.token(&key).await;
    fx.app.get("/v1/order-management/O1", &token).await.assert_error(404, "ORDER_NOT_FOUND");
    fx.app.get(path, &token).await.assert_error(404, "ORDER_NOT_FOUND");
    fx.app.put("/v1/order-management/O1/metadata", &token, &json!({})).await.assert_error(404, "ORDER_NOT_FOUND");
    fx.app.delete(path, &token).await.assert_error(404, "ORDER_NOT_FOUND");
    fx.app
        .post("/v1/order-management/O1/instruction", &token, &instruction("I2", "C1", "DEBIT"))
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    // Our scheme is not theirs.
    fx.app.post("/v1/order-management", &token, &json!({ "orderRef": "O1" })).await.assert_status(201);
    fx.app
        .post(
            "/v1/order-management/O1/instruction",
            &token,
            &with(instruction("I1", "C1", "DEBIT"), json!({ "schemeId": fx.collect })),
        )
        .await
        .assert_error(400, "SCHEME_NOT_FOUND");

    // Readers read, but do not write.
    let key = fx.app.create_tenant_key(&fx.admin, &other, &["tenant-transaction-read"]).await;
    let reader = fx.app.token(&key).await;
    fx.app.get("/v1/order-management/O1", &reader).await.assert_status(200);
    fx.app.post("/v1/order-management", &reader, &json!({ "orderRef": "O3" })).await.assert_error(403, "ROLE_REQUIRED");
}

/// Every new instruction is announced (`instruction.created`) in the transaction that
/// creates it, with the status it was stored with and its effective values.
#[tokio::test]
async fn new_instructions_are_announced_with_their_status() {
    let fx = Fx::new().await;
    let fi = fx.fi("C1").await;
    let body = json!({ "orderRef": "A-1", "metadata": { "policy": "P-9" },
        "customerDefaults": { "C1": { "financialInstrumentId": fi, "schemeId": fx.collect, "metadata": { "a": "1" } } },
        "instructions": [
            with(instruction("I1", "C1", "DEBIT"), json!({ "metadata": { "b": "2" } })),
            with(instruction("I2", "C1", "CREDIT"), json!({})),
        ] });
    let reply = fx.post("/v1/order-management", &body).await;
    let created = reply.assert_status(202).clone();
    assert_eq!(created, fx.order("A-1").await, "the answer is the order as stored");
    let created = |events: &[baton_store::StoredEvent]| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e.event.event_type.as_str() == "instruction.created")
            .map(|e| serde_json::from_str(&e.event.data).unwrap())
            .collect()
    };
    let events = fx.app.engine().outbox_events(&fx.tenant).await.unwrap();
    let announced = created(&events);
    let summary: Vec<(&str, &str)> = announced
        .iter()
        .map(|d| (d["instruction"]["instructionRef"].as_str().unwrap(), d["instruction"]["status"].as_str().unwrap()))
        .collect();
    // The collect scheme it inherits routes DEBIT: the CREDIT instruction stays INCOMPLETE.
    assert_eq!(summary, [("I1", "READY"), ("I2", "INCOMPLETE")]);
    assert_eq!(announced[0]["order"], json!({ "orderRef": "A-1", "metadata": { "policy": "P-9" } }));
    assert_eq!(announced[0]["instruction"]["financialInstrumentId"], json!(fi));
    assert_eq!(announced[0]["instruction"]["metadata"], json!({ "a": "1", "b": "2" }));
    assert_eq!(announced[0]["scheme"]["schemeId"], json!(fx.collect));
    let keys: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type.as_str() == "instruction.created")
        .map(|e| e.event.ordering_key.clone().unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "each is ordered with its own instruction's events");

    // An added instruction is announced too; refused creations announce nothing.
    let added = fx.post("/v1/order-management/A-1/instruction", &instruction("I3", "C1", "DEBIT")).await;
    assert_eq!(added.assert_status(201)["status"], "READY");
    fx.post("/v1/order-management/A-1/instruction", &instruction("I3", "C1", "DEBIT"))
        .await
        .assert_error(409, "INSTRUCTION_REF_ALREADY_EXISTS");
    fx.post("/v1/order-management", &body).await.assert_error(409, "ORDER_REF_ALREADY_EXISTS");
    let events = fx.app.engine().outbox_events(&fx.tenant).await.unwrap();
    let refs: Vec<_> = created(&events).iter().map(|d| d["instruction"]["instructionRef"].clone()).collect();
    assert_eq!(refs, [json!("I1"), json!("I2"), json!("I3")]);
}
