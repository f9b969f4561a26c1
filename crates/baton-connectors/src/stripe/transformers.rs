//! Baton's requests as Stripe's form parameters, and Stripe's answers, errors and events
//! as Baton's outcomes, declines and notifications.

use std::time::Duration;

use baton_domain::{
    CardDetails, ChargebackReason, ChargebackStatus, Currency, Decline, DeclineCategory, TransactionType,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::client::StripeReply;
use crate::connector::{
    ConnectorError, Notification, NotificationError, Outcome, PaymentRequest, RefundRequest, Tokenized,
};
use crate::http_client::HttpError;

/// How old (or how far ahead) a signed event's timestamp may be, as Stripe's libraries check.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// When to look again at a payment Stripe is still processing.
pub const PROCESSING_CHECK_AFTER: Duration = Duration::from_secs(30);

/// How long after a payment intent is made Stripe's search surely shows it: usually
/// within a minute, up to an hour late during incidents (Stripe's search documentation),
/// with a margin.
pub const SEARCH_SHOWS_AFTER: Duration = Duration::from_secs(2 * 3600);

/// How long after a refund was asked for every call made for it is surely over at
/// Stripe (the HTTP client waits 20 s at most for an answer, by default), with a wide
/// margin. Only after that does a list without the refund, read after a repeat that
/// Stripe failed, prove that none was made.
pub const REFUND_CALLS_OVER_AFTER: Duration = Duration::from_secs(10 * 60);

fn pair(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// `POST /v1/payment_methods`: a card payment method.
pub fn payment_method_form(card: &CardDetails) -> Vec<(String, String)> {
    let mut form = vec![
        pair("type", "card"),
        pair("card[number]", card.number.expose()),
        pair("card[exp_month]", card.expiry.month().to_string()),
        pair("card[exp_year]", card.expiry.year().to_string()),
    ];
    if let Some(name) = &card.holder_name {
        form.push(pair("billing_details[name]", name.as_str()));
    }
    form
}

/// `POST /v1/payment_intents`: created and confirmed at once. Only fields that are the
/// same on every call of the attempt, so that a sync's repeat matches the original.
pub fn payment_intent_form(request: &PaymentRequest<'_>, token: &str) -> Vec<(String, String)> {
    let mut form = vec![
        pair("amount", request.amount_minor.to_string()),
        pair("currency", request.currency.as_str().to_ascii_lowercase()),
        pair("payment_method", token),
        pair("payment_method_types[]", "card"),
        pair("confirm", "true"),
        pair("metadata[baton_attempt]", request.attempt_id),
    ];
    if request.transaction_type == TransactionType::Mit {
        form.push(pair("off_session", "true"));
    }
    form
}

/// `POST /v1/refunds`.
pub fn refund_form(request: &RefundRequest<'_>) -> Vec<(String, String)> {
    vec![
        pair("payment_intent", request.payment_reference),
        pair("amount", request.amount_minor.to_string()),
        pair("metadata[baton_refund]", request.refund_id),
    ]
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The decline category of a card error's `decline_code` (or `code`).
pub fn card_category(code: &str) -> DeclineCategory {
    match code {
        "insufficient_funds" => DeclineCategory::InsufficientFunds,
        "fraudulent" | "stolen_card" | "lost_card" | "pickup_card" | "merchant_blacklist" | "security_violation"
        | "restricted_card" => DeclineCategory::FraudSuspected,
        "authentication_required" | "payment_intent_authentication_failure" => DeclineCategory::AuthenticationRequired,
        "try_again_later"
        | "reenter_transaction"
        | "issuer_not_available"
        | "card_velocity_exceeded"
        | "withdrawal_count_limit_exceeded"
        | "approve_with_id" => DeclineCategory::SoftDecline,
        "processing_error" => DeclineCategory::Technical,
        // card_declined, generic_decline, do_not_honor, expired_card, incorrect_number,
        // incorrect_cvc, invalid_expiry_*, card_not_supported, …: the issuer said no.
        _ => DeclineCategory::HardDecline,
    }
}

/// Codes that are about the card whatever the error's type.
fn is_card_code(code: &str) -> bool {
    matches!(
        code,
        "card_declined"
            | "expired_card"
            | "incorrect_number"
            | "invalid_number"
            | "incorrect_cvc"
            | "invalid_cvc"
            | "invalid_expiry_month"
            | "invalid_expiry_year"
            | "insufficient_funds"
            | "authentication_required"
            | "payment_intent_authentication_failure"
            | "processing_error"
    )
}

/// A Stripe error object (`{"type", "code", "decline_code", "message"}`) answered with
/// `status`, as a decline that keeps Stripe's code and message.
pub fn decline_for(error: &Value, status: u16) -> Decline {
    let kind = str_of(error, "type").unwrap_or("");
    let code = str_of(error, "code");
    let decline_code = str_of(error, "decline_code");
    let message = str_of(error, "message").map(str::to_string);
    let specific = decline_code.or(code);
    let category = match (kind, specific) {
        ("card_error", Some(c)) => card_category(c),
        ("card_error", None) => DeclineCategory::HardDecline,
        (_, Some(c)) if is_card_code(c) => card_category(c),
        _ => DeclineCategory::Technical,
    };
    let category = if status >= 500 || status == 429 { DeclineCategory::Technical } else { category };
    let psp_code = specific.or(Some(kind).filter(|k| !k.is_empty())).map(str::to_string);
    let psp_code = psp_code.or_else(|| Some(format!("http_{status}")));
    Decline::new(category).psp(psp_code, message)
}

/// A payment intent's outcome.
pub fn intent_outcome(intent: &Value) -> Result<Outcome, ConnectorError> {
    let id = str_of(intent, "id")
        .ok_or_else(|| ConnectorError::Unknown("Stripe answered without a payment intent id".into()))?
        .to_string();
    let status = str_of(intent, "status").unwrap_or("");
    let failed = |decline: Decline| Ok(Outcome::Failed { decline, provider_reference: Some(id.clone()) });
    match status {
        "succeeded" => Ok(Outcome::Succeeded { provider_reference: id, result: None }),
        "processing" | "requires_capture" => {
            Ok(Outcome::Pending { provider_reference: id, check_after: PROCESSING_CHECK_AFTER })
        }
        "requires_action" | "requires_source_action" => {
            failed(Decline::new(DeclineCategory::AuthenticationRequired).psp(
                Some("authentication_required".into()),
                Some("The card issuer requires the customer to authenticate this payment.".into()),
            ))
        }
        "requires_payment_method" | "requires_source" => match intent.get("last_payment_error") {
            Some(error) if error.is_object() => failed(decline_for(error, 402)),
            _ => failed(
                Decline::new(DeclineCategory::HardDecline)
                    .psp(Some("requires_payment_method".into()), Some("The payment was declined.".into())),
            ),
        },
        "canceled" => failed(
            Decline::new(DeclineCategory::HardDecline)
                .psp(Some("canceled".into()), str_of(intent, "cancellation_reason").map(str::to_string)),
        ),
        "requires_confirmation" => failed(
            Decline::new(DeclineCategory::Technical)
                .psp(Some("requires_confirmation".into()), Some("Stripe did not confirm the payment.".into())),
        ),
        other => Err(ConnectorError::Unknown(format!("Stripe answered an unknown payment intent status {other:?}"))),
    }
}

fn not_reached(reason: String) -> Decline {
    Decline::new(DeclineCategory::Technical).psp(Some("api_connection_error".into()), Some(reason))
}

/// The answer to creating (or reading) a payment intent.
pub fn intent_reply(reply: Result<StripeReply, HttpError>) -> Result<Outcome, ConnectorError> {
    let reply = match reply {
        Ok(r) => r,
        // Nothing was sent: certainly nothing charged.
        Err(HttpError::NotSent(reason)) => {
            return Ok(Outcome::Failed { decline: not_reached(reason), provider_reference: None })
        }
        Err(HttpError::Unknown(reason)) => return Err(ConnectorError::Unknown(reason)),
    };
    let Some(json) = reply.json else {
        return Err(ConnectorError::Unknown(format!("Stripe answered {} with a body that is not JSON", reply.status)));
    };
    if (200..300).contains(&reply.status) {
        return intent_outcome(&json);
    }
    let Some(error) = json.get("error").filter(|e| e.is_object()) else {
        return Err(ConnectorError::Unknown(format!("Stripe answered {} without an error object", reply.status)));
    };
    // A request with this key is still running at Stripe, or the key was used otherwise:
    // what happened is unknown until the intent is read.
    if reply.status == 409 || str_of(error, "type") == Some("idempotency_error") {
        return Err(ConnectorError::Unknown(format!(
            "Stripe answered {} ({})",
            reply.status,
            str_of(error, "type").unwrap_or("conflict")
        )));
    }
    // Stripe's own failure (after the client's retries): Stripe calls the result
    // indeterminate, the payment may have been made. Not a decline, and no reason to try
    // another app: what happened is found out by a sync.
    if reply.status >= 500 {
        return Err(ConnectorError::Unknown(format!(
            "Stripe answered {} ({}); the payment may have been made",
            reply.status,
            str_of(error, "type").unwrap_or("api_error")
        )));
    }
    let intent = error.get("payment_intent").filter(|pi| pi.is_object());
    let reference = intent.and_then(|pi| str_of(pi, "id")).map(str::to_string);
    if let Some(pi) = intent {
        if matches!(str_of(pi, "status"), Some("succeeded" | "processing")) {
            return intent_outcome(pi);
        }
    }
    Ok(Outcome::Failed { decline: decline_for(error, reply.status), provider_reference: reference })
}

/// `GET /v1/payment_intents/search` for the payment intent an attempt made (its
/// `metadata[baton_attempt]`).
pub fn search_path(attempt_id: &str) -> String {
    let query = format!("metadata['baton_attempt']:'{}'", attempt_id.replace('\'', ""));
    format!("/v1/payment_intents/search?query={}", percent_encode(&query))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The payment intent of `attempt_id` in a search's answer; `None` when Stripe has none
/// (or does not show it yet); unknown when the search itself failed.
pub fn search_reply(reply: Result<StripeReply, HttpError>, attempt_id: &str) -> Result<Option<Value>, ConnectorError> {
    let reply = match reply {
        Ok(r) => r,
        Err(e) => return Err(ConnectorError::Unknown(format!("Stripe's search failed: {e}"))),
    };
    let data = match (&reply.json, reply.status) {
        (Some(json), 200..=299) => json.get("data").and_then(Value::as_array),
        _ => None,
    };
    let Some(data) = data else {
        return Err(ConnectorError::Unknown(format!("Stripe's search answered {}", reply.status)));
    };
    let made_by = |pi: &&Value| pi.pointer("/metadata/baton_attempt").and_then(Value::as_str) == Some(attempt_id);
    Ok(data.iter().find(made_by).cloned())
}

/// The answer to creating a payment method.
pub fn tokenize_reply(reply: Result<StripeReply, HttpError>) -> Result<Tokenized, ConnectorError> {
    let reply = match reply {
        Ok(r) => r,
        Err(HttpError::NotSent(reason)) => return Ok(Tokenized::Refused(not_reached(reason))),
        Err(HttpError::Unknown(reason)) => return Err(ConnectorError::Unknown(reason)),
    };
    let json = reply.json.unwrap_or(Value::Null);
    if (200..300).contains(&reply.status) {
        return match str_of(&json, "id") {
            Some(id) => Ok(Tokenized::Token(id.to_string())),
            None => Err(ConnectorError::Unknown("Stripe answered without a payment method id".into())),
        };
    }
    let error = json.get("error").cloned().unwrap_or(Value::Null);
    Ok(Tokenized::Refused(decline_for(&error, reply.status)))
}

/// The answer to creating a refund.
pub fn refund_reply(reply: Result<StripeReply, HttpError>) -> Result<Outcome, ConnectorError> {
    let reply = match reply {
        Ok(r) => r,
        // Nothing was sent: certainly nothing refunded.
        Err(HttpError::NotSent(reason)) => {
            return Ok(Outcome::Failed { decline: not_reached(reason), provider_reference: None })
        }
        Err(HttpError::Unknown(reason)) => return Err(ConnectorError::Unknown(reason)),
    };
    let Some(json) = reply.json else {
        return Err(ConnectorError::Unknown(format!("Stripe answered {} with a body that is not JSON", reply.status)));
    };
    if (200..300).contains(&reply.status) {
        return refund_outcome(&json);
    }
    let error = json.get("error").cloned().unwrap_or(Value::Null);
    // A request with this key is still running at Stripe, or the key was used otherwise:
    // what happened is unknown until the refund is looked up.
    if reply.status == 409 || str_of(&error, "type") == Some("idempotency_error") {
        return Err(ConnectorError::Unknown(format!(
            "Stripe answered {} ({})",
            reply.status,
            str_of(&error, "type").unwrap_or("conflict")
        )));
    }
    // Stripe's own failure (after the client's retries) is indeterminate: the refund may
    // have been made. Recorded as failed, it would invite the merchant to refund again.
    if reply.status >= 500 {
        return Err(ConnectorError::Unknown(format!(
            "Stripe answered {} ({}); the refund may have been made",
            reply.status,
            str_of(&error, "type").unwrap_or("api_error")
        )));
    }
    Ok(Outcome::Failed { decline: decline_for(&error, reply.status), provider_reference: None })
}

/// Stripe's API's own failure, in words (`500 (api_error)`): a 5xx with an error object,
/// which Stripe calls indeterminate. Such an answer ends the request at Stripe, and no
/// other request with its idempotency key is running there (that one would have been
/// answered `409`). A 5xx without one may come from a proxy that gave up waiting.
pub fn stripe_failure(reply: &Result<StripeReply, HttpError>) -> Option<String> {
    let Ok(StripeReply { status: status @ 500..=599, json: Some(json) }) = reply else { return None };
    let error = json.get("error").filter(|e| e.is_object())?;
    Some(format!("{status} ({})", str_of(error, "type").unwrap_or("api_error")))
}

/// The answer to reading a refund by its id. A read that fails tells nothing: it never
/// fails the refund.
pub fn refund_read_reply(reply: Result<StripeReply, HttpError>) -> Result<Outcome, ConnectorError> {
    match reply {
        Ok(StripeReply { status: 200..=299, json: Some(refund) }) => refund_outcome(&refund),
        Ok(reply) => Err(ConnectorError::Unknown(format!("reading the refund, Stripe answered {}", reply.status))),
        Err(e) => Err(ConnectorError::Unknown(format!("reading the refund failed: {e}"))),
    }
}

/// How many pages of a payment intent's refunds are read at most when looking for one.
pub const REFUND_LIST_PAGES: usize = 20;

/// `GET /v1/refunds`: a payment intent's refunds, newest first, 100 a page (the next
/// page starts after the last refund of the previous one). Unlike search, the list is
/// read from Stripe's records: a refund is listed as soon as it is made.
pub fn refund_list_path(payment_intent: &str, starting_after: Option<&str>) -> String {
    let mut path = format!("/v1/refunds?payment_intent={}&limit=100", percent_encode(payment_intent));
    if let Some(after) = starting_after {
        path.push_str(&format!("&starting_after={}", percent_encode(after)));
    }
    path
}

/// What one page of a payment intent's refunds says about the refund Baton knows as
/// `refund_id` (its `metadata[baton_refund]`).
#[derive(Debug, Clone, PartialEq)]
pub enum ListedRefund {
    Found(Value),
    /// Not on this page; more follow after this refund id.
    NextPage(String),
    /// Not among the payment intent's refunds.
    NotListed,
}

/// A page of `GET /v1/refunds` read for `refund_id`; unknown when the list itself failed.
pub fn refund_list_reply(
    reply: Result<StripeReply, HttpError>,
    refund_id: &str,
) -> Result<ListedRefund, ConnectorError> {
    let reply = match reply {
        Ok(r) => r,
        Err(e) => return Err(ConnectorError::Unknown(format!("listing the refunds failed: {e}"))),
    };
    let data = match (&reply.json, reply.status) {
        (Some(json), 200..=299) => json.get("data").and_then(Value::as_array),
        _ => None,
    };
    let Some(data) = data else {
        return Err(ConnectorError::Unknown(format!("listing the refunds, Stripe answered {}", reply.status)));
    };
    let asked_for = |r: &&Value| r.pointer("/metadata/baton_refund").and_then(Value::as_str) == Some(refund_id);
    if let Some(refund) = data.iter().find(asked_for) {
        return Ok(ListedRefund::Found(refund.clone()));
    }
    let more = reply.json.as_ref().and_then(|j| j.get("has_more")).and_then(Value::as_bool) == Some(true);
    match data.last().and_then(|last| str_of(last, "id")) {
        Some(last) if more => Ok(ListedRefund::NextPage(last.to_string())),
        _ => Ok(ListedRefund::NotListed),
    }
}

/// The outcome of a refund Stripe surely did not make, having answered `failure`: the
/// merchant may refund again.
pub fn no_refund_made(failure: &str) -> Outcome {
    Outcome::Failed {
        decline: Decline::new(DeclineCategory::Technical).psp(
            Some("api_error".into()),
            Some(format!("Stripe made no refund: it answered {failure} and lists none for this request.")),
        ),
        provider_reference: None,
    }
}

/// A refund object's outcome.
pub fn refund_outcome(refund: &Value) -> Result<Outcome, ConnectorError> {
    let id = str_of(refund, "id")
        .ok_or_else(|| ConnectorError::Unknown("Stripe answered without a refund id".into()))?
        .to_string();
    match str_of(refund, "status").unwrap_or("") {
        "succeeded" => Ok(Outcome::Succeeded { provider_reference: id, result: None }),
        "pending" | "requires_action" => {
            Ok(Outcome::Pending { provider_reference: id, check_after: PROCESSING_CHECK_AFTER })
        }
        "failed" | "canceled" => Ok(Outcome::Failed {
            decline: Decline::new(DeclineCategory::HardDecline).psp(
                Some(str_of(refund, "failure_reason").unwrap_or("refund_failed").to_string()),
                Some("Stripe could not refund the payment.".into()),
            ),
            provider_reference: Some(id),
        }),
        other => Err(ConnectorError::Unknown(format!("Stripe answered an unknown refund status {other:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

fn unverified(reason: &str) -> NotificationError {
    NotificationError::Unverified(reason.to_string())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The `v1` signature of `body` signed at `timestamp` (lower-case hex).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies a `Stripe-Signature` header (`t=…,v1=…[,v1=…][,v0=…]`): one of the `v1`
/// values must be the HMAC-SHA256 of `"{t}.{body}"` under `secret` (compared in constant
/// time), and `t` within `tolerance` seconds of `now`.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), NotificationError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else { continue };
        match key.trim() {
            "t" => timestamp = Some(value.trim()),
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    let raw = timestamp.ok_or_else(|| unverified("the signature has no timestamp"))?;
    let t: i64 = raw.parse().map_err(|_| unverified("the signature's timestamp is not a number"))?;
    if signatures.is_empty() {
        return Err(unverified("the signature has no v1 value"));
    }
    let expected = hex_decode(&sign(secret, raw, body)).expect("own hex");
    let matched = signatures
        .iter()
        .filter_map(|s| hex_decode(s))
        .fold(false, |found, candidate| found | bool::from(candidate.ct_eq(&expected)));
    if !matched {
        return Err(unverified("no signature matches the webhook secret"));
    }
    if (now - t).abs() > tolerance {
        return Err(unverified("the signature's timestamp is outside the tolerance"));
    }
    Ok(())
}

fn malformed(reason: &str) -> NotificationError {
    NotificationError::Malformed(reason.to_string())
}

/// The dispute's reason in Baton's words.
pub fn dispute_reason(reason: &str) -> ChargebackReason {
    match reason {
        "fraudulent" | "unrecognized" | "debit_not_authorized" => ChargebackReason::Fraud,
        "duplicate" | "credit_not_processed" | "incorrect_account_details" => ChargebackReason::Clerical,
        "bank_cannot_process" | "check_returned" | "insufficient_funds" => ChargebackReason::Technical,
        // product_not_received, product_unacceptable, subscription_canceled, customer_initiated, general
        _ => ChargebackReason::Quality,
    }
}

/// The dispute's status in Baton's words.
pub fn dispute_status(status: &str) -> ChargebackStatus {
    match status {
        "under_review" | "warning_under_review" => ChargebackStatus::EvidenceSubmitted,
        "won" | "warning_closed" => ChargebackStatus::Won,
        "lost" => ChargebackStatus::Lost,
        // needs_response, warning_needs_response
        _ => ChargebackStatus::Open,
    }
}

fn currency_of(object: &Value) -> Result<Currency, NotificationError> {
    str_of(object, "currency").and_then(|c| c.parse().ok()).ok_or_else(|| malformed("unsupported or missing currency"))
}

/// A verified event body as notifications.
pub fn parse_event(body: &[u8]) -> Result<Vec<Notification>, NotificationError> {
    let event: Value = serde_json::from_slice(body).map_err(|_| malformed("the event is not JSON"))?;
    let kind = str_of(&event, "type").ok_or_else(|| malformed("the event has no type"))?;
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| o.is_object())
        .ok_or_else(|| malformed("the event has no data.object"))?;
    let id = || str_of(object, "id").map(str::to_string).ok_or_else(|| malformed("the object has no id"));
    match kind {
        "payment_intent.succeeded" => {
            let reference = id()?;
            Ok(vec![Notification::Payment {
                provider_reference: reference.clone(),
                outcome: Outcome::Succeeded { provider_reference: reference, result: None },
            }])
        }
        "payment_intent.payment_failed" => {
            let reference = id()?;
            let decline = match object.get("last_payment_error") {
                Some(error) if error.is_object() => decline_for(error, 402),
                _ => Decline::new(DeclineCategory::HardDecline).psp(Some("payment_failed".into()), None),
            };
            Ok(vec![Notification::Payment {
                provider_reference: reference.clone(),
                outcome: Outcome::Failed { decline, provider_reference: Some(reference) },
            }])
        }
        "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.closed" => {
            let payment_reference = str_of(object, "payment_intent")
                .or_else(|| str_of(object, "charge"))
                .ok_or_else(|| malformed("the dispute names no payment"))?
                .to_string();
            let reason = str_of(object, "reason").unwrap_or("general");
            Ok(vec![Notification::Chargeback {
                payment_reference,
                dispute_reference: id()?,
                amount_minor: object.get("amount").and_then(Value::as_i64).ok_or_else(|| malformed("no amount"))?,
                currency: currency_of(object)?,
                reason: dispute_reason(reason),
                provider_reason_code: Some(reason.to_string()),
                status: dispute_status(str_of(object, "status").unwrap_or("")),
                // Unix seconds at Stripe; milliseconds in Baton.
                due_by: object
                    .get("evidence_details")
                    .and_then(|e| e.get("due_by"))
                    .and_then(Value::as_i64)
                    .map(|s| s * 1000),
            }])
        }
        "charge.refunded" => {
            let payment = str_of(object, "payment_intent").or_else(|| str_of(object, "id")).unwrap_or("").to_string();
            let refunds = object
                .get("refunds")
                .and_then(|r| r.get("data"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out = Vec::new();
            for refund in &refunds {
                if let Some(n) = refund_notification(refund, &payment) {
                    out.push(n);
                }
            }
            if out.is_empty() {
                out.push(Notification::Ignored);
            }
            Ok(out)
        }
        "refund.updated" | "charge.refund.updated" | "refund.failed" => {
            let payment = str_of(object, "payment_intent").unwrap_or("").to_string();
            Ok(vec![refund_notification(object, &payment).unwrap_or(Notification::Ignored)])
        }
        _ => Ok(vec![Notification::Ignored]),
    }
}

/// A refund object in a final state as a notification.
fn refund_notification(refund: &Value, payment: &str) -> Option<Notification> {
    let id = str_of(refund, "id")?;
    let payment = str_of(refund, "payment_intent").unwrap_or(payment);
    let succeeded = match str_of(refund, "status")? {
        "succeeded" => true,
        "failed" | "canceled" => false,
        _ => return None,
    };
    Some(Notification::Refund { provider_reference: payment.to_string(), refund_reference: id.to_string(), succeeded })
}
