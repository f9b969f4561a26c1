//! Executing an instruction (SPEC §4.9): route it through its scheme's published rule
//! to an app, call the app's connector, record every attempt and its outcome, and
//! announce each change through the outbox.
//!
//! Crash safety: the instruction moves to `PROCESSING` and the attempt is recorded as
//! `PENDING` (with its idempotency key) in one transaction *before* the PSP is called.
//! If the answer is lost (timeout, crash), the attempt stays `PENDING`; the worker
//! later asks the connector what became of it with the same idempotency key, and never
//! sends a new charge for it. Outcomes are written with compare-and-set on the attempt's
//! status, so a late answer and a sync cannot both apply.

pub(crate) mod cache;
pub mod events;
pub mod notifications;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::instruments::provider_tokens_aad;
use baton_connectors::{
    AppCredentials, CallContext, Connector, ConnectorError, Outcome, PaymentRequest, SyncRequest, Tokenized,
};
use baton_domain::{
    AppId, Country, Currency, Decline, DeclineCategory, Direction, EventType, InstructionStatus, InstrumentDetails,
    InstrumentState, InstrumentType, Operation, Problem, SchemeKind, StateReason, TransactionStatus, TransactionType,
};
use baton_store::{
    Change, CustomerDefaultRecord, ExecutionSubject, InstructionRecord, InstrumentRecord, JobRecord, OrderRecord,
    TransactionOutcome, TransactionRecord,
};
use serde_json::{json, Value};

use crate::error::internal;
use crate::orders::{instruction_not_found, instruction_view, order_not_found, InstructionView};
use crate::schemes::DraftView;
use crate::{new_id, Engine, EngineResult};

/// The job that asks a connector for the outcome of an attempt.
pub(crate) const SYNC_JOB: &str = "sync-transaction";
/// The job that delivers a notification a PSP scripted for later (sandbox chargebacks).
pub(crate) const FOLLOW_UP_JOB: &str = "psp-follow-up";

/// How an execution was asked for.
#[derive(Debug, Clone)]
pub struct ExecuteRequest {
    pub transaction_type: TransactionType,
    /// Extras for the connector (the checkout's `authenticated`, a claim's `rewardId`).
    pub extra: Value,
}

impl Default for ExecuteRequest {
    fn default() -> Self {
        Self { transaction_type: TransactionType::Mit, extra: json!({}) }
    }
}

/// The result of an execution: the instruction as it now stands, and the failure if it failed.
#[derive(Debug, Clone)]
pub struct Execution {
    pub instruction: InstructionView,
    /// Set when the attempt failed (the instruction `FAILED`, or payable again after a
    /// customer-initiated attempt): the last attempt's decline.
    pub decline: Option<Decline>,
}

/// One attempt as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionView {
    pub transaction_id: String,
    pub app_id: String,
    pub payment_method: Option<String>,
    pub operation: Operation,
    pub transaction_type: TransactionType,
    pub attempt: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub status: TransactionStatus,
    pub provider_reference: Option<String>,
    pub decline_category: Option<DeclineCategory>,
    pub error_code: Option<String>,
    pub psp_code: Option<String>,
    pub psp_message: Option<String>,
    pub connector_ms: Option<i64>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl From<&TransactionRecord> for TransactionView {
    fn from(t: &TransactionRecord) -> Self {
        Self {
            transaction_id: t.transaction_id.clone(),
            app_id: t.app_id.clone(),
            payment_method: t.payment_method.clone(),
            operation: t.operation,
            transaction_type: t.transaction_type,
            attempt: t.attempt,
            amount_minor: t.amount_minor,
            currency: t.currency.clone(),
            status: t.status,
            provider_reference: t.provider_reference.clone(),
            decline_category: t.decline_category,
            error_code: t.error_code.clone(),
            psp_code: t.psp_code.clone(),
            psp_message: t.psp_message.clone(),
            connector_ms: t.connector_ms,
            created_at: t.created_at,
            finished_at: t.finished_at,
        }
    }
}

/// An app routing may use for the instruction, and the method it would use.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub app_id: AppId,
    pub payment_method: Option<String>,
}

/// Everything an attempt needs, gathered once.
pub(crate) struct Prepared {
    pub order: OrderRecord,
    pub instruction: InstructionRecord,
    pub view: InstructionView,
    pub instrument: InstrumentRecord,
    pub details: InstrumentDetails,
    pub tokens: BTreeMap<String, String>,
    pub scheme_id: String,
    pub draft_id: String,
    pub draft_code: Option<String>,
}

fn not_executable(status: InstructionStatus) -> Problem {
    Problem::bad_request("INSTRUCTION_NOT_EXECUTABLE")
        .message("Only a READY or LATE instruction can be executed; this one is {status}.")
        .detail("status", status.as_str())
}

