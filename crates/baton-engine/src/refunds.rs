//! Refunds (SPEC §5.2): returning money of a settled debit through the app that
//! collected it, partially and repeatedly, never more than was settled in total.
//!
//! Crash safety as for execution: the refund is recorded `PENDING` (with its
//! `refund.created` event) before the PSP is called, and the store refuses the insert
//! when the refunds that have not failed would exceed the settled amount — checked in
//! the same write transaction, with the settled transaction's row locked, so two
//! concurrent refunds can never both pass. The PSP's answer is then recorded with
//! `refund.settled` or `refund.failed` in one transaction.
//!
//! A lost or indeterminate answer leaves the refund `PENDING` (never `FAILED`: the money
//! may have moved, and a failed refund may be asked for again). Its sync job then asks
//! the app what became of it ([`baton_connectors::Connector::sync_refund`]), backing off
//! while the app cannot tell; whatever the answer, it is recorded as the first one is.

use baton_connectors::{CallContext, ConnectorError, Outcome, RefundRequest as PspRefund, RefundSyncRequest};
use baton_domain::{
    Amount, Currency, Decline, DeclineCategory, Direction, EventType, InstructionStatus, Metadata, Operation, Problem,
    Ref, RefundReason, RefundStatus, TransactionStatus,
};
use baton_store::{
    Change, EventRecord, InstructionRecord, JobRecord, OrderRecord, RefundRecord, StoreError, TransactionOutcome,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::error::internal;
use crate::{new_id, Engine, EngineResult};

/// `POST …/refunds`, as parsed by the HTTP layer.
#[derive(Debug, Clone)]
pub struct RefundInput {
    pub refund_ref: Option<String>,
    /// Major units (a JSON number or numeric string); `None` refunds what remains.
    pub amount: Option<Value>,
    pub reason: Option<String>,
    pub metadata: Option<Value>,
}

/// A refund as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundView {
    pub refund_ref: String,
    pub amount: Decimal,
    pub currency: String,
    pub reason: RefundReason,
    pub status: RefundStatus,
    pub provider_reference: Option<String>,
    pub error_code: Option<String>,
    /// The PSP's own code and words for a failure.
    pub psp_code: Option<String>,
    pub psp_message: Option<String>,
    pub created_at: i64,
    pub metadata: Value,
}

impl From<&RefundRecord> for RefundView {
    fn from(r: &RefundRecord) -> Self {
        let currency: Currency = r.currency.parse().unwrap_or(Currency::EUR);
        Self {
            refund_ref: r.refund_ref.clone(),
            amount: Amount { minor: r.amount_minor, currency }.to_decimal(),
            currency: r.currency.clone(),
            reason: r.reason,
            status: r.status,
            provider_reference: r.provider_reference.clone(),
            error_code: r.error_code.clone(),
            psp_code: r.psp_code.clone(),
            psp_message: r.psp_message.clone(),
            created_at: r.created_at,
            metadata: serde_json::from_str(&r.metadata).unwrap_or_else(|_| json!({})),
        }
    }
}

fn not_refundable(message: &'static str) -> Problem {
    Problem::bad_request("NOT_REFUNDABLE").message(message)
}

