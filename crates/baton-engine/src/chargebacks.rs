//! Chargebacks (SPEC §5.3): disputes of settled debits, created and moved only by the
//! PSP's notifications (verified at `POST /v1/psp-events/…`, or scripted by the sandbox),
//! read, contested with evidence, or accepted through the API. A `FRAUD` chargeback
//! sets the financial instrument `INACTIVE` (`FRAUD_SUSPECTED`) in the same transaction
//! that records it.

use base64::Engine as _;
use baton_connectors::{CallContext, ConnectorError, DisputeAction, DisputeRequest, EvidenceDocument};
use baton_domain::{
    Amount, ChargebackReason, ChargebackStatus, Currency, EventType, InstrumentState, Operation, Problem, StateReason,
    TransactionStatus,
};
use baton_store::{
    Change, ChargebackFilter, ChargebackRecord, EventRecord, Keyset, ListedChargeback, TransactionRecord,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::listing::{decode_cursor, paginate, parse_limit, Listing, Page, MAX_PAGE_SIZE};
use crate::{new_id, Engine, EngineResult};

/// A chargeback notification, as the connector read it.
#[derive(Debug, Clone)]
pub struct ChargebackNotice {
    pub payment_reference: String,
    pub dispute_reference: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub reason: ChargebackReason,
    pub provider_reason_code: Option<String>,
    pub status: ChargebackStatus,
    pub due_by: Option<i64>,
}

/// A chargeback as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargebackView {
    pub chargeback_id: String,
    pub order_ref: String,
    pub instruction_ref: String,
    pub amount: Decimal,
    pub currency: String,
    pub reason: ChargebackReason,
    pub provider_reason_code: Option<String>,
    pub status: ChargebackStatus,
    pub due_by: Option<i64>,
    pub created_at: i64,
}

