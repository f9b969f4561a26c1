//! Idempotency keys: a repeated POST with the same key and body gets the stored
//! response; the same key with another request is a conflict.

use std::time::Duration;

use baton_domain::Problem;
pub use baton_store::StoredResponse;
use baton_store::{IdempotencyBegin, IdempotencyClaim};

use crate::{Engine, EngineResult};

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// An unfinished claim recorded without a node (by an older version) is taken to be
/// from a request that died once it is this old. A claim with a node is retaken as soon
/// as that node is dead (see `liveness`), and never while it lives.
const STALE_CLAIM: Duration = Duration::from_secs(120);
/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug)]
pub enum IdempotencyOutcome {
    /// Run the request, then call `finish_idempotent` or `abandon_idempotent` with this
    /// claim time. `taken_over_from` is the claim time of an earlier try of this same
    /// request, cut off by the death of its node: it may have taken effect, so the
    /// request may find its own work already done.
    Proceed { claimed_at: i64, taken_over_from: Option<i64> },
    /// Answer with this stored response.
    Replay(StoredResponse),
}

impl Engine {
    pub async fn begin_idempotent(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
    ) -> EngineResult<IdempotencyOutcome> {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(Problem::invalid_field(
                "INVALID_IDEMPOTENCY_KEY",
                "Idempotency-Key",
                "{field} must be 1 to {limit} printable ASCII characters.",
            )
            .detail("limit", MAX_IDEMPOTENCY_KEY.to_string())
            .into());
        }
        let now = self.now_ms();
        let claim = IdempotencyClaim {
            scope,
            key,
            request_hash,
            now,
            expires_at: now + IDEMPOTENCY_TTL.as_millis() as i64,
            claimant: self.claimant(),
            stale_after_ms: STALE_CLAIM.as_millis() as i64,
        };
        match self.store.begin_idempotent(&claim).await? {
            IdempotencyBegin::Started => Ok(IdempotencyOutcome::Proceed { claimed_at: now, taken_over_from: None }),
            IdempotencyBegin::TakenOver { earlier_claimed_at } => {
                tracing::info!(idempotency_key = key, "idempotency key taken over from a request whose node died");
                Ok(IdempotencyOutcome::Proceed { claimed_at: now, taken_over_from: Some(earlier_claimed_at) })
            }
            IdempotencyBegin::Replay(r) => Ok(IdempotencyOutcome::Replay(r)),
            IdempotencyBegin::Mismatch => Err(Problem::conflict("IDEMPOTENCY_KEY_REUSED")
                .message("This Idempotency-Key was already used with a different request.")
                .into()),
            IdempotencyBegin::InProgress => Err(Problem::conflict("IDEMPOTENCY_REQUEST_IN_PROGRESS")
                .message("A request with this Idempotency-Key is still being processed.")
                .into()),
        }
    }

    pub async fn finish_idempotent(
        &self,
        scope: &str,
        key: &str,
        claimed_at: i64,
        response: &StoredResponse,
    ) -> EngineResult<()> {
        Ok(self.store.finish_idempotent(scope, key, claimed_at, response).await?)
    }

    pub async fn abandon_idempotent(&self, scope: &str, key: &str, claimed_at: i64) -> EngineResult<()> {
        Ok(self.store.abandon_idempotent(scope, key, claimed_at).await?)
    }
}

/// What an earlier try of a request may have done before its node died: a retry that took
/// its key over answers with that work instead of refusing to do it again.
impl Engine {
    /// The order `order_ref` if it was created at or after `since` (by the earlier try
    /// of an order creation claimed then), else `None`.
    pub async fn order_created_since(
        &self,
        tenant_id: &str,
        order_ref: &str,
        since: i64,
    ) -> EngineResult<Option<crate::orders::OrderView>> {
        let Ok(order_ref) = baton_domain::OrderRef::parse(order_ref, "orderRef") else { return Ok(None) };
        match self.store.order(tenant_id, order_ref.as_str()).await? {
            Some(order) if order.created_at >= since => Ok(Some(self.order(tenant_id, order_ref.as_str()).await?)),
            _ => Ok(None),
        }
    }

    /// The instruction if an execution of it began at or after `since` (by the earlier
    /// try of an execution claimed then) and it is now `PROCESSING` or `SETTLED`, else
    /// `None` (then executing it answers as it would have).
    pub async fn execution_started_since(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
        since: i64,
    ) -> EngineResult<Option<crate::orders::InstructionView>> {
        use baton_domain::InstructionStatus::{Processing, Settled};
        let attempts = self.instruction_transactions(tenant_id, order_ref, instruction_ref).await?;
        if !attempts.iter().any(|a| a.created_at >= since) {
            return Ok(None);
        }
        let instruction = self.instruction(tenant_id, order_ref, instruction_ref).await?;
        Ok(matches!(instruction.status, Processing | Settled).then_some(instruction))
    }
}
