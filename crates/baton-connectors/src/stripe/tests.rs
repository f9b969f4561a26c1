use std::collections::BTreeMap;

use baton_domain::{
    CardDetails, CardExpiry, CardNumber, ChargebackReason, ChargebackStatus, Country, Currency, DeclineCategory,
    Environment, InstrumentDetails, TransactionType,
};
use serde_json::{json, Value};

use super::transformers::{self, decline_for, intent_outcome, parse_event, sign};
use super::*;
use crate::connector::{AppCredentials, CallContext, IncomingNotification, Notification, NotificationError, Outcome};
use crate::http_client::HttpError;

const SECRET: &str = "whsec_test_secret";
const NOW: i64 = 1_700_000_000;

fn header(t: i64, body: &[u8], secret: &str) -> String {
    format!("t={t},v1={}", sign(secret, &t.to_string(), body))
}

#[test]
fn a_valid_signature_verifies() {
    let body = br#"{"type":"payment_intent.succeeded"}"#;
    verify_signature(SECRET, &header(NOW, body, SECRET), body, NOW, 300).unwrap();
    // Within the tolerance either way.
    verify_signature(SECRET, &header(NOW - 300, body, SECRET), body, NOW, 300).unwrap();
}

#[test]
fn any_of_several_v1_values_may_match() {
    let body = b"{}";
    let good = sign(SECRET, &NOW.to_string(), body);
    let h = format!("t={NOW},v1={},v1={good},v0=abcd", "00".repeat(32));
    verify_signature(SECRET, &h, body, NOW, 300).unwrap();
}

#[test]
fn forged_tampered_or_stale_signatures_are_refused() {
    let body = br#"{"type":"charge.dispute.created"}"#;
    let unverified = |r: Result<(), NotificationError>| assert!(matches!(r, Err(NotificationError::Unverified(_))));
    // Another secret.
    unverified(verify_signature(SECRET, &header(NOW, body, "whsec_other"), body, NOW, 300));
    // Another body.
    unverified(verify_signature(SECRET, &header(NOW, body, SECRET), b"{}", NOW, 300));
    // Too old, too far ahead.
    unverified(verify_signature(SECRET, &header(NOW - 301, body, SECRET), body, NOW, 300));
    unverified(verify_signature(SECRET, &header(NOW + 301, body, SECRET), body, NOW, 300));
    // The timestamp is signed: changing it breaks the signature.
    let h = header(NOW - 1000, body, SECRET).replace(&format!("t={}", NOW - 1000), &format!("t={NOW}"));
    unverified(verify_signature(SECRET, &h, body, NOW, 300));
    // Malformed headers.
    unverified(verify_signature(SECRET, "", body, NOW, 300));
    unverified(verify_signature(SECRET, &format!("t={NOW}"), body, NOW, 300));
    unverified(verify_signature(SECRET, "v1=abc", body, NOW, 300));
    unverified(verify_signature(SECRET, &format!("t={NOW},v1=zz"), body, NOW, 300));
    // Only v0 (Stripe's test scheme) does not count.
    let v0 = header(NOW, body, SECRET).replace("v1=", "v0=");
    unverified(verify_signature(SECRET, &v0, body, NOW, 300));
}

fn credentials(webhook_secret: Option<&str>) -> AppCredentials {
    let mut secrets = json!({"secretKey": "sk_test_123"});
    if let Some(s) = webhook_secret {
        secrets["webhookSecret"] = json!(s);
    }
    AppCredentials { public: json!({"apiBaseUrl": "http://127.0.0.1:9"}), secrets }
}

#[test]
fn notifications_need_the_webhook_secret_and_the_header() {
    let body = br#"{"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","status":"succeeded"}}}"#;
    let mut headers = BTreeMap::new();
    headers.insert("stripe-signature".to_string(), header(NOW, body, SECRET));
    let stripe = Stripe::new();
    let parse = |creds: &AppCredentials, headers: &BTreeMap<String, String>| {
        let ctx = CallContext { environment: Environment::Sandbox, tenant_id: "t", credentials: creds };
        stripe.parse_notification(&ctx, &IncomingNotification { headers, body, now: NOW })
    };
    let with_secret = credentials(Some(SECRET));
    assert_eq!(
        parse(&with_secret, &headers).unwrap(),
        vec![Notification::Payment {
            provider_reference: "pi_1".into(),
            outcome: Outcome::Succeeded { provider_reference: "pi_1".into(), result: None },
        }]
    );
    assert!(matches!(parse(&credentials(None), &headers), Err(NotificationError::Unverified(_))));
    assert!(matches!(parse(&with_secret, &BTreeMap::new()), Err(NotificationError::Unverified(_))));
}