/// The payment method an instrument pays with, if `method` (an app's method id) fits it.
fn method_fits(method: &str, details: &InstrumentDetails, direction: Direction) -> bool {
    match details {
        InstrumentDetails::Card(card) => {
            card.number.brand().is_some_and(|b| b.method_id().eq_ignore_ascii_case(method))
        }
        InstrumentDetails::DirectDebitMandate(_) => {
            method.eq_ignore_ascii_case(if direction == Direction::Debit { "DIRECT_DEBIT" } else { "BANK_TRANSFER" })
        }
        InstrumentDetails::BankAccount(_) => {
            direction == Direction::Credit && method.eq_ignore_ascii_case("BANK_TRANSFER")
        }
        InstrumentDetails::Wallet(wallet) => {
            direction == Direction::Debit && method.eq_ignore_ascii_case(&wallet.provider)
        }
        InstrumentDetails::MobilePhone(_) | InstrumentDetails::Reward => false,
    }
}

/// The apps of `rule` that can take the instrument, in routing order (see
/// [`baton_domain::schemes::entries_by_priority`]), each app once.
pub(crate) fn candidates(
    rule: &baton_domain::Rule,
    details: &InstrumentDetails,
    direction: Direction,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for entry in baton_domain::schemes::entries_by_priority(rule) {
        if out.iter().any(|c| c.app_id == entry.app_id) {
            continue;
        }
        let Some(app) = baton_connectors::find(&entry.app_id) else { continue };
        let method = app
            .methods_for(direction)
            .into_iter()
            .find(|m| !entry.excluded_payment_methods.iter().any(|x| m.is(x)) && method_fits(m.id, details, direction));
        if let Some(m) = method {
            out.push(Candidate { app_id: entry.app_id.clone(), payment_method: Some(m.id.to_string()) });
        }
    }
    out
}

impl Engine {
    /// The connectors this engine calls.
    pub fn connectors(&self) -> &baton_connectors::Connectors {
        &self.connectors
    }

    /// `POST …/instruction/{instructionRef}/execute`: executes a `READY` or `LATE`
    /// instruction now. A decline ends in `FAILED` (returned with its decline), or, for
    /// a customer-initiated payment (`CIT`, the checkout), back in `READY`/`LATE` with
    /// its decline; an accepted asynchronous payment in `PROCESSING`, a success in `SETTLED`.
    pub async fn execute_instruction(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
        request: ExecuteRequest,
    ) -> EngineResult<Execution> {
        self.execute_guarded(tenant_id, order_ref, instruction_ref, request, Vec::new()).await
    }

    /// [`Self::execute_instruction`], started only if `guards` (changes that write
    /// nothing, such as `Change::PayByLinkLive`) also hold in the transaction that
    /// starts the payment; when one does not, nothing is started or recorded.
    pub(crate) async fn execute_guarded(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
        request: ExecuteRequest,
        guards: Vec<Change>,
    ) -> EngineResult<Execution> {
        // Everything but routing in one read; routing from this node's copies when they
        // are as recent as the routing version read with it (see `cache`).
        let subject = self.execution_subject(tenant_id, order_ref, instruction_ref).await?;
        let routing_version = subject.routing_version;
        let default = subject.default.clone();
        let prepared = self.prepare_subject(subject)?;
        let direction = prepared.instruction.direction;
        let kind = if direction == Direction::Debit { SchemeKind::Collect } else { SchemeKind::Payout };
        let draft = self.routing_rules(tenant_id, kind, &prepared.scheme_id, routing_version).await?;
        let query = self.match_query(&prepared.instruction)?;
        let rule =
            baton_domain::first_match(&draft.rules, &query).map(|i| draft.rules[i].clone()).ok_or_else(|| {
                Problem::bad_request("NO_MATCHING_RULE").message(
                    "No rule of the scheme's published draft matches the instruction's amount, currency and country.",
                )
            })?;
        let candidates = candidates(&rule, &prepared.details, direction);
        if candidates.is_empty() {
            return Err(Problem::bad_request("NO_APP_FOR_PAYMENT_METHOD")
                .message("No app of the matching rule takes this financial instrument.")
                .into());
        }
        let prepared = Prepared { draft_id: draft.draft_id.clone(), draft_code: draft.code.clone(), ..prepared };
        self.run_attempts(prepared, default, candidates, request, routing_version, guards).await
    }

