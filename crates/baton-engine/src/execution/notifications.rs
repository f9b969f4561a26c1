//! What a PSP tells Baton on its own: a payment's outcome, a refund's, a dispute.
//! Verified notifications from `POST /v1/psp-events/…` and the follow-ups a PSP
//! scripts for later (sandbox chargebacks) both end here.

use std::collections::BTreeMap;

use baton_connectors::{CallContext, IncomingNotification, Notification, NotificationError, Outcome};
use baton_domain::{Problem, TransactionStatus};

use super::ExecuteRequest;
use crate::chargebacks::ChargebackNotice;
use crate::{Engine, EngineResult};

/// The largest notification body Baton reads.
pub const MAX_PSP_EVENT_BYTES: usize = 256 * 1024;

impl Engine {
    /// `POST /v1/psp-events/{tenantId}/{appId}`: the tenant's installed app verifies the
    /// PSP's signature and reads the body; each notification is then applied. Returns how
    /// many notifications the body carried. Unverifiable bodies are refused (`401
    /// PSP_SIGNATURE_INVALID`) and logged without their content.
    pub async fn receive_psp_event(
        &self,
        tenant_id: &str,
        app_id: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
    ) -> EngineResult<usize> {
        if body.len() > MAX_PSP_EVENT_BYTES {
            return Err(Problem::new(baton_domain::ProblemKind::PayloadTooLarge, "PAYLOAD_TOO_LARGE")
                .message("The notification exceeds {limit} bytes.")
                .detail("limit", MAX_PSP_EVENT_BYTES.to_string())
                .into());
        }
        let tenant_id = tenant_id.trim().to_ascii_lowercase();
        let (app, _) = self.installed_record(&tenant_id, app_id).await?;
        let connector = self.connector(app.app_id)?;
        let credentials = self.app_credentials(&tenant_id, app.app_id).await?;
        let ctx = CallContext { environment: self.environment(), tenant_id: &tenant_id, credentials: &credentials };
        let incoming = IncomingNotification { headers, body, now: self.now_ms().div_euclid(1000) };
        let notifications = match connector.parse_notification(&ctx, &incoming) {
            Ok(n) => n,
            Err(NotificationError::Unverified(reason)) => {
                tracing::warn!(tenant_id, app_id = app.app_id, %reason, bytes = body.len(),
                    "PSP notification refused: unverifiable");
                return Err(Problem::unauthorized("PSP_SIGNATURE_INVALID")
                    .message("The notification's signature could not be verified.")
                    .into());
            }
            Err(NotificationError::Malformed(reason)) => {
                tracing::warn!(tenant_id, app_id = app.app_id, %reason, "PSP notification refused: malformed");
                return Err(Problem::bad_request("PSP_EVENT_MALFORMED")
                    .message("The notification could not be read: {reason}.")
                    .detail("reason", reason)
                    .into());
            }
        };
        let count = notifications.len();
        for notification in notifications {
            self.handle_notification(&tenant_id, app.app_id, notification).await?;
        }
        tracing::info!(tenant_id, app_id = app.app_id, count, "PSP notification applied");
        Ok(count)
    }

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