/// The query of `GET /v1/chargebacks` as sent: the filters `status`, `reason`, and
/// `from`/`to` dates (`YYYY-MM-DD`, UTC, both inclusive), and the page's `limit` and
/// `cursor`.
#[derive(Debug, Clone, Default)]
pub struct ChargebackQuery {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// The parsed query: what to list, how many, and after which position.
struct ChargebackWindow {
    filter: ChargebackFilter,
    limit: u32,
    after: Option<Keyset>,
}

fn unix_ms(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Every problem of the query at once, each naming its field.
fn parse_query(query: ChargebackQuery) -> Result<ChargebackWindow, baton_domain::Problems> {
    let blank = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let mut problems = Vec::new();
    fn take<T>(problems: &mut Vec<Problem>, r: Result<T, Problem>) -> Option<T> {
        r.map_err(|p| problems.push(p)).ok()
    }
    let status = blank(query.status).and_then(|s| {
        take(
            &mut problems,
            s.parse::<ChargebackStatus>().map_err(|_| {
                Problem::invalid_field(
                    "INVALID_CHARGEBACK_STATUS",
                    "status",
                    "{field} must be OPEN, EVIDENCE_SUBMITTED, WON, LOST or ACCEPTED.",
                )
            }),
        )
    });
    let reason = blank(query.reason).and_then(|s| {
        take(
            &mut problems,
            s.parse::<ChargebackReason>().map_err(|_| {
                Problem::invalid_field(
                    "INVALID_CHARGEBACK_REASON",
                    "reason",
                    "{field} must be FRAUD, QUALITY, CLERICAL or TECHNICAL.",
                )
            }),
        )
    });
    let from = blank(query.from)
        .and_then(|d| take(&mut problems, baton_domain::dates::parse_date(&d, "from")))
        .map(|d| unix_ms(baton_domain::dates::start_of_day(d)));
    let to = blank(query.to)
        .and_then(|d| take(&mut problems, baton_domain::dates::parse_date(&d, "to")))
        .map(|d| unix_ms(baton_domain::dates::end_of_day(d)));
    let limit = parse_limit(blank(query.limit).as_deref(), &mut problems);
    let after = blank(query.cursor).and_then(|c| take(&mut problems, decode_cursor(Listing::Chargebacks, &c)));
    baton_domain::Problems::into_result(problems)?;
    Ok(ChargebackWindow { filter: ChargebackFilter { status, reason, from, to, instruction_id: None }, limit, after })
}

/// The view of a chargeback whose order and instruction refs are known.
fn view_of(c: &ChargebackRecord, order_ref: String, instruction_ref: String) -> ChargebackView {
    let currency: Currency = c.currency.parse().unwrap_or(Currency::EUR);
    ChargebackView {
        chargeback_id: c.chargeback_id.clone(),
        order_ref,
        instruction_ref,
        amount: Amount { minor: c.amount_minor, currency }.to_decimal(),
        currency: c.currency.clone(),
        reason: c.reason,
        provider_reason_code: c.provider_reason_code.clone(),
        status: c.status,
        due_by: c.due_by,
        created_at: c.created_at,
    }
}

fn listed_view(l: &ListedChargeback) -> ChargebackView {
    view_of(&l.chargeback, l.order_ref.clone(), l.instruction_ref.clone())
}

/// `POST /v1/chargebacks/{id}/evidence`.
#[derive(Debug, Clone, Default)]
pub struct EvidenceInput {
    pub text: Option<String>,
    /// `(fileName, contentBase64)`.
    pub documents: Vec<(Option<String>, Option<String>)>,
}

/// At most this many bytes of decoded documents per submission.
const MAX_EVIDENCE_BYTES: usize = 4 * 1024 * 1024;

fn not_found() -> Problem {
    Problem::not_found("CHARGEBACK_NOT_FOUND").message("No such chargeback.")
}

fn not_open(status: ChargebackStatus) -> Problem {
    Problem::bad_request("CHARGEBACK_NOT_OPEN")
        .message("Only an OPEN chargeback can be contested or accepted; this one is {status}.")
        .detail("status", status.as_str())
}

impl Engine {
    /// Records a chargeback notification of `app_id`: a new dispute is inserted (and a
    /// `FRAUD` one deactivates the instrument), a known one moves to the notified status
    /// when its status machine allows it. Repeated notifications change nothing.
    pub(crate) async fn record_chargeback(
        &self,
        tenant_id: &str,
        app_id: &str,
        notice: ChargebackNotice,
    ) -> EngineResult<()> {
        let Some(payment) =
            self.store.transaction_by_provider_reference(tenant_id, app_id, &notice.payment_reference).await?
        else {
            tracing::warn!(tenant_id, app_id, payment_reference = %notice.payment_reference,
                "chargeback for an unknown payment ignored");
            return Ok(());
        };
        if payment.operation != Operation::Debit || payment.status != TransactionStatus::Settled {
            tracing::warn!(tenant_id, app_id, transaction_id = %payment.transaction_id,
                "chargeback for a payment that is not a settled debit ignored");
            return Ok(());
        }
        // Two rounds: if a concurrent notification inserted the dispute first, update it.
        for _ in 0..2 {
            let existing =
                self.store.chargeback_by_provider_reference(tenant_id, app_id, &notice.dispute_reference).await?;
            match existing {
                None => {
                    if self.insert_chargeback(&payment, &notice).await? {
                        return Ok(());
                    }
                }
                Some(c) => {
                    if c.status == notice.status || !c.status.can_transition_to(notice.status) {
                        tracing::info!(tenant_id, chargeback_id = %c.chargeback_id, from = c.status.as_str(),
                            to = notice.status.as_str(), "chargeback notification changes nothing");
                        return Ok(());
                    }
                    if self.move_chargeback(&c, notice.status, None).await? {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    async fn insert_chargeback(&self, payment: &TransactionRecord, notice: &ChargebackNotice) -> EngineResult<bool> {
        let now = self.now_ms();
        let record = ChargebackRecord {
            chargeback_id: new_id(),
            tenant_id: payment.tenant_id.clone(),
            instruction_id: payment.instruction_id.clone(),
            transaction_id: payment.transaction_id.clone(),
            app_id: payment.app_id.clone(),
            provider_reference: notice.dispute_reference.clone(),
            amount_minor: notice.amount_minor,
            currency: notice.currency.as_str().to_string(),
            reason: notice.reason,
            provider_reason_code: notice.provider_reason_code.clone(),
            status: notice.status,
            due_by: notice.due_by,
            evidence: None,
            created_at: now,
            updated_at: now,
        };
        let mut changes = vec![
            Change::InsertChargeback(record.clone()),
            self.chargeback_event(&record, EventType::ChargebackOpened, now).await?,
        ];
        let deactivate = match (&payment.financial_instrument_id, notice.reason) {
            (Some(instrument_id), ChargebackReason::Fraud) => Some(Change::InstrumentState {
                tenant_id: payment.tenant_id.clone(),
                customer_ref: payment.customer_ref.clone(),
                instrument_id: instrument_id.clone(),
                from: InstrumentState::Active,
                to: InstrumentState::Inactive,
                reason: Some(StateReason::FraudSuspected),
            }),
            _ => None,
        };
        if let Some(change) = deactivate {
            let mut with = changes.clone();
            with.push(change);
            if self.apply(&with, now).await? {
                tracing::info!(tenant_id = %payment.tenant_id, chargeback_id = %record.chargeback_id,
                    "fraud chargeback recorded; instrument deactivated");
                return Ok(true);
            }
            // The instrument is no longer ACTIVE (or the dispute was recorded meanwhile).
        }
        let applied = self.apply(&changes, now).await?;
        if applied {
            tracing::info!(tenant_id = %payment.tenant_id, chargeback_id = %record.chargeback_id, "chargeback recorded");
        }
        changes.clear();
        Ok(applied)
    }

    async fn move_chargeback(
        &self,
        c: &ChargebackRecord,
        to: ChargebackStatus,
        evidence: Option<String>,
    ) -> EngineResult<bool> {
        let now = self.now_ms();
        let mut moved = c.clone();
        moved.status = to;
        let event = if to.is_closed() { EventType::ChargebackClosed } else { EventType::ChargebackUpdated };
        let changes = [
            Change::ChargebackStatus {
                tenant_id: c.tenant_id.clone(),
                chargeback_id: c.chargeback_id.clone(),
                from: c.status,
                to,
                evidence,
            },
            self.chargeback_event(&moved, event, now).await?,
        ];
        Ok(self.apply(&changes, now).await?)
    }

    async fn chargeback_event(&self, c: &ChargebackRecord, event_type: EventType, now: i64) -> EngineResult<Change> {
        let view = self.chargeback_view(c).await?;
        let data = json!({
            "order": {"orderRef": view.order_ref},
            "instruction": {"instructionRef": view.instruction_ref},
            "chargeback": chargeback_json(&view),
        });
        Ok(Change::Event(EventRecord {
            event_id: new_id(),
            account_id: None,
            tenant_id: Some(c.tenant_id.clone()),
            event_type,
            ordering_key: Some(c.instruction_id.clone()),
            data: data.to_string(),
            created_at: now,
        }))
    }

    async fn chargeback_view(&self, c: &ChargebackRecord) -> EngineResult<ChargebackView> {
        let instruction = self.store.instruction_by_id(&c.tenant_id, &c.instruction_id).await?;
        let (order_ref, instruction_ref) = match instruction {
            Some(i) => {
                let order = self.store.order_by_id(&c.tenant_id, &i.order_id).await?;
                (order.map(|o| o.order_ref).unwrap_or_default(), i.instruction_ref)
            }
            None => (String::new(), String::new()),
        };
        Ok(view_of(c, order_ref, instruction_ref))
    }

    async fn chargeback_record(&self, tenant_id: &str, chargeback_id: &str) -> EngineResult<ChargebackRecord> {
        let id = chargeback_id.trim().to_ascii_lowercase();
        Ok(self.store.chargeback(tenant_id, &id).await?.ok_or_else(not_found)?)
    }

    /// `GET /v1/chargebacks`: the tenant's chargebacks newest first (ties by id), one
    /// page at a time, in one query with their order and instruction refs.
    pub async fn list_chargebacks(
        &self,
        tenant_id: &str,
        query: ChargebackQuery,
    ) -> EngineResult<Page<ChargebackView>> {
        let w = parse_query(query)?;
        let rows = self.store.list_chargebacks(tenant_id, &w.filter, w.after.as_ref(), w.limit + 1).await?;
        let (rows, next_cursor) = paginate(rows, w.limit, Listing::Chargebacks, |l| {
            (l.chargeback.created_at, l.chargeback.chargeback_id.as_str())
        });
        Ok(Page { items: rows.iter().map(listed_view).collect(), next_cursor })
    }

    /// `GET /v1/chargebacks/{chargebackId}`.
    pub async fn get_chargeback(&self, tenant_id: &str, chargeback_id: &str) -> EngineResult<ChargebackView> {
        let c = self.chargeback_record(tenant_id, chargeback_id).await?;
        self.chargeback_view(&c).await
    }

    /// `GET …/instruction/{instructionRef}/chargebacks`, newest first.
    pub async fn instruction_chargebacks(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> EngineResult<Vec<ChargebackView>> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let instruction = self
            .store
            .instruction(tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(|| Problem::not_found("INSTRUCTION_NOT_FOUND").message("No such instruction."))?;
        // All of them (an instruction has few), read by pages of the listing's largest.
        let filter = ChargebackFilter { instruction_id: Some(instruction.instruction_id), ..Default::default() };
        let mut out = Vec::new();
        let mut after: Option<Keyset> = None;
        loop {
            let rows = self.store.list_chargebacks(tenant_id, &filter, after.as_ref(), MAX_PAGE_SIZE).await?;
            out.extend(rows.iter().map(listed_view));
            match rows.last() {
                Some(last) if rows.len() == MAX_PAGE_SIZE as usize => {
                    after = Some(Keyset {
                        created_at: last.chargeback.created_at,
                        id: last.chargeback.chargeback_id.clone(),
                    })
                }
                _ => return Ok(out),
            }
        }
    }

    /// `POST /v1/chargebacks/{id}/evidence`: contests an `OPEN` chargeback at the PSP
    /// (`EVIDENCE_SUBMITTED`); `402 EVIDENCE_NOT_ACCEPTED` when the PSP cannot take it.
    pub async fn submit_chargeback_evidence(
        &self,
        tenant_id: &str,
        chargeback_id: &str,
        input: EvidenceInput,
    ) -> EngineResult<ChargebackView> {
        let text = input.text.unwrap_or_default().trim().to_string();
        let mut documents = Vec::new();
        let mut total = 0usize;
        for (i, (name, content)) in input.documents.into_iter().enumerate() {
            let field = format!("documents[{i}]");
            let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).ok_or_else(|| {
                Problem::invalid_field(
                    "EVIDENCE_FILE_NAME_REQUIRED",
                    format!("{field}.fileName"),
                    "{field} is required.",
                )
            })?;
            let content = content
                .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c.trim()).ok())
                .ok_or_else(|| {
                    Problem::invalid_field(
                        "INVALID_EVIDENCE_DOCUMENT",
                        format!("{field}.contentBase64"),
                        "{field} must be base64.",
                    )
                })?;
            total += content.len();
            documents.push(EvidenceDocument { file_name: name, content });
        }
        if text.is_empty() && documents.is_empty() {
            return Err(Problem::bad_request("EVIDENCE_REQUIRED")
                .message("Evidence needs a text or at least one document.")
                .into());
        }
        if total > MAX_EVIDENCE_BYTES {
            return Err(Problem::bad_request("EVIDENCE_TOO_LARGE")
                .message("The documents exceed {limit} bytes.")
                .detail("limit", MAX_EVIDENCE_BYTES.to_string())
                .into());
        }
        let c = self.chargeback_record(tenant_id, chargeback_id).await?;
        if c.status != ChargebackStatus::Open {
            return Err(not_open(c.status).into());
        }
        let action = DisputeAction::SubmitEvidence { text: &text, documents: &documents };
        match self.call_dispute(&c, action).await? {
            Ok(()) => {}
            Err(message) => {
                return Err(Problem::payment_required("EVIDENCE_NOT_ACCEPTED")
                    .message("The provider cannot take evidence for this chargeback: {reason}.")
                    .detail("reason", message)
                    .into())
            }
        }
        let evidence = json!({
            "text": text,
            "documents": documents.iter().map(|d| json!({"fileName": d.file_name, "bytes": d.content.len()})).collect::<Vec<_>>(),
        });
        if !self.move_chargeback(&c, ChargebackStatus::EvidenceSubmitted, Some(evidence.to_string())).await? {
            let now = self.chargeback_record(tenant_id, chargeback_id).await?;
            return Err(not_open(now.status).into());
        }
        self.get_chargeback(tenant_id, &c.chargeback_id).await
    }

    /// `POST /v1/chargebacks/{id}/accept`: accepts an `OPEN` chargeback (`ACCEPTED`).
    pub async fn accept_chargeback(&self, tenant_id: &str, chargeback_id: &str) -> EngineResult<ChargebackView> {
        let c = self.chargeback_record(tenant_id, chargeback_id).await?;
        if c.status != ChargebackStatus::Open {
            return Err(not_open(c.status).into());
        }
        if let Err(message) = self.call_dispute(&c, DisputeAction::Accept).await? {
            // A PSP without dispute responses closes an uncontested dispute by itself.
            tracing::info!(tenant_id, chargeback_id = %c.chargeback_id, reason = %message, "acceptance recorded locally");
        }
        if !self.move_chargeback(&c, ChargebackStatus::Accepted, None).await? {
            let now = self.chargeback_record(tenant_id, chargeback_id).await?;
            return Err(not_open(now.status).into());
        }
        self.get_chargeback(tenant_id, &c.chargeback_id).await
    }

    /// Calls the app's connector; the inner error is why the PSP did not take it.
    async fn call_dispute(&self, c: &ChargebackRecord, action: DisputeAction<'_>) -> EngineResult<Result<(), String>> {
        let payment = self.store.transaction(&c.tenant_id, &c.transaction_id).await?;
        let payment_reference = payment.and_then(|p| p.provider_reference).unwrap_or_default();
        let connector = self.connector(&c.app_id)?;
        let credentials = self.app_credentials(&c.tenant_id, &c.app_id).await?;
        let ctx = CallContext { environment: self.environment(), tenant_id: &c.tenant_id, credentials: &credentials };
        let request =
            DisputeRequest { dispute_reference: &c.provider_reference, payment_reference: &payment_reference, action };
        Ok(match self.with_timeout(connector.dispute(&ctx, &request)).await {
            Ok(()) => Ok(()),
            Err(ConnectorError::Unsupported(m)) | Err(ConnectorError::Unknown(m)) => Err(m),
        })
    }
}

fn chargeback_json(v: &ChargebackView) -> Value {
    json!({
        "chargebackId": v.chargeback_id,
        "amount": v.amount.to_string(),
        "currency": v.currency,
        "reason": v.reason.as_str(),
        "providerReasonCode": v.provider_reason_code,
        "status": v.status.as_str(),
        "dueBy": v.due_by,
    })
}