impl Engine {
    async fn refund_target(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> EngineResult<(OrderRecord, InstructionRecord)> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let instruction = self
            .store
            .instruction(tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(|| Problem::not_found("INSTRUCTION_NOT_FOUND").message("No such instruction."))?;
        Ok((order, instruction))
    }

    /// `POST …/instruction/{instructionRef}/refunds`: refunds a settled debit through the
    /// app that collected it. The refund is returned as it stands after the PSP's answer
    /// (`SETTLED`, `PROCESSING`, or `PENDING` when the answer was lost or said nothing
    /// sure); a refusal by the PSP is `402 PROVIDER_DECLINED`, with the refund recorded
    /// `FAILED`.
    pub async fn create_refund(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
        input: RefundInput,
    ) -> EngineResult<RefundView> {
        let refund_ref =
            Ref::parse_with(input.refund_ref.as_deref(), "refundRef", "REFUND_REF_REQUIRED", "INVALID_REFUND_REF")?;
        let reason: RefundReason = match input.reason.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                return Err(Problem::invalid_field("REFUND_REASON_REQUIRED", "reason", "{field} is required.").into())
            }
            Some(text) => text.parse().map_err(|_| {
                Problem::invalid_field(
                    "INVALID_REFUND_REASON",
                    "reason",
                    "{field} must be ORDER_NOT_FULFILLED, CUSTOMER_CHANGED_MIND, INCORRECT_BILLING, DUPLICATE or OTHER.",
                )
            })?,
        };
        let metadata = Metadata::parse_opt(input.metadata.as_ref(), "metadata")?;
        let (_, instruction) = self.refund_target(tenant_id, order_ref, instruction_ref).await?;
        if instruction.direction != Direction::Debit {
            return Err(not_refundable("Only a DEBIT instruction can be refunded.").into());
        }
        if instruction.status != InstructionStatus::Settled {
            return Err(Problem::bad_request("NOT_REFUNDABLE")
                .message("Only a SETTLED instruction can be refunded; this one is {status}.")
                .detail("status", instruction.status.as_str())
                .into());
        }
        let attempts = self.store.instruction_transactions(tenant_id, &instruction.instruction_id).await?;
        let settled = attempts
            .iter()
            .rev()
            .find(|t| t.operation == Operation::Debit && t.status == TransactionStatus::Settled)
            .ok_or_else(|| not_refundable("The instruction has no settled payment to refund."))?;
        let payment_reference = settled
            .provider_reference
            .clone()
            .ok_or_else(|| not_refundable("The settled payment has no provider reference."))?;
        let currency: Currency =
            settled.currency.parse().map_err(|_| internal(format!("stored currency {}", settled.currency)))?;
        if self.store.refund(tenant_id, &instruction.instruction_id, refund_ref.as_str()).await?.is_some() {
            return Err(duplicate(refund_ref.as_str()).into());
        }
        let existing = self.store.refunds(tenant_id, &instruction.instruction_id).await?;
        let refunded: i64 = existing.iter().filter(|r| r.status != RefundStatus::Failed).map(|r| r.amount_minor).sum();
        let remaining = settled.amount_minor - refunded;
        let amount_minor = match input.amount.filter(|v| !v.is_null()) {
            Some(value) => {
                let decimal = serde_json::from_value::<baton_domain::DecimalInput>(value.clone()).map_err(|_| {
                    Problem::invalid_field("INVALID_AMOUNT", "amount", "{field} must be a decimal number.")
                })?;
                let amount = Amount::from_decimal(decimal.0, currency, "amount")?;
                if amount.minor <= 0 {
                    return Err(Problem::invalid_field("INVALID_AMOUNT", "amount", "{field} must be positive.").into());
                }
                amount.minor
            }
            None => remaining,
        };
        if amount_minor <= 0 || amount_minor > remaining {
            return Err(exceeds(remaining, currency).into());
        }

        let now = self.now_ms();
        let refund_id = new_id();
        let record = RefundRecord {
            refund_id: refund_id.clone(),
            tenant_id: tenant_id.to_string(),
            instruction_id: instruction.instruction_id.clone(),
            transaction_id: settled.transaction_id.clone(),
            app_id: settled.app_id.clone(),
            refund_ref: refund_ref.as_str().to_string(),
            amount_minor,
            currency: settled.currency.clone(),
            reason,
            status: RefundStatus::Pending,
            provider_reference: None,
            error_code: None,
            psp_code: None,
            psp_message: None,
            metadata: metadata.to_json().to_string(),
            created_at: now,
            updated_at: now,
        };
        // The sync job is written with the refund: if this node dies before the PSP's
        // answer is recorded, a worker asks the PSP again (same idempotency key).
        let stale_at = now + self.config.execution.stale_after.as_millis() as i64;
        let begin = [
            Change::InsertRefund { refund: record.clone(), limit_minor: settled.amount_minor },
            self.refund_event(order_ref, instruction_ref, &record, EventType::RefundCreated, now),
            Change::ScheduleJob(refund_job(&record, order_ref, instruction_ref, &payment_reference, stale_at, now)),
        ];
        match self.apply(&begin, now).await {
            Ok(true) => {}
            // Another refund took the remaining amount meanwhile.
            Ok(false) => {
                let refunds = self.store.refunds(tenant_id, &instruction.instruction_id).await?;
                let refunded: i64 =
                    refunds.iter().filter(|r| r.status != RefundStatus::Failed).map(|r| r.amount_minor).sum();
                return Err(exceeds(settled.amount_minor - refunded, currency).into());
            }
            Err(StoreError::Conflict(_)) => return Err(duplicate(refund_ref.as_str()).into()),
            Err(e) => return Err(e.into()),
        }

