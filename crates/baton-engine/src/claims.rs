//! Reward claims (SPEC §4.10): a payout instruction paid out as a reward from the
//! payout scheme's catalogue offer.
//!
//! A claim, in one store transaction, draws the amount from the REWARD app's funding
//! account (guarded: never below zero), creates a `REWARD` financial instrument for the
//! customer, attaches it to the instruction, moves the instruction to `PROCESSING` and
//! records the attempt (`REWARD_CLAIM`, `PENDING`). Then the reward app is called; the
//! provider issues the reward later, and the worker's sync settles the claim: the
//! instruction `SETTLED`, the instrument `LOCKED`, the credentials stored sealed with
//! the customer's data key. A failed claim gives the amount back to the account.

use baton_connectors::{CallContext, ConnectorError, Outcome};
use baton_domain::{
    Decline, DeclineCategory, Direction, EventType, InstructionStatus, InstrumentDetails, InstrumentState,
    InstrumentType, MatchType, Operation, Problem, SchemeKind, Source, TransactionStatus, TransactionType,
};
use baton_store::{Change, InstrumentRecord, TransactionRecord};
use baton_vault::instrument_aad;
use serde_json::{json, Value};

use crate::error::internal;
use crate::execution::{payment_request, ExecuteRequest, Prepared};
use crate::schemes::OptionsQuery;
use crate::{new_id, Engine, EngineResult};

/// Where a new claim can be polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCreated {
    pub customer_ref: String,
    pub financial_instrument_id: String,
    pub transaction_id: String,
}

impl ClaimCreated {
    /// `/v1/customer-vault/{customerRef}/reward/{financialInstrumentId}/transaction/{transactionId}`.
    pub fn location(&self) -> String {
        format!(
            "/v1/customer-vault/{}/reward/{}/transaction/{}",
            self.customer_ref, self.financial_instrument_id, self.transaction_id
        )
    }
}

/// A claim as polled: `SETTLING`, `SETTLED` or `FAILED`, and the credentials once settled.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimStatus {
    pub status: &'static str,
    /// `{credentialList, redemptionInstructions}` once `SETTLED`; `None` before.
    pub data: Option<Value>,
}

fn not_a_payout() -> Problem {
    Problem::bad_request("NOT_A_PAYOUT_INSTRUCTION").message("Only a payout (CREDIT) instruction can claim a reward.")
}

fn not_available() -> Problem {
    Problem::bad_request("REWARD_NOT_AVAILABLE")
        .message("The reward is not offered by the instruction's payout scheme for its amount, currency and country.")
}

fn not_updatable(status: InstructionStatus) -> Problem {
    Problem::bad_request("INSTRUCTION_NOT_UPDATABLE")
        .message("Only an INCOMPLETE, READY or LATE instruction can claim a reward; this one is {status}.")
        .detail("status", status.as_str())
}

fn insufficient_funds(app_id: &str) -> Problem {
    Problem::payment_required("INSUFFICIENT_PROVIDER_FUNDS")
        .message("The funding account of {appId} does not hold enough to pay this reward.")
        .detail("appId", app_id)
}

fn transaction_not_found() -> Problem {
    Problem::not_found("TRANSACTION_NOT_FOUND").message("No such transaction.")
}

const CLAIMABLE: [InstructionStatus; 3] =
    [InstructionStatus::Incomplete, InstructionStatus::Ready, InstructionStatus::Late];

/// What a claim's credentials are sealed under: bound to the instrument and the attempt.
pub(crate) fn result_aad(tenant_id: &str, customer_ref: &str, instrument_id: &str, transaction_id: &str) -> Vec<u8> {
    let mut aad = instrument_aad(tenant_id, customer_ref, instrument_id);
    aad.extend_from_slice(b"transaction-result:");
    aad.extend_from_slice(transaction_id.as_bytes());
    aad
}

