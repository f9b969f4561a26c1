//! The customer's payment in a checkout session: the submitted instrument is validated,
//! stored in the vault (`source=CUSTOMER`), attached to the instruction and charged as a
//! customer-initiated transaction through [`Engine::execute_instruction`].
//!
//! A submission leases its session, so one session runs one attempt at a time; the
//! instrument is attached under a compare-and-set on the instruction's status, so it is
//! never attached to an instruction that another payment has taken meanwhile. A token
//! minted by a pay-by-link also needs the link live in that transaction and in the one
//! that starts the payment, so a cancel or an expiry, whenever it commits, stops it.
//! Input that does not validate stores nothing. The card's CVC is checked for form
//! only and dropped: it is never stored, logged or forwarded.

use std::collections::BTreeMap;

use baton_domain::{
    CheckoutStatus, Decline, DeclineCategory, Iban, InstructionStatus, InstrumentDetails, InstrumentType,
    MandateDetails, MandateReference, MandateScheme, Problem, Source, TransactionType, WalletDetails,
};
use baton_store::{Change, CheckoutSessionUpdate};
use serde_json::{json, Value};

use super::session::{CheckoutSession, Ended, Offer};
use super::{CheckoutClaims, PAYABLE};
use crate::execution::ExecuteRequest;
use crate::{Engine, EngineError, EngineResult};

/// The longest card number input accepted (digits with spaces or dashes).
pub const MAX_CARD_NUMBER_INPUT: usize = 32;

/// A card as typed into the hosted form.
#[derive(Default, Clone)]
pub struct CardInput {
    pub number: String,
    /// `MM/YY`, `MM / YYYY` or `MMYY`.
    pub expiry: String,
    pub cvc: String,
    pub holder_name: Option<String>,
    /// `{firstName, lastName, company, streetAddress, extendedStreetAddress, locality,
    /// region, postCode, country}`, when the theme asks for it.
    pub billing_address: Option<Value>,
}

// Card data never reaches a log line.
impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput([redacted])")
    }
}

/// A bank account for a direct debit mandate, as typed into the hosted form.
#[derive(Default, Clone)]
pub struct BankInput {
    pub iban: String,
    pub holder_name: String,
    /// The customer ticked the mandate's consent.
    pub consent: bool,
}

impl std::fmt::Debug for BankInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BankInput([redacted])")
    }
}

/// What the customer submitted.
#[derive(Debug, Clone)]
pub enum CheckoutAction {
    Card(CardInput),
    DirectDebit(BankInput),
    /// The customer approved the payment at the wallet (`PAYPAL`, sandbox approval page).
    WalletApproved {
        provider: String,
    },
    /// The customer's answer to the issuer's authentication challenge.
    Authentication {
        approved: bool,
    },
    Cancel,
}

impl CheckoutAction {
    /// The session states the action applies in.
    fn applies_in(&self) -> &'static [CheckoutStatus] {
        match self {
            CheckoutAction::Authentication { .. } => &[CheckoutStatus::Authenticating],
            CheckoutAction::Cancel => &[CheckoutStatus::Open, CheckoutStatus::Authenticating],
            _ => &[CheckoutStatus::Open],
        }
    }
}

/// Why a submission could not run at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No such session.
    NotFound,
    /// The session (its token) has expired.
    Expired,
    /// Another submission of this session is running.
    Busy,
    /// The session is finished (paid or cancelled), or not in the state the action needs.
    WrongState,
    /// The instruction can no longer be paid with this token (paid, failed, changed).
    NotPayable,
    /// The token can no longer pay: its link was cancelled or expired, or the
    /// instruction was voided.
    Ended(Ended),
}

/// The result of a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum PayOutcome {
    /// The input was refused, field by field; nothing was stored.
    Invalid(Vec<Problem>),
    /// Paid (`pending`: accepted, settles later, as bank collections do).
    Succeeded {
        pending: bool,
        provider: String,
    },
    /// The issuer wants the customer to authenticate.
    ChallengeRequired,
    /// The payment failed (`code`: the decline code); the customer may try again.
    Failed {
        code: String,
        provider: Option<String>,
    },
    Cancelled,
    Unavailable(Unavailable),
}

/// `MM/YY`, `MM / YYYY`, `MM-YY` or `MMYY` → (month, year) text; `None` if not that shape.
fn split_expiry(expiry: &str) -> Option<(String, String)> {
    let compact: String = expiry.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() > 7 {
        return None;
    }
    let (m, y) = match compact.split_once(['/', '-']) {
        Some(parts) => parts,
        None if compact.len() == 4 => compact.split_at(2),
        None => return None,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(m) && digits(y) && m.len() <= 2 && (y.len() == 2 || y.len() == 4)).then(|| (m.to_string(), y.to_string()))
}

