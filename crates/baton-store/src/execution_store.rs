//! Storage of execution: transactions (one per attempt at a PSP), the outbox of events
//! and the workers' job queue.
//!
//! Writes go through [`ExecutionStore::apply`]: a list of [`Change`]s applied in one
//! database transaction, so a state change, the event announcing it and the job that
//! follows it up are committed together or not at all. Guarded changes (a status that
//! must still be what the caller saw) make the whole list a no-op when one of them
//! finds nothing to change. The SQL lives in `portable_execution.rs`.

use async_trait::async_trait;
use baton_domain::{
    DeclineCategory, EventType, InstructionStatus, InstrumentState, Operation, StateReason, TransactionStatus,
    TransactionType,
};

use crate::StoreResult;

/// One attempt at a PSP.
#[derive(Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    pub transaction_id: String,
    pub tenant_id: String,
    pub order_id: String,
    pub instruction_id: String,
    pub customer_ref: String,
    pub financial_instrument_id: Option<String>,
    pub app_id: String,
    pub payment_method: Option<String>,
    pub operation: Operation,
    pub transaction_type: TransactionType,
    /// 1 for the first app tried for an execution, 2 for the failover after it, …
    pub attempt: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub status: TransactionStatus,
    /// Sent with every call of this attempt, so a retry can never move money twice.
    pub idempotency_key: String,
    pub provider_reference: Option<String>,
    pub decline_category: Option<DeclineCategory>,
    pub error_code: Option<String>,
    pub psp_code: Option<String>,
    pub psp_message: Option<String>,
    /// Time spent waiting for the PSP.
    pub connector_ms: Option<i64>,
    pub reward_id: Option<String>,
    /// What the PSP returned that must stay secret (a claim's credentials), sealed
    /// with the customer's data key.
    pub result_sealed: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// The node that made the attempt: while the attempt is `PENDING`, that node is
    /// calling the PSP, so if it dies the attempt is synced without waiting.
    pub node_id: Option<String>,
}

impl std::fmt::Debug for TransactionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionRecord")
            .field("transaction_id", &self.transaction_id)
            .field("instruction_id", &self.instruction_id)
            .field("app_id", &self.app_id)
            .field("operation", &self.operation)
            .field("attempt", &self.attempt)
            .field("status", &self.status)
            .field("provider_reference", &self.provider_reference)
            .field("error_code", &self.error_code)
            .field("result_sealed", &self.result_sealed.as_ref().map(|_| "[sealed]"))
            .finish_non_exhaustive()
    }
}

/// The outcome recorded on an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransactionOutcome {
    pub provider_reference: Option<String>,
    pub decline_category: Option<DeclineCategory>,
    pub error_code: Option<String>,
    pub psp_code: Option<String>,
    pub psp_message: Option<String>,
    pub connector_ms: Option<i64>,
    pub result_sealed: Option<Vec<u8>>,
}

/// An event for the outbox. The account is looked up from the tenant when not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub event_id: String,
    pub account_id: Option<String>,
    pub tenant_id: Option<String>,
    pub event_type: EventType,
    /// Events with the same key are delivered in order (an instruction's id).
    pub ordering_key: Option<String>,
    /// The event's `data` object, as JSON text.
    pub data: String,
    pub created_at: i64,
}

/// An event as stored, with its position in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: EventRecord,
    pub dispatched_at: Option<i64>,
}

/// A unit of background work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub job_id: String,
    /// What to do (`settle-transaction`, …); the engine owns the words.
    pub kind: String,
    /// What it is about; one job per `(kind, subject_id)`.
    pub subject_id: String,
    pub tenant_id: Option<String>,
    /// JSON text.
    pub payload: String,
    pub run_at: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl JobRecord {
    /// A new job of `kind` about `subject_id`, due at `run_at`, not yet tried.
    pub fn new(
        job_id: String,
        kind: &str,
        subject_id: &str,
        tenant_id: &str,
        payload: String,
        run_at: i64,
        now: i64,
    ) -> Self {
        Self {
            job_id,
            kind: kind.to_string(),
            subject_id: subject_id.to_string(),
            tenant_id: Some(tenant_id.to_string()),
            payload,
            run_at,
            attempts: 0,
            last_error: None,
            created_at: now,
        }
    }
}

