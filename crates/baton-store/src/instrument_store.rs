//! Storage of the customer vault's financial instruments (SPEC §5.4), their state
//! history, and the record of erasures.
//!
//! The SQL lives in `portable_instruments.rs`, compiled into both backends. Every call
//! names the tenant and, for one customer's data, the customer: another tenant's or
//! customer's instrument is never reached.

use async_trait::async_trait;
use baton_domain::{InstrumentState, InstrumentType, StateReason};

use crate::StoreResult;

/// A financial instrument as stored. `details_sealed` and `provider_tokens_sealed`
/// are sealed with the customer's data key; `display` is JSON in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct InstrumentRecord {
    pub financial_instrument_id: String,
    pub tenant_id: String,
    pub customer_ref: String,
    pub kind: InstrumentType,
    pub state: InstrumentState,
    pub state_reason: Option<StateReason>,
    /// The display data, as JSON text.
    pub display: String,
    pub details_sealed: Vec<u8>,
    pub provider_tokens_sealed: Option<Vec<u8>>,
    pub single_use: bool,
    pub supports_debit: bool,
    pub supports_credit: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for InstrumentRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentRecord")
            .field("financial_instrument_id", &self.financial_instrument_id)
            .field("tenant_id", &self.tenant_id)
            .field("customer_ref", &self.customer_ref)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("state_reason", &self.state_reason)
            .field("display", &self.display)
            .field("details_sealed", &"[sealed]")
            .field("provider_tokens_sealed", &self.provider_tokens_sealed.as_ref().map(|_| "[sealed]"))
            .field("single_use", &self.single_use)
            .field("supports_debit", &self.supports_debit)
            .field("supports_credit", &self.supports_credit)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// One entry of an instrument's state history (`seq` 1 is its state at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentStateRecord {
    pub seq: i64,
    pub state: InstrumentState,
    pub reason: Option<StateReason>,
    pub changed_at: i64,
}

/// A customer's erasure (right to be forgotten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRecord {
    pub erasure_id: String,
    pub tenant_id: String,
    pub customer_ref: String,
    pub instruments_closed: i64,
    pub created_at: i64,
}

#[async_trait]
pub trait InstrumentStore: Send + Sync + 'static {
    /// Inserts an instrument with the first entry of its history (its state at
    /// creation), in one transaction.
    async fn insert_instrument(&self, record: &InstrumentRecord) -> StoreResult<()>;
    async fn instrument(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
    ) -> StoreResult<Option<InstrumentRecord>>;
    /// The customer's instruments (optionally only those in `state`), oldest first.
    async fn instruments(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        state: Option<InstrumentState>,
    ) -> StoreResult<Vec<InstrumentRecord>>;
    /// The instrument's state history, oldest first (empty if there is no such instrument).
    async fn instrument_history(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
    ) -> StoreResult<Vec<InstrumentStateRecord>>;
    /// Moves the instrument to `to` (with `reason`) if it is still in `from`, and appends
    /// the change to its history, in one transaction. `false` (nothing changed) if the
    /// instrument is absent or no longer in `from`: of concurrent changes from the same
    /// state, exactly one applies.
    #[allow(clippy::too_many_arguments)]
    async fn change_instrument_state(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
        from: InstrumentState,
        to: InstrumentState,
        reason: Option<StateReason>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Closes every instrument of the customer not yet `CLOSED` (each with a history
    /// entry carrying `reason`), and records the erasure with the number closed, in one
    /// transaction. Returns the record as written (`instruments_closed` filled in).
    async fn erase_customer_instruments(
        &self,
        erasure_id: &str,
        tenant_id: &str,
        customer_ref: &str,
        reason: Option<StateReason>,
        now: i64,
    ) -> StoreResult<ErasureRecord>;
    async fn erasure(&self, tenant_id: &str, erasure_id: &str) -> StoreResult<Option<ErasureRecord>>;
    /// Whether one of the customer's instructions is `PROCESSING` (money moving now),
    /// which erasure must not interrupt.
    async fn customer_has_processing_instruction(&self, tenant_id: &str, customer_ref: &str) -> StoreResult<bool>;
}