    /// The order with the instruction and what executing it needs, in one read
    /// (`404 ORDER_NOT_FOUND`, `404 INSTRUCTION_NOT_FOUND`).
    async fn execution_subject(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> EngineResult<ExecutionSubject> {
        let order_ref = baton_domain::OrderRef::parse(order_ref, "orderRef").map_err(|_| order_not_found())?;
        let subject = self
            .store
            .execution_subject(tenant_id, order_ref.as_str(), instruction_ref)
            .await?
            .ok_or_else(order_not_found)?;
        if subject.instruction.is_none() {
            return Err(instruction_not_found().into());
        }
        Ok(subject)
    }

    /// Loads and checks what an execution needs: a `READY`/`LATE` instruction with an
    /// `ACTIVE` instrument whose details open, and a scheme.
    pub(crate) async fn prepare_execution(&self, order: &OrderRecord, instruction_ref: &str) -> EngineResult<Prepared> {
        let subject = self.execution_subject(&order.tenant_id, &order.order_ref, instruction_ref).await?;
        self.prepare_subject(subject)
    }

    /// Checks what an execution needs, as read: a `READY`/`LATE` instruction with an
    /// `ACTIVE` instrument whose details open, and a scheme.
    fn prepare_subject(&self, subject: ExecutionSubject) -> EngineResult<Prepared> {
        let ExecutionSubject { order, instruction, default, instrument, customer_key, .. } = subject;
        let instruction = instruction.ok_or_else(instruction_not_found)?;
        let view = instruction_view(&instruction, default.as_ref())?;
        if !matches!(instruction.status, InstructionStatus::Ready | InstructionStatus::Late) {
            return Err(not_executable(instruction.status).into());
        }
        let instrument_id = view.financial_instrument.id.clone().ok_or_else(|| {
            Problem::bad_request("FINANCIAL_INSTRUMENT_REQUIRED")
                .message("The instruction has no financial instrument.")
        })?;
        let scheme_id = view
            .scheme
            .id
            .clone()
            .ok_or_else(|| Problem::bad_request("SCHEME_REQUIRED").message("The instruction has no scheme."))?;
        let instrument = instrument.ok_or_else(|| {
            Problem::bad_request("FINANCIAL_INSTRUMENT_NOT_FOUND").message("The financial instrument no longer exists.")
        })?;
        if instrument.financial_instrument_id != instrument_id {
            return Err(internal(format!(
                "instruction {} resolves to instrument {instrument_id}, but {} was read with it",
                instruction.instruction_id, instrument.financial_instrument_id
            )));
        }
        if instrument.state != InstrumentState::Active {
            return Err(Problem::bad_request("FINANCIAL_INSTRUMENT_NOT_ACTIVE")
                .message("The financial instrument is {state}.")
                .detail("state", instrument.state.as_str())
                .into());
        }
        let secrets = self.open_instrument_secrets(&instrument, customer_key.as_ref())?;
        let (details, tokens) = self.instrument_details(&instrument, secrets)?;
        Ok(Prepared {
            order,
            instruction,
            view,
            instrument,
            details,
            tokens,
            scheme_id,
            draft_id: String::new(),
            draft_code: None,
        })
    }

    /// The instrument's details and PSP tokens, opened with the customer's key.
    pub(crate) async fn open_instrument(
        &self,
        instrument: &InstrumentRecord,
    ) -> EngineResult<(InstrumentDetails, BTreeMap<String, String>)> {
        let secrets = self
            .instrument_secrets(&instrument.tenant_id, &instrument.customer_ref, &instrument.financial_instrument_id)
            .await?;
        self.instrument_details(instrument, secrets)
    }

    /// The instrument's details parsed from its opened secrets (`None`: the customer was erased).
    fn instrument_details(
        &self,
        instrument: &InstrumentRecord,
        secrets: Option<crate::instruments::InstrumentSecrets>,
    ) -> EngineResult<(InstrumentDetails, BTreeMap<String, String>)> {
        let secrets = secrets.ok_or_else(|| {
            Problem::bad_request("FINANCIAL_INSTRUMENT_NOT_ACTIVE").message("The customer was erased.")
        })?;
        let kind: InstrumentType = instrument.kind;
        // Parsed as of the card's own expiry check: an expired card is refused here.
        let details = InstrumentDetails::parse(kind, &secrets.details, self.now_utc()).map_err(|problems| {
            let first = problems.0.into_iter().next().map(|p| p.code.to_string()).unwrap_or_default();
            Problem::bad_request("FINANCIAL_INSTRUMENT_UNUSABLE")
                .message("The financial instrument cannot be used: {reason}.")
                .detail("reason", first)
        })?;
        Ok((details, secrets.provider_tokens))
    }

    fn match_query(&self, i: &InstructionRecord) -> EngineResult<baton_domain::MatchQuery> {
        let currency: Currency = i.currency.parse().map_err(|_| internal(format!("stored currency {}", i.currency)))?;
        let country: Country = i.country.parse().map_err(|_| internal(format!("stored country {}", i.country)))?;
        Ok(baton_domain::MatchQuery {
            amount: baton_domain::Amount { minor: i.amount_minor, currency }.to_decimal(),
            currency,
            country,
        })
    }

    /// The tenant's configuration of an app, as its connector needs it.
    pub(crate) async fn app_credentials(&self, tenant_id: &str, app_id: &str) -> EngineResult<AppCredentials> {
        let (_, record) = self.installed_record(tenant_id, app_id).await?;
        let config = self.stored_config(&record)?;
        Ok(AppCredentials { public: config.public, secrets: config.secrets })
    }

    /// [`Engine::app_credentials`] as of the tenant's routing version `routing_version`
    /// (or later), from this node's copy when it is that recent.
    async fn routing_credentials(
        &self,
        tenant_id: &str,
        app_id: &str,
        routing_version: i64,
    ) -> EngineResult<Arc<AppCredentials>> {
        let key = (tenant_id.to_string(), app_id.to_string());
        if let Some(credentials) = self.routing.apps.get(&key, routing_version) {
            return Ok(credentials);
        }
        let credentials = Arc::new(self.app_credentials(tenant_id, app_id).await?);
        self.routing.apps.put(key, routing_version, credentials.clone());
        Ok(credentials)
    }

    /// The scheme's published draft as of the tenant's routing version `routing_version`
    /// (or later), from this node's copy when it is that recent.
    async fn routing_rules(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        routing_version: i64,
    ) -> EngineResult<Arc<DraftView>> {
        let key = (tenant_id.to_string(), kind, scheme_id.to_string());
        if let Some(draft) = self.routing.rules.get(&key, routing_version) {
            return Ok(draft);
        }
        let draft = Arc::new(self.published_rules(tenant_id, kind, scheme_id).await?);
        self.routing.rules.put(key, routing_version, draft.clone());
        Ok(draft)
    }

    pub(crate) fn connector(&self, app_id: &str) -> EngineResult<Arc<dyn Connector>> {
        self.connectors.get(app_id).cloned().ok_or_else(|| internal(format!("no connector for app {app_id}")))
    }

    /// Moves the instruction to `PROCESSING` with its first attempt, then tries the
    /// candidates in order until one does not fail over.
    async fn run_attempts(
        &self,
        prepared: Prepared,
        default: Option<CustomerDefaultRecord>,
        candidates: Vec<Candidate>,
        request: ExecuteRequest,
        routing_version: i64,
        guards: Vec<Change>,
    ) -> EngineResult<Execution> {
        let tenant_id = prepared.order.tenant_id.clone();
        let now = self.now_ms();
        let mut attempt = self.new_attempt(&prepared, &candidates[0], 1, request.transaction_type, now);
        // The instruction as it is kept from now on (what it inherited frozen into it).
        let frozen = prepared.instruction.frozen(default.as_ref())?;
        let mut begin = vec![
            // Only if nothing it was read with has changed (what is charged is what was
            // read) and the customer was not erased meanwhile.
            Change::StartProcessing { seen: Box::new(prepared.instruction.clone()), default: default.map(Box::new) },
        ];
        // After the start, so that their locks come after the instruction's.
        begin.extend(guards);
        begin.extend([
            Change::InsertTransaction(Box::new(attempt.clone())),
            self.instruction_event(
                &prepared,
                EventType::InstructionProcessing,
                InstructionStatus::Processing,
                None,
                now,
            ),
        ]);
        if !self.apply(&begin, now).await? {
            // Something changed since it was read: a fresh read tells what.
            return Err(match self.prepare_execution(&prepared.order, &prepared.view.instruction_ref).await {
                Err(e) => e,
                Ok(_) => Problem::conflict("CONCURRENT_MODIFICATION")
                    .message("The instruction changed while it was being executed; read it and try again.")
                    .into(),
            });
        }
        // What the instruction ended in, as recorded here (with the decline), if known.
        let mut recorded = None;
        let mut index = 0;
        loop {
            let candidate = &candidates[index];
            let result = self.call_connector(&prepared, candidate, &attempt, &request, routing_version).await;
            let next = candidates.get(index + 1);
            match result {
                Ok((Outcome::Failed { decline, provider_reference }, ms))
                    if decline.category.allows_failover() && next.is_some() =>
                {
                    let now = self.now_ms();
                    let next_attempt =
                        self.new_attempt(&prepared, next.unwrap(), attempt.attempt + 1, request.transaction_type, now);
                    let changes = vec![
                        finish(&attempt, TransactionStatus::Failed, failed_outcome(&decline, provider_reference, ms)),
                        Change::InsertTransaction(Box::new(next_attempt.clone())),
                    ];
                    if !self.apply(&changes, now).await? {
                        break;
                    }
                    tracing::info!(tenant_id, transaction_id = %attempt.transaction_id, next_app = %next_attempt.app_id,
                        category = %decline.category, "failing over to the next app");
                    attempt = next_attempt;
                    index += 1;
                }
                Ok((outcome, ms)) => {
                    let decline = match &outcome {
                        Outcome::Failed { decline, .. } => Some(decline.clone()),
                        _ => None,
                    };
                    let status = self.record_attempt_outcome(&prepared, &attempt, outcome, Some(ms), &request).await?;
                    recorded = status.map(|s| (s, decline));
                    break;
                }
                Err(ConnectorError::Unknown(reason)) => {
                    // Maybe charged: ask the PSP later, with the same idempotency key.
                    tracing::warn!(tenant_id, transaction_id = %attempt.transaction_id, %reason,
                        "the PSP's answer was lost; the attempt will be synced");
                    let now = self.now_ms();
                    let job = self.sync_job(&attempt, now + self.config.execution.sync_retry.as_millis() as i64, now);
                    self.apply(&[Change::ScheduleJob(job)], now).await?;
                    recorded = Some((InstructionStatus::Processing, None));
                    break;
                }
                Err(ConnectorError::Unsupported(reason)) => {
                    let decline = Decline::new(DeclineCategory::Technical)
                        .code("PAYMENT_METHOD_NOT_SUPPORTED")
                        .psp(None, Some(reason));
                    let outcome = Outcome::Failed { decline: decline.clone(), provider_reference: None };
                    let status = self.record_attempt_outcome(&prepared, &attempt, outcome, None, &request).await?;
                    recorded = status.map(|s| (s, Some(decline)));
                    break;
                }
            }
        }
        self.execution_answer(&prepared, &frozen, recorded).await
    }

    /// The result of an execution. When this execution recorded how it ended and that
    /// status no longer takes anything from the customer default, it is built from the
    /// rows in hand (`frozen`, the instruction as it is now kept), exactly as a fresh read
    /// would show it; otherwise the instruction is read again.
    async fn execution_answer(
        &self,
        prepared: &Prepared,
        frozen: &InstructionRecord,
        recorded: Option<(InstructionStatus, Option<Decline>)>,
    ) -> EngineResult<Execution> {
        match recorded {
            Some((status, decline)) if !status.can_update() => {
                let record = InstructionRecord { status, ..frozen.clone() };
                // FAILED, or LATE again after a customer-initiated attempt failed.
                let decline = decline.filter(|_| matches!(status, InstructionStatus::Failed | InstructionStatus::Late));
                Ok(Execution { instruction: instruction_view(&record, None)?, decline })
            }
            _ => self.execution_result(prepared).await,
        }
    }

    /// The instruction as it now stands, with the last attempt's decline if it failed.
    async fn execution_result(&self, prepared: &Prepared) -> EngineResult<Execution> {
        let instruction = self.instruction_view_of(&prepared.order, &prepared.view.instruction_ref).await?;
        // FAILED, or (a customer-initiated attempt) payable again: the last attempt's decline.
        let failed = matches!(
            instruction.status,
            InstructionStatus::Failed | InstructionStatus::Ready | InstructionStatus::Late
        );
        let decline = if failed {
            let attempts = self
                .store
                .instruction_transactions(&prepared.order.tenant_id, &prepared.instruction.instruction_id)
                .await?;
            attempts.last().filter(|t| t.status == TransactionStatus::Failed).map(|t| {
                let category = t.decline_category.unwrap_or(DeclineCategory::HardDecline);
                Decline::new(category)
                    .code(t.error_code.clone().unwrap_or_else(|| category.error_code().to_string()))
                    .psp(t.psp_code.clone(), t.psp_message.clone())
            })
        } else {
            None
        };
        Ok(Execution { instruction, decline })
    }

    fn new_attempt(
        &self,
        prepared: &Prepared,
        candidate: &Candidate,
        number: i64,
        transaction_type: TransactionType,
        now: i64,
    ) -> TransactionRecord {
        let transaction_id = new_id();
        TransactionRecord {
            idempotency_key: format!("baton-{transaction_id}"),
            transaction_id,
            tenant_id: prepared.order.tenant_id.clone(),
            order_id: prepared.order.order_id.clone(),
            instruction_id: prepared.instruction.instruction_id.clone(),
            customer_ref: prepared.instruction.customer_ref.clone(),
            financial_instrument_id: Some(prepared.instrument.financial_instrument_id.clone()),
            app_id: candidate.app_id.as_str().to_string(),
            payment_method: candidate.payment_method.clone(),
            operation: if prepared.instruction.direction == Direction::Debit {
                Operation::Debit
            } else {
                Operation::Credit
            },
            transaction_type,
            attempt: number,
            amount_minor: prepared.instruction.amount_minor,
            currency: prepared.instruction.currency.clone(),
            status: TransactionStatus::Pending,
            provider_reference: None,
            decline_category: None,
            error_code: None,
            psp_code: None,
            psp_message: None,
            connector_ms: None,
            reward_id: None,
            result_sealed: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            node_id: Some(self.node_id().to_string()),
        }
    }

    /// Tokenizes the instrument at the app if needed, then calls the connector, under
    /// the configured timeout. Returns the outcome and the time the PSP took.
    async fn call_connector(
        &self,
        prepared: &Prepared,
        candidate: &Candidate,
        attempt: &TransactionRecord,
        request: &ExecuteRequest,
        routing_version: i64,
    ) -> Result<(Outcome, i64), ConnectorError> {
        let tenant_id = &prepared.order.tenant_id;
        let connector =
            self.connector(candidate.app_id.as_str()).map_err(|e| ConnectorError::Unsupported(e.to_string()))?;
        let credentials = self
            .routing_credentials(tenant_id, candidate.app_id.as_str(), routing_version)
            .await
            .map_err(|e| ConnectorError::Unsupported(e.to_string()))?;
        let ctx = CallContext { environment: self.environment(), tenant_id, credentials: &credentials };
        let started = Instant::now();
        let mut token = prepared.tokens.get(candidate.app_id.as_str()).cloned();
        if token.is_none() {
            match self.with_timeout(connector.tokenize(&ctx, &prepared.details)).await {
                Ok(Tokenized::Token(t)) => {
                    if let Err(e) = self.cache_token(prepared, candidate.app_id.as_str(), &t).await {
                        tracing::warn!(tenant_id, error = %e, "could not cache the PSP token");
                    }
                    token = Some(t);
                }
                Ok(Tokenized::NotNeeded) => {}
                Ok(Tokenized::Refused(decline)) => {
                    return Ok((Outcome::Failed { decline, provider_reference: None }, elapsed_ms(started)))
                }
                // Tokenizing moves no money: a lost answer is a technical failure.
                Err(e) => {
                    let decline = Decline::new(DeclineCategory::Technical).psp(None, Some(e.to_string()));
                    return Ok((Outcome::Failed { decline, provider_reference: None }, elapsed_ms(started)));
                }
            }
        }
        let description = format!("{}/{}", prepared.order.order_ref, prepared.view.instruction_ref);
        let payment = payment_request(prepared, attempt, token.as_deref(), &description, &request.extra)
            .map_err(|e| ConnectorError::Unsupported(e.to_string()))?;
        let result = match prepared.instruction.direction {
            Direction::Debit => self.with_timeout(connector.debit(&ctx, &payment)).await,
            Direction::Credit => self.with_timeout(connector.credit(&ctx, &payment)).await,
        };
        let ms = elapsed_ms(started);
        self.metrics.record_connector_call(candidate.app_id.as_str(), ms);
        result.map(|o| (o, ms))
    }

    pub(crate) async fn with_timeout<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.config.execution.connector_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ConnectorError::Unknown("the PSP did not answer in time".into())),
        }
    }

    async fn cache_token(&self, prepared: &Prepared, app_id: &str, token: &str) -> EngineResult<()> {
        let i = &prepared.instrument;
        let key = self.customer_data_key(&i.tenant_id, &i.customer_ref).await?;
        let mut tokens = prepared.tokens.clone();
        tokens.insert(app_id.to_string(), token.to_string());
        let aad = provider_tokens_aad(&i.tenant_id, &i.customer_ref, &i.financial_instrument_id);
        let plain = serde_json::to_vec(&tokens).map_err(|e| internal(e.to_string()))?;
        let sealed = key.seal(&plain, &aad);
        let change = Change::InstrumentTokens {
            tenant_id: i.tenant_id.clone(),
            customer_ref: i.customer_ref.clone(),
            instrument_id: i.financial_instrument_id.clone(),
            provider_tokens_sealed: sealed,
        };
        self.apply(&[change], self.now_ms()).await?;
        Ok(())
    }

    /// Writes an attempt's outcome with what follows from it, in one transaction. The
    /// attempt must still be `PENDING` or `PROCESSING`; otherwise someone else recorded
    /// its outcome first and nothing changes.
    pub(crate) async fn record_outcome(
        &self,
        prepared: &Prepared,
        attempt: &TransactionRecord,
        outcome: Outcome,
        connector_ms: Option<i64>,
        request: &ExecuteRequest,
    ) -> EngineResult<bool> {
        Ok(self.record_attempt_outcome(prepared, attempt, outcome, connector_ms, request).await?.is_some())
    }

    /// [`Engine::record_outcome`], telling the instruction's status once the outcome is
    /// recorded (`None` when someone else recorded one first).
    pub(crate) async fn record_attempt_outcome(
        &self,
        prepared: &Prepared,
        attempt: &TransactionRecord,
        outcome: Outcome,
        connector_ms: Option<i64>,
        request: &ExecuteRequest,
    ) -> EngineResult<Option<InstructionStatus>> {
        let now = self.now_ms();
        let tenant_id = prepared.order.tenant_id.clone();
        let mut changes = Vec::new();
        let instruction_change = |to| Change::InstructionStatus {
            tenant_id: tenant_id.clone(),
            order_id: prepared.order.order_id.clone(),
            instruction_id: prepared.instruction.instruction_id.clone(),
            from: vec![InstructionStatus::Processing],
            to,
        };
        match &outcome {
            Outcome::Succeeded { provider_reference, result } => {
                let o = TransactionOutcome {
                    provider_reference: Some(provider_reference.clone()),
                    connector_ms,
                    result_sealed: self.seal_result(attempt, result.as_ref()).await?,
                    ..Default::default()
                };
                changes.push(finish(attempt, TransactionStatus::Settled, o));
                changes.push(instruction_change(InstructionStatus::Settled));
                let mut settled = attempt.clone();
                settled.status = TransactionStatus::Settled;
                settled.provider_reference = Some(provider_reference.clone());
                changes.push(self.instruction_event(
                    prepared,
                    EventType::InstructionSettled,
                    InstructionStatus::Settled,
                    Some(&settled),
                    now,
                ));
                if attempt.operation == Operation::RewardClaim {
                    changes.push(self.claim_event(prepared, &settled, EventType::RewardClaimSettled, now));
                }
                if prepared.instrument.single_use {
                    changes.extend(instrument_moves(&prepared.instrument, InstrumentState::Locked, None, now));
                }
                // Scripted PSP behaviour (sandbox chargebacks) arrives later as a notification.
                if let Ok(connector) = self.connector(&attempt.app_id) {
                    let description = String::new();
                    if let Ok(payment) = payment_request(prepared, attempt, None, &description, &request.extra) {
                        for (n, follow_up) in connector.follow_ups(&payment, &outcome).into_iter().enumerate() {
                            let payload = json!({"appId": attempt.app_id,
                                "notification": events::notification_json(&follow_up.notification)});
                            changes.push(Change::ScheduleJob(JobRecord::new(
                                new_id(),
                                FOLLOW_UP_JOB,
                                &format!("{}:{n}", attempt.transaction_id),
                                &tenant_id,
                                payload.to_string(),
                                now + follow_up.after.as_millis() as i64,
                                now,
                            )));
                        }
                    }
                }
            }
            Outcome::Pending { provider_reference, check_after } => {
                let o = TransactionOutcome {
                    provider_reference: Some(provider_reference.clone()),
                    connector_ms,
                    ..Default::default()
                };
                changes.push(Change::FinishTransaction {
                    tenant_id: tenant_id.clone(),
                    transaction_id: attempt.transaction_id.clone(),
                    from: vec![TransactionStatus::Pending],
                    to: TransactionStatus::Processing,
                    outcome: o,
                });
                changes.push(Change::ScheduleJob(self.sync_job(attempt, now + check_after.as_millis() as i64, now)));
            }
            Outcome::Failed { decline, provider_reference } => {
                changes.push(finish(
                    attempt,
                    TransactionStatus::Failed,
                    failed_outcome(decline, provider_reference.clone(), connector_ms.unwrap_or(0)),
                ));
                // A merchant-initiated payment ends FAILED; a customer-initiated one
                // (checkout) leaves the instruction payable, READY or LATE.
                let to = baton_domain::instruction::after_failed_attempt(
                    attempt.transaction_type,
                    prepared.view.settled_by_date,
                    self.now_utc(),
                );
                changes.push(instruction_change(to));
                let mut failed = attempt.clone();
                failed.status = TransactionStatus::Failed;
                failed.error_code = Some(decline.code.clone());
                failed.decline_category = Some(decline.category);
                failed.psp_code = decline.psp_code.clone();
                // The failed attempt is announced either way: as `instruction.failed`, or as
                // the status change back to payable (`instruction.updated`, with the attempt).
                let event_type = if to == InstructionStatus::Failed {
                    EventType::InstructionFailed
                } else {
                    EventType::InstructionUpdated
                };
                changes.push(self.instruction_event(prepared, event_type, to, Some(&failed), now));
                if attempt.operation == Operation::RewardClaim {
                    // The reward was not issued: the account gets its money back.
                    changes.push(Change::CreditRewardAccount {
                        tenant_id: tenant_id.clone(),
                        app_id: attempt.app_id.clone(),
                        amount_minor: attempt.amount_minor,
                    });
                    changes.push(self.claim_event(prepared, &failed, EventType::RewardClaimFailed, now));
                }
                if decline.code == "MANDATE_CANCELLED" {
                    let reason = Some(StateReason::MandateCancelled);
                    changes.extend(instrument_moves(&prepared.instrument, InstrumentState::Inactive, reason, now));
                }
            }
        }
        let mut applied = self.apply(&changes, now).await?;
        if !applied && changes.iter().any(|c| matches!(c, Change::InstrumentState { .. })) {
            // The instrument moved meanwhile (deactivated, say): the outcome still counts.
            changes.retain(|c| {
                !matches!(c, Change::InstrumentState { .. })
                    && !matches!(c, Change::Event(e) if e.event_type == EventType::FinancialInstrumentStateChanged)
            });
            applied = self.apply(&changes, now).await?;
        }
        if !applied {
            return Ok(None);
        }
        tracing::info!(tenant_id, transaction_id = %attempt.transaction_id, app_id = %attempt.app_id,
            outcome = outcome_word(&outcome), "attempt recorded");
        // The status the changes moved the instruction to; an outcome that moves none
        // leaves it `PROCESSING`.
        let status = changes.iter().find_map(|c| match c {
            Change::InstructionStatus { to, .. } => Some(*to),
            _ => None,
        });
        Ok(Some(status.unwrap_or(InstructionStatus::Processing)))
    }

    /// What the PSP returned for the customer (a claim's credentials), sealed with the
    /// customer's data key; never stored in clear.
    async fn seal_result(&self, attempt: &TransactionRecord, result: Option<&Value>) -> EngineResult<Option<Vec<u8>>> {
        let Some(result) = result else { return Ok(None) };
        let key = self.customer_data_key(&attempt.tenant_id, &attempt.customer_ref).await?;
        let fi = attempt.financial_instrument_id.as_deref().unwrap_or_default();
        let aad = crate::claims::result_aad(&attempt.tenant_id, &attempt.customer_ref, fi, &attempt.transaction_id);
        let plain = serde_json::to_vec(result).map_err(|e| internal(e.to_string()))?;
        Ok(Some(key.seal(&plain, &aad)))
    }

    /// A `reward.claim.*` event: the instruction's data with the claim.
    fn claim_event(&self, prepared: &Prepared, attempt: &TransactionRecord, event_type: EventType, now: i64) -> Change {
        let status = if attempt.status == TransactionStatus::Settled {
            InstructionStatus::Settled
        } else {
            InstructionStatus::Failed
        };
        let scheme = (prepared.scheme_id.as_str(), prepared.draft_id.as_str(), prepared.draft_code.as_deref());
        let mut data = events::instruction_data(&prepared.order, &prepared.view, status, scheme, Some(attempt));
        data["claim"] = json!({
            "rewardId": attempt.reward_id,
            "customerRef": attempt.customer_ref,
            "financialInstrumentId": attempt.financial_instrument_id,
            "transactionId": attempt.transaction_id,
        });
        Change::Event(baton_store::EventRecord {
            event_id: new_id(),
            account_id: None,
            tenant_id: Some(prepared.order.tenant_id.clone()),
            event_type,
            ordering_key: Some(prepared.instruction.instruction_id.clone()),
            data: data.to_string(),
            created_at: now,
        })
    }

    pub(crate) fn sync_job(&self, attempt: &TransactionRecord, run_at: i64, now: i64) -> JobRecord {
        JobRecord::new(new_id(), SYNC_JOB, &attempt.transaction_id, &attempt.tenant_id, "{}".into(), run_at, now)
    }

    /// An `instruction.*` event for the outbox.
    pub(crate) fn instruction_event(
        &self,
        prepared: &Prepared,
        event_type: EventType,
        status: InstructionStatus,
        transaction: Option<&TransactionRecord>,
        now: i64,
    ) -> Change {
        let scheme = (prepared.scheme_id.as_str(), prepared.draft_id.as_str(), prepared.draft_code.as_deref());
        let data = events::instruction_data(&prepared.order, &prepared.view, status, scheme, transaction);
        Change::Event(baton_store::EventRecord {
            event_id: new_id(),
            account_id: None,
            tenant_id: Some(prepared.order.tenant_id.clone()),
            event_type,
            ordering_key: Some(prepared.instruction.instruction_id.clone()),
            data: data.to_string(),
            created_at: now,
        })
    }

    /// The tenant's events in the outbox, oldest first.
    pub async fn outbox_events(&self, tenant_id: &str) -> EngineResult<Vec<baton_store::StoredEvent>> {
        Ok(self.store.events(tenant_id).await?)
    }

    /// `GET …/instruction/{instructionRef}/transactions`: every attempt, oldest first.
    pub async fn instruction_transactions(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> EngineResult<Vec<TransactionView>> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let instruction = self
            .store
            .instruction(tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(|| Problem::not_found("INSTRUCTION_NOT_FOUND").message("No such instruction."))?;
        let rows = self.store.instruction_transactions(tenant_id, &instruction.instruction_id).await?;
        Ok(rows.iter().map(TransactionView::from).collect())
    }
}