/// One write of [`ExecutionStore::apply`].
// Changes live in short lists for one call; boxing the attempt would buy nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    InsertTransaction(Box<TransactionRecord>),
    /// Guarded: the attempt must be in one of `from`.
    FinishTransaction {
        tenant_id: String,
        transaction_id: String,
        from: Vec<TransactionStatus>,
        to: TransactionStatus,
        outcome: TransactionOutcome,
    },
    /// Guarded: the instruction must be in one of `from`. Leaving the updatable
    /// statuses freezes the inherited values into the instruction.
    InstructionStatus {
        tenant_id: String,
        order_id: String,
        instruction_id: String,
        from: Vec<InstructionStatus>,
        to: InstructionStatus,
    },
    /// Guarded: starts processing the instruction the caller read (`seen`): moves it from
    /// `seen.status` to `PROCESSING` only while it still stands exactly as read (its own
    /// values and, while it is updatable, its customer default `default`, `None` when it
    /// had none) and the financial instrument it is paid with is `ACTIVE`. What it
    /// inherited is frozen from those rows, so what is charged is what the instruction
    /// then shows. One statement besides the order's touch.
    StartProcessing {
        seen: Box<crate::InstructionRecord>,
        default: Option<Box<crate::CustomerDefaultRecord>>,
    },
    /// Guarded: the instrument must be in `from`; appends to its history.
    InstrumentState {
        tenant_id: String,
        customer_ref: String,
        instrument_id: String,
        from: InstrumentState,
        to: InstrumentState,
        reason: Option<StateReason>,
    },
    /// Inserts a financial instrument with the first entry of its history.
    InsertInstrument(Box<crate::InstrumentRecord>),
    /// Replaces the PSP tokens of an instrument (sealed with the customer's data key).
    InstrumentTokens {
        tenant_id: String,
        customer_ref: String,
        instrument_id: String,
        provider_tokens_sealed: Vec<u8>,
    },
    Event(EventRecord),
    /// Inserts a job, or moves the existing one of the same `(kind, subject_id)` to
    /// this `run_at` and payload.
    ScheduleJob(JobRecord),
    /// Removes the job of `(kind, subject_id)`, if any (its work was done another way).
    DeleteJobFor {
        kind: String,
        subject_id: String,
    },
    /// Removes a job (done).
    DeleteJob {
        job_id: String,
    },
    /// Sets the instruction's own financial instrument (guarded: the instruction exists).
    AttachInstrument {
        tenant_id: String,
        order_id: String,
        instruction_id: String,
        instrument_id: String,
        source: baton_domain::Source,
    },
    /// Draws `amount_minor` from a REWARD app's funding account. Guarded: the account
    /// exists and holds at least that much, so concurrent draws never overdraw it.
    DebitRewardAccount {
        tenant_id: String,
        app_id: String,
        amount_minor: i64,
    },
    /// Gives `amount_minor` back to a REWARD app's funding account (a failed claim).
    CreditRewardAccount {
        tenant_id: String,
        app_id: String,
        amount_minor: i64,
    },
    // Refunds and chargebacks (`refund_store.rs`) ---------------------------------
    /// Guarded: inserts the refund only while the instruction's refunds that have not
    /// failed, this one included, total at most `limit_minor` (the settled amount).
    /// Locks the settled transaction's row first, so concurrent refunds are serialised.
    InsertRefund {
        refund: crate::RefundRecord,
        limit_minor: i64,
    },
    /// Guarded: the refund must be in one of `from`.
    FinishRefund {
        tenant_id: String,
        refund_id: String,
        from: Vec<baton_domain::RefundStatus>,
        to: baton_domain::RefundStatus,
        outcome: TransactionOutcome,
    },
    /// Guarded: no chargeback of the same `(tenant, app, provider reference)` exists yet.
    InsertChargeback(crate::ChargebackRecord),
    /// Guarded: the chargeback must be in `from`.
    ChargebackStatus {
        tenant_id: String,
        chargeback_id: String,
        from: baton_domain::ChargebackStatus,
        to: baton_domain::ChargebackStatus,
        /// Replaces the stored evidence when given.
        evidence: Option<String>,
    },
    // Pay-by-links and their messages (`pay_by_link_store.rs`) ---------------------
    InsertPayByLink(Box<crate::PayByLinkRecord>),
    /// Guarded: the link must be in one of `from`. Moving to `OPENED` records when it
    /// was first opened; moving to a final status records when it ended.
    PayByLinkStatus {
        tenant_id: String,
        pay_by_link_id: String,
        from: Vec<baton_domain::PayByLinkStatus>,
        to: baton_domain::PayByLinkStatus,
    },
    /// Guarded, writes nothing: the link is `ACTIVE` or `OPENED` and unexpired at the
    /// list's `now`. Placed after the change that starts a payment of the link's
    /// checkout, it takes the link's row lock (an update that changes nothing), so a
    /// cancel committed first fails the start, and a cancel in progress waits for the
    /// start and then finds its instruction paying (see `InstructionStatusIn`).
    PayByLinkLive {
        tenant_id: String,
        pay_by_link_id: String,
    },
    /// Guarded, writes nothing: the instruction is in one of `statuses`, as committed
    /// when this change runs (a plain read, taking no lock). Placed after a change that
    /// locks a row the instruction's other writers lock too (a link's status move), it
    /// sees what they committed before that lock was granted.
    InstructionStatusIn {
        tenant_id: String,
        instruction_id: String,
        statuses: Vec<baton_domain::InstructionStatus>,
    },
    InsertMessageDelivery(Box<crate::MessageDeliveryRecord>),
    /// Guarded: the message must be in `from`. Records the sends tried and the last
    /// error (cleared when `None`); moving to `SENT` records when.
    MessageDeliveryStatus {
        tenant_id: String,
        delivery_id: String,
        from: baton_domain::DeliveryStatus,
        to: baton_domain::DeliveryStatus,
        attempts: i64,
        last_error: Option<String>,
    },
}