#[test]
fn card_errors_map_onto_the_decline_taxonomy_keeping_stripes_words() {
    let cases = [
        (
            json!({"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}),
            DeclineCategory::InsufficientFunds,
            "insufficient_funds",
        ),
        (
            json!({"type":"card_error","code":"card_declined","decline_code":"fraudulent"}),
            DeclineCategory::FraudSuspected,
            "fraudulent",
        ),
        (
            json!({"type":"card_error","code":"card_declined","decline_code":"stolen_card"}),
            DeclineCategory::FraudSuspected,
            "stolen_card",
        ),
        (
            json!({"type":"card_error","code":"authentication_required","decline_code":"authentication_required"}),
            DeclineCategory::AuthenticationRequired,
            "authentication_required",
        ),
        (json!({"type":"card_error","code":"expired_card"}), DeclineCategory::HardDecline, "expired_card"),
        (
            json!({"type":"card_error","code":"card_declined","decline_code":"generic_decline"}),
            DeclineCategory::HardDecline,
            "generic_decline",
        ),
        (json!({"type":"card_error","code":"card_declined"}), DeclineCategory::HardDecline, "card_declined"),
        (
            json!({"type":"card_error","code":"card_declined","decline_code":"try_again_later"}),
            DeclineCategory::SoftDecline,
            "try_again_later",
        ),
        (json!({"type":"card_error","code":"processing_error"}), DeclineCategory::Technical, "processing_error"),
        (
            json!({"type":"invalid_request_error","code":"payment_intent_authentication_failure"}),
            DeclineCategory::AuthenticationRequired,
            "payment_intent_authentication_failure",
        ),
        (
            json!({"type":"invalid_request_error","code":"parameter_unknown","message":"Received unknown parameter"}),
            DeclineCategory::Technical,
            "parameter_unknown",
        ),
        (
            json!({"type":"authentication_error","message":"Invalid API Key provided"}),
            DeclineCategory::Technical,
            "authentication_error",
        ),
    ];
    for (error, category, psp_code) in cases {
        let d = decline_for(&error, 402);
        assert_eq!(d.category, category, "{error}");
        assert_eq!(d.code, category.error_code(), "{error}");
        assert_eq!(d.psp_code.as_deref(), Some(psp_code), "{error}");
        assert_eq!(d.psp_message.as_deref(), error.get("message").and_then(Value::as_str), "{error}");
    }
    let d = decline_for(&json!({"type":"api_error","message":"An unknown error occurred"}), 500);
    assert_eq!((d.category, d.psp_code.as_deref()), (DeclineCategory::Technical, Some("api_error")));
    let d = decline_for(&json!({"type":"invalid_request_error","code":"rate_limit"}), 429);
    assert_eq!(d.category, DeclineCategory::Technical);
    let d = decline_for(&Value::Null, 503);
    assert_eq!((d.category, d.psp_code.as_deref()), (DeclineCategory::Technical, Some("http_503")));
}

#[test]
fn payment_intent_statuses_become_outcomes() {
    assert_eq!(
        intent_outcome(&json!({"id":"pi_1","status":"succeeded"})).unwrap(),
        Outcome::Succeeded { provider_reference: "pi_1".into(), result: None }
    );
    assert!(matches!(
        intent_outcome(&json!({"id":"pi_1","status":"processing"})).unwrap(),
        Outcome::Pending { provider_reference, .. } if provider_reference == "pi_1"
    ));
    let Outcome::Failed { decline, provider_reference } =
        intent_outcome(&json!({"id":"pi_1","status":"requires_action"})).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (decline.category, provider_reference.as_deref()),
        (DeclineCategory::AuthenticationRequired, Some("pi_1"))
    );
    let Outcome::Failed { decline, .. } = intent_outcome(&json!({"id":"pi_1","status":"requires_payment_method",
        "last_payment_error": {"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}}))
    .unwrap() else {
        panic!()
    };
    assert_eq!(decline.category, DeclineCategory::InsufficientFunds);
    assert!(intent_outcome(&json!({"id":"pi_1","status":"something_new"})).is_err());
    assert!(intent_outcome(&json!({"status":"succeeded"})).is_err());
}

fn reply(status: u16, json: Value) -> Result<StripeReply, HttpError> {
    Ok(StripeReply { status, json: Some(json) })
}

#[test]
fn answers_and_lost_answers_of_a_create_call() {
    // A decline names the intent Stripe created for it.
    let declined = reply(
        402,
        json!({"error": {"type":"card_error","code":"card_declined","decline_code":"insufficient_funds",
            "message":"Your card has insufficient funds.","payment_intent":{"id":"pi_9","status":"requires_payment_method"}}}),
    );
    let Outcome::Failed { decline, provider_reference } = transformers::intent_reply(declined).unwrap() else {
        panic!()
    };
    assert_eq!(decline.category, DeclineCategory::InsufficientFunds);
    assert_eq!(provider_reference.as_deref(), Some("pi_9"));
    // Lost, conflicting or unreadable answers are unknown: the engine syncs.
    assert!(matches!(
        transformers::intent_reply(Err(HttpError::Unknown("timed out".into()))),
        Err(ConnectorError::Unknown(_))
    ));
    assert!(matches!(
        transformers::intent_reply(reply(409, json!({"error":{"type":"idempotency_error"}}))),
        Err(ConnectorError::Unknown(_))
    ));
    assert!(matches!(
        transformers::intent_reply(Ok(StripeReply { status: 200, json: None })),
        Err(ConnectorError::Unknown(_))
    ));
    // Never sent: certainly not charged, a technical failure.
    let Outcome::Failed { decline, .. } =
        transformers::intent_reply(Err(HttpError::NotSent("refused".into()))).unwrap()
    else {
        panic!()
    };
    assert_eq!(decline.category, DeclineCategory::Technical);
    // 5xx after the retries: indeterminate (Stripe may have charged), so unknown, never
    // a failure another app could be tried after.
    assert!(matches!(
        transformers::intent_reply(reply(500, json!({"error":{"type":"api_error","message":"boom"}}))),
        Err(ConnectorError::Unknown(_))
    ));
    assert!(matches!(
        transformers::intent_reply(reply(503, json!({"error":{"type":"api_error"}}))),
        Err(ConnectorError::Unknown(_))
    ));
    // Rate limited: Stripe did not process the request, a technical failure.
    let Outcome::Failed { decline, .. } =
        transformers::intent_reply(reply(429, json!({"error":{"type":"rate_limit_error"}}))).unwrap()
    else {
        panic!()
    };
    assert_eq!(decline.category, DeclineCategory::Technical);
}

#[test]
fn an_attempts_payment_intent_is_searched_by_its_metadata() {
    assert_eq!(
        transformers::search_path("0190-ab"),
        "/v1/payment_intents/search?query=metadata%5B%27baton_attempt%27%5D%3A%270190-ab%27"
    );
    let found = json!({"object": "search_result", "has_more": false, "data": [
        {"id": "pi_other", "status": "succeeded", "metadata": {"baton_attempt": "tx-2"}},
        {"id": "pi_1", "status": "succeeded", "metadata": {"baton_attempt": "tx-1"}}]});
    let intent = transformers::search_reply(reply(200, found.clone()), "tx-1").unwrap().unwrap();
    assert_eq!(intent["id"], "pi_1", "only the attempt's own payment intent counts");
    assert_eq!(transformers::search_reply(reply(200, found), "tx-3").unwrap(), None);
    let empty = json!({"object": "search_result", "data": []});
    assert_eq!(transformers::search_reply(reply(200, empty), "tx-1").unwrap(), None);
    // A failed search tells nothing.
    assert!(transformers::search_reply(reply(500, json!({"error": {}})), "tx-1").is_err());
    assert!(transformers::search_reply(Err(HttpError::Unknown("timed out".into())), "tx-1").is_err());
}

#[test]
fn a_5xx_answer_to_a_refund_is_indeterminate_never_a_failure() {
    // Stripe's own failure after the client's retries: the refund may have been made, so
    // it is unknown (the engine looks it up), never a failure the merchant could refund after.
    for status in [500, 502, 503] {
        let answer = reply(status, json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}));
        assert_eq!(transformers::stripe_failure(&answer), Some(format!("{status} (api_error)")));
        assert!(
            matches!(transformers::refund_reply(answer), Err(ConnectorError::Unknown(_))),
            "a {status} is not a failure"
        );
    }
    // A 5xx without Stripe's error object (a proxy that gave up waiting) is unknown too,
    // but does not show that Stripe is done with the request.
    let proxy = Ok(StripeReply { status: 504, json: None });
    assert_eq!(None, transformers::stripe_failure(&proxy));
    assert!(matches!(transformers::refund_reply(proxy), Err(ConnectorError::Unknown(_))));
    let lost = Err(HttpError::Unknown("timed out".into()));
    assert_eq!(None, transformers::stripe_failure(&lost));
    assert!(matches!(transformers::refund_reply(lost), Err(ConnectorError::Unknown(_))));
    // A request with this key still running at Stripe, or the key used otherwise.
    let in_use = reply(409, json!({"error": {"type": "invalid_request_error", "code": "idempotency_key_in_use"}}));
    assert_eq!(None, transformers::stripe_failure(&in_use));
    assert!(matches!(transformers::refund_reply(in_use), Err(ConnectorError::Unknown(_))));
    let reused = reply(
        400,
        json!({"error": {"type": "idempotency_error", "message": "Keys for idempotent requests \
        can only be used with the same parameters they were first used with."}}),
    );
    assert!(matches!(transformers::refund_reply(reused), Err(ConnectorError::Unknown(_))));

    // A 4xx is Stripe refusing the refund: a decline with Stripe's words, nothing refunded.
    let refused = reply(
        400,
        json!({"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
            "message": "Charge ch_1 has already been refunded."}}),
    );
    assert_eq!(None, transformers::stripe_failure(&refused));
    let Outcome::Failed { decline, provider_reference } = transformers::refund_reply(refused).unwrap() else {
        panic!()
    };
    assert_eq!(decline.category, DeclineCategory::Technical);
    assert_eq!(decline.psp_code.as_deref(), Some("charge_already_refunded"));
    assert_eq!(provider_reference, None);
    // Never sent: certainly not refunded.
    assert!(matches!(
        transformers::refund_reply(Err(HttpError::NotSent("refused".into()))),
        Ok(Outcome::Failed { .. })
    ));
    // A refund made.
    assert_eq!(
        transformers::refund_reply(reply(200, json!({"id": "re_1", "object": "refund", "status": "succeeded"})))
            .unwrap(),
        Outcome::Succeeded { provider_reference: "re_1".into(), result: None }
    );
}

#[test]
fn a_refund_read_back_that_fails_tells_nothing() {
    let pending = reply(200, json!({"id": "re_1", "object": "refund", "status": "pending"}));
    assert!(matches!(
        transformers::refund_read_reply(pending).unwrap(),
        Outcome::Pending { provider_reference, .. } if provider_reference == "re_1"
    ));
    let failed = reply(200, json!({"id": "re_1", "status": "failed", "failure_reason": "expired_or_canceled_card"}));
    let Outcome::Failed { decline, provider_reference } = transformers::refund_read_reply(failed).unwrap() else {
        panic!()
    };
    assert_eq!(
        (decline.psp_code.as_deref(), provider_reference.as_deref()),
        (Some("expired_or_canceled_card"), Some("re_1"))
    );
    // The refund exists (its id was recorded): a read refused or failed never fails it.
    for status in [400, 401, 404, 500] {
        let answer = reply(status, json!({"error": {"type": "invalid_request_error"}}));
        assert!(matches!(transformers::refund_read_reply(answer), Err(ConnectorError::Unknown(_))), "{status}");
    }
    assert!(transformers::refund_read_reply(Err(HttpError::NotSent("refused".into()))).is_err());
}

#[test]
fn a_refund_is_looked_up_among_its_payment_intents_refunds_by_its_metadata() {
    assert_eq!(transformers::refund_list_path("pi_3Qabc", None), "/v1/refunds?payment_intent=pi_3Qabc&limit=100");
    assert_eq!(
        transformers::refund_list_path("pi_3Qabc", Some("re_9")),
        "/v1/refunds?payment_intent=pi_3Qabc&limit=100&starting_after=re_9"
    );
    let page = |has_more: bool, refunds: Vec<Value>| {
        reply(200, json!({"object": "list", "url": "/v1/refunds", "has_more": has_more, "data": refunds}))
    };
    let refund = |id: &str, baton_refund: Option<&str>| {
        let metadata = baton_refund.map_or(json!({}), |r| json!({"baton_refund": r}));
        json!({"id": id, "object": "refund", "payment_intent": "pi_3Qabc", "status": "succeeded", "metadata": metadata})
    };
    let listed = vec![refund("re_3", Some("rf-2")), refund("re_2", None), refund("re_1", Some("rf-1"))];
    let found = transformers::refund_list_reply(page(false, listed.clone()), "rf-1").unwrap();
    assert_eq!(found, transformers::ListedRefund::Found(refund("re_1", Some("rf-1"))), "only its own refund counts");
    let Ok(transformers::ListedRefund::Found(made)) =
        transformers::refund_list_reply(page(false, listed.clone()), "rf-2")
    else {
        panic!()
    };
    assert_eq!(
        transformers::refund_outcome(&made).unwrap(),
        Outcome::Succeeded { provider_reference: "re_3".into(), result: None }
    );
    // A refund made by other means (the dashboard) is never taken for Baton's.
    assert_eq!(
        transformers::refund_list_reply(page(false, listed.clone()), "rf-3").unwrap(),
        transformers::ListedRefund::NotListed
    );
    assert_eq!(
        transformers::refund_list_reply(page(false, Vec::new()), "rf-1").unwrap(),
        transformers::ListedRefund::NotListed
    );
    // More pages: the next one starts after the last refund of this one.
    assert_eq!(
        transformers::refund_list_reply(page(true, listed), "rf-3").unwrap(),
        transformers::ListedRefund::NextPage("re_1".into())
    );
    // A list that could not be read tells nothing.
    let down = reply(500, json!({"error": {"type": "api_error"}}));
    assert!(matches!(transformers::refund_list_reply(down, "rf-1"), Err(ConnectorError::Unknown(_))));
    let lost = Err(HttpError::Unknown("timed out".into()));
    assert!(matches!(transformers::refund_list_reply(lost, "rf-1"), Err(ConnectorError::Unknown(_))));
    let unreadable = Ok(StripeReply { status: 200, json: Some(json!({"object": "list"})) });
    assert!(matches!(transformers::refund_list_reply(unreadable, "rf-1"), Err(ConnectorError::Unknown(_))));
}

#[test]
fn a_refund_stripe_did_not_make_is_a_technical_failure_in_stripes_words() {
    let Outcome::Failed { decline, provider_reference } = transformers::no_refund_made("500 (api_error)") else {
        panic!()
    };
    assert_eq!((decline.category, decline.psp_code.as_deref()), (DeclineCategory::Technical, Some("api_error")));
    assert_eq!(
        decline.psp_message.as_deref(),
        Some("Stripe made no refund: it answered 500 (api_error) and lists none for this request.")
    );
    assert_eq!(provider_reference, None);
}

fn card() -> InstrumentDetails {
    let now = time::OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    InstrumentDetails::Card(CardDetails {
        number: CardNumber::parse("4242424242424242", "cardNumber").unwrap(),
        expiry: CardExpiry::new(12, 2034, now).unwrap(),
        holder_name: None,
        billing_address: None,
    })
}

#[test]
fn the_payment_intent_form_is_the_same_on_every_call_of_an_attempt() {
    let instrument = card();
    let extra = json!({});
    let request = |t, description| PaymentRequest {
        attempt_id: "tx-1",
        idempotency_key: "baton-tx-1",
        amount_minor: 1234,
        currency: Currency::EUR,
        country: Country::DE,
        transaction_type: t,
        payment_method: Some("VISA"),
        instrument: &instrument,
        token: Some("pm_1"),
        description,
        extra: &extra,
    };
    let mit = transformers::payment_intent_form(&request(TransactionType::Mit, "o/i"), "pm_1");
    let get = |form: &[(String, String)], k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get(&mit, "amount").as_deref(), Some("1234"));
    assert_eq!(get(&mit, "currency").as_deref(), Some("eur"));
    assert_eq!(get(&mit, "payment_method").as_deref(), Some("pm_1"));
    assert_eq!(get(&mit, "confirm").as_deref(), Some("true"));
    assert_eq!(get(&mit, "off_session").as_deref(), Some("true"));
    assert_eq!(get(&mit, "metadata[baton_attempt]").as_deref(), Some("tx-1"));
    // A sync rebuilds the request without its description: the form must not change.
    assert_eq!(mit, transformers::payment_intent_form(&request(TransactionType::Mit, ""), "pm_1"));
    let cit = transformers::payment_intent_form(&request(TransactionType::Cit, "o/i"), "pm_1");
    assert_eq!(get(&cit, "off_session"), None);

    let InstrumentDetails::Card(c) = &instrument else { unreachable!() };
    let pm = transformers::payment_method_form(c);
    assert_eq!(get(&pm, "type").as_deref(), Some("card"));
    assert_eq!(get(&pm, "card[number]").as_deref(), Some("4242424242424242"));
    assert_eq!(get(&pm, "card[exp_month]").as_deref(), Some("12"));
    assert_eq!(get(&pm, "card[exp_year]").as_deref(), Some("2034"));
}

#[test]
fn disputes_refunds_and_failures_arrive_as_notifications() {
    let event = |kind: &str, object: Value| json!({"id":"evt_1","type":kind,"data":{"object":object}}).to_string();
    let dispute = json!({"id":"dp_1","object":"dispute","amount":1000,"currency":"usd","charge":"ch_1",
        "payment_intent":"pi_1","reason":"fraudulent","status":"needs_response","evidence_details":{"due_by":1700100000}});
    assert_eq!(
        parse_event(event("charge.dispute.created", dispute.clone()).as_bytes()).unwrap(),
        vec![Notification::Chargeback {
            payment_reference: "pi_1".into(),
            dispute_reference: "dp_1".into(),
            amount_minor: 1000,
            currency: Currency::USD,
            reason: ChargebackReason::Fraud,
            provider_reason_code: Some("fraudulent".into()),
            status: ChargebackStatus::Open,
            due_by: Some(1_700_100_000_000),
        }]
    );
    let mut closed = dispute.clone();
    closed["status"] = json!("lost");
    closed["reason"] = json!("product_not_received");
    let Notification::Chargeback { status, reason, .. } =
        parse_event(event("charge.dispute.closed", closed).as_bytes()).unwrap().remove(0)
    else {
        panic!()
    };
    assert_eq!((status, reason), (ChargebackStatus::Lost, ChargebackReason::Quality));

    let charge = json!({"id":"ch_1","object":"charge","payment_intent":"pi_1","refunds":{"data":[
        {"id":"re_1","status":"succeeded","payment_intent":"pi_1"},{"id":"re_2","status":"pending"}]}});
    assert_eq!(
        parse_event(event("charge.refunded", charge).as_bytes()).unwrap(),
        vec![Notification::Refund {
            provider_reference: "pi_1".into(),
            refund_reference: "re_1".into(),
            succeeded: true
        }]
    );

    let failed = json!({"id":"pi_2","status":"requires_payment_method","last_payment_error":
        {"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"No funds."}});
    let Notification::Payment { provider_reference, outcome: Outcome::Failed { decline, .. } } =
        parse_event(event("payment_intent.payment_failed", failed).as_bytes()).unwrap().remove(0)
    else {
        panic!()
    };
    assert_eq!((provider_reference.as_str(), decline.category), ("pi_2", DeclineCategory::InsufficientFunds));

    assert_eq!(
        parse_event(event("customer.created", json!({"id":"cus_1"})).as_bytes()).unwrap(),
        vec![Notification::Ignored]
    );
    assert!(matches!(parse_event(b"not json"), Err(NotificationError::Malformed(_))));
    assert!(matches!(parse_event(br#"{"type":"charge.dispute.created"}"#), Err(NotificationError::Malformed(_))));
}

#[test]
fn the_configuration_needs_a_secret_key_and_defaults_the_api() {
    let errors = CONFIG.validate(&json!({}), None).unwrap_err();
    assert!(errors.iter().any(|p| p.code == "CONFIGURATION_FIELD_REQUIRED"), "{errors:?}");
    let valid = CONFIG.validate(&json!({"secretKey":"sk_test_1","webhookSecret":"whsec_1"}), None).unwrap();
    assert_eq!(valid.public["apiBaseUrl"], DEFAULT_API_BASE_URL);
    assert_eq!(valid.secrets["secretKey"], "sk_test_1");
    assert_eq!(valid.masked()["secretKey"], crate::MASK);
    let bad = CONFIG.validate(&json!({"secretKey":"sk_test_1","apiBaseUrl":"ftp://x"}), None).unwrap_err();
    assert!(bad.iter().any(|p| p.code == "INVALID_CONFIGURATION_FIELD"), "{bad:?}");
}

#[test]
fn the_descriptor_collects_cards() {
    assert_eq!(crate::find_str("stripe").unwrap().app_id, APP_ID);
    assert!(crate::Connectors::standard().get(APP_ID).is_some());
    assert!(DESCRIPTOR.supports(baton_domain::Direction::Debit));
    assert!(!DESCRIPTOR.supports(baton_domain::Direction::Credit));
    let ids: Vec<_> = DESCRIPTOR.payment_methods.iter().map(|m| m.id).collect();
    assert_eq!(ids, ["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER"]);
}
