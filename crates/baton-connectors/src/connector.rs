//! The [`Connector`] trait: what every app does at its PSP, whatever the PSP.
//!
//! The engine owns the flow (routing, attempts, ledger, events); a connector only
//! translates one call into its PSP's API and the answer back into an [`Outcome`]. Every
//! money-moving call carries an idempotency key derived from the attempt, so sending it
//! again (a retry, a status sync after a crash) can never move money twice.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use baton_domain::{
    ChargebackReason, ChargebackStatus, Country, Currency, Decline, Environment, InstrumentDetails, TransactionType,
};
use serde_json::Value;

use crate::descriptor::AppDescriptor;

/// An installed app's configuration as the connector sees it: the public part and the
/// secrets (API keys, webhook secrets). Never printed.
#[derive(Clone, Default)]
pub struct AppCredentials {
    pub public: Value,
    pub secrets: Value,
}

impl AppCredentials {
    /// A string field from the secrets, then from the public part.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).and_then(Value::as_str).or_else(|| self.public.get(name).and_then(Value::as_str))
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials").field("public", &self.public).field("secrets", &"[redacted]").finish()
    }
}

/// Who is calling, and with what configuration.
#[derive(Debug, Clone)]
pub struct CallContext<'a> {
    pub environment: Environment,
    pub tenant_id: &'a str,
    pub credentials: &'a AppCredentials,
}

/// A debit or a credit.
#[derive(Clone)]
pub struct PaymentRequest<'a> {
    /// The attempt (Baton's transaction id).
    pub attempt_id: &'a str,
    /// Sent as the PSP's idempotency key; the same for every call of this attempt.
    pub idempotency_key: &'a str,
    pub amount_minor: i64,
    pub currency: Currency,
    pub country: Country,
    pub transaction_type: TransactionType,
    /// The payment method routing chose (`VISA`, `DIRECT_DEBIT`, `GIFT_CARD`, …).
    pub payment_method: Option<&'a str>,
    pub instrument: &'a InstrumentDetails,
    /// This app's token for the instrument, if it was tokenized here.
    pub token: Option<&'a str>,
    /// For the customer's statement and the PSP's dashboard: `orderRef/instructionRef`.
    pub description: &'a str,
    /// App-specific extras (a reward id for claims).
    pub extra: &'a Value,
}

impl fmt::Debug for PaymentRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentRequest")
            .field("attempt_id", &self.attempt_id)
            .field("amount_minor", &self.amount_minor)
            .field("currency", &self.currency)
            .field("transaction_type", &self.transaction_type)
            .field("payment_method", &self.payment_method)
            .finish_non_exhaustive()
    }
}

/// A refund of an earlier successful debit.
#[derive(Debug, Clone)]
pub struct RefundRequest<'a> {
    pub refund_id: &'a str,
    pub idempotency_key: &'a str,
    /// The debit's provider reference.
    pub payment_reference: &'a str,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// What was asked of the PSP for a refund whose answer was lost (or said nothing sure).
#[derive(Debug, Clone)]
pub struct RefundSyncRequest<'a> {
    /// The original call, exactly as it was made (same idempotency key).
    pub refund: RefundRequest<'a>,
    /// The PSP's reference of the refund, if an answer naming it was recorded before.
    pub provider_reference: Option<&'a str>,
    /// How long ago the refund was asked for.
    pub refund_age: Duration,
}

/// What was asked of the PSP by an attempt whose answer was lost.
#[derive(Clone)]
pub struct SyncRequest<'a> {
    /// The original call, exactly as it was made (same idempotency key).
    pub payment: PaymentRequest<'a>,
    /// The provider reference, if the PSP's answer was recorded before.
    pub provider_reference: Option<&'a str>,
    /// How long ago the attempt was made.
    pub attempt_age: std::time::Duration,
}

/// The final or provisional result of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Money moved.
    Succeeded {
        provider_reference: String,
        /// What the PSP returned that the customer needs (a claim's credentials).
        result: Option<Value>,
    },
    /// Accepted; the final outcome follows (by sync after `check_after`, or by notification).
    Pending { provider_reference: String, check_after: Duration },
    /// No money moved.
    Failed { decline: Decline, provider_reference: Option<String> },
}

/// The result of registering an instrument at a PSP.
#[derive(Debug, Clone, PartialEq)]
pub enum Tokenized {
    Token(String),
    /// The PSP takes the details with each call.
    NotNeeded,
    /// The PSP refused the instrument.
    Refused(Decline),
}

/// A notification the PSP will send by itself after `after`.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub after: Duration,
    pub notification: Notification,
}