/// A card security code: 3 digits (4 for American Express).
fn check_cvc(cvc: &str, amex: bool) -> Result<(), Problem> {
    let cvc = cvc.trim();
    let len_ok = if amex { cvc.len() == 4 } else { cvc.len() == 3 };
    if len_ok && cvc.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Problem::invalid_field("INVALID_CVC", "cvc", "{field} must be the {length}-digit code on the card.")
            .detail("length", if amex { "4" } else { "3" }))
    }
}

/// Validates a card submission into CARD details (every problem, fields named as in
/// the vault: `details.cardNumber`, `expiry`, `cvc`, `details.cardholderName`,
/// `details.billingAddress.*`), and checks that the scheme takes its brand.
fn parse_card(input: &CardInput, offer: &Offer, now: time::OffsetDateTime) -> Result<InstrumentDetails, Vec<Problem>> {
    let mut problems = Vec::new();
    let number = if input.number.len() > MAX_CARD_NUMBER_INPUT { "x" } else { input.number.as_str() };
    let (month, year) = match split_expiry(&input.expiry) {
        Some((m, y)) => (Value::String(m), Value::String(y)),
        None => {
            problems.push(Problem::invalid_field("INVALID_EXPIRY", "expiry", "{field} is not a valid card expiry."));
            (Value::Null, Value::Null)
        }
    };
    let mut details = json!({ "cardNumber": number, "cardholderName": input.holder_name });
    if !month.is_null() {
        details["expiryMonth"] = month;
        details["expiryYear"] = year;
    }
    if let Some(b) = &input.billing_address {
        details["billingAddress"] = b.clone();
    }
    let parsed = InstrumentDetails::parse(InstrumentType::Card, &details, now);
    let parsed = match parsed {
        Ok(d) => Some(d),
        Err(p) => {
            // Expiry problems are the expiry field's, whichever part they name.
            for mut problem in p.0 {
                if problem.code == "FIELD_REQUIRED"
                    && problem.details.iter().any(|(_, v)| v.starts_with("details.expiry"))
                {
                    continue;
                }
                for (k, v) in problem.details.iter_mut() {
                    if k == "field" && v.starts_with("details.expiry") {
                        *v = "expiry".into();
                    }
                }
                problems.push(problem);
            }
            None
        }
    };
    let brand = parsed.as_ref().and_then(|d| match d {
        InstrumentDetails::Card(c) => c.number.brand(),
        _ => None,
    });
    if let Err(p) = check_cvc(&input.cvc, brand.is_some_and(|b| b.method_id() == "AMERICAN-EXPRESS")) {
        problems.push(p);
    }
    if let Some(brand) = brand {
        if !offer.card_brands.iter().any(|b| b == brand.method_id()) {
            problems.push(
                Problem::invalid_field(
                    "CARD_BRAND_NOT_ACCEPTED",
                    "details.cardNumber",
                    "{brand} cards are not accepted for this payment.",
                )
                .detail("brand", brand.method_id()),
            );
        }
    } else if parsed.is_some() {
        problems.push(Problem::invalid_field(
            "CARD_BRAND_NOT_ACCEPTED",
            "details.cardNumber",
            "This card's brand is not accepted for this payment.",
        ));
    }
    match parsed {
        Some(d) if problems.is_empty() => Ok(d),
        _ => Err(problems),
    }
}

/// Validates a bank submission into a SEPA direct debit mandate signed today, with a
/// new mandate reference.
fn parse_mandate(input: &BankInput, now: time::OffsetDateTime) -> Result<InstrumentDetails, Vec<Problem>> {
    let mut problems = Vec::new();
    let iban = Iban::parse(&input.iban, "details.iban").map_err(|p| problems.push(p)).ok();
    let holder = baton_domain::HolderName::parse(&input.holder_name, "details.accountHolderName")
        .map_err(|p| problems.push(p))
        .ok();
    if !input.consent {
        problems.push(Problem::invalid_field(
            "MANDATE_CONSENT_REQUIRED",
            "mandateConsent",
            "{field}: the direct debit mandate must be accepted.",
        ));
    }
    let reference = format!("BATON-{}", uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase());
    let reference = MandateReference::parse(&reference, "mandateReference").map_err(|p| vec![p])?;
    match (iban, holder) {
        (Some(iban), Some(holder_name)) if problems.is_empty() => {
            Ok(InstrumentDetails::DirectDebitMandate(MandateDetails {
                reference,
                holder_name,
                iban,
                signed_date: now.date(),
                scheme: MandateScheme::Sepa,
            }))
        }
        _ => Err(problems),
    }
}

