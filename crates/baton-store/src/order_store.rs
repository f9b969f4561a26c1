//! Storage of orders, their customer defaults and their instructions (SPEC §4.9).
//!
//! The SQL lives in `portable_orders.rs`, compiled into both backends. Every call names
//! the tenant. Every write to an order's defaults or instructions first touches the
//! order row (a row lock on PostgreSQL; SQLite serialises writers anyway), so writes to
//! one order are serialised, and ends by re-resolving the status of the affected
//! unprocessed instructions (`INCOMPLETE`/`READY`) in the same transaction: an
//! instruction is `READY` when its effective scheme is set and its effective financial
//! instrument exists for the same tenant and customer and is `ACTIVE`.

use async_trait::async_trait;
use baton_domain::{Direction, InstructionStatus, Source};

use crate::StoreResult;

/// An order. `metadata` is a JSON object, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub order_id: String,
    pub tenant_id: String,
    pub order_ref: String,
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A customer's defaults within an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDefaultRecord {
    pub order_id: String,
    pub customer_ref: String,
    pub financial_instrument_id: Option<String>,
    pub instrument_source: Source,
    pub scheme_id: Option<String>,
    pub scheme_source: Source,
    /// A JSON object, as text.
    pub metadata: String,
    pub updated_at: i64,
}

/// An instruction with its own (not inherited) values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionRecord {
    pub instruction_id: String,
    pub tenant_id: String,
    pub order_id: String,
    pub instruction_ref: String,
    pub customer_ref: String,
    pub direction: Direction,
    pub status: InstructionStatus,
    pub financial_instrument_id: Option<String>,
    pub instrument_source: Source,
    pub scheme_id: Option<String>,
    pub scheme_source: Source,
    pub amount_minor: i64,
    pub currency: String,
    pub country: String,
    /// `YYYY-MM-DD`.
    pub settled_by_date: Option<String>,
    /// A JSON object, as text.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl InstructionRecord {
    /// The instruction as it is kept once it leaves the updatable statuses
    /// (`INCOMPLETE`, `READY`): what it inherits from its customer default `default` is
    /// written into it (source `CUSTOMER_DEFAULT` kept; metadata merged per key, its own
    /// winning). An instruction past those statuses has been frozen already and is
    /// returned as it is.
    pub fn frozen(&self, default: Option<&CustomerDefaultRecord>) -> crate::StoreResult<InstructionRecord> {
        let mut r = self.clone();
        let Some(d) = default.filter(|_| self.status.can_update()) else { return Ok(r) };
        if r.financial_instrument_id.is_none() && d.financial_instrument_id.is_some() {
            r.financial_instrument_id = d.financial_instrument_id.clone();
            r.instrument_source = Source::CustomerDefault;
        }
        if r.scheme_id.is_none() && d.scheme_id.is_some() {
            r.scheme_id = d.scheme_id.clone();
            r.scheme_source = Source::CustomerDefault;
        }
        let parse = |text: &str| {
            serde_json::from_str::<std::collections::BTreeMap<String, String>>(text)
                .map_err(|e| crate::StoreError::Corrupt(format!("metadata: {e}")))
        };
        let mut merged = parse(&d.metadata)?;
        merged.extend(parse(&r.metadata)?);
        r.metadata = serde_json::to_string(&merged).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        Ok(r)
    }
}

/// One field of a customer default to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultChange {
    Instrument(Option<String>, Source),
    Scheme(Option<String>, Source),
    /// A JSON object, as text.
    Metadata(String),
}

/// A position in a listing ordered by `(created_at, id)` (the chargeback listing: newest
/// first, `created_at` descending then id ascending): a page starts strictly after it.
/// Both parts never change once a row exists, so a position handed out stays valid and
/// rows inserted later never shift the rows that were already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub created_at: i64,
    pub id: String,
}

/// Filters of the tenant's order listing (all given ones must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Orders having an instruction or a customer default for this customer.
    pub customer_ref: Option<String>,
    /// `created_at >= created_from` (Unix ms).
    pub created_from: Option<i64>,
    /// `created_at < created_before` (Unix ms).
    pub created_before: Option<i64>,
}

/// Filters of the tenant's instruction listing (all given ones must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstructionFilter {
    /// Any of these statuses; no filter when empty.
    pub statuses: Vec<InstructionStatus>,
    pub customer_ref: Option<String>,
    pub direction: Option<Direction>,
    /// ISO 4217 code, upper case (as stored).
    pub currency: Option<String>,
    /// `created_at >= created_from` (Unix ms).
    pub created_from: Option<i64>,
    /// `created_at < created_before` (Unix ms).
    pub created_before: Option<i64>,
    /// Inclusive `YYYY-MM-DD` bounds on the settle-by date; an instruction without
    /// one never matches a bound.
    pub settled_by_from: Option<String>,
    pub settled_by_to: Option<String>,
}

/// An instruction of a listing, with the ref of its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedInstruction {
    pub order_ref: String,
    pub instruction: InstructionRecord,
}

/// How new instructions are announced: the outbox event made of an instruction as it is
/// stored (its status resolved), written in the transaction that creates it.
pub type Announcement = std::sync::Arc<dyn Fn(&InstructionRecord) -> StoreResult<crate::EventRecord> + Send + Sync>;

