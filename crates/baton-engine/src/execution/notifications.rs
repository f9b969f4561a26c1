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
            Notification::Ignored => Ok(()),
            Notification::Refund { refund_reference, succeeded, .. } => {
                self.refund_notified(tenant_id, app_id, &refund_reference, succeeded).await
            }
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

/// Sandbox simulators (`/v1/sandbox/…`): they exist only in a `sandbox` deployment and
/// act as the PSP would, through the same notification path.
impl Engine {
    fn sandbox_only(&self) -> EngineResult<()> {
        if self.environment() != baton_domain::Environment::Sandbox {
            return Err(Problem::not_found("ROUTE_NOT_FOUND").message("No endpoint matches this path.").into());
        }
        Ok(())
    }

    async fn sandbox_target(
        &self,
        tenant_id: &str,
        order_ref: Option<&str>,
        instruction_ref: Option<&str>,
    ) -> EngineResult<(baton_store::OrderRecord, baton_store::InstructionRecord)> {
        let order_ref = order_ref
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Problem::invalid_field("ORDER_REF_REQUIRED", "orderRef", "{field} is required."))?;
        let instruction_ref = instruction_ref.map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
            Problem::invalid_field("INSTRUCTION_REF_REQUIRED", "instructionRef", "{field} is required.")
        })?;
        let order = self.order_record(tenant_id, order_ref).await?;
        let instruction = self
            .store
            .instruction(tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(|| Problem::not_found("INSTRUCTION_NOT_FOUND").message("No such instruction."))?;
        Ok((order, instruction))
    }

    /// `POST /v1/sandbox/chargebacks`: the PSP disputes a `SETTLED` debit now, with
    /// `reason`. Returns the chargeback.
    pub async fn simulate_chargeback(
        &self,
        tenant_id: &str,
        order_ref: Option<&str>,
        instruction_ref: Option<&str>,
        reason: Option<&str>,
    ) -> EngineResult<crate::chargebacks::ChargebackView> {
        self.sandbox_only()?;
        let reason: baton_domain::ChargebackReason = match reason.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                return Err(
                    Problem::invalid_field("CHARGEBACK_REASON_REQUIRED", "reason", "{field} is required.").into()
                )
            }
            Some(r) => r.parse().map_err(|_| {
                Problem::invalid_field(
                    "INVALID_CHARGEBACK_REASON",
                    "reason",
                    "{field} must be FRAUD, QUALITY, CLERICAL or TECHNICAL.",
                )
            })?,
        };
        let (_, instruction) = self.sandbox_target(tenant_id, order_ref, instruction_ref).await?;
        let attempts = self.store.instruction_transactions(tenant_id, &instruction.instruction_id).await?;
        let settled = attempts.iter().rev().find(|t| {
            t.operation == baton_domain::Operation::Debit
                && t.status == TransactionStatus::Settled
                && t.provider_reference.is_some()
        });
        let (Some(settled), baton_domain::InstructionStatus::Settled) = (settled, instruction.status) else {
            return Err(Problem::bad_request("INSTRUCTION_NOT_SETTLED")
                .message("Only a SETTLED DEBIT instruction can be disputed; this one is {status}.")
                .detail("status", instruction.status.as_str())
                .into());
        };
        let dispute_reference = format!("sbx_dp_{}", crate::new_id().replace('-', ""));
        let notification = Notification::Chargeback {
            payment_reference: settled.provider_reference.clone().unwrap_or_default(),
            dispute_reference: dispute_reference.clone(),
            amount_minor: settled.amount_minor,
            currency: settled
                .currency
                .parse()
                .map_err(|_| crate::EngineError::Internal(anyhow::anyhow!("stored currency {}", settled.currency)))?,
            reason,
            provider_reason_code: Some("simulated".into()),
            status: baton_domain::ChargebackStatus::Open,
            due_by: None,
        };
        self.handle_notification(tenant_id, &settled.app_id, notification).await?;
        let record = self
            .store
            .chargeback_by_provider_reference(tenant_id, &settled.app_id, &dispute_reference)
            .await?
            .ok_or_else(|| {
                crate::EngineError::Internal(anyhow::anyhow!("the simulated chargeback was not recorded"))
            })?;
        self.get_chargeback(tenant_id, &record.chargeback_id).await
    }

    /// `POST /v1/sandbox/bank-collections/{settle|fail}`: the sandbox bank settles or
    /// fails a `PROCESSING` collection now. Returns the instruction.
    pub async fn simulate_bank_collection(
        &self,
        tenant_id: &str,
        order_ref: Option<&str>,
        instruction_ref: Option<&str>,
        settle: bool,
    ) -> EngineResult<crate::orders::InstructionView> {
        self.sandbox_only()?;
        let (order, instruction) = self.sandbox_target(tenant_id, order_ref, instruction_ref).await?;
        let attempts = self.store.instruction_transactions(tenant_id, &instruction.instruction_id).await?;
        let pending = attempts.iter().rev().find(|t| {
            t.app_id == baton_connectors::sandbox_bank::APP_ID
                && t.status == TransactionStatus::Processing
                && t.provider_reference.is_some()
        });
        let Some(pending) = pending else {
            return Err(Problem::bad_request("NO_PENDING_BANK_COLLECTION")
                .message("The instruction has no SANDBOX_BANK collection in progress.")
                .into());
        };
        let provider_reference = pending.provider_reference.clone().unwrap_or_default();
        let outcome = if settle {
            Outcome::Succeeded { provider_reference: provider_reference.clone(), result: None }
        } else {
            Outcome::Failed {
                decline: baton_domain::Decline::new(baton_domain::DeclineCategory::HardDecline)
                    .psp(Some("simulated_failure".into()), Some("Failed by the sandbox simulator.".into())),
                provider_reference: Some(provider_reference.clone()),
            }
        };
        self.handle_notification(tenant_id, &pending.app_id, Notification::Payment { provider_reference, outcome })
            .await?;
        self.instruction_view_of(&order, &instruction.instruction_ref).await
    }

    /// `POST /v1/sandbox/reward-claims/advance`: the sandbox reward provider issues (or
    /// refuses) a pending claim now instead of after its delay. Returns the instruction.
    pub async fn simulate_reward_claim(
        &self,
        tenant_id: &str,
        order_ref: Option<&str>,
        instruction_ref: Option<&str>,
    ) -> EngineResult<crate::orders::InstructionView> {
        self.sandbox_only()?;
        let (order, instruction) = self.sandbox_target(tenant_id, order_ref, instruction_ref).await?;
        let attempts = self.store.instruction_transactions(tenant_id, &instruction.instruction_id).await?;
        let pending = attempts.iter().rev().find(|t| {
            t.operation == baton_domain::Operation::RewardClaim
                && t.app_id == baton_connectors::sandbox_rewards::APP_ID
                && !t.status.is_final()
        });
        let Some(pending) = pending else {
            return Err(Problem::bad_request("NO_PENDING_REWARD_CLAIM")
                .message("The instruction has no SANDBOX_REWARDS claim in progress.")
                .into());
        };
        let now = self.now_ms();
        let job = match self.store.job(super::SYNC_JOB, &pending.transaction_id).await? {
            Some(job) => job,
            None => self.sync_job(pending, now, now),
        };
        if self.sync_attempt(&job).await?.is_none() {
            self.apply(&[baton_store::Change::DeleteJob { job_id: job.job_id.clone() }], now).await?;
        }
        self.instruction_view_of(&order, &instruction.instruction_ref).await
    }
}
