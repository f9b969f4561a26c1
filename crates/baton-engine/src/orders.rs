//! Orders and instructions (SPEC §4.9): creation (with instructions, all or nothing),
//! customer defaults and their inheritance, instruction updates and voiding.
//!
//! An instruction is stored with its own values only. Its effective financial
//! instrument, scheme and metadata are resolved on read against the order's current
//! customer default (the inheritance table), while it can still be updated; once it
//! leaves `INCOMPLETE`/`READY` the store freezes what it inherited. The store
//! re-resolves `INCOMPLETE`/`READY` statuses in the same transaction as every write to
//! an order's defaults or instructions.
//!
//! The listings page by keyset on `(created_at, id)` with an opaque cursor and build
//! each instruction's effective values exactly as the single read does.

use std::collections::{BTreeMap, BTreeSet};

use baton_domain::instruction::{can_update, inherit};
use baton_domain::refs::blank_to_none_str;
use baton_domain::{
    Amount, Country, Currency, CustomerRef, DecimalInput, Direction, InstructionRef, InstructionStatus,
    InstrumentState, Metadata, MetadataRules, OrderRef, Problem, Problems, SettleByDate, Source,
};
use baton_store::{
    CustomerDefaultRecord, DefaultChange, InstructionFilter, InstructionRecord, Keyset, OrderFilter, OrderRecord,
    StoreError,
};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::internal;
use crate::listing::{decode_cursor, paginate, parse_limit, Listing, Page};
use crate::{new_id, Engine, EngineError, EngineResult};

/// A customer default as sent (the HTTP layer flattens the nested form).
#[derive(Debug, Clone, Default)]
pub struct CustomerDefaultInput {
    pub customer_ref: Option<String>,
    pub financial_instrument_id: Option<String>,
    pub instrument_source: Option<String>,
    pub scheme_id: Option<String>,
    pub scheme_source: Option<String>,
    pub metadata: Option<Value>,
}

/// `InstructionCreate`, as sent.
#[derive(Debug, Clone, Default)]
pub struct InstructionInput {
    pub instruction_ref: Option<String>,
    pub customer_ref: Option<String>,
    pub direction: Option<String>,
    pub financial_instrument_id: Option<String>,
    pub amount: Option<Value>,
    pub currency: Option<String>,
    pub country: Option<String>,
    pub scheme_id: Option<String>,
    pub settled_by_date: Option<String>,
    pub metadata: Option<Value>,
}

/// `OrderCreate`, as sent.
#[derive(Debug, Clone, Default)]
pub struct OrderInput {
    pub order_ref: Option<String>,
    pub instructions: Vec<InstructionInput>,
    pub metadata: Option<Value>,
    pub customer_defaults: Vec<CustomerDefaultInput>,
}

/// One field of a customer default to change.
#[derive(Debug, Clone)]
pub enum DefaultFieldInput {
    Instrument(Option<String>),
    Scheme(Option<String>),
    Metadata(Option<Value>),
}