impl Engine {
    /// `POST …/instruction/{instructionRef}/claim-reward`.
    pub async fn claim_reward(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
        reward_id: Option<&str>,
    ) -> EngineResult<ClaimCreated> {
        let reward_id = reward_id
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Problem::invalid_field("FIELD_REQUIRED", "rewardId", "{field} is required."))?;
        let order = self.order_record(tenant_id, order_ref).await?;
        let view = self.instruction_view_of(&order, instruction_ref).await?;
        let instruction = self
            .store
            .instruction(tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(|| Problem::not_found("INSTRUCTION_NOT_FOUND").message("No such instruction."))?;
        if instruction.direction != Direction::Credit {
            return Err(not_a_payout().into());
        }
        if !CLAIMABLE.contains(&instruction.status) {
            return Err(not_updatable(instruction.status).into());
        }
        let scheme_id = view.scheme.id.clone().ok_or_else(not_available)?;
        let query = OptionsQuery {
            amount: Some(view.amount.to_string()),
            currency: Some(instruction.currency.clone()),
            country: Some(instruction.country.clone()),
            match_type: Some(MatchType::Exact.as_str().to_string()),
        };
        let options = self.scheme_options(tenant_id, SchemeKind::Payout, &scheme_id, &query).await?;
        let reward = options
            .outcome
            .rewards
            .iter()
            .find(|r| r.reward_id.eq_ignore_ascii_case(reward_id))
            .copied()
            .ok_or_else(not_available)?;
        let app_id = reward.app_id.to_string();
        let balance = self.store.reward_account(tenant_id, &app_id).await?.map(|a| a.balance_minor).unwrap_or(0);
        if balance < instruction.amount_minor {
            return Err(insufficient_funds(&app_id).into());
        }

        // The REWARD instrument the reward is paid to.
        let now = self.now_ms();
        let customer_ref = instruction.customer_ref.clone();
        let key = self.customer_data_key(tenant_id, &customer_ref).await?;
        let fi_id = new_id();
        let details = InstrumentDetails::Reward;
        let instrument = InstrumentRecord {
            financial_instrument_id: fi_id.clone(),
            tenant_id: tenant_id.to_string(),
            customer_ref: customer_ref.clone(),
            kind: InstrumentType::Reward,
            state: InstrumentState::Active,
            state_reason: None,
            display: serde_json::to_string(&details.display()).map_err(|e| internal(e.to_string()))?,
            details_sealed: key.seal(b"{}", &instrument_aad(tenant_id, &customer_ref, &fi_id)),
            provider_tokens_sealed: None,
            single_use: true,
            supports_debit: false,
            supports_credit: true,
            created_at: now,
            updated_at: now,
        };
        let transaction_id = new_id();
        let attempt = TransactionRecord {
            idempotency_key: format!("baton-{transaction_id}"),
            transaction_id: transaction_id.clone(),
            tenant_id: tenant_id.to_string(),
            order_id: order.order_id.clone(),
            instruction_id: instruction.instruction_id.clone(),
            customer_ref: customer_ref.clone(),
            financial_instrument_id: Some(fi_id.clone()),
            app_id: app_id.clone(),
            payment_method: None,
            operation: Operation::RewardClaim,
            transaction_type: TransactionType::Mit,
            attempt: 1,
            amount_minor: instruction.amount_minor,
            currency: instruction.currency.clone(),
            status: TransactionStatus::Pending,
            provider_reference: None,
            decline_category: None,
            error_code: None,
            psp_code: None,
            psp_message: None,
            connector_ms: None,
            reward_id: Some(reward.reward_id.clone()),
            result_sealed: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            node_id: Some(self.node_id().to_string()),
        };
        let mut view = view;
        view.financial_instrument.id = Some(fi_id.clone());
        view.financial_instrument.source = Source::SystemGenerated;
        let prepared = Prepared {
            order: order.clone(),
            instruction: instruction.clone(),
            view,
            instrument: instrument.clone(),
            details,
            tokens: Default::default(),
            scheme_id: scheme_id.clone(),
            draft_id: options.draft_id.clone(),
            draft_code: None,
        };
        let changes = vec![
            Change::DebitRewardAccount {
                tenant_id: tenant_id.to_string(),
                app_id: app_id.clone(),
                amount_minor: instruction.amount_minor,
            },
            Change::InsertInstrument(Box::new(instrument)),
            Change::AttachInstrument {
                tenant_id: tenant_id.to_string(),
                order_id: order.order_id.clone(),
                instruction_id: instruction.instruction_id.clone(),
                instrument_id: fi_id.clone(),
                source: Source::SystemGenerated,
            },
            Change::InstructionStatus {
                tenant_id: tenant_id.to_string(),
                order_id: order.order_id.clone(),
                instruction_id: instruction.instruction_id.clone(),
                from: CLAIMABLE.to_vec(),
                to: InstructionStatus::Processing,
            },
            Change::InsertTransaction(Box::new(attempt.clone())),
            self.instruction_event(
                &prepared,
                EventType::InstructionProcessing,
                InstructionStatus::Processing,
                None,
                now,
            ),
        ];
        if !self.apply(&changes, now).await? {
            // Tell the caller which guard stopped it.
            let current = self.store.instruction(tenant_id, &order.order_id, instruction_ref).await?;
            if let Some(c) = current.filter(|c| !CLAIMABLE.contains(&c.status)) {
                return Err(not_updatable(c.status).into());
            }
            let balance = self.store.reward_account(tenant_id, &app_id).await?.map(|a| a.balance_minor).unwrap_or(0);
            if balance < attempt.amount_minor {
                return Err(insufficient_funds(&app_id).into());
            }
            return Err(Problem::conflict("CONCURRENT_MODIFICATION")
                .message("The instruction changed while the reward was being claimed; read it and try again.")
                .into());
        }
        tracing::info!(tenant_id, transaction_id = %attempt.transaction_id, app_id = %app_id, "reward claimed");

        let request =
            ExecuteRequest { transaction_type: TransactionType::Mit, extra: json!({"rewardId": reward.reward_id}) };
        match self.call_reward_app(&prepared, &attempt, &request).await {
            Ok((outcome, ms)) => {
                self.record_outcome(&prepared, &attempt, outcome, Some(ms), &request).await?;
            }
            Err(ConnectorError::Unknown(reason)) => {
                tracing::warn!(tenant_id, transaction_id = %attempt.transaction_id, %reason,
                    "the reward provider's answer was lost; the claim will be synced");
                let now = self.now_ms();
                let job = self.sync_job(&attempt, now + self.config.execution.sync_retry.as_millis() as i64, now);
                self.apply(&[Change::ScheduleJob(job)], now).await?;
            }
            Err(ConnectorError::Unsupported(reason)) => {
                let decline = Decline::new(DeclineCategory::Technical).code("PSP_UNAVAILABLE").psp(None, Some(reason));
                let outcome = Outcome::Failed { decline, provider_reference: None };
                self.record_outcome(&prepared, &attempt, outcome, None, &request).await?;
            }
        }
        Ok(ClaimCreated { customer_ref, financial_instrument_id: fi_id, transaction_id })
    }

