//! The `data` of execution events (SPEC §5.1): the order and instruction with their
//! metadata (merchants route notifications by it), the scheme, and the attempt.

use baton_connectors::Notification;
use baton_domain::{ChargebackReason, ChargebackStatus, Currency, InstructionStatus};
use baton_store::{OrderRecord, TransactionRecord};
use serde_json::{json, Value};

use crate::orders::InstructionView;

/// `{order, instruction, scheme, transaction?}`.
pub(crate) fn instruction_data(
    order: &OrderRecord,
    view: &InstructionView,
    status: InstructionStatus,
    scheme: (&str, &str, Option<&str>),
    transaction: Option<&TransactionRecord>,
) -> Value {
    let order_metadata: Value = serde_json::from_str(&order.metadata).unwrap_or_else(|_| json!({}));
    let mut data = json!({
        "order": {"orderRef": order.order_ref, "metadata": order_metadata},
        "instruction": {
            "instructionRef": view.instruction_ref,
            "direction": view.direction.as_str(),
            "status": status.as_str(),
            "customerRef": view.customer_ref,
            "financialInstrumentId": view.financial_instrument.id,
            "amount": view.amount.to_string(),
            "currency": view.currency,
            "country": view.country,
            "settledByDate": view.settled_by_date.map(|d| d.to_string()),
            "metadata": view.metadata.to_json(),
        },
        "scheme": {"schemeId": scheme.0, "draftId": scheme.1, "code": scheme.2},
    });
    if let Some(t) = transaction {
        data["transaction"] = transaction_json(t);
    }
    data
}

pub(crate) fn transaction_json(t: &TransactionRecord) -> Value {
    json!({
        "transactionId": t.transaction_id,
        "appId": t.app_id,
        "paymentMethod": t.payment_method,
        "transactionType": t.transaction_type.as_str(),
        "attempt": t.attempt,
        "status": t.status.as_str(),
        "providerReference": t.provider_reference,
        "declineCategory": t.decline_category.map(|c| c.as_str()),
        "errorCode": t.error_code,
        "pspCode": t.psp_code,
    })
}

/// A notification as a job payload (only the kinds a PSP schedules for later).
pub(crate) fn notification_json(n: &Notification) -> Value {
    match n {
        Notification::Chargeback {
            payment_reference,
            dispute_reference,
            amount_minor,
            currency,
            reason,
            provider_reason_code,
            status,
            due_by,
        } => json!({
            "kind": "chargeback",
            "paymentReference": payment_reference,
            "disputeReference": dispute_reference,
            "amountMinor": amount_minor,
            "currency": currency.as_str(),
            "reason": reason.as_str(),
            "providerReasonCode": provider_reason_code,
            "status": status.as_str(),
            "dueBy": due_by,
        }),
        _ => json!({"kind": "ignored"}),
    }
}

/// The inverse of [`notification_json`].
pub(crate) fn notification_from_json(v: &Value) -> Option<Notification> {
    if v.get("kind")?.as_str()? != "chargeback" {
        return Some(Notification::Ignored);
    }
    Some(Notification::Chargeback {
        payment_reference: v.get("paymentReference")?.as_str()?.to_string(),
        dispute_reference: v.get("disputeReference")?.as_str()?.to_string(),
        amount_minor: v.get("amountMinor")?.as_i64()?,
        currency: v.get("currency")?.as_str()?.parse::<Currency>().ok()?,
        reason: v.get("reason")?.as_str()?.parse::<ChargebackReason>().ok()?,
        provider_reason_code: v.get("providerReasonCode").and_then(Value::as_str).map(str::to_string),
        status: v.get("status")?.as_str()?.parse::<ChargebackStatus>().ok()?,
        due_by: v.get("dueBy").and_then(Value::as_i64),
    })
}
