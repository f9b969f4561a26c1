//! The catalog of event types (`GET /v1/notifications/event-types`): every type with
//! what it announces, who receives it, and an example body as delivered.

use baton_domain::EventType;
use serde_json::{json, Value};

/// One entry of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTypeInfo {
    pub event_type: EventType,
    pub description: &'static str,
    /// `TENANT` (tenant endpoints) or `ACCOUNT` (account endpoints).
    pub scope: &'static str,
    /// A whole delivery body.
    pub example: Value,
}

fn describe(t: EventType) -> &'static str {
    use EventType::*;
    match t {
        InstructionCreated => "An instruction was created.",
        InstructionUpdated => "An instruction's status changed (any change: \"payment updated\").",
        InstructionProcessing => "An instruction was sent to a PSP and awaits its outcome.",
        InstructionSettled => "An instruction's payment settled.",
        InstructionFailed => "An instruction's payment failed; `data.transaction` carries the decline.",
        InstructionMissed => "An instruction passed its settle-by date unpaid (now LATE).",
        InstructionVoided => "An instruction was voided.",
        FinancialInstrumentCreated => "A financial instrument was stored in the customer vault.",
        FinancialInstrumentStateChanged => "A financial instrument changed state (for example ACTIVE to INACTIVE).",
        MandateRegistered => "A direct debit mandate was registered with the PSP.",
        RefundCreated => "A refund was requested.",
        RefundSettled => "A refund settled.",
        RefundFailed => "A refund failed.",
        ChargebackOpened => "A PSP reported a chargeback.",
        ChargebackUpdated => "A chargeback changed (evidence submitted, status updated).",
        ChargebackClosed => "A chargeback was closed (won, lost or accepted).",
        RewardClaimSettled => "A reward claim settled; the reward is issued.",
        RewardClaimFailed => "A reward claim failed.",
        PayByLinkOpened => "A customer opened a pay-by-link.",
        PayByLinkExpired => "A pay-by-link expired unpaid.",
        ReportReady => "A requested report is ready to download.",
        TenantApprovalRequested => "A tenant awaits approval (account endpoints).",
        WebhookEndpointDisabled => {
            "A webhook endpoint failed for the whole retry window and was disabled (account endpoints)."
        }
        Ping => "A test event sent by `POST …/webhooks/{id}/test` to that endpoint only.",
    }
}

fn instruction(status: &str) -> Value {
    json!({
        "order": {"orderRef": "ORDER-1001", "metadata": {"policy": "P-778"}},
        "instruction": {
            "instructionRef": "premium-2026-01",
            "direction": "DEBIT",
            "status": status,
            "customerRef": "cust-42",
            "financialInstrumentId": "0190f5e2-7a4c-7c1e-9a53-1b2c3d4e5f60",
            "amount": "49.90",
            "currency": "EUR",
            "country": "DE",
            "settledByDate": "2026-01-31",
            "metadata": {"installment": "1"},
        },
        "scheme": {"schemeId": "0190f5e2-1111-7c1e-9a53-1b2c3d4e5f60", "draftId": "0190f5e2-2222-7c1e-9a53-1b2c3d4e5f60", "code": "PREM"},
    })
}