/// An ACTIVE instrument's move to `to`, with the event announcing it.
pub(crate) fn instrument_moves(
    instrument: &InstrumentRecord,
    to: InstrumentState,
    reason: Option<StateReason>,
    now: i64,
) -> [Change; 2] {
    [
        Change::InstrumentState {
            tenant_id: instrument.tenant_id.clone(),
            customer_ref: instrument.customer_ref.clone(),
            instrument_id: instrument.financial_instrument_id.clone(),
            from: InstrumentState::Active,
            to,
            reason,
        },
        crate::instruments::instrument_event(instrument, to, reason, EventType::FinancialInstrumentStateChanged, now),
    ]
}

fn elapsed_ms(started: Instant) -> i64 {
    started.elapsed().as_millis() as i64
}

fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Succeeded { .. } => "succeeded",
        Outcome::Pending { .. } => "pending",
        Outcome::Failed { .. } => "failed",
    }
}

fn finish(attempt: &TransactionRecord, to: TransactionStatus, outcome: TransactionOutcome) -> Change {
    Change::FinishTransaction {
        tenant_id: attempt.tenant_id.clone(),
        transaction_id: attempt.transaction_id.clone(),
        from: vec![TransactionStatus::Pending, TransactionStatus::Processing],
        to,
        outcome,
    }
}

