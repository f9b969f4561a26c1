//! Storage of refunds (SPEC §5.2) and chargebacks (SPEC §5.3). Writes go through
//! [`crate::ExecutionStore::apply`] (`Change::InsertRefund`, `FinishRefund`,
//! `InsertChargeback`, `ChargebackStatus`) so that each change and the event announcing
//! it are committed together; the reads are here. The SQL lives in `portable_refunds.rs`.

use async_trait::async_trait;
use baton_domain::{ChargebackReason, ChargebackStatus, RefundReason, RefundStatus};

use crate::{Keyset, StoreResult};

/// A refund of a settled debit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub refund_id: String,
    pub tenant_id: String,
    pub instruction_id: String,
    /// The settled debit it returns money of.
    pub transaction_id: String,
    pub app_id: String,
    pub refund_ref: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: RefundReason,
    pub status: RefundStatus,
    pub provider_reference: Option<String>,
    pub error_code: Option<String>,
    pub psp_code: Option<String>,
    pub psp_message: Option<String>,
    /// JSON text.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A dispute of a settled debit, as the PSP reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargebackRecord {
    pub chargeback_id: String,
    pub tenant_id: String,
    pub instruction_id: String,
    pub transaction_id: String,
    pub app_id: String,
    /// The PSP's reference of the dispute (unique per tenant and app).
    pub provider_reference: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: ChargebackReason,
    pub provider_reason_code: Option<String>,
    pub status: ChargebackStatus,
    pub due_by: Option<i64>,
    /// JSON text: what was submitted to contest it.
    pub evidence: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which chargebacks to list; every field given narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargebackFilter {
    pub status: Option<ChargebackStatus>,
    pub reason: Option<ChargebackReason>,
    /// Created at or after (ms).
    pub from: Option<i64>,
    /// Created before (ms).
    pub to: Option<i64>,
    pub instruction_id: Option<String>,
}

/// A chargeback of a listing, with the refs of its order and instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedChargeback {
    pub order_ref: String,
    pub instruction_ref: String,
    pub chargeback: ChargebackRecord,
}

#[async_trait]
pub trait RefundStore: Send + Sync + 'static {
    /// The instruction's refunds, oldest first.
    async fn refunds(&self, tenant_id: &str, instruction_id: &str) -> StoreResult<Vec<RefundRecord>>;
    async fn refund(
        &self,
        tenant_id: &str,
        instruction_id: &str,
        refund_ref: &str,
    ) -> StoreResult<Option<RefundRecord>>;
    async fn refund_by_id(&self, tenant_id: &str, refund_id: &str) -> StoreResult<Option<RefundRecord>>;
    /// The refund an app knows by `provider_reference`.
    async fn refund_by_provider_reference(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider_reference: &str,
    ) -> StoreResult<Option<RefundRecord>>;
    async fn chargeback(&self, tenant_id: &str, chargeback_id: &str) -> StoreResult<Option<ChargebackRecord>>;
    async fn chargeback_by_provider_reference(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider_reference: &str,
    ) -> StoreResult<Option<ChargebackRecord>>;
    /// Up to `limit` of the tenant's chargebacks matching `filter`, newest first: ordered
    /// by `created_at` descending, then `chargeback_id` ascending, strictly after `after`
    /// in that order when given. The refs come from the same statement.
    async fn list_chargebacks(
        &self,
        tenant_id: &str,
        filter: &ChargebackFilter,
        after: Option<&Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<ListedChargeback>>;
}
