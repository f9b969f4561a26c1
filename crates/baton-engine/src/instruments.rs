//! The customer vault's financial instruments (SPEC §5.4): creation, reads, state
//! changes (SPEC §0 "FI states") and the erasure of a customer (right to be forgotten).
//!
//! Sensitive details (card number, expiry and holder; IBAN, account number and sort
//! code; phone number; mandate) and PSP tokens are serialised to JSON and sealed with
//! the customer's data key, with tenant, customer and instrument bound as associated
//! data. Only display data is stored in clear, and only display data leaves the
//! engine through the API views. Reads never decrypt, so an erased customer's
//! instruments still read (display data only).

use std::collections::BTreeMap;

use baton_domain::instrument::transition;
use baton_domain::{
    AppId, BankAccountId, CustomerRef, EventType, InstrumentDetails, InstrumentState, InstrumentType, Problem,
    StateReason,
};
use baton_store::{Change, EventRecord, InstrumentRecord, InstrumentStateRecord};
use baton_vault::instrument_aad;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::error::internal;
use crate::{new_id, Engine, EngineResult};

/// The longest PSP token accepted.
pub const MAX_PROVIDER_TOKEN: usize = 2048;

/// `POST …/financial-instruments`, as sent (the engine validates everything).
#[derive(Default)]
pub struct NewInstrument {
    pub kind: Option<String>,
    pub details: Value,
    /// `{appId: token}`.
    pub provider_tokens: Option<Value>,
    pub single_use: Option<bool>,
    pub supports_debit: Option<bool>,
    pub supports_credit: Option<bool>,
}

// `details` and tokens are secrets: never in a log line.
impl std::fmt::Debug for NewInstrument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInstrument").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// One entry of an instrument's state history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    pub state: InstrumentState,
    pub reason: Option<StateReason>,
    pub changed_at: i64,
}

/// What the API shows of an instrument: display data only.
#[derive(Debug, Clone, PartialEq)]
pub struct InstrumentView {
    pub financial_instrument_id: String,
    pub customer_ref: String,
    pub kind: InstrumentType,
    /// The app the instrument belongs to (REWARD instruments, later); `None` otherwise.
    pub app_id: Option<String>,
    pub state: InstrumentState,
    pub state_reason: Option<StateReason>,
    /// The display data (`last4`, `brand`, `maskedIban`, …) as JSON.
    pub display: Value,
    pub supports_debit: bool,
    pub supports_credit: bool,
    pub single_use: bool,
    pub created_at: i64,
    /// Present when one instrument is read.
    pub state_history: Option<Vec<StateEntry>>,
}

/// The decrypted secrets of an instrument, for the engine's own use (tokenisation at
/// a PSP); never returned by the API.
#[derive(Clone, PartialEq)]
pub struct InstrumentSecrets {
    pub details: Value,
    pub provider_tokens: BTreeMap<String, String>,
}

impl std::fmt::Debug for InstrumentSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstrumentSecrets([redacted])")
    }
}

/// A recorded erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureView {
    pub erasure_id: String,
    pub instruments_closed: i64,
}

fn not_found() -> Problem {
    Problem::not_found("FINANCIAL_INSTRUMENT_NOT_FOUND").message("No such financial instrument.")
}

fn field_required(field: &'static str) -> Problem {
    Problem::invalid_field("FIELD_REQUIRED", field, "{field} is required.")
}

fn customer(customer_ref: &str) -> Result<CustomerRef, Problem> {
    CustomerRef::parse(customer_ref, "customerRef")
}

/// The associated data of an instrument's sealed PSP tokens: distinct from its
/// details', so the two ciphertexts cannot be swapped.
pub(crate) fn provider_tokens_aad(tenant_id: &str, customer_ref: &str, instrument_id: &str) -> Vec<u8> {
    let mut aad = instrument_aad(tenant_id, customer_ref, instrument_id);
    aad.extend_from_slice(b"provider-tokens");
    aad
}