impl Engine {
    /// Runs the customer's submission in a checkout session (see the module docs).
    pub async fn checkout_submit(&self, session_id: &str, action: CheckoutAction) -> EngineResult<PayOutcome> {
        let Some(session) = self.checkout_session(session_id).await? else {
            return Ok(PayOutcome::Unavailable(Unavailable::NotFound));
        };
        let now = self.now_ms();
        if session.expired_at(now) {
            return Ok(PayOutcome::Unavailable(Unavailable::Expired));
        }
        // Longer than any attempt can take: the connector timeout, twice, plus a margin.
        let lease_ms = 2 * self.config.execution.connector_timeout.as_millis() as i64 + 30_000;
        let until = now + lease_ms;
        let Some(record) = self.store.lease_checkout_session(session_id, action.applies_in(), now, until).await? else {
            let current = self.store.checkout_session(session_id).await?;
            let why = match current {
                Some(c) if c.busy_until.is_some_and(|b| b > now) => Unavailable::Busy,
                Some(_) => Unavailable::WrongState,
                None => Unavailable::NotFound,
            };
            return Ok(PayOutcome::Unavailable(why));
        };
        let session = CheckoutSession { record, claims: session.claims };
        let result = self.run_submission(&session, action).await;
        let (outcome, update) = match result {
            Ok(pair) => pair,
            Err(e) => {
                // Release the lease; the error page lets the customer try again.
                let keep = CheckoutSessionUpdate {
                    status: session.record.status,
                    last_failure: session.record.last_failure.clone(),
                    provider_name: session.record.provider_name.clone(),
                    pending_instrument_id: session.record.pending_instrument_id.clone(),
                    attempted: false,
                };
                let _ = self.store.finish_checkout_session(session_id, until, &keep, self.now_ms()).await;
                return Err(e);
            }
        };
        if !self.store.finish_checkout_session(session_id, until, &update, self.now_ms()).await? {
            tracing::warn!(tenant_id = %session.claims.tenant_id, jti = %session.claims.jti,
                "a checkout submission outlived its lease");
        }
        Ok(outcome)
    }

