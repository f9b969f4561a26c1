//! The execution worker: one [`Engine::worker_tick`] marks overdue instructions `LATE`,
//! collects the instructions due today, resolves attempts whose answer was lost and
//! runs due jobs. Every step claims its rows through the database (a status
//! compare-and-set or a job lease), so several nodes may tick at once.

use std::time::Duration;

use baton_connectors::{CallContext, Outcome};
use baton_domain::{Direction, EventType, InstructionStatus, SchemeKind, Source, TransactionStatus, TransactionType};
use baton_store::{Change, DuePosition, InstructionRecord, JobRecord, TransactionOutcome, TransactionRecord};
use serde_json::Value;

use super::{events, ExecuteRequest, Prepared, FOLLOW_UP_JOB, SYNC_JOB};
use crate::error::internal;
use crate::{new_id, Engine, EngineResult};

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub marked_late: usize,
    pub collected: usize,
    pub stale_attempts: usize,
    pub jobs_run: usize,
    pub jobs_failed: usize,
    /// Webhooks fanned out and delivered.
    pub webhooks: crate::webhooks::WebhookTick,
    /// Pay-by-links ended (expired, or completed by a settlement).
    pub pay_by_links_finished: usize,
}

/// How many rows one step of a tick takes at most.
const BATCH: u32 = 100;
/// How long a claimed job is held before another worker may take it again (sooner if
/// the node holding it dies).
const JOB_LEASE: Duration = Duration::from_secs(120);

impl Engine {
    /// One round of background work (see the module docs).
    pub async fn worker_tick(&self) -> EngineResult<TickReport> {
        let mut report = TickReport::default();
        let today = baton_domain::dates::format_date(self.now_utc().date());
        report.marked_late = self.mark_late(&today).await?;
        report.collected = self.collect_due(&today).await?;
        report.stale_attempts = self.schedule_stale_syncs().await?;
        report.pay_by_links_finished = self.finish_due_pay_by_links().await?;
        let (run, failed) = self.run_due_jobs().await?;
        report.jobs_run = run;
        report.jobs_failed = failed;
        report.webhooks = self.deliver_webhooks().await?;
        Ok(report)
    }