/// A call that did not produce an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The request may have reached the PSP (timeout, connection lost after sending):
    /// the outcome is unknown and must be synced, never charged again blindly.
    #[error("the outcome is unknown: {0}")]
    Unknown(String),
    /// The connector cannot do this (operation not supported, configuration missing).
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// What a PSP notification says.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// A payment reached its outcome.
    Payment { provider_reference: String, outcome: Outcome },
    /// A refund reached its outcome.
    Refund { provider_reference: String, refund_reference: String, succeeded: bool },
    /// A dispute was opened or changed.
    Chargeback {
        /// The disputed payment.
        payment_reference: String,
        /// The dispute itself.
        dispute_reference: String,
        amount_minor: i64,
        currency: Currency,
        reason: ChargebackReason,
        provider_reason_code: Option<String>,
        status: ChargebackStatus,
        due_by: Option<i64>,
    },
    /// Understood and verified, but nothing Baton tracks.
    Ignored,
}

/// A file submitted to contest a dispute.
#[derive(Clone)]
pub struct EvidenceDocument {
    pub file_name: String,
    pub content: Vec<u8>,
}

impl fmt::Debug for EvidenceDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvidenceDocument")
            .field("file_name", &self.file_name)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// What Baton tells the PSP about a dispute.
#[derive(Debug, Clone)]
pub enum DisputeAction<'a> {
    /// Contest it with this evidence.
    SubmitEvidence { text: &'a str, documents: &'a [EvidenceDocument] },
    /// Accept the loss.
    Accept,
}

/// A call about an open dispute.
#[derive(Debug, Clone)]
pub struct DisputeRequest<'a> {
    /// The dispute's provider reference.
    pub dispute_reference: &'a str,
    /// The disputed payment's provider reference.
    pub payment_reference: &'a str,
    pub action: DisputeAction<'a>,
}

/// Why an incoming notification is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Signature missing, wrong or too old: the sender is not the PSP.
    #[error("unverified: {0}")]
    Unverified(String),
    /// Verified but not understood.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// An incoming HTTP notification.
#[derive(Debug, Clone, Copy)]
pub struct IncomingNotification<'a> {
    /// Header names in lower case.
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
    /// Unix seconds, for replay windows.
    pub now: i64,
}

/// One app's behaviour at its PSP.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    fn descriptor(&self) -> &'static AppDescriptor;

    /// Registers the instrument at the PSP and returns its token for this app, or
    /// `None` when the PSP takes raw details on each call.
    async fn tokenize(
        &self,
        ctx: &CallContext<'_>,
        instrument: &InstrumentDetails,
    ) -> Result<Tokenized, ConnectorError> {
        let _ = (ctx, instrument);
        Ok(Tokenized::NotNeeded)
    }

    /// Collects money from the customer (a sale).
    async fn debit(&self, ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError>;

    /// Pays money out to the customer.
    async fn credit(&self, ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        let _ = (ctx, request);
        Err(ConnectorError::Unsupported(format!("{} does not pay out", self.descriptor().app_id)))
    }

    /// Returns money of an earlier debit.
    async fn refund(&self, ctx: &CallContext<'_>, request: &RefundRequest<'_>) -> Result<Outcome, ConnectorError> {
        let _ = (ctx, request);
        Err(ConnectorError::Unsupported(format!("{} does not refund", self.descriptor().app_id)))
    }

    /// Finds out what became of an earlier refund whose answer was lost. By default the
    /// refund is asked for again with the same idempotency key, which a PSP that already
    /// made it answers with that refund, never a second one.
    async fn sync_refund(
        &self,
        ctx: &CallContext<'_>,
        request: &RefundSyncRequest<'_>,
    ) -> Result<Outcome, ConnectorError> {
        self.refund(ctx, &request.refund).await
    }

    /// Contests or accepts a dispute at the PSP.
    async fn dispute(&self, ctx: &CallContext<'_>, request: &DisputeRequest<'_>) -> Result<(), ConnectorError> {
        let _ = (ctx, request);
        Err(ConnectorError::Unsupported(format!("{} takes no dispute responses", self.descriptor().app_id)))
    }

    /// Finds out what became of an earlier debit or credit: with the same idempotency
    /// key, a PSP that already executed it answers with that result, never a new charge.
    async fn sync(&self, ctx: &CallContext<'_>, request: &SyncRequest<'_>) -> Result<Outcome, ConnectorError>;

    /// What the PSP will do later on its own after `outcome` (the sandbox's scripted
    /// chargebacks): notifications the engine delivers to itself after the delay.
    fn follow_ups(&self, request: &PaymentRequest<'_>, outcome: &Outcome) -> Vec<FollowUp> {
        let _ = (request, outcome);
        Vec::new()
    }

    /// Verifies an incoming notification's signature and reads it.
    fn parse_notification(
        &self,
        ctx: &CallContext<'_>,
        incoming: &IncomingNotification<'_>,
    ) -> Result<Vec<Notification>, NotificationError> {
        let _ = (ctx, incoming);
        Err(NotificationError::Unverified(format!("{} sends no notifications", self.descriptor().app_id)))
    }
}