fn failed_outcome(decline: &Decline, provider_reference: Option<String>, ms: i64) -> TransactionOutcome {
    TransactionOutcome {
        provider_reference,
        decline_category: Some(decline.category),
        error_code: Some(decline.code.clone()),
        psp_code: decline.psp_code.clone(),
        psp_message: decline.psp_message.clone(),
        connector_ms: Some(ms),
        result_sealed: None,
    }
}

/// The connector's view of an attempt.
pub(crate) fn payment_request<'a>(
    prepared: &'a Prepared,
    attempt: &'a TransactionRecord,
    token: Option<&'a str>,
    description: &'a str,
    extra: &'a Value,
) -> EngineResult<PaymentRequest<'a>> {
    let currency: Currency =
        attempt.currency.parse().map_err(|_| internal(format!("stored currency {}", attempt.currency)))?;
    let country: Country = prepared
        .instruction
        .country
        .parse()
        .map_err(|_| internal(format!("stored country {}", prepared.instruction.country)))?;
    Ok(PaymentRequest {
        attempt_id: &attempt.transaction_id,
        idempotency_key: &attempt.idempotency_key,
        amount_minor: attempt.amount_minor,
        currency,
        country,
        transaction_type: attempt.transaction_type,
        payment_method: attempt.payment_method.as_deref(),
        instrument: &prepared.details,
        token,
        description,
        extra,
    })
}

/// The sync request for an attempt (the original call, same idempotency key), at `now`.
pub(crate) fn sync_request<'a>(
    prepared: &'a Prepared,
    attempt: &'a TransactionRecord,
    extra: &'a Value,
    now: i64,
) -> EngineResult<SyncRequest<'a>> {
    let token = prepared.tokens.get(&attempt.app_id).map(String::as_str);
    Ok(SyncRequest {
        payment: payment_request(prepared, attempt, token, "", extra)?,
        provider_reference: attempt.provider_reference.as_deref(),
        attempt_age: std::time::Duration::from_millis(u64::try_from(now - attempt.created_at).unwrap_or(0)),
    })
}