/// The sensitive details, as sealed: the full values the display data abbreviates.
fn sensitive_json(details: &InstrumentDetails) -> Value {
    match details {
        InstrumentDetails::Card(c) => json!({
            "cardNumber": c.number.expose(),
            "expiryMonth": c.expiry.month(),
            "expiryYear": c.expiry.year(),
            "cardholderName": c.holder_name.as_ref().map(|n| n.as_str()),
            "billingAddress": c.billing_address.as_ref().map(|b| b.to_json()),
        }),
        InstrumentDetails::BankAccount(b) => match &b.account {
            BankAccountId::Iban(iban) => json!({
                "accountHolderName": b.holder_name.as_str(),
                "iban": iban.expose(),
            }),
            BankAccountId::Uk { account_number, sort_code } => json!({
                "accountHolderName": b.holder_name.as_str(),
                "accountNumber": account_number.expose(),
                "sortCode": sort_code.digits(),
            }),
        },
        InstrumentDetails::MobilePhone(phone) => json!({ "phoneNumber": phone.as_e164() }),
        InstrumentDetails::DirectDebitMandate(m) => json!({
            "mandateReference": m.reference.as_str(),
            "accountHolderName": m.holder_name.as_str(),
            "iban": m.iban.expose(),
            "signedDate": baton_domain::dates::format_date(m.signed_date),
            "scheme": m.scheme.as_str(),
        }),
        InstrumentDetails::Reward => json!({}),
        InstrumentDetails::Wallet(w) => json!({ "provider": w.provider, "payerId": w.payer_id }),
    }
}