    async fn run_submission(
        &self,
        session: &CheckoutSession,
        action: CheckoutAction,
    ) -> EngineResult<(PayOutcome, CheckoutSessionUpdate)> {
        let record = &session.record;
        let claims = &session.claims;
        let same = |status, last_failure: Option<String>, attempted| CheckoutSessionUpdate {
            status,
            last_failure,
            provider_name: record.provider_name.clone(),
            pending_instrument_id: record.pending_instrument_id.clone(),
            attempted,
        };
        match action {
            CheckoutAction::Cancel => {
                tracing::info!(tenant_id = %claims.tenant_id, jti = %claims.jti, "checkout cancelled by the customer");
                let update = CheckoutSessionUpdate {
                    pending_instrument_id: None,
                    ..same(CheckoutStatus::Cancelled, None, false)
                };
                Ok((PayOutcome::Cancelled, update))
            }
            CheckoutAction::Authentication { approved: false } => {
                let update = CheckoutSessionUpdate {
                    pending_instrument_id: None,
                    ..same(CheckoutStatus::Open, Some("AUTHENTICATION_FAILED".into()), false)
                };
                let outcome =
                    PayOutcome::Failed { code: "AUTHENTICATION_FAILED".into(), provider: record.provider_name.clone() };
                Ok((outcome, update))
            }
            CheckoutAction::Authentication { approved: true } => {
                let Some(instrument_id) = record.pending_instrument_id.clone() else {
                    return Ok((
                        PayOutcome::Unavailable(Unavailable::WrongState),
                        same(CheckoutStatus::Open, None, false),
                    ));
                };
                // The instrument must still be the instruction's (nothing paid meanwhile).
                let view = self.instruction(&claims.tenant_id, &claims.order_ref, &claims.instruction_ref).await?;
                if view.financial_instrument.id.as_deref() != Some(instrument_id.as_str())
                    || !PAYABLE.contains(&view.status)
                {
                    let update = CheckoutSessionUpdate {
                        pending_instrument_id: None,
                        ..same(CheckoutStatus::Open, None, false)
                    };
                    return Ok((self.unavailable(claims, view.status).await?, update));
                }
                self.charge(session, &instrument_id, true).await
            }
            action => {
                let order = self.order_record(&claims.tenant_id, &claims.order_ref).await?;
                let (instruction, _) = self.instruction_and_view(&order, &claims.instruction_ref).await?;
                let payable = PAYABLE.contains(&instruction.status)
                    && instruction.currency == claims.currency
                    && instruction.amount_minor == claims.amount;
                if !payable {
                    let outcome = self.unavailable(claims, instruction.status).await?;
                    return Ok((outcome, same(record.status, None, false)));
                }
                let offer = self.checkout_offer(claims).await?;
                let now = self.now_utc();
                let details = match &action {
                    CheckoutAction::Card(card) if !offer.card_brands.is_empty() => parse_card(card, &offer, now),
                    CheckoutAction::DirectDebit(bank) if offer.direct_debit => parse_mandate(bank, now),
                    CheckoutAction::WalletApproved { provider }
                        if offer.paypal && provider.eq_ignore_ascii_case("PAYPAL") =>
                    {
                        let payer_id = format!("SBX-PAYER-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                        Ok(InstrumentDetails::Wallet(WalletDetails { provider: "PAYPAL".into(), payer_id }))
                    }
                    _ => Err(vec![Problem::bad_request("PAYMENT_METHOD_NOT_OFFERED")
                        .message("This payment method is not offered for this payment.")]),
                };
                let details = match details {
                    Ok(d) => d,
                    Err(problems) => {
                        let update = same(record.status, record.last_failure.clone(), false);
                        return Ok((PayOutcome::Invalid(problems), update));
                    }
                };
                let guards = Self::checkout_guards(claims);
                let attached = self.attach_customer_instrument(&order, &instruction, &details, guards).await?;
                let Some(instrument_id) = attached else {
                    let outcome = self.unavailable_now(claims).await?;
                    return Ok((outcome, same(record.status, None, false)));
                };
                self.charge(session, &instrument_id, false).await
            }
        }
    }

    /// Why a token cannot pay an instruction found `status`: ended (link cancelled or
    /// expired, instruction voided), else no longer payable.
    async fn unavailable(&self, claims: &CheckoutClaims, status: InstructionStatus) -> EngineResult<PayOutcome> {
        let why = match self.checkout_ended(claims, status).await? {
            Some(ended) => Unavailable::Ended(ended),
            None => Unavailable::NotPayable,
        };
        Ok(PayOutcome::Unavailable(why))
    }

    /// [`Self::unavailable`] for the instruction as it stands now.
    async fn unavailable_now(&self, claims: &CheckoutClaims) -> EngineResult<PayOutcome> {
        let view = self.instruction(&claims.tenant_id, &claims.order_ref, &claims.instruction_ref).await?;
        self.unavailable(claims, view.status).await
    }

    /// Stores `details` as the customer's instrument and makes it the instruction's own
    /// (source `CUSTOMER`), in one transaction guarded on the instruction's status
    /// (`INCOMPLETE` becomes `READY`) and on `guards`. `None` when the instruction moved
    /// or a guard failed meanwhile: nothing is stored.
    async fn attach_customer_instrument(
        &self,
        order: &baton_store::OrderRecord,
        instruction: &baton_store::InstructionRecord,
        details: &InstrumentDetails,
        guards: Vec<Change>,
    ) -> EngineResult<Option<String>> {
        let status = &instruction.status;
        let tenant_id = &order.tenant_id;
        let (record, instrument_changes) = self
            .new_instrument(tenant_id, &instruction.customer_ref, details, &BTreeMap::new(), false, (true, false))
            .await?;
        let to = if *status == InstructionStatus::Incomplete { InstructionStatus::Ready } else { *status };
        let mut changes = vec![Change::InstructionStatus {
            tenant_id: tenant_id.clone(),
            order_id: order.order_id.clone(),
            instruction_id: instruction.instruction_id.clone(),
            from: vec![*status],
            to,
        }];
        changes.extend(instrument_changes);
        changes.push(Change::AttachInstrument {
            tenant_id: tenant_id.clone(),
            order_id: order.order_id.clone(),
            instruction_id: instruction.instruction_id.clone(),
            instrument_id: record.financial_instrument_id.clone(),
            source: Source::Customer,
        });
        changes.extend(guards);
        if !self.apply(&changes, self.now_ms()).await? {
            return Ok(None);
        }
        tracing::info!(tenant_id, financial_instrument_id = %record.financial_instrument_id,
            kind = record.kind.as_str(), "checkout instrument stored and attached");
        Ok(Some(record.financial_instrument_id))
    }

    /// Charges the instruction (whose instrument is `instrument_id`) as a
    /// customer-initiated transaction, started only while the token's link is live.
    async fn charge(
        &self,
        session: &CheckoutSession,
        instrument_id: &str,
        authenticated: bool,
    ) -> EngineResult<(PayOutcome, CheckoutSessionUpdate)> {
        let claims = &session.claims;
        let request =
            ExecuteRequest { transaction_type: TransactionType::Cit, extra: json!({ "authenticated": authenticated }) };
        let guards = Self::checkout_guards(claims);
        let (order_ref, instruction_ref) = (&claims.order_ref, &claims.instruction_ref);
        let result = self.execute_guarded(&claims.tenant_id, order_ref, instruction_ref, request, guards).await;
        let update = |status, last_failure: Option<String>, provider: Option<String>, pending: Option<String>| {
            CheckoutSessionUpdate {
                status,
                last_failure,
                provider_name: provider,
                pending_instrument_id: pending,
                attempted: true,
            }
        };
        let execution = match result {
            Ok(e) => e,
            Err(EngineError::Rejected(problems)) => {
                // Refused before any PSP was called. Ended (the link cancelled or expired,
                // the instruction voided, maybe while this submission ran): nothing changes.
                if let PayOutcome::Unavailable(Unavailable::Ended(ended)) = self.unavailable_now(claims).await? {
                    tracing::info!(tenant_id = %claims.tenant_id, jti = %claims.jti, ?ended,
                        "checkout payment refused: the token ended");
                    let record = &session.record;
                    let keep = CheckoutSessionUpdate {
                        status: record.status,
                        last_failure: record.last_failure.clone(),
                        provider_name: record.provider_name.clone(),
                        pending_instrument_id: record.pending_instrument_id.clone(),
                        attempted: false,
                    };
                    return Ok((PayOutcome::Unavailable(Unavailable::Ended(ended)), keep));
                }
                // Otherwise (no app takes the instrument, the instruction moved): a
                // failure the customer can retry.
                let code = problems.0.first().map(|p| p.code.to_string()).unwrap_or_default();
                tracing::info!(tenant_id = %claims.tenant_id, code, "checkout payment refused before reaching a PSP");
                return Ok((
                    PayOutcome::Failed { code: code.clone(), provider: None },
                    update(CheckoutStatus::Open, Some(code), None, None),
                ));
            }
            Err(e) => return Err(e),
        };
        let provider = self
            .instruction_transactions(&claims.tenant_id, &claims.order_ref, &claims.instruction_ref)
            .await?
            .last()
            .map(|t| t.app_id.clone());
        match (execution.instruction.status, execution.decline) {
            (InstructionStatus::Settled, _) => {
                let p = provider.clone().unwrap_or_default();
                Ok((
                    PayOutcome::Succeeded { pending: false, provider: p },
                    update(CheckoutStatus::Succeeded, None, provider, None),
                ))
            }
            (InstructionStatus::Processing, _) => {
                let p = provider.clone().unwrap_or_default();
                Ok((
                    PayOutcome::Succeeded { pending: true, provider: p },
                    update(CheckoutStatus::Succeeded, None, provider, None),
                ))
            }
            (_, Some(decline)) if decline.category == DeclineCategory::AuthenticationRequired && !authenticated => {
                Ok((
                    PayOutcome::ChallengeRequired,
                    update(CheckoutStatus::Authenticating, None, provider, Some(instrument_id.to_string())),
                ))
            }
            (_, decline) => {
                let decline = decline.unwrap_or_else(|| Decline::new(DeclineCategory::HardDecline));
                let code = decline.code.clone();
                Ok((
                    PayOutcome::Failed { code: code.clone(), provider: provider.clone() },
                    update(CheckoutStatus::Open, Some(code), provider, None),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_domain::CardExpiry;
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2026-05-15 12:00 UTC);

    fn offer(brands: &[&str]) -> Offer {
        Offer { card_brands: brands.iter().map(|b| b.to_string()).collect(), ..Default::default() }
    }

    fn card(number: &str, expiry: &str, cvc: &str) -> CardInput {
        CardInput { number: number.into(), expiry: expiry.into(), cvc: cvc.into(), ..Default::default() }
    }

    fn fields(r: Result<InstrumentDetails, Vec<Problem>>) -> Vec<(String, String)> {
        r.unwrap_err()
            .into_iter()
            .map(|p| {
                (
                    p.code.to_string(),
                    p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.clone()).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn expiry_shapes() {
        assert_eq!(split_expiry("12/30"), Some(("12".into(), "30".into())));
        assert_eq!(split_expiry(" 1 / 2031 "), Some(("1".into(), "2031".into())));
        assert_eq!(split_expiry("0130"), Some(("01".into(), "30".into())));
        assert_eq!(split_expiry("01-30"), Some(("01".into(), "30".into())));
        for bad in ["", "13", "1/2/3", "ab/cd", "123/30", "12/3", "12/300", "12/30000"] {
            assert_eq!(split_expiry(bad), None, "{bad}");
        }
        assert!(CardExpiry::parse("12", "30", NOW).is_ok());
    }

    #[test]
    fn cards_are_checked_field_by_field() {
        let visa = offer(&["VISA", "MASTERCARD"]);
        let ok = parse_card(&card("4242 4242 4242 4242", "12/30", "123"), &visa, NOW).unwrap();
        assert!(matches!(ok, InstrumentDetails::Card(ref c) if c.expiry.year() == 2030 && c.expiry.month() == 12));
        assert_eq!(
            fields(parse_card(&card("4242 4242 4242 4241", "04/26", "12"), &visa, NOW)),
            [
                ("INVALID_CARD_NUMBER".into(), "details.cardNumber".into()),
                ("CARD_EXPIRED".into(), "expiry".into()),
                ("INVALID_CVC".into(), "cvc".into())
            ]
        );
        assert_eq!(
            fields(parse_card(&card("4242424242424242", "13/30", "123"), &visa, NOW)),
            [("INVALID_EXPIRY".into(), "expiry".into())]
        );
        assert_eq!(
            fields(parse_card(&card("4242424242424242", "soon", "123"), &visa, NOW)),
            [("INVALID_EXPIRY".into(), "expiry".into())]
        );
        // Oversized input is refused without being parsed, and never echoed.
        let long = "4".repeat(10_000);
        let problems = parse_card(&card(&long, "12/30", "123"), &visa, NOW).unwrap_err();
        assert_eq!(problems[0].code, "INVALID_CARD_NUMBER");
        assert!(!format!("{problems:?}").contains("4444"));
        // American Express: four digits, and only where the scheme takes it.
        assert_eq!(
            fields(parse_card(&card("378282246310005", "12/30", "1234"), &visa, NOW)),
            [("CARD_BRAND_NOT_ACCEPTED".into(), "details.cardNumber".into())]
        );
        let amex = offer(&["AMERICAN-EXPRESS"]);
        assert!(parse_card(&card("378282246310005", "12/30", "1234"), &amex, NOW).is_ok());
        assert_eq!(
            fields(parse_card(&card("378282246310005", "12/30", "123"), &amex, NOW)),
            [("INVALID_CVC".into(), "cvc".into())]
        );
        // The holder's name: printable, at most 140 characters.
        let mut named = card("4242424242424242", "12/30", "123");
        named.holder_name = Some("x".repeat(141));
        assert_eq!(
            fields(parse_card(&named, &visa, NOW)),
            [("INVALID_HOLDER_NAME".into(), "details.cardholderName".into())]
        );
        named.holder_name = Some("<script>alert(1)</script>".into());
        assert!(parse_card(&named, &visa, NOW).is_ok(), "markup is text, escaped where shown");
    }

    #[test]
    fn mandates_need_a_valid_iban_a_holder_and_consent() {
        let ok =
            BankInput { iban: "DE89 3704 0044 0532 0130 00".into(), holder_name: "Jane Doe".into(), consent: true };
        let InstrumentDetails::DirectDebitMandate(m) = parse_mandate(&ok, NOW).unwrap() else { panic!("a mandate") };
        assert_eq!((m.scheme, m.signed_date), (MandateScheme::Sepa, NOW.date()));
        assert!(m.reference.as_str().starts_with("BATON-") && m.reference.as_str().len() == 22);
        let bad = BankInput { iban: "DE89 3704 0044 0532 0130 01".into(), holder_name: " ".into(), consent: false };
        let problems: Vec<_> = parse_mandate(&bad, NOW).unwrap_err().into_iter().map(|p| p.code.to_string()).collect();
        assert_eq!(problems, ["INVALID_IBAN", "INVALID_HOLDER_NAME", "MANDATE_CONSENT_REQUIRED"]);
    }
}