#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    /// Inserts an order with its customer defaults and instructions in one transaction
    /// (statuses re-resolved before commit). `Conflict("orders_ref_unique")` for a taken
    /// `orderRef`, `Conflict("instructions_ref_unique")` for a repeated `instructionRef`;
    /// nothing is stored then.
    async fn create_order(
        &self,
        order: &OrderRecord,
        defaults: &[CustomerDefaultRecord],
        instructions: &[InstructionRecord],
    ) -> StoreResult<()> {
        self.create_order_announced(order, defaults, instructions, None).await.map(|_| ())
    }
    /// [`OrderStore::create_order`], announcing each instruction with `announce` (in the
    /// same transaction). Returns the instructions as stored, statuses resolved.
    async fn create_order_announced(
        &self,
        order: &OrderRecord,
        defaults: &[CustomerDefaultRecord],
        instructions: &[InstructionRecord],
        announce: Option<Announcement>,
    ) -> StoreResult<Vec<InstructionRecord>>;
    async fn order(&self, tenant_id: &str, order_ref: &str) -> StoreResult<Option<OrderRecord>>;
    /// The order's customer defaults, by customer ref.
    async fn customer_defaults(&self, tenant_id: &str, order_id: &str) -> StoreResult<Vec<CustomerDefaultRecord>>;
    /// The order's instructions, oldest first.
    async fn order_instructions(&self, tenant_id: &str, order_id: &str) -> StoreResult<Vec<InstructionRecord>>;
    /// Replaces the order's metadata; `false` if there is no such order.
    async fn set_order_metadata(&self, tenant_id: &str, order_id: &str, metadata: &str, now: i64) -> StoreResult<bool>;
    /// Inserts or replaces customer defaults and re-resolves the customers' unprocessed
    /// instructions; `false` if there is no such order.
    async fn put_customer_defaults(
        &self,
        tenant_id: &str,
        order_id: &str,
        defaults: &[CustomerDefaultRecord],
        now: i64,
    ) -> StoreResult<bool>;
    /// Changes one field of an existing customer default and re-resolves the customer's
    /// unprocessed instructions; `false` if there is no such order or default.
    async fn update_customer_default(
        &self,
        tenant_id: &str,
        order_id: &str,
        customer_ref: &str,
        change: &DefaultChange,
        now: i64,
    ) -> StoreResult<bool>;
    /// Deletes a customer default: `InUse` while an instruction of the customer that is
    /// not `VOID` exists in the order; `false` if there is no such default.
    async fn delete_customer_default(
        &self,
        tenant_id: &str,
        order_id: &str,
        customer_ref: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Inserts an instruction (status re-resolved before commit);
    /// `Conflict("instructions_ref_unique")` for a repeated ref in the order.
    async fn insert_instruction(&self, instruction: &InstructionRecord) -> StoreResult<()> {
        self.insert_instruction_announced(instruction, None).await.map(|_| ())
    }
    /// [`OrderStore::insert_instruction`], announcing it with `announce` (in the same
    /// transaction). Returns it as stored, status resolved.
    async fn insert_instruction_announced(
        &self,
        instruction: &InstructionRecord,
        announce: Option<Announcement>,
    ) -> StoreResult<InstructionRecord>;
    async fn instruction(
        &self,
        tenant_id: &str,
        order_id: &str,
        instruction_ref: &str,
    ) -> StoreResult<Option<InstructionRecord>>;
    /// Replaces an instruction's mutable fields if its status is still one of `from`
    /// (compare-and-set), then re-resolves its status; `false` otherwise.
    async fn update_instruction(
        &self,
        instruction: &InstructionRecord,
        from: &[InstructionStatus],
    ) -> StoreResult<bool>;
    /// Moves an instruction to `to` if its status is one of `from`; `false` otherwise.
    /// When `to` no longer accepts updates (not `INCOMPLETE`/`READY`), the values it
    /// inherits are frozen into the instruction in the same transaction (source
    /// `CUSTOMER_DEFAULT` kept; metadata merged), so later default changes do not reach it.
    async fn change_instruction_status(
        &self,
        tenant_id: &str,
        order_id: &str,
        instruction_id: &str,
        from: &[InstructionStatus],
        to: InstructionStatus,
        now: i64,
    ) -> StoreResult<bool>;

    /// Up to `limit` of the tenant's orders matching `filter`, ordered by
    /// `(created_at, order_id)`, strictly after `after` when given.
    async fn list_orders(
        &self,
        tenant_id: &str,
        filter: &OrderFilter,
        after: Option<&Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<OrderRecord>>;
    /// Up to `limit` of the tenant's instructions (across its orders) matching `filter`,
    /// ordered by `(created_at, instruction_id)`, strictly after `after` when given.
    async fn list_instructions(
        &self,
        tenant_id: &str,
        filter: &InstructionFilter,
        after: Option<&Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<ListedInstruction>>;
    /// The customer defaults of several of the tenant's orders in one query, by order
    /// id then customer ref (other tenants' orders contribute nothing).
    async fn customer_defaults_of_orders(
        &self,
        tenant_id: &str,
        order_ids: &[String],
    ) -> StoreResult<Vec<CustomerDefaultRecord>>;
}