    async fn call_reward_app(
        &self,
        prepared: &Prepared,
        attempt: &TransactionRecord,
        request: &ExecuteRequest,
    ) -> Result<(Outcome, i64), ConnectorError> {
        let tenant_id = &prepared.order.tenant_id;
        let connector = self.connector(&attempt.app_id).map_err(|e| ConnectorError::Unsupported(e.to_string()))?;
        let credentials = self
            .app_credentials(tenant_id, &attempt.app_id)
            .await
            .map_err(|e| ConnectorError::Unsupported(e.to_string()))?;
        let ctx = CallContext { environment: self.environment(), tenant_id, credentials: &credentials };
        let description = format!("{}/{}", prepared.order.order_ref, prepared.view.instruction_ref);
        let payment = payment_request(prepared, attempt, None, &description, &request.extra)
            .map_err(|e| ConnectorError::Unsupported(e.to_string()))?;
        let started = std::time::Instant::now();
        let result = self.with_timeout(connector.credit(&ctx, &payment)).await;
        let ms = started.elapsed().as_millis() as i64;
        self.metrics.record_connector_call(&attempt.app_id, ms);
        result.map(|o| (o, ms))
    }

    /// `GET /v1/customer-vault/{customerRef}/reward/{financialInstrumentId}/transaction/{transactionId}`.
    pub async fn claim_status(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        financial_instrument_id: &str,
        transaction_id: &str,
    ) -> EngineResult<ClaimStatus> {
        let t = self
            .store
            .transaction(tenant_id, transaction_id)
            .await?
            .filter(|t| {
                t.operation == Operation::RewardClaim
                    && t.customer_ref == customer_ref.trim()
                    && t.financial_instrument_id.as_deref() == Some(financial_instrument_id)
            })
            .ok_or_else(transaction_not_found)?;
        let status = match t.status {
            TransactionStatus::Settled => "SETTLED",
            TransactionStatus::Failed => "FAILED",
            _ => "SETTLING",
        };
        let data = match (&t.result_sealed, t.status) {
            (Some(sealed), TransactionStatus::Settled) => self.open_claim_result(&t, sealed).await?,
            _ => None,
        };
        Ok(ClaimStatus { status, data })
    }

    /// The claim's credentials; `None` when the customer was erased.
    async fn open_claim_result(&self, t: &TransactionRecord, sealed: &[u8]) -> EngineResult<Option<Value>> {
        let Some(key_record) = self.store.customer_key(&t.tenant_id, &t.customer_ref).await? else { return Ok(None) };
        if key_record.wrapped_key.is_none() {
            return Ok(None);
        }
        let key = self.unwrap_customer_key(&key_record)?;
        let fi = t.financial_instrument_id.as_deref().unwrap_or_default();
        let plain = key
            .open(sealed, &result_aad(&t.tenant_id, &t.customer_ref, fi, &t.transaction_id))
            .map_err(|_| internal(format!("cannot open the result of transaction {}", t.transaction_id)))?;
        let value = serde_json::from_slice(&plain).map_err(|e| internal(e.to_string()))?;
        Ok(Some(value))
    }
}