        let (view, decline) =
            self.call_refund(&record, order_ref, instruction_ref, &payment_reference, RefundCall::Create).await?;
        if let Some(decline) = decline {
            let mut p = Problem::payment_required("PROVIDER_DECLINED")
                .message("The provider refused the refund.")
                .detail("refundRef", refund_ref.as_str());
            if let Some(code) = &decline.psp_code {
                p = p.detail("pspCode", code.clone());
            }
            return Err(p.into());
        }
        Ok(view)
    }

    /// Asks the refund's app to return the money, or (`RefundCall::Sync`) what became of
    /// a refund whose answer was lost, and records what it says. A lost or provisional
    /// answer leaves the refund's sync job to ask again later; a sync that learns nothing
    /// is an error, so that the job backs off.
    async fn call_refund(
        &self,
        record: &RefundRecord,
        order_ref: &str,
        instruction_ref: &str,
        payment_reference: &str,
        call: RefundCall,
    ) -> EngineResult<(RefundView, Option<Decline>)> {
        let tenant_id = record.tenant_id.as_str();
        let currency: Currency =
            record.currency.parse().map_err(|_| internal(format!("stored currency {}", record.currency)))?;
        let connector = self.connector(&record.app_id)?;
        let credentials = self.app_credentials(tenant_id, &record.app_id).await?;
        let ctx = CallContext { environment: self.environment(), tenant_id, credentials: &credentials };
        let idempotency_key = format!("refund-{}", record.refund_id);
        let request = PspRefund {
            refund_id: &record.refund_id,
            idempotency_key: &idempotency_key,
            payment_reference,
            amount_minor: record.amount_minor,
            currency,
        };
        let started = std::time::Instant::now();
        let result = match call {
            RefundCall::Create => self.with_timeout(connector.refund(&ctx, &request)).await,
            RefundCall::Sync => {
                let age = u64::try_from(self.now_ms() - record.created_at).unwrap_or(0);
                let sync = RefundSyncRequest {
                    refund: request,
                    provider_reference: record.provider_reference.as_deref(),
                    refund_age: std::time::Duration::from_millis(age),
                };
                self.with_timeout(connector.sync_refund(&ctx, &sync)).await
            }
        };
        self.metrics.record_connector_call(&record.app_id, started.elapsed().as_millis() as i64);
        let job = |run_at: i64| {
            Change::ScheduleJob(refund_job(
                record,
                order_ref,
                instruction_ref,
                payment_reference,
                run_at,
                self.now_ms(),
            ))
        };
        let (to, outcome, event, decline) = match result {
            Ok(Outcome::Succeeded { provider_reference, .. }) => (
                RefundStatus::Settled,
                TransactionOutcome { provider_reference: Some(provider_reference), ..Default::default() },
                Some(EventType::RefundSettled),
                None,
            ),
            Ok(Outcome::Pending { provider_reference, check_after }) => {
                let now = self.now_ms();
                let changes = [
                    Change::FinishRefund {
                        tenant_id: tenant_id.to_string(),
                        refund_id: record.refund_id.clone(),
                        from: vec![RefundStatus::Pending],
                        to: RefundStatus::Processing,
                        outcome: TransactionOutcome {
                            provider_reference: Some(provider_reference.clone()),
                            ..Default::default()
                        },
                    },
                    job(now + check_after.as_millis() as i64),
                ];
                self.apply(&changes, now).await?;
                let mut processing = record.clone();
                processing.status = RefundStatus::Processing;
                processing.provider_reference = Some(provider_reference);
                return Ok((RefundView::from(&processing), None));
            }
            Ok(Outcome::Failed { decline, provider_reference }) => (
                RefundStatus::Failed,
                failed(&decline, provider_reference),
                Some(EventType::RefundFailed),
                Some(decline),
            ),
            Err(ConnectorError::Unsupported(message)) => {
                let decline =
                    Decline::new(DeclineCategory::HardDecline).code("PROVIDER_DECLINED").psp(None, Some(message));
                (RefundStatus::Failed, failed(&decline, None), Some(EventType::RefundFailed), Some(decline))
            }
            // The answer was lost, or said nothing sure: the refund keeps its status and its
            // job asks again (soon after the first call; with backoff after a sync).
            Err(ConnectorError::Unknown(message)) => {
                tracing::warn!(tenant_id, refund_id = %record.refund_id, error = %message, "refund outcome unknown");
                if call == RefundCall::Sync {
                    return Err(internal(format!("sync of refund {}: {message}", record.refund_id)));
                }
                let now = self.now_ms();
                self.apply(&[job(now + self.config.execution.sync_retry.as_millis() as i64)], now).await?;
                return Ok((RefundView::from(record), None));
            }
        };
        let mut finished = record.clone();
        finished.status = to;
        finished.provider_reference = outcome.provider_reference.clone();
        finished.error_code = outcome.error_code.clone();
        finished.psp_code = outcome.psp_code.clone();
        finished.psp_message = outcome.psp_message.clone();
        let now = self.now_ms();
        let mut changes = vec![
            Change::FinishRefund {
                tenant_id: tenant_id.to_string(),
                refund_id: record.refund_id.clone(),
                from: vec![RefundStatus::Pending, RefundStatus::Processing],
                to,
                outcome,
            },
            Change::DeleteJobFor { kind: SYNC_REFUND_JOB.into(), subject_id: record.refund_id.clone() },
        ];
        if let Some(event) = event {
            changes.push(self.refund_event(order_ref, instruction_ref, &finished, event, now));
        }
        if self.apply(&changes, now).await? {
            tracing::info!(tenant_id, refund_id = %record.refund_id, status = to.as_str(), "refund recorded");
        }
        Ok((RefundView::from(&finished), decline))
    }

    /// A PSP's word on a refund it knows by `refund_reference`: final outcomes are
    /// recorded once; anything else (unknown refund, already final) changes nothing.
    pub(crate) async fn refund_notified(
        &self,
        tenant_id: &str,
        app_id: &str,
        refund_reference: &str,
        succeeded: bool,
    ) -> EngineResult<()> {
        let Some(record) = self.store.refund_by_provider_reference(tenant_id, app_id, refund_reference).await? else {
            tracing::info!(tenant_id, app_id, refund_reference, "notification for an unknown refund ignored");
            return Ok(());
        };
        if matches!(record.status, RefundStatus::Settled | RefundStatus::Failed) {
            return Ok(());
        }
        let instruction = self
            .store
            .instruction_by_id(tenant_id, &record.instruction_id)
            .await?
            .ok_or_else(|| internal(format!("instruction of refund {}", record.refund_id)))?;
        let order = self
            .store
            .order_by_id(tenant_id, &instruction.order_id)
            .await?
            .ok_or_else(|| internal(format!("order of refund {}", record.refund_id)))?;
        let (to, event, outcome) = if succeeded {
            (RefundStatus::Settled, EventType::RefundSettled, TransactionOutcome::default())
        } else {
            let decline = Decline::new(DeclineCategory::HardDecline).code("PROVIDER_DECLINED");
            (RefundStatus::Failed, EventType::RefundFailed, failed(&decline, None))
        };
        let mut finished = record.clone();
        finished.status = to;
        finished.error_code = outcome.error_code.clone();
        finished.psp_code = outcome.psp_code.clone();
        finished.psp_message = outcome.psp_message.clone();
        let now = self.now_ms();
        let changes = [
            Change::FinishRefund {
                tenant_id: tenant_id.to_string(),
                refund_id: record.refund_id.clone(),
                from: vec![RefundStatus::Pending, RefundStatus::Processing],
                to,
                outcome,
            },
            Change::DeleteJobFor { kind: SYNC_REFUND_JOB.into(), subject_id: record.refund_id.clone() },
            self.refund_event(&order.order_ref, &instruction.instruction_ref, &finished, event, now),
        ];
        self.apply(&changes, now).await?;
        Ok(())
    }

    /// The refund sync job: asks the app what became of a refund still `PENDING` or
    /// `PROCESSING`. `Ok(None)` when it is final, `Ok(Some(at))` to ask again at `at`, an
    /// error (the job backs off) when the app could not tell.
    pub(crate) async fn sync_refund(&self, job: &JobRecord) -> EngineResult<Option<i64>> {
        let tenant_id = job.tenant_id.as_deref().unwrap_or_default();
        let Some(record) = self.store.refund_by_id(tenant_id, &job.subject_id).await? else { return Ok(None) };
        if matches!(record.status, RefundStatus::Settled | RefundStatus::Failed) {
            return Ok(None);
        }
        let payload: serde_json::Value = serde_json::from_str(&job.payload).map_err(|e| internal(e.to_string()))?;
        let text = |name: &str| payload.get(name).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let (order_ref, instruction_ref, payment_reference) =
            (text("orderRef"), text("instructionRef"), text("paymentReference"));
        let (view, _) =
            self.call_refund(&record, &order_ref, &instruction_ref, &payment_reference, RefundCall::Sync).await?;
        Ok(match view.status {
            RefundStatus::Settled | RefundStatus::Failed => None,
            _ => Some(self.now_ms() + self.config.execution.sync_retry.as_millis() as i64),
        })
    }

    /// `GET …/instruction/{instructionRef}/refunds`, oldest first.
    pub async fn list_refunds(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> EngineResult<Vec<RefundView>> {
        let (_, instruction) = self.refund_target(tenant_id, order_ref, instruction_ref).await?;
        let rows = self.store.refunds(tenant_id, &instruction.instruction_id).await?;
        Ok(rows.iter().map(RefundView::from).collect())
    }

    /// `GET …/instruction/{instructionRef}/refunds/{refundRef}`.
    pub async fn get_refund(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
        refund_ref: &str,
    ) -> EngineResult<RefundView> {
        let (_, instruction) = self.refund_target(tenant_id, order_ref, instruction_ref).await?;
        let row = self
            .store
            .refund(tenant_id, &instruction.instruction_id, refund_ref)
            .await?
            .ok_or_else(|| Problem::not_found("REFUND_NOT_FOUND").message("No such refund."))?;
        Ok(RefundView::from(&row))
    }

    fn refund_event(
        &self,
        order_ref: &str,
        instruction_ref: &str,
        r: &RefundRecord,
        event_type: EventType,
        now: i64,
    ) -> Change {
        let view = RefundView::from(r);
        let data = json!({
            "order": {"orderRef": order_ref},
            "instruction": {"instructionRef": instruction_ref},
            "refund": {
                "refundRef": view.refund_ref,
                "amount": view.amount.to_string(),
                "currency": view.currency,
                "reason": view.reason.as_str(),
                "status": view.status.as_str(),
                "providerReference": view.provider_reference,
                "errorCode": view.error_code,
                "pspCode": view.psp_code,
                "pspMessage": view.psp_message,
                "metadata": view.metadata,
            },
        });
        Change::Event(EventRecord {
            event_id: new_id(),
            account_id: None,
            tenant_id: Some(r.tenant_id.clone()),
            event_type,
            ordering_key: Some(r.instruction_id.clone()),
            data: data.to_string(),
            created_at: now,
        })
    }
}

