//! Moving money: the statuses of transactions (one per attempt at a PSP), refunds,
//! chargebacks and reward claims, and the one decline taxonomy every connector maps
//! its PSP's errors onto.

use crate::problem::Problem;
use crate::words::word_enum;

word_enum!(
    /// Where one attempt at a PSP stands.
    ///
    /// `PENDING`: recorded before the call and not yet answered; after a crash or a
    /// timeout its outcome is unknown and only the connector's status sync may resolve it.
    /// `PROCESSING`: accepted by the PSP, final outcome later (bank collections, claims).
    TransactionStatus, "INVALID_TRANSACTION_STATUS", [
        Pending => "PENDING",
        Processing => "PROCESSING",
        Settled => "SETTLED",
        Failed => "FAILED",
    ]
);

impl TransactionStatus {
    /// `PENDING` → `PROCESSING`/`SETTLED`/`FAILED`; `PROCESSING` → `SETTLED`/`FAILED`.
    pub fn can_transition_to(self, to: TransactionStatus) -> bool {
        use TransactionStatus::*;
        matches!((self, to), (Pending, Processing | Settled | Failed) | (Processing, Settled | Failed))
    }

    pub fn is_final(self) -> bool {
        matches!(self, TransactionStatus::Settled | TransactionStatus::Failed)
    }
}

word_enum!(
    /// What a transaction does at the PSP.
    Operation, "INVALID_OPERATION", [
        Debit => "DEBIT",
        Credit => "CREDIT",
        Refund => "REFUND",
        RewardClaim => "REWARD_CLAIM",
    ]
);

word_enum!(
    /// The one decline taxonomy: every PSP error maps onto one of these.
    DeclineCategory, "INVALID_DECLINE_CATEGORY", [
        HardDecline => "HARD_DECLINE",
        SoftDecline => "SOFT_DECLINE",
        InsufficientFunds => "INSUFFICIENT_FUNDS",
        FraudSuspected => "FRAUD_SUSPECTED",
        AuthenticationRequired => "AUTHENTICATION_REQUIRED",
        Technical => "TECHNICAL",
    ]
);

impl DeclineCategory {
    /// The error code a client sees for a failure of this category, unless the connector
    /// names a more specific one (`MANDATE_CANCELLED`).
    pub fn error_code(self) -> &'static str {
        match self {
            DeclineCategory::HardDecline => "PAYMENT_DECLINED",
            DeclineCategory::SoftDecline => "PAYMENT_DECLINED_RETRYABLE",
            DeclineCategory::InsufficientFunds => "INSUFFICIENT_FUNDS",
            DeclineCategory::FraudSuspected => "FRAUD_SUSPECTED",
            DeclineCategory::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            DeclineCategory::Technical => "PSP_UNAVAILABLE",
        }
    }

    /// Whether the next app of the same rule may be tried: after a technical error or a
    /// soft decline, never after a decline the issuer meant.
    pub fn allows_failover(self) -> bool {
        matches!(self, DeclineCategory::Technical | DeclineCategory::SoftDecline)
    }
}

/// Why an attempt failed: Baton's category and code, and the PSP's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    pub category: DeclineCategory,
    /// Baton's error code (`PAYMENT_DECLINED`, `MANDATE_CANCELLED`, …).
    pub code: String,
    pub psp_code: Option<String>,
    pub psp_message: Option<String>,
}

impl Decline {
    /// A decline with the category's own error code.
    pub fn new(category: DeclineCategory) -> Self {
        Self { category, code: category.error_code().to_string(), psp_code: None, psp_message: None }
    }

    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }

    pub fn psp(mut self, code: Option<String>, message: Option<String>) -> Self {
        self.psp_code = code;
        self.psp_message = message;
        self
    }

    /// The client-facing problem: `402` with Baton's code, the category and the PSP code.
    pub fn problem(&self) -> Problem {
        let mut p = Problem::new(crate::ProblemKind::PaymentRequired, self.code.clone())
            .message("The payment was not completed: {category}.")
            .detail("category", self.category.as_str());
        if let Some(code) = &self.psp_code {
            p = p.detail("pspCode", code.clone());
        }
        p
    }
}