fn transaction(status: &str) -> Value {
    json!({
        "transactionId": "0190f5e2-3333-7c1e-9a53-1b2c3d4e5f60",
        "appId": "SANDBOX_CARD",
        "paymentMethod": "CARD",
        "transactionType": "MIT",
        "attempt": 1,
        "status": status,
        "providerReference": "sbx_ch_0001",
        "declineCategory": if status == "FAILED" { json!("HARD_DECLINE") } else { Value::Null },
        "errorCode": if status == "FAILED" { json!("PAYMENT_DECLINED") } else { Value::Null },
        "pspCode": if status == "FAILED" { json!("card_declined") } else { Value::Null },
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn instrument(state: &str) -> Value {
    json!({"financialInstrument": {
        "financialInstrumentId": "0190f5e2-7a4c-7c1e-9a53-1b2c3d4e5f60", "customerRef": "cust-42", "type": "CARD",
        "state": state, "display": {"brand": "VISA", "last4": "4242", "expiryMonth": 12, "expiryYear": 2030}}})
}

fn refund(status: &str) -> Value {
    with(
        instruction("SETTLED"),
        "refund",
        json!({"refundRef": "R-1", "amount": "10.00", "currency": "EUR", "reason": "CUSTOMER_CHANGED_MIND",
               "status": status, "providerReference": "sbx_re_0001", "metadata": {}}),
    )
}

fn chargeback(status: &str) -> Value {
    with(
        instruction("SETTLED"),
        "chargeback",
        json!({"chargebackId": "0190f5e2-4444-7c1e-9a53-1b2c3d4e5f60", "amount": "49.90", "currency": "EUR",
               "reason": "FRAUD", "providerReasonCode": "10.4", "status": status, "dueBy": "2026-02-14T00:00:00.000Z"}),
    )
}

fn example_data(t: EventType) -> Value {
    use EventType::*;
    match t {
        InstructionCreated => instruction("READY"),
        InstructionUpdated | InstructionProcessing => {
            with(instruction("PROCESSING"), "transaction", transaction("PROCESSING"))
        }
        InstructionSettled => with(instruction("SETTLED"), "transaction", transaction("SETTLED")),
        InstructionFailed => with(instruction("FAILED"), "transaction", transaction("FAILED")),
        InstructionMissed => instruction("LATE"),
        InstructionVoided => instruction("VOID"),
        FinancialInstrumentCreated => instrument("ACTIVE"),
        FinancialInstrumentStateChanged => with(instrument("INACTIVE"), "previousState", json!("ACTIVE")),
        MandateRegistered => json!({"financialInstrument": {
            "financialInstrumentId": "0190f5e2-5555-7c1e-9a53-1b2c3d4e5f60", "customerRef": "cust-42",
            "type": "DIRECT_DEBIT_MANDATE", "state": "ACTIVE",
            "display": {"mandateReference": "MANDATE-1", "scheme": "SEPA", "iban": "DE89 **** **** **** **30 00"}},
            "appId": "SANDBOX_BANK"}),
        RefundCreated => refund("PENDING"),
        RefundSettled => refund("SETTLED"),
        RefundFailed => refund("FAILED"),
        ChargebackOpened => chargeback("OPEN"),
        ChargebackUpdated => chargeback("EVIDENCE_SUBMITTED"),
        ChargebackClosed => chargeback("WON"),
        RewardClaimSettled | RewardClaimFailed => {
            let status = if t == RewardClaimSettled { "SETTLED" } else { "FAILED" };
            let mut data = instruction(status);
            data["instruction"]["direction"] = json!("CREDIT");
            data["transaction"] = transaction(status);
            data["transaction"]["appId"] = json!("SANDBOX_REWARDS");
            data["claim"] = json!({"rewardId": "AMAZON-DE-10", "status": status});
            data
        }
        PayByLinkOpened | PayByLinkExpired => with(
            instruction("INCOMPLETE"),
            "payByLink",
            json!({"payByLinkId": "cGF5LWJ5LWxpbmstaWQxMg", "orderRef": "ORDER-1001",
                "instructionRef": "premium-2026-01",
                "status": if t == PayByLinkOpened { "OPENED" } else { "EXPIRED" },
                "expiresAt": "2026-01-16T09:30:00.000Z"}),
        ),
        ReportReady => json!({"report": {"reportId": "0190f5e2-7777-7c1e-9a53-1b2c3d4e5f60", "type": "TRANSACTIONS",
            "status": "READY", "rowCount": 1200, "expiresAt": "2026-02-07T00:00:00.000Z"}}),
        TenantApprovalRequested => json!({"tenant": {"tenantId": "0190f5e2-8888-7c1e-9a53-1b2c3d4e5f60",
            "name": "Acme Insurance", "status": "PENDING"}}),
        WebhookEndpointDisabled => json!({
            "webhook": {"webhookId": "0190f5e2-9999-7c1e-9a53-1b2c3d4e5f60",
                "tenantId": "0190f5e2-8888-7c1e-9a53-1b2c3d4e5f60", "url": "https://example.com/hooks/baton",
                "description": "Back office", "events": ["*"]},
            "reason": "FAILING", "failingSince": "2026-01-01T10:00:00.000Z", "disabledAt": "2026-01-04T10:00:00.000Z"}),
        Ping => json!({"webhookId": "0190f5e2-9999-7c1e-9a53-1b2c3d4e5f60", "message": "ping"}),
    }
}

/// Every event type, in catalog order.
pub fn event_types() -> Vec<EventTypeInfo> {
    EventType::ALL
        .iter()
        .map(|&t| {
            let account = t.is_account_event();
            EventTypeInfo {
                event_type: t,
                description: describe(t),
                scope: if account { "ACCOUNT" } else { "TENANT" },
                example: json!({
                    "eventId": "0190f5e2-0000-7c1e-9a53-1b2c3d4e5f60",
                    "eventType": t.as_str(),
                    "createdAt": "2026-01-15T09:30:00.000Z",
                    "accountId": "0190f5e2-aaaa-7c1e-9a53-1b2c3d4e5f60",
                    "tenantId": if account && t != EventType::WebhookEndpointDisabled {
                        Value::Null
                    } else {
                        json!("0190f5e2-8888-7c1e-9a53-1b2c3d4e5f60")
                    },
                    "data": example_data(t),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_an_example() {
        let all = event_types();
        assert_eq!(all.len(), EventType::ALL.len());
        for info in all {
            assert_eq!(info.example["eventType"], info.event_type.as_str());
            assert!(info.example["data"].is_object());
        }
    }
}