/// The job that asks a refund's app about it again.
pub(crate) const SYNC_REFUND_JOB: &str = "sync-refund";

/// What a refund's app is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefundCall {
    /// To make the refund (once, when it is asked for).
    Create,
    /// What became of it (its sync job).
    Sync,
}

fn refund_job(
    record: &RefundRecord,
    order_ref: &str,
    instruction_ref: &str,
    payment_reference: &str,
    run_at: i64,
    now: i64,
) -> JobRecord {
    let payload =
        json!({"orderRef": order_ref, "instructionRef": instruction_ref, "paymentReference": payment_reference});
    JobRecord::new(new_id(), SYNC_REFUND_JOB, &record.refund_id, &record.tenant_id, payload.to_string(), run_at, now)
}

fn duplicate(refund_ref: &str) -> Problem {
    Problem::conflict("REFUND_REF_ALREADY_EXISTS")
        .message("The instruction already has a refund {refundRef}.")
        .detail("refundRef", refund_ref)
}

fn exceeds(remaining_minor: i64, currency: Currency) -> Problem {
    Problem::bad_request("REFUND_EXCEEDS_REMAINING")
        .message("The refund exceeds the amount that remains refundable ({remaining}).")
        .detail("remaining", Amount { minor: remaining_minor.max(0), currency }.to_decimal().to_string())
}

fn failed(decline: &Decline, provider_reference: Option<String>) -> TransactionOutcome {
    TransactionOutcome {
        provider_reference,
        decline_category: Some(decline.category),
        error_code: Some(decline.code.clone()),
        psp_code: decline.psp_code.clone(),
        psp_message: decline.psp_message.clone(),
        connector_ms: None,
        result_sealed: None,
    }
}