/// What executing an instruction starts from, read in one statement (so from one
/// snapshot): the order, the instruction with its customer default, the financial
/// instrument it would be paid with and its customer's data key, and the tenant's
/// routing version (see `RoutingStore`).
#[derive(Debug, Clone)]
pub struct ExecutionSubject {
    pub order: crate::OrderRecord,
    /// `None` when the order has no instruction with the ref asked for.
    pub instruction: Option<crate::InstructionRecord>,
    /// The order's defaults for the instruction's customer, if it has some.
    pub default: Option<crate::CustomerDefaultRecord>,
    /// The instruction's effective financial instrument (its own or, while it is
    /// updatable, the default's), if it has one and it exists.
    pub instrument: Option<crate::InstrumentRecord>,
    /// The customer's data key, if one was ever created (shredded keys included).
    pub customer_key: Option<crate::CustomerKeyRecord>,
    pub routing_version: i64,
}

#[async_trait]
pub trait ExecutionStore: Send + Sync + 'static {
    /// The order `order_ref` of the tenant with its instruction `instruction_ref` and
    /// what executing it needs ([`ExecutionSubject`]); `None` if there is no such order.
    async fn execution_subject(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> StoreResult<Option<ExecutionSubject>>;
    /// Applies `changes` in order in one transaction. `false` (and nothing applied)
    /// when a guarded change found its row absent or in another state.
    async fn apply(&self, changes: &[Change], now: i64) -> StoreResult<bool>;

    async fn transaction(&self, tenant_id: &str, transaction_id: &str) -> StoreResult<Option<TransactionRecord>>;
    /// The instruction's attempts, oldest first.
    async fn instruction_transactions(
        &self,
        tenant_id: &str,
        instruction_id: &str,
    ) -> StoreResult<Vec<TransactionRecord>>;
    /// The attempt an app knows by `provider_reference`.
    async fn transaction_by_provider_reference(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider_reference: &str,
    ) -> StoreResult<Option<TransactionRecord>>;
    /// Attempts still `PENDING` that were last touched before `before`, or whose node
    /// was last heard from before `lost_before` (it died calling the PSP): their call
    /// was cut off (crash, timeout) and their outcome must be synced.
    async fn stale_pending_transactions(
        &self,
        before: i64,
        lost_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<TransactionRecord>>;

    /// Claims up to `limit` jobs due at `now` that no other worker holds (none, or one
    /// whose lease ran out or whose node is dead), leasing them to `claimant` until
    /// `locked_until` and counting the attempt. Safe across nodes.
    async fn claim_jobs(
        &self,
        now: i64,
        locked_until: i64,
        limit: u32,
        claimant: crate::Claimant<'_>,
    ) -> StoreResult<Vec<JobRecord>>;
    /// Gives a claimed job back to run again at `run_at`, with the error that stopped it.
    async fn retry_job(&self, job_id: &str, run_at: i64, error: &str) -> StoreResult<()>;
    async fn job(&self, kind: &str, subject_id: &str) -> StoreResult<Option<JobRecord>>;

    async fn order_by_id(&self, tenant_id: &str, order_id: &str) -> StoreResult<Option<crate::OrderRecord>>;
    async fn instruction_by_id(
        &self,
        tenant_id: &str,
        instruction_id: &str,
    ) -> StoreResult<Option<crate::InstructionRecord>>;

    /// The tenant's events, oldest first (tests and the event log).
    async fn events(&self, tenant_id: &str) -> StoreResult<Vec<StoredEvent>>;

    /// `READY`/`INCOMPLETE` instructions whose settle-by date is before `today`
    /// (`YYYY-MM-DD`, UTC): due to become `LATE`.
    async fn instructions_due_late(&self, today: &str, limit: u32) -> StoreResult<Vec<crate::InstructionRecord>>;
    /// `READY` `DEBIT` instructions whose settle-by date is `today` or earlier (not yet
    /// marked late): due for automatic collection. In scan order, those after `after`:
    /// rows the worker passes over stay due, and must not hide the rest.
    async fn instructions_due_collection(
        &self,
        today: &str,
        after: &DuePosition,
        limit: u32,
    ) -> StoreResult<Vec<crate::InstructionRecord>>;
}

/// A place in the scan of due instructions, ordered by settle-by date, creation and id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuePosition {
    pub settled_by_date: String,
    pub created_at: i64,
    pub instruction_id: String,
}

impl DuePosition {
    /// Before every instruction.
    pub fn start() -> Self {
        Self { settled_by_date: String::new(), created_at: i64::MIN, instruction_id: String::new() }
    }

    /// Right at `instruction` (the next scan starts after it).
    pub fn of(instruction: &crate::InstructionRecord) -> Self {
        Self {
            settled_by_date: instruction.settled_by_date.clone().unwrap_or_default(),
            created_at: instruction.created_at,
            instruction_id: instruction.instruction_id.clone(),
        }
    }
}