word_enum!(
    /// Why a refund is made (SPEC §5.2).
    RefundReason, "INVALID_REFUND_REASON", [
        OrderNotFulfilled => "ORDER_NOT_FULFILLED",
        CustomerChangedMind => "CUSTOMER_CHANGED_MIND",
        IncorrectBilling => "INCORRECT_BILLING",
        Duplicate => "DUPLICATE",
        Other => "OTHER",
    ]
);

word_enum!(
    /// A refund's status (SPEC §5.2).
    RefundStatus, "INVALID_REFUND_STATUS", [
        Pending => "PENDING",
        Processing => "PROCESSING",
        Settled => "SETTLED",
        Failed => "FAILED",
    ]
);

word_enum!(
    /// Why the issuer reversed a payment (SPEC §0, §5.3).
    ChargebackReason, "INVALID_CHARGEBACK_REASON", [
        Fraud => "FRAUD",
        Quality => "QUALITY",
        Clerical => "CLERICAL",
        Technical => "TECHNICAL",
    ]
);

word_enum!(
    /// A chargeback's status (SPEC §5.3).
    ChargebackStatus, "INVALID_CHARGEBACK_STATUS", [
        Open => "OPEN",
        EvidenceSubmitted => "EVIDENCE_SUBMITTED",
        Won => "WON",
        Lost => "LOST",
        Accepted => "ACCEPTED",
    ]
);

impl ChargebackStatus {
    /// `OPEN` → evidence or acceptance; evidence → won or lost; the PSP may also decide
    /// an open dispute directly. `WON`, `LOST`, `ACCEPTED` are final.
    pub fn can_transition_to(self, to: ChargebackStatus) -> bool {
        use ChargebackStatus::*;
        matches!((self, to), (Open, EvidenceSubmitted | Accepted | Won | Lost) | (EvidenceSubmitted, Won | Lost))
    }

    pub fn is_closed(self) -> bool {
        matches!(self, ChargebackStatus::Won | ChargebackStatus::Lost | ChargebackStatus::Accepted)
    }
}

word_enum!(
    /// A reward claim's status (SPEC §4.10).
    ClaimStatus, "INVALID_CLAIM_STATUS", [
        Settling => "SETTLING",
        Settled => "SETTLED",
        Failed => "FAILED",
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_technical_errors_and_soft_declines_fail_over() {
        let failover: Vec<_> = DeclineCategory::ALL.iter().filter(|c| c.allows_failover()).collect();
        assert_eq!(failover, [&DeclineCategory::SoftDecline, &DeclineCategory::Technical]);
    }

    #[test]
    fn transactions_never_leave_a_final_status() {
        for from in TransactionStatus::ALL {
            for to in TransactionStatus::ALL {
                if from.is_final() {
                    assert!(!from.can_transition_to(*to), "{from} -> {to}");
                }
            }
            assert!(!from.can_transition_to(*from));
        }
        assert!(TransactionStatus::Pending.can_transition_to(TransactionStatus::Settled));
        assert!(!TransactionStatus::Processing.can_transition_to(TransactionStatus::Pending));
    }

    #[test]
    fn closed_chargebacks_stay_closed() {
        for from in ChargebackStatus::ALL.iter().filter(|s| s.is_closed()) {
            assert!(ChargebackStatus::ALL.iter().all(|to| !from.can_transition_to(*to)));
        }
    }

    #[test]
    fn a_decline_renders_its_code_and_category() {
        let d = Decline::new(DeclineCategory::InsufficientFunds).psp(Some("51".into()), None);
        let p = d.problem();
        assert_eq!(p.code, "INSUFFICIENT_FUNDS");
        assert_eq!(p.kind, crate::ProblemKind::PaymentRequired);
        assert_eq!(p.render(&[]), "The payment was not completed: [INSUFFICIENT_FUNDS].");
    }
}
