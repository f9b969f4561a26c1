//! The events Baton announces (SPEC §5.1). Each is written to the outbox in the same
//! database transaction as the change it announces; the webhook worker delivers them.

use crate::words::word_enum;

word_enum!(
    /// Every event type, by its wire name.
    EventType, "INVALID_EVENT_TYPE", [
        InstructionCreated => "instruction.created",
        InstructionUpdated => "instruction.updated",
        InstructionProcessing => "instruction.processing",
        InstructionSettled => "instruction.settled",
        InstructionFailed => "instruction.failed",
        InstructionMissed => "instruction.missed",
        InstructionVoided => "instruction.voided",
        FinancialInstrumentCreated => "financial_instrument.created",
        FinancialInstrumentStateChanged => "financial_instrument.state_changed",
        MandateRegistered => "mandate.registered",
        RefundCreated => "refund.created",
        RefundSettled => "refund.settled",
        RefundFailed => "refund.failed",
        ChargebackOpened => "chargeback.opened",
        ChargebackUpdated => "chargeback.updated",
        ChargebackClosed => "chargeback.closed",
        RewardClaimSettled => "reward.claim.settled",
        RewardClaimFailed => "reward.claim.failed",
        PayByLinkOpened => "pay_by_link.opened",
        PayByLinkExpired => "pay_by_link.expired",
        ReportReady => "report.ready",
        TenantApprovalRequested => "tenant.approval_requested",
        WebhookEndpointDisabled => "webhook_endpoint.disabled",
        Ping => "ping",
    ]
);

impl EventType {
    /// Account-level events go to the account's endpoints, all others to the tenant's.
    pub fn is_account_event(self) -> bool {
        matches!(self, EventType::TenantApprovalRequested | EventType::WebhookEndpointDisabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        }
        assert_eq!("Instruction.Settled".parse::<EventType>(), Ok(EventType::InstructionSettled));
    }
}