/// An effective reference (FI or scheme) with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRef {
    pub id: Option<String>,
    pub source: Source,
    pub can_update: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstructionView {
    pub instruction_ref: String,
    pub direction: Direction,
    pub status: InstructionStatus,
    pub customer_ref: String,
    pub financial_instrument: EffectiveRef,
    pub amount: Decimal,
    pub currency: String,
    pub country: String,
    pub settled_by_date: Option<SettleByDate>,
    pub scheme: EffectiveRef,
    pub metadata: Metadata,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerDefaultView {
    pub customer_ref: String,
    pub financial_instrument: EffectiveRef,
    pub scheme: EffectiveRef,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderView {
    pub order_ref: String,
    pub metadata: Metadata,
    pub customer_defaults: Vec<CustomerDefaultView>,
    pub instructions: Vec<InstructionView>,
    pub created_at: i64,
}

pub(crate) fn order_not_found() -> Problem {
    Problem::not_found("ORDER_NOT_FOUND").message("No such order.")
}

pub(crate) fn instruction_not_found() -> Problem {
    Problem::not_found("INSTRUCTION_NOT_FOUND").message("No such instruction.")
}

fn default_not_found() -> Problem {
    Problem::not_found("CUSTOMER_DEFAULT_NOT_FOUND").message("The order has no defaults for this customer.")
}

fn required(field: impl Into<String>) -> Problem {
    Problem::invalid_field("FIELD_REQUIRED", field, "{field} is required.")
}

fn stored_metadata(text: &str) -> EngineResult<Metadata> {
    let value: Value = serde_json::from_str(text).map_err(|e| internal(format!("stored metadata: {e}")))?;
    Metadata::parse_with(&value, "metadata", MetadataRules::STORED)
        .map_err(|p| internal(format!("stored metadata: {}", p.code)))
}

fn metadata_text(m: &Metadata) -> String {
    m.to_json().to_string()
}

/// Ids are GUIDs issued in lower case; `""` means null.
fn id(input: Option<&str>) -> Option<String> {
    blank_to_none_str(input).map(|s| s.trim().to_ascii_lowercase())
}

fn parse_amount(value: Option<&Value>, currency: Option<Currency>, field: &str) -> Result<i64, Problem> {
    let invalid = || Problem::invalid_field("INVALID_AMOUNT", field, "{field} must be a decimal greater than zero.");
    let value = match value {
        None | Some(Value::Null) => return Err(required(field)),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(required(field)),
        Some(v) => v,
    };
    let DecimalInput(decimal) = serde_json::from_value::<DecimalInput>(value.clone()).map_err(|_| invalid())?;
    if decimal <= Decimal::ZERO {
        return Err(invalid());
    }
    let amount = Amount::from_decimal(decimal, currency.unwrap_or(Currency::EUR), field)?;
    Ok(amount.minor)
}

/// The inheritance table for one reference, with `canUpdate`.
fn effective_ref(
    default: Option<&String>,
    own: Option<&String>,
    own_source: Source,
    status: InstructionStatus,
) -> EffectiveRef {
    let can = can_update(status);
    if !can {
        // Frozen: what the instruction holds, with the source recorded at freezing.
        return EffectiveRef {
            id: own.cloned(),
            source: if own.is_some() { own_source } else { Source::None },
            can_update: false,
        };
    }
    let e = inherit(default.cloned(), own.cloned(), own_source);
    EffectiveRef { id: e.value, source: e.source, can_update: true }
}

/// An order as the API shows it, from its rows (in the orders the store reads them in:
/// defaults by customer, instructions by creation).
fn order_view_of(
    order: &OrderRecord,
    defaults: &[CustomerDefaultRecord],
    instructions: &[InstructionRecord],
) -> EngineResult<OrderView> {
    let by_customer: BTreeMap<&str, &CustomerDefaultRecord> =
        defaults.iter().map(|d| (d.customer_ref.as_str(), d)).collect();
    let mut instructions: Vec<&InstructionRecord> = instructions.iter().collect();
    instructions.sort_by(|a, b| (a.created_at, &a.instruction_id).cmp(&(b.created_at, &b.instruction_id)));
    Ok(OrderView {
        order_ref: order.order_ref.clone(),
        metadata: stored_metadata(&order.metadata)?,
        customer_defaults: by_customer.values().map(|d| default_view(d)).collect::<EngineResult<_>>()?,
        instructions: instructions
            .into_iter()
            .map(|i| instruction_view(i, by_customer.get(i.customer_ref.as_str()).copied()))
            .collect::<EngineResult<_>>()?,
        created_at: order.created_at,
    })
}

pub(crate) fn instruction_view(
    r: &InstructionRecord,
    default: Option<&CustomerDefaultRecord>,
) -> EngineResult<InstructionView> {
    let own_metadata = stored_metadata(&r.metadata)?;
    let metadata = match default {
        Some(d) if can_update(r.status) => Metadata::merge(&stored_metadata(&d.metadata)?, &own_metadata),
        _ => own_metadata,
    };
    let currency: Currency = r.currency.parse().map_err(|_| internal(format!("stored currency {:?}", r.currency)))?;
    let settled_by_date = r
        .settled_by_date
        .as_deref()
        .map(|d| SettleByDate::parse(d, "settledByDate"))
        .transpose()
        .map_err(|_| internal("stored settle-by date".into()))?;
    Ok(InstructionView {
        instruction_ref: r.instruction_ref.clone(),
        direction: r.direction,
        status: r.status,
        customer_ref: r.customer_ref.clone(),
        financial_instrument: effective_ref(
            default.and_then(|d| d.financial_instrument_id.as_ref()),
            r.financial_instrument_id.as_ref(),
            r.instrument_source,
            r.status,
        ),
        amount: Amount { minor: r.amount_minor, currency }.to_decimal(),
        currency: r.currency.clone(),
        country: r.country.clone(),
        settled_by_date,
        scheme: effective_ref(
            default.and_then(|d| d.scheme_id.as_ref()),
            r.scheme_id.as_ref(),
            r.scheme_source,
            r.status,
        ),
        metadata,
        created_at: r.created_at,
    })
}

fn default_view(d: &CustomerDefaultRecord) -> EngineResult<CustomerDefaultView> {
    let reference = |id: &Option<String>, source: Source| EffectiveRef {
        id: id.clone(),
        source: if id.is_some() { source } else { Source::None },
        can_update: true,
    };
    Ok(CustomerDefaultView {
        customer_ref: d.customer_ref.clone(),
        financial_instrument: reference(&d.financial_instrument_id, d.instrument_source),
        scheme: reference(&d.scheme_id, d.scheme_source),
        metadata: stored_metadata(&d.metadata)?,
    })
}

/// The value, or `None` after recording its problem.
fn take<T>(problems: &mut Vec<Problem>, result: Result<T, Problem>) -> Option<T> {
    result.map_err(|p| problems.push(p)).ok()
}

fn own_source(input: Option<&str>, field: &str) -> Result<Source, Problem> {
    match blank_to_none_str(input) {
        None => Ok(Source::Tenant),
        Some(s) => Source::parse(s, field).map(Source::own),
    }
}

fn conflict(e: StoreError) -> EngineError {
    match e {
        StoreError::Conflict(c) if c.contains("orders_ref") => {
            Problem::conflict("ORDER_REF_ALREADY_EXISTS").message("An order with this orderRef already exists.").into()
        }
        StoreError::Conflict(c) if c.contains("instructions_ref") => {
            Problem::conflict("INSTRUCTION_REF_ALREADY_EXISTS")
                .message("The order already has an instruction with this instructionRef.")
                .into()
        }
        other => other.into(),
    }
}

impl Engine {
    pub(crate) async fn order_record(&self, tenant_id: &str, order_ref: &str) -> EngineResult<OrderRecord> {
        let order_ref = OrderRef::parse(order_ref, "orderRef").map_err(|_| order_not_found())?;
        self.store.order(tenant_id, order_ref.as_str()).await?.ok_or_else(|| order_not_found().into())
    }

    /// Checks a financial instrument for attachment: the customer's own, and `ACTIVE`.
    async fn check_instrument(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        fi: &str,
        field: &str,
    ) -> EngineResult<Option<Problem>> {
        Ok(match self.store.instrument(tenant_id, customer_ref, fi).await? {
            None => Some(Problem::invalid_field(
                "FINANCIAL_INSTRUMENT_NOT_FOUND",
                field,
                "{field} is not a financial instrument of this customer.",
            )),
            Some(r) if r.state != InstrumentState::Active => Some(
                Problem::invalid_field("FINANCIAL_INSTRUMENT_NOT_ACTIVE", field, "{field} is not ACTIVE.")
                    .detail("state", r.state.as_str()),
            ),
            Some(_) => None,
        })
    }

    /// Checks a scheme: it must exist, of the kind `direction` needs if one is given.
    async fn check_scheme(
        &self,
        tenant_id: &str,
        scheme_id: &str,
        direction: Option<Direction>,
        field: &str,
    ) -> EngineResult<Option<Problem>> {
        Ok(match (self.store.scheme_kind(tenant_id, scheme_id).await?, direction) {
            (None, _) => Some(Problem::invalid_field("SCHEME_NOT_FOUND", field, "{field} is not a scheme of this tenant.")),
            (Some(kind), Some(d)) if kind.direction() != d => Some(
                Problem::invalid_field(
                    "SCHEME_DIRECTION_MISMATCH",
                    field,
                    "{field} cannot route {direction} instructions (DEBIT needs a collect scheme, CREDIT a payout scheme).",
                )
                .detail("direction", d.as_str()),
            ),
            _ => None,
        })
    }

    async fn parse_default(
        &self,
        tenant_id: &str,
        order_id: &str,
        input: &CustomerDefaultInput,
        prefix: &str,
        now: i64,
    ) -> EngineResult<Result<CustomerDefaultRecord, Vec<Problem>>> {
        let mut problems = Vec::new();
        let customer = match CustomerRef::parse_required(input.customer_ref.as_deref(), &format!("{prefix}customerRef"))
        {
            Ok(c) => Some(c),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let fi = id(input.financial_instrument_id.as_deref());
        let scheme = id(input.scheme_id.as_deref());
        let instrument_source =
            own_source(input.instrument_source.as_deref(), &format!("{prefix}financialInstrument.source"))
                .unwrap_or_else(|p| {
                    problems.push(p);
                    Source::Tenant
                });
        let scheme_source = own_source(input.scheme_source.as_deref(), &format!("{prefix}scheme.source"))
            .unwrap_or_else(|p| {
                problems.push(p);
                Source::Tenant
            });
        let metadata = Metadata::parse_opt(input.metadata.as_ref(), &format!("{prefix}metadata")).unwrap_or_else(|p| {
            problems.push(p);
            Metadata::new()
        });
        if let (Some(c), Some(fi)) = (&customer, &fi) {
            problems.extend(
                self.check_instrument(tenant_id, c.as_str(), fi, &format!("{prefix}financialInstrumentId")).await?,
            );
        }
        if let Some(s) = &scheme {
            problems.extend(self.check_scheme(tenant_id, s, None, &format!("{prefix}schemeId")).await?);
        }
        Ok(match customer {
            Some(c) if problems.is_empty() => Ok(CustomerDefaultRecord {
                order_id: order_id.to_string(),
                customer_ref: c.into_string(),
                financial_instrument_id: fi,
                instrument_source,
                scheme_id: scheme,
                scheme_source,
                metadata: metadata_text(&metadata),
                updated_at: now,
            }),
            _ => Err(problems),
        })
    }

    /// Validates an instruction against the tenant's world and the order's defaults.
    /// `existing` is the stored instruction on an update (its ref and customer are kept).
    #[allow(clippy::too_many_arguments)]
    async fn parse_instruction(
        &self,
        tenant_id: &str,
        order_id: &str,
        defaults: &[CustomerDefaultRecord],
        input: &InstructionInput,
        existing: Option<&InstructionRecord>,
        prefix: &str,
        now: i64,
    ) -> EngineResult<Result<InstructionRecord, Vec<Problem>>> {
        let f = |name: &str| format!("{prefix}{name}");
        let mut problems = Vec::new();

        let instruction_ref = match existing {
            Some(e) => Some(e.instruction_ref.clone()),
            None => take(
                &mut problems,
                InstructionRef::parse_required(input.instruction_ref.as_deref(), &f("instructionRef")),
            )
            .map(InstructionRef::into_string),
        };
        let customer_ref = match existing {
            Some(e) => {
                if let Some(given) = blank_to_none_str(input.customer_ref.as_deref()) {
                    if given != e.customer_ref {
                        problems.push(Problem::invalid_field(
                            "CUSTOMER_REF_NOT_UPDATABLE",
                            f("customerRef"),
                            "{field} of an instruction cannot be changed.",
                        ));
                    }
                }
                Some(e.customer_ref.clone())
            }
            None => take(&mut problems, CustomerRef::parse_required(input.customer_ref.as_deref(), &f("customerRef")))
                .map(CustomerRef::into_string),
        };
        if let Some(c) = &customer_ref {
            if existing.is_none() && !defaults.is_empty() && !defaults.iter().any(|d| &d.customer_ref == c) {
                problems.push(Problem::invalid_field(
                    "CUSTOMER_REF_NOT_IN_CUSTOMER_DEFAULTS",
                    f("customerRef"),
                    "{field} must be one of the order's customerDefaults.",
                ));
            }
        }
        let direction = match blank_to_none_str(input.direction.as_deref()) {
            None => take(&mut problems, Err(required(f("direction")))),
            Some(d) => take(&mut problems, Direction::parse(d, &f("direction"))),
        };
        let currency = match blank_to_none_str(input.currency.as_deref()) {
            None => take(&mut problems, Err(required(f("currency")))),
            Some(c) => take(&mut problems, Currency::parse(c, &f("currency"))),
        };
        let amount = take(&mut problems, parse_amount(input.amount.as_ref(), currency, &f("amount")));
        let country = match blank_to_none_str(input.country.as_deref()) {
            None => take(&mut problems, Err(required(f("country")))),
            Some(c) => take(&mut problems, Country::parse(c, &f("country"))),
        };
        let settled_by = take(
            &mut problems,
            SettleByDate::parse_optional(blank_to_none_str(input.settled_by_date.as_deref()), &f("settledByDate")),
        )
        .flatten();
        let metadata = take(&mut problems, Metadata::parse_opt(input.metadata.as_ref(), &f("metadata")));
        let fi = id(input.financial_instrument_id.as_deref());
        let scheme = id(input.scheme_id.as_deref());
        if let (Some(c), Some(fi)) = (&customer_ref, &fi) {
            problems.extend(self.check_instrument(tenant_id, c, fi, &f("financialInstrumentId")).await?);
        }
        if let Some(s) = &scheme {
            problems.extend(self.check_scheme(tenant_id, s, direction, &f("schemeId")).await?);
        }
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        let (
            Some(instruction_ref),
            Some(customer_ref),
            Some(direction),
            Some(currency),
            Some(amount_minor),
            Some(country),
            Some(metadata),
        ) = (instruction_ref, customer_ref, direction, currency, amount, country, metadata)
        else {
            return Err(internal("an instruction field was neither parsed nor refused".into()));
        };
        // Re-resolved by the store in the write's transaction, which updates it only if
        // it differs: a new instruction starts as its values suggest.
        let status = existing.map_or_else(
            || {
                let default = defaults.iter().find(|d| d.customer_ref == customer_ref);
                let has_fi = fi.is_some() || default.is_some_and(|d| d.financial_instrument_id.is_some());
                let has_scheme = scheme.is_some() || default.is_some_and(|d| d.scheme_id.is_some());
                baton_domain::instruction::initial_status(has_scheme, has_fi)
            },
            |e| e.status,
        );
        Ok(Ok(InstructionRecord {
            instruction_id: existing.map_or_else(new_id, |e| e.instruction_id.clone()),
            tenant_id: tenant_id.to_string(),
            order_id: order_id.to_string(),
            instruction_ref,
            customer_ref,
            direction,
            status,
            instrument_source: if fi.is_some() { Source::Tenant } else { Source::None },
            financial_instrument_id: fi,
            scheme_source: if scheme.is_some() { Source::Tenant } else { Source::None },
            scheme_id: scheme,
            amount_minor,
            currency: currency.as_str().to_string(),
            country: country.as_str().to_string(),
            settled_by_date: settled_by.map(|d| d.to_date_string()),
            metadata: metadata_text(&metadata),
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        }))
    }

    async fn order_view(&self, order: &OrderRecord) -> EngineResult<OrderView> {
        let defaults = self.store.customer_defaults(&order.tenant_id, &order.order_id).await?;
        let instructions = self.store.order_instructions(&order.tenant_id, &order.order_id).await?;
        order_view_of(order, &defaults, &instructions)
    }

    /// How this order's new instructions are announced: `instruction.created`, with the
    /// instruction as stored (status resolved) and its effective values.
    fn announce_created(order: &OrderRecord, defaults: &[CustomerDefaultRecord]) -> baton_store::Announcement {
        let (order, defaults) = (order.clone(), defaults.to_vec());
        std::sync::Arc::new(move |i: &InstructionRecord| {
            let default = defaults.iter().find(|d| d.customer_ref == i.customer_ref);
            let view = instruction_view(i, default)
                .map_err(|e| StoreError::Corrupt(format!("instruction {}: {e}", i.instruction_id)))?;
            let scheme = view.scheme.id.clone().unwrap_or_default();
            let data = crate::execution::events::instruction_data(&order, &view, i.status, (&scheme, "", None), None);
            Ok(baton_store::EventRecord {
                event_id: new_id(),
                account_id: None,
                tenant_id: Some(order.tenant_id.clone()),
                event_type: baton_domain::EventType::InstructionCreated,
                ordering_key: Some(i.instruction_id.clone()),
                data: data.to_string(),
                created_at: i.created_at,
            })
        })
    }

    pub(crate) async fn instruction_view_of(
        &self,
        order: &OrderRecord,
        instruction_ref: &str,
    ) -> EngineResult<InstructionView> {
        Ok(self.instruction_and_view(order, instruction_ref).await?.1)
    }

    /// The instruction as stored and as the API shows it (effective values), read once.
    pub(crate) async fn instruction_and_view(
        &self,
        order: &OrderRecord,
        instruction_ref: &str,
    ) -> EngineResult<(InstructionRecord, InstructionView)> {
        let record = self
            .store
            .instruction(&order.tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(instruction_not_found)?;
        let defaults = self.store.customer_defaults(&order.tenant_id, &order.order_id).await?;
        let view = instruction_view(&record, defaults.iter().find(|d| d.customer_ref == record.customer_ref))?;
        Ok((record, view))
    }

    /// `POST /v1/order-management`: the order, its defaults and its instructions, all
    /// validated before anything is written and written in one transaction.
    pub async fn create_order(&self, tenant_id: &str, input: OrderInput) -> EngineResult<OrderView> {
        let now = self.now_ms();
        let order_id = new_id();
        let mut problems = Vec::new();
        let order_ref =
            OrderRef::parse_required(input.order_ref.as_deref(), "orderRef").map_err(|p| problems.push(p)).ok();
        let metadata = Metadata::parse_opt(input.metadata.as_ref(), "metadata").map_err(|p| problems.push(p)).ok();
        let mut defaults = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, d) in input.customer_defaults.iter().enumerate() {
            match self.parse_default(tenant_id, &order_id, d, &format!("customerDefaults[{i}]."), now).await? {
                Ok(record) => {
                    if !seen.insert(record.customer_ref.clone()) {
                        problems.push(Problem::invalid_field(
                            "DUPLICATE_CUSTOMER_REF",
                            format!("customerDefaults[{i}].customerRef"),
                            "{field} appears more than once.",
                        ));
                    }
                    defaults.push(record);
                }
                Err(p) => problems.extend(p),
            }
        }
        let mut instructions = Vec::new();
        for (i, ins) in input.instructions.iter().enumerate() {
            let prefix = format!("instructions[{i}].");
            match self.parse_instruction(tenant_id, &order_id, &defaults, ins, None, &prefix, now).await? {
                Ok(record) => instructions.push(record),
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(Problems(problems).into());
        }
        let refs: BTreeSet<&str> = instructions.iter().map(|i| i.instruction_ref.as_str()).collect();
        if refs.len() != instructions.len() {
            return Err(conflict(StoreError::Conflict("instructions_ref_unique".into())));
        }
        let (Some(order_ref), Some(metadata)) = (order_ref, metadata) else {
            return Err(internal("order fields were neither parsed nor refused".into()));
        };
        let order = OrderRecord {
            order_id,
            tenant_id: tenant_id.to_string(),
            order_ref: order_ref.into_string(),
            metadata: metadata_text(&metadata),
            created_at: now,
            updated_at: now,
        };
        let announce = Self::announce_created(&order, &defaults);
        let stored = self
            .store
            .create_order_announced(&order, &defaults, &instructions, Some(announce))
            .await
            .map_err(conflict)?;
        // Answered from what was written: the defaults as given, the instructions as stored.
        order_view_of(&order, &defaults, &stored)
    }

    pub async fn order(&self, tenant_id: &str, order_ref: &str) -> EngineResult<OrderView> {
        let order = self.order_record(tenant_id, order_ref).await?;
        self.order_view(&order).await
    }

    /// Replaces (`Some`) or clears (`None`) the order's metadata.
    pub async fn set_order_metadata(
        &self,
        tenant_id: &str,
        order_ref: &str,
        metadata: Option<&Value>,
    ) -> EngineResult<OrderView> {
        let mut order = self.order_record(tenant_id, order_ref).await?;
        let metadata = Metadata::parse_opt(metadata, "metadata")?;
        order.metadata = metadata_text(&metadata);
        order.updated_at = self.now_ms();
        if !self.store.set_order_metadata(tenant_id, &order.order_id, &order.metadata, order.updated_at).await? {
            return Err(order_not_found().into());
        }
        self.order_view(&order).await
    }

    /// Inserts or replaces customer defaults (each whole).
    pub async fn put_customer_defaults(
        &self,
        tenant_id: &str,
        order_ref: &str,
        inputs: Vec<CustomerDefaultInput>,
    ) -> EngineResult<OrderView> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let now = self.now_ms();
        let mut problems = Vec::new();
        let mut records = Vec::new();
        for (i, d) in inputs.iter().enumerate() {
            match self.parse_default(tenant_id, &order.order_id, d, &format!("customerDefaults[{i}]."), now).await? {
                Ok(r) => records.push(r),
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(Problems(problems).into());
        }
        if !self.store.put_customer_defaults(tenant_id, &order.order_id, &records, now).await? {
            return Err(order_not_found().into());
        }
        self.order_view(&order).await
    }

    /// Changes one field of an existing customer default.
    pub async fn change_customer_default(
        &self,
        tenant_id: &str,
        order_ref: &str,
        customer_ref: &str,
        change: DefaultFieldInput,
    ) -> EngineResult<OrderView> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let customer = CustomerRef::parse(customer_ref, "customerRef").map_err(|_| default_not_found())?;
        let change = match change {
            DefaultFieldInput::Instrument(fi) => {
                let fi = id(fi.as_deref());
                if let Some(fi) = &fi {
                    if let Some(p) =
                        self.check_instrument(tenant_id, customer.as_str(), fi, "financialInstrumentId").await?
                    {
                        return Err(p.into());
                    }
                }
                let source = if fi.is_some() { Source::Tenant } else { Source::None };
                DefaultChange::Instrument(fi, source)
            }
            DefaultFieldInput::Scheme(scheme) => {
                let scheme = id(scheme.as_deref());
                if let Some(s) = &scheme {
                    if let Some(p) = self.check_scheme(tenant_id, s, None, "schemeId").await? {
                        return Err(p.into());
                    }
                }
                let source = if scheme.is_some() { Source::Tenant } else { Source::None };
                DefaultChange::Scheme(scheme, source)
            }
            DefaultFieldInput::Metadata(m) => {
                DefaultChange::Metadata(metadata_text(&Metadata::parse_opt(m.as_ref(), "metadata")?))
            }
        };
        let now = self.now_ms();
        if !self.store.update_customer_default(tenant_id, &order.order_id, customer.as_str(), &change, now).await? {
            return Err(default_not_found().into());
        }
        self.order_view(&order).await
    }

    /// Deletes a customer default no live instruction uses.
    pub async fn delete_customer_default(
        &self,
        tenant_id: &str,
        order_ref: &str,
        customer_ref: &str,
    ) -> EngineResult<()> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let customer = CustomerRef::parse(customer_ref, "customerRef").map_err(|_| default_not_found())?;
        match self.store.delete_customer_default(tenant_id, &order.order_id, customer.as_str(), self.now_ms()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(default_not_found().into()),
            Err(StoreError::InUse(_)) => Err(Problem::bad_request("CUSTOMER_DEFAULT_IN_USE")
                .message("Instructions of this customer still use the order's defaults.")
                .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST …/{orderRef}/instruction`.
    pub async fn create_instruction(
        &self,
        tenant_id: &str,
        order_ref: &str,
        input: InstructionInput,
    ) -> EngineResult<InstructionView> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let defaults = self.store.customer_defaults(tenant_id, &order.order_id).await?;
        let now = self.now_ms();
        let record = self
            .parse_instruction(tenant_id, &order.order_id, &defaults, &input, None, "", now)
            .await?
            .map_err(Problems)?;
        let announce = Self::announce_created(&order, &defaults);
        match self.store.insert_instruction_announced(&record, Some(announce)).await {
            Ok(_) => {}
            Err(StoreError::MissingReference(_)) => return Err(order_not_found().into()),
            Err(e) => return Err(conflict(e)),
        }
        self.instruction_view_of(&order, &record.instruction_ref).await
    }

    pub async fn instruction(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> EngineResult<InstructionView> {
        let order = self.order_record(tenant_id, order_ref).await?;
        self.instruction_view_of(&order, instruction_ref).await
    }

    /// `PUT …/instruction/{instructionRef}`: replaces the instruction's values while it
    /// can be updated (`INCOMPLETE`/`READY`), else `400 INSTRUCTION_NOT_UPDATABLE`.
    pub async fn update_instruction(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
        input: InstructionInput,
    ) -> EngineResult<InstructionView> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let existing = self
            .store
            .instruction(tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(instruction_not_found)?;
        let not_updatable = || {
            EngineError::from(
                Problem::bad_request("INSTRUCTION_NOT_UPDATABLE")
                    .message("An instruction can only be updated while INCOMPLETE or READY.")
                    .detail("status", existing.status.as_str()),
            )
        };
        if !existing.status.can_update() {
            return Err(not_updatable());
        }
        let defaults = self.store.customer_defaults(tenant_id, &order.order_id).await?;
        let now = self.now_ms();
        let record = self
            .parse_instruction(tenant_id, &order.order_id, &defaults, &input, Some(&existing), "", now)
            .await?
            .map_err(Problems)?;
        let updatable = [InstructionStatus::Incomplete, InstructionStatus::Ready];
        if !self.store.update_instruction(&record, &updatable).await? {
            return Err(not_updatable());
        }
        self.instruction_view_of(&order, instruction_ref).await
    }

    /// `DELETE …/instruction/{instructionRef}`: `VOID` from `INCOMPLETE`, `READY` or `LATE`.
    pub async fn void_instruction(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> EngineResult<InstructionView> {
        let order = self.order_record(tenant_id, order_ref).await?;
        let existing = self
            .store
            .instruction(tenant_id, &order.order_id, instruction_ref)
            .await?
            .ok_or_else(instruction_not_found)?;
        let voidable = [InstructionStatus::Incomplete, InstructionStatus::Ready, InstructionStatus::Late];
        existing.status.transition_to(InstructionStatus::Void)?;
        let before = self.instruction_view_of(&order, instruction_ref).await?;
        let now = self.now_ms();
        let scheme = before.scheme.id.clone().unwrap_or_default();
        let data = crate::execution::events::instruction_data(
            &order,
            &before,
            InstructionStatus::Void,
            (&scheme, "", None),
            None,
        );
        let changes = [
            baton_store::Change::InstructionStatus {
                tenant_id: tenant_id.to_string(),
                order_id: order.order_id.clone(),
                instruction_id: existing.instruction_id.clone(),
                from: voidable.to_vec(),
                to: InstructionStatus::Void,
            },
            baton_store::Change::Event(baton_store::EventRecord {
                event_id: new_id(),
                account_id: None,
                tenant_id: Some(tenant_id.to_string()),
                event_type: baton_domain::EventType::InstructionVoided,
                ordering_key: Some(existing.instruction_id.clone()),
                data: data.to_string(),
                created_at: now,
            }),
        ];
        let changed = self.apply(&changes, now).await?;
        if !changed {
            return Err(Problem::conflict("CONCURRENT_MODIFICATION")
                .message("The instruction changed while it was being voided; read it and try again.")
                .into());
        }
        self.instruction_view_of(&order, instruction_ref).await
    }
}

// -- listings ------------------------------------------------------------------------------

/// The query of `GET /v1/order-management` and `GET /v1/instructions`, as sent. The order
/// listing reads only `customer_ref`, the creation dates, `limit` and `cursor`.
#[derive(Debug, Clone, Default)]
pub struct ListInput {
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub customer_ref: Option<String>,
    pub direction: Option<String>,
    pub currency: Option<String>,
    /// `YYYY-MM-DD`, inclusive (UTC days).
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    pub settled_by_from: Option<String>,
    pub settled_by_to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// An instruction of the instruction listing, with its order's ref.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedInstructionView {
    pub order_ref: String,
    pub instruction: InstructionView,
}

fn unix_ms(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The parts common to both listings.
struct Window {
    customer_ref: Option<String>,
    created_from: Option<i64>,
    created_before: Option<i64>,
    limit: u32,
    after: Option<Keyset>,
}

fn parse_window(input: &ListInput, listing: Listing, problems: &mut Vec<Problem>) -> Window {
    let customer_ref = blank(&input.customer_ref)
        .and_then(|c| take(problems, CustomerRef::parse(c, "customerRef")))
        .map(|c| c.into_string());
    let date = |value: &Option<String>, field: &str, problems: &mut Vec<Problem>| {
        blank(value).and_then(|d| take(problems, baton_domain::dates::parse_date(d, field)))
    };
    let created_from =
        date(&input.created_from, "createdFrom", problems).map(|d| unix_ms(baton_domain::dates::start_of_day(d)));
    let created_before =
        date(&input.created_to, "createdTo", problems).map(|d| unix_ms(baton_domain::dates::end_of_day(d)));
    let limit = parse_limit(blank(&input.limit), problems);
    let after = blank(&input.cursor).and_then(|c| take(problems, decode_cursor(listing, c)));
    Window { customer_ref, created_from, created_before, limit, after }
}

impl Engine {
    /// `GET /v1/order-management`: the tenant's orders oldest first, with their customer
    /// defaults but without their instructions (`instructions` is left empty), one page
    /// at a time. Two queries per page: the orders, then the defaults of all of them.
    pub async fn orders(&self, tenant_id: &str, input: &ListInput) -> EngineResult<Page<OrderView>> {
        let mut problems = Vec::new();
        let w = parse_window(input, Listing::Orders, &mut problems);
        if !problems.is_empty() {
            return Err(Problems(problems).into());
        }
        let filter = OrderFilter {
            customer_ref: w.customer_ref,
            created_from: w.created_from,
            created_before: w.created_before,
        };
        let rows = self.store.list_orders(tenant_id, &filter, w.after.as_ref(), w.limit + 1).await?;
        let (orders, next_cursor) = paginate(rows, w.limit, Listing::Orders, |o| (o.created_at, o.order_id.as_str()));
        let ids: Vec<String> = orders.iter().map(|o| o.order_id.clone()).collect();
        let mut defaults: BTreeMap<String, Vec<CustomerDefaultRecord>> = BTreeMap::new();
        for d in self.store.customer_defaults_of_orders(tenant_id, &ids).await? {
            defaults.entry(d.order_id.clone()).or_default().push(d);
        }
        let items = orders
            .iter()
            .map(|o| {
                Ok(OrderView {
                    order_ref: o.order_ref.clone(),
                    metadata: stored_metadata(&o.metadata)?,
                    customer_defaults: defaults
                        .get(&o.order_id)
                        .map(|ds| ds.iter().map(default_view).collect::<EngineResult<Vec<_>>>())
                        .transpose()?
                        .unwrap_or_default(),
                    instructions: Vec::new(),
                    created_at: o.created_at,
                })
            })
            .collect::<EngineResult<_>>()?;
        Ok(Page { items, next_cursor })
    }

    /// `GET /v1/instructions`: the tenant's instructions across its orders, oldest first,
    /// with the same effective values as the single read. Two queries per page: the
    /// instructions, then the customer defaults of their orders.
    pub async fn instructions(&self, tenant_id: &str, input: &ListInput) -> EngineResult<Page<ListedInstructionView>> {
        let mut problems = Vec::new();
        let w = parse_window(input, Listing::Instructions, &mut problems);
        let mut statuses = Vec::new();
        for s in input.status.as_deref().unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(status) = take(&mut problems, InstructionStatus::parse(s, "status")) {
                if !statuses.contains(&status) {
                    statuses.push(status);
                }
            }
        }
        let direction = blank(&input.direction).and_then(|d| take(&mut problems, Direction::parse(d, "direction")));
        let currency = blank(&input.currency).and_then(|c| take(&mut problems, Currency::parse(c, "currency")));
        let mut settled = |value: &Option<String>, field: &str| {
            blank(value)
                .and_then(|d| take(&mut problems, baton_domain::dates::parse_date(d, field)))
                .map(baton_domain::dates::format_date)
        };
        let settled_by_from = settled(&input.settled_by_from, "settledByFrom");
        let settled_by_to = settled(&input.settled_by_to, "settledByTo");
        if !problems.is_empty() {
            return Err(Problems(problems).into());
        }
        let filter = InstructionFilter {
            statuses,
            customer_ref: w.customer_ref,
            direction,
            currency: currency.map(|c| c.as_str().to_string()),
            created_from: w.created_from,
            created_before: w.created_before,
            settled_by_from,
            settled_by_to,
        };
        let rows = self.store.list_instructions(tenant_id, &filter, w.after.as_ref(), w.limit + 1).await?;
        let (rows, next_cursor) = paginate(rows, w.limit, Listing::Instructions, |r| {
            (r.instruction.created_at, r.instruction.instruction_id.as_str())
        });
        let ids: Vec<String> =
            rows.iter().map(|r| r.instruction.order_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let defaults = self.store.customer_defaults_of_orders(tenant_id, &ids).await?;
        let by_key: BTreeMap<(&str, &str), &CustomerDefaultRecord> =
            defaults.iter().map(|d| ((d.order_id.as_str(), d.customer_ref.as_str()), d)).collect();
        let items = rows
            .iter()
            .map(|r| {
                let i = &r.instruction;
                let default = by_key.get(&(i.order_id.as_str(), i.customer_ref.as_str())).copied();
                Ok(ListedInstructionView { order_ref: r.order_ref.clone(), instruction: instruction_view(i, default)? })
            })
            .collect::<EngineResult<_>>()?;
        Ok(Page { items, next_cursor })
    }
}