/// `{appId: token}` with app ids normalised; problems never echo a token.
fn parse_provider_tokens(value: Option<&Value>) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut out = BTreeMap::new();
    let map = match value {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(vec![Problem::invalid_field(
                "INVALID_PROVIDER_TOKENS",
                "providerTokens",
                "{field} must be an object of app ids to tokens.",
            )])
        }
    };
    let mut problems = Vec::new();
    for (app, token) in map {
        let field = format!("providerTokens.{}", app.chars().take(64).collect::<String>());
        let app_id = match AppId::parse(app) {
            Ok(id) => id,
            Err(_) => {
                problems.push(Problem::invalid_field("INVALID_APP_ID", field, "{field} does not name an app."));
                continue;
            }
        };
        match token {
            Value::String(t) if !t.trim().is_empty() && t.trim().len() <= MAX_PROVIDER_TOKEN => {
                out.insert(app_id.as_str().to_string(), t.trim().to_string());
            }
            _ => problems.push(
                Problem::invalid_field(
                    "INVALID_PROVIDER_TOKEN",
                    field,
                    "{field} must be a token of 1 to {limit} characters.",
                )
                .detail("limit", MAX_PROVIDER_TOKEN.to_string()),
            ),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn view(record: &InstrumentRecord, history: Option<Vec<InstrumentStateRecord>>) -> EngineResult<InstrumentView> {
    let display = serde_json::from_str(&record.display).map_err(|e| {
        internal(format!(
            "the display data of financial instrument {} is not JSON: {e}",
            record.financial_instrument_id
        ))
    })?;
    Ok(InstrumentView {
        financial_instrument_id: record.financial_instrument_id.clone(),
        customer_ref: record.customer_ref.clone(),
        kind: record.kind,
        app_id: None,
        state: record.state,
        state_reason: record.state_reason,
        display,
        supports_debit: record.supports_debit,
        supports_credit: record.supports_credit,
        single_use: record.single_use,
        created_at: record.created_at,
        state_history: history.map(|h| {
            h.into_iter().map(|s| StateEntry { state: s.state, reason: s.reason, changed_at: s.changed_at }).collect()
        }),
    })
}

/// A `financial_instrument.*` (or `mandate.registered`) event: display data only.
pub(crate) fn instrument_event(
    record: &InstrumentRecord,
    state: InstrumentState,
    reason: Option<StateReason>,
    event_type: EventType,
    now: i64,
) -> Change {
    let display: Value = serde_json::from_str(&record.display).unwrap_or(Value::Null);
    let data = json!({ "financialInstrument": {
        "financialInstrumentId": record.financial_instrument_id,
        "customerRef": record.customer_ref,
        "type": record.kind.as_str(),
        "state": state.as_str(),
        "stateReason": reason.map(StateReason::as_str),
        "display": display,
    } });
    Change::Event(EventRecord {
        event_id: new_id(),
        account_id: None,
        tenant_id: Some(record.tenant_id.clone()),
        event_type,
        ordering_key: Some(record.financial_instrument_id.clone()),
        data: data.to_string(),
        created_at: now,
    })
}

impl Engine {
    /// Stores a customer's instrument: details validated and sealed with the
    /// customer's data key, display data in clear. CARD needs the deployment to accept
    /// raw card data (`400 RAW_CARD_DATA_NOT_ACCEPTED`, checked before anything else
    /// is read); REWARD instruments come from claims (`400 REWARD_INSTRUMENT_NOT_CREATABLE`).
    /// CVV/CVC, if sent, is never read. `409 CUSTOMER_ERASED` for a forgotten customer.
    pub async fn create_instrument(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        input: NewInstrument,
    ) -> EngineResult<InstrumentView> {
        let mut problems = Vec::new();
        let customer = customer(customer_ref).map_err(|p| problems.push(p)).ok();
        let kind = match input.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => {
                problems.push(field_required("type"));
                None
            }
            Some(k) => InstrumentType::parse(k, "type").map_err(|p| problems.push(p)).ok(),
        };
        match kind {
            Some(InstrumentType::Reward) => {
                return Err(Problem::invalid_field(
                    "REWARD_INSTRUMENT_NOT_CREATABLE",
                    "type",
                    "REWARD instruments are created by reward claims, not through the customer vault.",
                )
                .into())
            }
            Some(InstrumentType::Wallet) => {
                return Err(Problem::invalid_field(
                    "WALLET_INSTRUMENT_NOT_CREATABLE",
                    "type",
                    "WALLET instruments are created when the customer approves a wallet in the hosted checkout.",
                )
                .into())
            }
            Some(InstrumentType::Card) if !self.config.accept_raw_card_data => {
                return Err(Problem::bad_request("RAW_CARD_DATA_NOT_ACCEPTED")
                    .message(
                        "This deployment does not accept raw card data on the API; \
                         use the hosted checkout or a provider token.",
                    )
                    .into())
            }
            _ => {}
        }
        let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.now_ms()) * 1_000_000)
            .map_err(|e| internal(format!("the clock is out of range: {e}")))?;
        let details = match kind {
            Some(kind) => match InstrumentDetails::parse(kind, &input.details, now) {
                Ok(d) => Some(d),
                Err(p) => {
                    problems.extend(p.0);
                    None
                }
            },
            None => None,
        };
        let tokens = parse_provider_tokens(input.provider_tokens.as_ref()).map_err(|p| problems.extend(p)).ok();
        let (Some(customer), Some(kind), Some(details), Some(tokens)) = (customer, kind, details, tokens) else {
            return Err(problems.into());
        };

        let single_use = input.single_use.unwrap_or(false);
        let supports = (input.supports_debit.unwrap_or(true), input.supports_credit.unwrap_or(true));
        let (record, changes) =
            self.new_instrument(tenant_id, customer.as_str(), &details, &tokens, single_use, supports).await?;
        let now_ms = record.created_at;
        self.apply(&changes, now_ms).await?;
        tracing::info!(tenant_id, financial_instrument_id = %record.financial_instrument_id, kind = kind.as_str(),
            "financial instrument stored");
        view(
            &record,
            Some(vec![InstrumentStateRecord { seq: 1, state: record.state, reason: None, changed_at: now_ms }]),
        )
    }

    /// A new `ACTIVE` instrument of validated `details` for the customer, sealed with the
    /// customer's data key, and the changes that store and announce it
    /// (`financial_instrument.created`, and `mandate.registered` for a mandate); the
    /// caller applies them, possibly with more changes in the same transaction.
    pub(crate) async fn new_instrument(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        details: &InstrumentDetails,
        tokens: &BTreeMap<String, String>,
        single_use: bool,
        (supports_debit, supports_credit): (bool, bool),
    ) -> EngineResult<(InstrumentRecord, Vec<Change>)> {
        let key = self.customer_data_key(tenant_id, customer_ref).await?;
        let id = new_id();
        let aad = instrument_aad(tenant_id, customer_ref, &id);
        let details_sealed = key.seal(sensitive_json(details).to_string().as_bytes(), &aad);
        let provider_tokens_sealed = (!tokens.is_empty()).then(|| {
            let plain = serde_json::to_vec(tokens).expect("a map of strings serialises");
            key.seal(&plain, &provider_tokens_aad(tenant_id, customer_ref, &id))
        });
        let display = serde_json::to_string(&details.display()).expect("display data serialises");
        let now_ms = self.now_ms();
        let kind = details.kind();
        let record = InstrumentRecord {
            financial_instrument_id: id,
            tenant_id: tenant_id.to_string(),
            customer_ref: customer_ref.to_string(),
            kind,
            state: InstrumentState::INITIAL,
            state_reason: None,
            display,
            details_sealed,
            provider_tokens_sealed,
            single_use,
            supports_debit,
            supports_credit,
            created_at: now_ms,
            updated_at: now_ms,
        };
        let mut changes = vec![
            Change::InsertInstrument(Box::new(record.clone())),
            instrument_event(&record, record.state, None, EventType::FinancialInstrumentCreated, now_ms),
        ];
        if kind == InstrumentType::DirectDebitMandate {
            changes.push(instrument_event(&record, record.state, None, EventType::MandateRegistered, now_ms));
        }
        Ok((record, changes))
    }

    /// The customer's instruments, oldest first, optionally only those in `state`.
    pub async fn instruments(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        state: Option<&str>,
    ) -> EngineResult<Vec<InstrumentView>> {
        let customer = customer(customer_ref)?;
        let state = match state.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Some(InstrumentState::parse(s, "state")?),
            None => None,
        };
        let records = self.store.instruments(tenant_id, customer.as_str(), state).await?;
        records.iter().map(|r| view(r, None)).collect()
    }

    /// One instrument with its state history; `404 FINANCIAL_INSTRUMENT_NOT_FOUND` if
    /// the customer (of this tenant) has no such instrument.
    pub async fn instrument(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
    ) -> EngineResult<InstrumentView> {
        let customer = customer(customer_ref)?;
        let record = self.store.instrument(tenant_id, customer.as_str(), instrument_id).await?.ok_or_else(not_found)?;
        let history = self.store.instrument_history(tenant_id, customer.as_str(), instrument_id).await?;
        view(&record, Some(history))
    }

    /// Moves an instrument to `state` (SPEC §0): `400 INVALID_STATE_TRANSITION`,
    /// `400 STATE_REASON_REQUIRED` (deactivation), `404 FINANCIAL_INSTRUMENT_NOT_FOUND`,
    /// `409 CONCURRENT_MODIFICATION` if it keeps changing underneath.
    pub async fn change_instrument_state(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
        state: Option<&str>,
        reason: Option<&str>,
    ) -> EngineResult<InstrumentView> {
        let mut problems = Vec::new();
        let customer = customer(customer_ref).map_err(|p| problems.push(p)).ok();
        let to = match state.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                problems.push(field_required("state"));
                None
            }
            Some(s) => InstrumentState::parse(s, "state").map_err(|p| problems.push(p)).ok(),
        };
        let reason = match reason.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(r) => StateReason::parse(r, "reason").map_err(|p| problems.push(p)).ok(),
        };
        let (Some(customer), Some(to)) = (customer, to) else {
            return Err(problems.into());
        };
        // LOCKED records that a single-use instrument was consumed by a payment or
        // claim (SPEC §0): the system sets it, a client cannot.
        if to == InstrumentState::Locked {
            problems.push(
                Problem::invalid_field(
                    "INVALID_STATE_TRANSITION",
                    "state",
                    "{field} LOCKED is set by Baton when a single-use instrument is used.",
                )
                .detail("to", to.as_str()),
            );
        }
        if !problems.is_empty() {
            return Err(problems.into());
        }
        for _ in 0..3 {
            let current =
                self.store.instrument(tenant_id, customer.as_str(), instrument_id).await?.ok_or_else(not_found)?;
            let change = transition(current.state, to, reason)?;
            let now = self.now_ms();
            let changes = [
                Change::InstrumentState {
                    tenant_id: tenant_id.to_string(),
                    customer_ref: customer.as_str().to_string(),
                    instrument_id: instrument_id.to_string(),
                    from: current.state,
                    to: change.state,
                    reason: change.reason,
                },
                instrument_event(
                    &current,
                    change.state,
                    change.reason,
                    EventType::FinancialInstrumentStateChanged,
                    now,
                ),
            ];
            if self.apply(&changes, now).await? {
                return self.instrument(tenant_id, customer.as_str(), instrument_id).await;
            }
            // Changed by someone else meanwhile: check the move again from its new state.
        }
        Err(Problem::conflict("CONCURRENT_MODIFICATION")
            .message("The financial instrument changed while this request ran; retry.")
            .into())
    }

    /// The decrypted details and PSP tokens of an instrument, for the engine's own use;
    /// `None` once the customer has been erased (their data key is gone), never an error
    /// for that. `404 FINANCIAL_INSTRUMENT_NOT_FOUND` as for reads.
    pub async fn instrument_secrets(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
    ) -> EngineResult<Option<InstrumentSecrets>> {
        let customer = customer(customer_ref)?;
        let record = self.store.instrument(tenant_id, customer.as_str(), instrument_id).await?.ok_or_else(not_found)?;
        // Read the key row without creating one: an instrument's customer always has one,
        // unless it was erased.
        let key_record = self.store.customer_key(tenant_id, customer.as_str()).await?;
        self.open_instrument_secrets(&record, key_record.as_ref())
    }

    /// The secrets of `record` opened with its customer's key `key_record` (as read);
    /// `None` once the customer has been erased.
    pub(crate) fn open_instrument_secrets(
        &self,
        record: &InstrumentRecord,
        key_record: Option<&baton_store::CustomerKeyRecord>,
    ) -> EngineResult<Option<InstrumentSecrets>> {
        let Some(key_record) = key_record.filter(|k| k.wrapped_key.is_some()) else {
            return Ok(None);
        };
        let key = self.unwrap_customer_key(key_record)?;
        let (tenant_id, customer_ref, instrument_id) =
            (&record.tenant_id, &record.customer_ref, &record.financial_instrument_id);
        let fail = |what: &str| internal(format!("cannot open the {what} of financial instrument {instrument_id}"));
        let plain = key
            .open(&record.details_sealed, &instrument_aad(tenant_id, customer_ref, instrument_id))
            .map_err(|_| fail("details"))?;
        let details = serde_json::from_slice(&plain).map_err(|_| fail("details"))?;
        let provider_tokens = match &record.provider_tokens_sealed {
            None => BTreeMap::new(),
            Some(sealed) => {
                let plain = key
                    .open(sealed, &provider_tokens_aad(tenant_id, customer_ref, instrument_id))
                    .map_err(|_| fail("provider tokens"))?;
                serde_json::from_slice(&plain).map_err(|_| fail("provider tokens"))?
            }
        };
        Ok(Some(InstrumentSecrets { details, provider_tokens }))
    }

    /// Forgets a customer (right to be forgotten): shreds their data key, so nothing
    /// sealed for them can be decrypted again, closes every instrument not yet CLOSED
    /// (reason `CUSTOMER_REQUEST`) and records the erasure. Repeating it is harmless.
    pub async fn erase_customer(&self, tenant_id: &str, customer_ref: &str) -> EngineResult<ErasureView> {
        let customer = customer(customer_ref)?;
        // SPEC §5.4: never erase a customer while money is moving for them. (Execution,
        // when it arrives, must take the instruction out of PROCESSING under the same
        // rule, so that a charge cannot start between this check and the shred.)
        if self.store.customer_has_processing_instruction(tenant_id, customer.as_str()).await? {
            return Err(Problem::bad_request("CUSTOMER_HAS_PROCESSING_INSTRUCTIONS")
                .message("The customer has an instruction being processed; erase them once it has settled or failed.")
                .into());
        }
        self.shred_customer(tenant_id, customer.as_str()).await?;
        let erasure = self
            .store
            .erase_customer_instruments(
                &new_id(),
                tenant_id,
                customer.as_str(),
                Some(StateReason::CustomerRequest),
                self.now_ms(),
            )
            .await?;
        tracing::info!(tenant_id, erasure_id = %erasure.erasure_id, instruments_closed = erasure.instruments_closed,
            "customer erased");
        Ok(ErasureView { erasure_id: erasure.erasure_id, instruments_closed: erasure.instruments_closed })
    }
}
