//! What a PSP tells Baton on its own: a payment's outcome, a refund's, a dispute.
//! Verified notifications from `POST /v1/psp-events/…` and the follow-ups a PSP
//! scripts for later (sandbox chargebacks) both end here.

use baton_connectors::{Notification, Outcome};
use baton_domain::TransactionStatus;

use super::ExecuteRequest;
use crate::chargebacks::ChargebackNotice;
use crate::{Engine, EngineResult};

impl Engine {
    /// Applies one verified notification of `app_id` for the tenant.
    pub async fn handle_notification(
        &self,
        tenant_id: &str,
        app_id: &str,
        notification: Notification,
    ) -> EngineResult<()> {
        match notification {
            Notification::Payment { provider_reference, outcome } => {
                let Some(attempt) =
                    self.store.transaction_by_provider_reference(tenant_id, app_id, &provider_reference).await?
                else {
                    tracing::info!(tenant_id, app_id, %provider_reference, "notification for an unknown payment ignored");
                    return Ok(());
                };
                if attempt.status.is_final() || matches!(outcome, Outcome::Pending { .. }) {
                    return Ok(());
                }
                debug_assert!(matches!(attempt.status, TransactionStatus::Pending | TransactionStatus::Processing));
                let prepared = self.prepare_for_attempt(&attempt).await?;
                let request = ExecuteRequest { transaction_type: attempt.transaction_type, ..Default::default() };
                self.record_outcome(&prepared, &attempt, outcome, None, &request).await?;
                Ok(())
            }
            Notification::Ignored | Notification::Refund { .. } => Ok(()),
            Notification::Chargeback {
                payment_reference,
                dispute_reference,
                amount_minor,
                currency,
                reason,
                provider_reason_code,
                status,
                due_by,
            } => {
                let notice = ChargebackNotice {
                    payment_reference,
                    dispute_reference,
                    amount_minor,
                    currency,
                    reason,
                    provider_reason_code,
                    status,
                    due_by,
                };
                self.record_chargeback(tenant_id, app_id, notice).await
            }
        }
    }
}