    async fn mark_late(&self, today: &str) -> EngineResult<usize> {
        let mut count = 0;
        for record in self.store.instructions_due_late(today, BATCH).await? {
            let Some(order) = self.store.order_by_id(&record.tenant_id, &record.order_id).await? else { continue };
            let view = self.instruction_view_of(&order, &record.instruction_ref).await?;
            let now = self.now_ms();
            let scheme = view.scheme.id.clone().unwrap_or_default();
            let data = events::instruction_data(&order, &view, InstructionStatus::Late, (&scheme, "", None), None);
            let changes = [
                Change::InstructionStatus {
                    tenant_id: record.tenant_id.clone(),
                    order_id: record.order_id.clone(),
                    instruction_id: record.instruction_id.clone(),
                    from: vec![InstructionStatus::Incomplete, InstructionStatus::Ready],
                    to: InstructionStatus::Late,
                },
                Change::Event(baton_store::EventRecord {
                    event_id: new_id(),
                    account_id: None,
                    tenant_id: Some(record.tenant_id.clone()),
                    event_type: EventType::InstructionMissed,
                    ordering_key: Some(record.instruction_id.clone()),
                    data: data.to_string(),
                    created_at: now,
                }),
            ];
            // Applied once: a second node finds the status moved and changes nothing.
            if self.apply(&changes, now).await? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Executes the `READY` collections due today whose instrument may be charged
    /// without the customer: not single-use, and not one the customer gave in a checkout
    /// (consent to that payment, with them present, not to later charges; a declined or
    /// unfinished checkout leaves such an instrument on the instruction).
    async fn collect_due(&self, today: &str) -> EngineResult<usize> {
        let mut count = 0;
        let mut after = DuePosition::start();
        loop {
            let batch = self.store.instructions_due_collection(today, &after, BATCH).await?;
            let more = batch.len() == BATCH as usize;
            for record in batch {
                after = DuePosition::of(&record);
                if self.collect(&record).await? {
                    count += 1;
                }
            }
            if !more {
                return Ok(count);
            }
        }
    }

    /// Executes one due collection as a merchant-initiated payment, if it may be.
    async fn collect(&self, record: &InstructionRecord) -> EngineResult<bool> {
        let Some(order) = self.store.order_by_id(&record.tenant_id, &record.order_id).await? else { return Ok(false) };
        let view = self.instruction_view_of(&order, &record.instruction_ref).await?;
        if view.financial_instrument.source == Source::Customer {
            return Ok(false);
        }
        let Some(fi) = &view.financial_instrument.id else { return Ok(false) };
        let Some(instrument) = self.store.instrument(&record.tenant_id, &record.customer_ref, fi).await? else {
            return Ok(false);
        };
        if instrument.single_use {
            return Ok(false);
        }
        let request = ExecuteRequest { transaction_type: TransactionType::Mit, ..Default::default() };
        match self.execute_instruction(&record.tenant_id, &order.order_ref, &record.instruction_ref, request).await {
            Ok(_) => Ok(true),
            Err(e) => {
                tracing::info!(tenant_id = %record.tenant_id, instruction_id = %record.instruction_id,
                    error = %e, "scheduled collection not started");
                Ok(false)
            }
        }
    }

    /// Attempts left `PENDING` by a crash get a sync job (unless one is queued): those
    /// of a dead node at once, any other once it is `stale_after` old.
    async fn schedule_stale_syncs(&self) -> EngineResult<usize> {
        let now = self.now_ms();
        let before = now - self.config.execution.stale_after.as_millis() as i64;
        let lost_before = self.claimant().lost_before;
        let mut count = 0;
        for attempt in self.store.stale_pending_transactions(before, lost_before, BATCH).await? {
            if self.store.job(SYNC_JOB, &attempt.transaction_id).await?.is_some() {
                continue;
            }
            self.apply(&[Change::ScheduleJob(self.sync_job(&attempt, now, now))], now).await?;
            count += 1;
        }
        Ok(count)
    }

    /// Claims and runs the due jobs; returns (succeeded, failed).
    async fn run_due_jobs(&self) -> EngineResult<(usize, usize)> {
        let now = self.now_ms();
        let jobs = self.store.claim_jobs(now, now + JOB_LEASE.as_millis() as i64, BATCH, self.claimant()).await?;
        let (mut ok, mut failed) = (0, 0);
        for job in jobs {
            match self.run_job(&job).await {
                Ok(Some(next_run)) => {
                    self.store.retry_job(&job.job_id, next_run, "").await?;
                    ok += 1;
                }
                Ok(None) => {
                    self.apply(&[Change::DeleteJob { job_id: job.job_id.clone() }], self.now_ms()).await?;
                    ok += 1;
                }
                Err(e) => {
                    failed += 1;
                    // Backs off with the attempts: 10 s, 20 s, 40 s … at most an hour.
                    let base = self.config.execution.sync_retry.as_millis() as i64;
                    let delay = (base << (job.attempts.clamp(1, 9) - 1)).min(3_600_000);
                    tracing::warn!(job_id = %job.job_id, kind = %job.kind, error = %e, "job failed; retrying");
                    self.store.retry_job(&job.job_id, self.now_ms() + delay, &e.to_string()).await?;
                }
            }
        }
        Ok((ok, failed))
    }

    /// Runs one job: `Ok(None)` when done, `Ok(Some(at))` to look again at `at`.
    async fn run_job(&self, job: &JobRecord) -> EngineResult<Option<i64>> {
        match job.kind.as_str() {
            SYNC_JOB => self.sync_attempt(job).await,
            crate::refunds::SYNC_REFUND_JOB => self.sync_refund(job).await,
            crate::pay_by_link::DELIVER_MESSAGE_JOB => self.deliver_message(job).await,
            FOLLOW_UP_JOB => {
                let payload: Value = serde_json::from_str(&job.payload).map_err(|e| internal(e.to_string()))?;
                let app_id = payload.get("appId").and_then(Value::as_str).unwrap_or_default().to_string();
                let notification = payload
                    .get("notification")
                    .and_then(events::notification_from_json)
                    .ok_or_else(|| internal(format!("unreadable follow-up {}", job.job_id)))?;
                let tenant_id = job.tenant_id.clone().unwrap_or_default();
                self.handle_notification(&tenant_id, &app_id, notification).await?;
                Ok(None)
            }
            other => Err(internal(format!("unknown job kind {other}"))),
        }
    }

    /// Asks the connector what became of an attempt and records it.
    pub(crate) async fn sync_attempt(&self, job: &JobRecord) -> EngineResult<Option<i64>> {
        let tenant_id = job.tenant_id.as_deref().unwrap_or_default();
        let Some(attempt) = self.store.transaction(tenant_id, &job.subject_id).await? else { return Ok(None) };
        if attempt.status.is_final() {
            return Ok(None);
        }
        let prepared = self.prepare_for_attempt(&attempt).await?;
        let connector = self.connector(&attempt.app_id)?;
        let credentials = self.app_credentials(tenant_id, &attempt.app_id).await?;
        let ctx = CallContext { environment: self.environment(), tenant_id, credentials: &credentials };
        let extra = serde_json::json!({"rewardId": attempt.reward_id});
        let request = super::sync_request(&prepared, &attempt, &extra, self.now_ms())?;
        let started = std::time::Instant::now();
        let result = self.with_timeout(connector.sync(&ctx, &request)).await;
        self.metrics.record_connector_call(&attempt.app_id, started.elapsed().as_millis() as i64);
        match result {
            Ok(Outcome::Pending { provider_reference, check_after }) => {
                if attempt.status == TransactionStatus::Pending {
                    let now = self.now_ms();
                    let change = Change::FinishTransaction {
                        tenant_id: tenant_id.to_string(),
                        transaction_id: attempt.transaction_id.clone(),
                        from: vec![TransactionStatus::Pending],
                        to: TransactionStatus::Processing,
                        outcome: TransactionOutcome {
                            provider_reference: Some(provider_reference),
                            ..Default::default()
                        },
                    };
                    self.apply(&[change], now).await?;
                }
                Ok(Some(self.now_ms() + check_after.as_millis() as i64))
            }
            Ok(outcome) => {
                let request = ExecuteRequest { transaction_type: attempt.transaction_type, extra };
                self.record_outcome(&prepared, &attempt, outcome, None, &request).await?;
                Ok(None)
            }
            Err(e) => Err(internal(format!("sync of {}: {e}", attempt.transaction_id))),
        }
    }

    /// Rebuilds what an attempt was made with (the instruction is `PROCESSING`).
    pub(crate) async fn prepare_for_attempt(&self, attempt: &TransactionRecord) -> EngineResult<Prepared> {
        let tenant_id = &attempt.tenant_id;
        let order = self
            .store
            .order_by_id(tenant_id, &attempt.order_id)
            .await?
            .ok_or_else(|| internal(format!("order of attempt {}", attempt.transaction_id)))?;
        let instruction = self
            .store
            .instruction_by_id(tenant_id, &attempt.instruction_id)
            .await?
            .ok_or_else(|| internal(format!("instruction of attempt {}", attempt.transaction_id)))?;
        let view = self.instruction_view_of(&order, &instruction.instruction_ref).await?;
        let fi = attempt.financial_instrument_id.clone().unwrap_or_default();
        let instrument = self
            .store
            .instrument(tenant_id, &attempt.customer_ref, &fi)
            .await?
            .ok_or_else(|| internal(format!("instrument of attempt {}", attempt.transaction_id)))?;
        let (details, tokens) = self.open_instrument(&instrument).await?;
        let scheme_id = view.scheme.id.clone().unwrap_or_default();
        let kind = if instruction.direction == Direction::Debit { SchemeKind::Collect } else { SchemeKind::Payout };
        let (draft_id, draft_code) = match self.published_rules(tenant_id, kind, &scheme_id).await {
            Ok(d) => (d.draft_id, d.code),
            Err(_) => (String::new(), None),
        };
        Ok(Prepared { order, instruction, view, instrument, details, tokens, scheme_id, draft_id, draft_code })
    }
}
