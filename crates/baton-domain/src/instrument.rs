//! Financial instruments (SPEC §0 "FI states", §5.4 customer vault): types, states and
//! their transitions, and the validated `details` of each type with their display data.
//!
//! Secrets (card numbers, IBANs, account numbers, phone numbers) live in types whose
//! `Debug` is masked and whose problems never echo the input; the digits are reached
//! only through an explicit `expose()`.

use serde::Serialize;
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::dates::{format_date, parse_date};
use crate::metadata::contains_card_number;
use crate::problem::{Problem, Problems};

use crate::words::word_enum;

mod bank;
mod card;
mod phone;

pub use bank::{iban_length, Iban, MandateReference, MandateScheme, RoutingNumber, SortCode, UkAccountNumber};
pub use card::{luhn_valid, CardBrand, CardExpiry, CardNumber};
pub use phone::PhoneNumber;

word_enum!(
    /// The kind of a financial instrument.
    InstrumentType, "INVALID_FINANCIAL_INSTRUMENT_TYPE", [
        Card => "CARD",
        BankAccount => "BANK_ACCOUNT",
        MobilePhone => "MOBILE_PHONE",
        DirectDebitMandate => "DIRECT_DEBIT_MANDATE",
        Reward => "REWARD",
        Wallet => "WALLET",
    ]
);

word_enum!(
    /// A financial instrument's state (SPEC §0 "FI states").
    InstrumentState, "INVALID_STATE", [
        Active => "ACTIVE",
        Inactive => "INACTIVE",
        Locked => "LOCKED",
        Closed => "CLOSED",
    ]
);

word_enum!(
    /// Why an instrument was deactivated (or locked or closed, when a reason is given).
    StateReason, "INVALID_STATE_REASON", [
        Expired => "EXPIRED",
        MandateCancelled => "MANDATE_CANCELLED",
        CustomerRequest => "CUSTOMER_REQUEST",
        FraudSuspected => "FRAUD_SUSPECTED",
    ]
);

/// A state and the reason recorded with it (`state`, `stateReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateChange {
    pub state: InstrumentState,
    pub reason: Option<StateReason>,
}

impl InstrumentState {
    /// The state of every new instrument (stored, mandate registered, reward authorised).
    pub const INITIAL: InstrumentState = InstrumentState::Active;

    /// Every allowed move, and nothing else (a state never moves to itself):
    ///
    /// | from | to |
    /// |---|---|
    /// | `ACTIVE` | `INACTIVE` (reason required), `LOCKED`, `CLOSED` |
    /// | `INACTIVE` | `ACTIVE`, `CLOSED` |
    /// | `LOCKED` | `CLOSED` |
    /// | `CLOSED` | — (terminal) |
    pub fn next_states(self) -> &'static [InstrumentState] {
        use InstrumentState::*;
        match self {
            Active => &[Inactive, Locked, Closed],
            Inactive => &[Active, Closed],
            Locked => &[Closed],
            Closed => &[],
        }
    }

    pub fn can_transition_to(self, to: InstrumentState) -> bool {
        self.next_states().contains(&to)
    }

    pub fn is_terminal(self) -> bool {
        self == InstrumentState::Closed
    }

    /// Only `ACTIVE` instruments can be attached or executed.
    pub fn is_usable(self) -> bool {
        self == InstrumentState::Active
    }

    /// See [`transition`].
    pub fn transition_to(self, to: InstrumentState, reason: Option<StateReason>) -> Result<StateChange, Problem> {
        transition(self, to, reason)
    }
}

/// Moves an instrument `from` → `to`:
/// - a move not in [`InstrumentState::next_states`] is `400 INVALID_STATE_TRANSITION`
///   (details `field` = `state`, `from`, `to`);
/// - moving to `INACTIVE` without a reason is `400 STATE_REASON_REQUIRED` (`field` = `reason`);
/// - moving to `ACTIVE` clears the reason (any given one is dropped); `LOCKED` and
///   `CLOSED` record the reason if one is given.
pub fn transition(
    from: InstrumentState,
    to: InstrumentState,
    reason: Option<StateReason>,
) -> Result<StateChange, Problem> {
    if !from.can_transition_to(to) {
        return Err(Problem::invalid_field(
            "INVALID_STATE_TRANSITION",
            "state",
            "A financial instrument cannot move from {from} to {to}.",
        )
        .detail("from", from.as_str())
        .detail("to", to.as_str()));
    }
    match to {
        InstrumentState::Inactive if reason.is_none() => Err(Problem::invalid_field(
            "STATE_REASON_REQUIRED",
            "reason",
            "{field} is required to deactivate a financial instrument.",
        )),
        InstrumentState::Active => Ok(StateChange { state: to, reason: None }),
        _ => Ok(StateChange { state: to, reason }),
    }
}

/// `Ok` for an `ACTIVE` instrument, else `400 FINANCIAL_INSTRUMENT_NOT_ACTIVE` (detail `state`).
pub fn ensure_active(state: InstrumentState) -> Result<(), Problem> {
    if state.is_usable() {
        Ok(())
    } else {
        Err(Problem::bad_request("FINANCIAL_INSTRUMENT_NOT_ACTIVE")
            .message("The financial instrument is {state}; only ACTIVE instruments can be used.")
            .detail("state", state.as_str()))
    }
}

/// A card holder's or account holder's name: trimmed, 1–140 characters, no control
/// characters and no card number, else `400 INVALID_HOLDER_NAME` (not echoed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HolderName(String);

impl HolderName {
    pub const MAX: usize = 140;

    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let s = input.trim();
        let n = s.chars().count();
        if n == 0 || n > Self::MAX || s.chars().any(char::is_control) || contains_card_number(s) {
            return Err(Problem::invalid_field(
                "INVALID_HOLDER_NAME",
                field,
                "{field} must be 1 to {limit} printable characters.",
            )
            .detail("limit", Self::MAX.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// CARD details: `{cardNumber*, expiryMonth*, expiryYear*, cardholderName, billingAddress}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    pub number: CardNumber,
    pub expiry: CardExpiry,
    pub holder_name: Option<HolderName>,
    /// Collected by the hosted checkout when the theme asks for it (SPEC §4.11
    /// `ccDataCollectionOptions.billingAddress`).
    pub billing_address: Option<BillingAddress>,
}

/// A card's billing address (SPEC §4.11): first and last name, company, street,
/// locality, region, postcode and country. `{firstName*, lastName*, company,
/// streetAddress*, extendedStreetAddress, locality*, region, postCode*, country*}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAddress {
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub street_address: String,
    pub extended_street_address: Option<String>,
    pub locality: String,
    pub region: Option<String>,
    pub post_code: String,
    pub country: crate::Country,
}

impl BillingAddress {
    /// The longest line accepted.
    pub const MAX_LINE: usize = 100;

    /// Parses the `billingAddress` object: `FIELD_REQUIRED` for a missing required line,
    /// `FIELD_TOO_LONG` (with `limit`) for a line over [`Self::MAX_LINE`] characters or
    /// with control characters, `INVALID_COUNTRY`; fields named `{prefix}{name}`.
    pub fn parse(value: &Value, prefix: &str) -> Result<Self, Vec<Problem>> {
        let empty = Map::new();
        let obj = value.as_object().unwrap_or(&empty);
        let mut problems = Vec::new();
        let mut line = |name: &str, required: bool| -> Option<String> {
            let raw = obj
                .iter()
                .find(|(k, v)| k.trim().eq_ignore_ascii_case(name) && !v.is_null())
                .and_then(|(_, v)| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty());
            match raw {
                None if required => {
                    problems.push(Problem::invalid_field(
                        "FIELD_REQUIRED",
                        format!("{prefix}{name}"),
                        "{field} is required.",
                    ));
                    None
                }
                None => None,
                Some(v) if v.chars().count() > Self::MAX_LINE || v.chars().any(char::is_control) => {
                    problems.push(
                        Problem::invalid_field(
                            "FIELD_TOO_LONG",
                            format!("{prefix}{name}"),
                            "{field} must be at most {limit} printable characters.",
                        )
                        .detail("limit", Self::MAX_LINE.to_string()),
                    );
                    None
                }
                Some(v) => Some(v.to_string()),
            }
        };
        let first_name = line("firstName", true);
        let last_name = line("lastName", true);
        let company = line("company", false);
        let street_address = line("streetAddress", true);
        let extended_street_address = line("extendedStreetAddress", false);
        let locality = line("locality", true);
        let region = line("region", false);
        let post_code = line("postCode", true);
        let country = line("country", true);
        let country = country
            .and_then(|c| crate::Country::parse(&c, &format!("{prefix}country")).map_err(|p| problems.push(p)).ok());
        match (first_name, last_name, street_address, locality, post_code, country) {
            (
                Some(first_name),
                Some(last_name),
                Some(street_address),
                Some(locality),
                Some(post_code),
                Some(country),
            ) if problems.is_empty() => Ok(Self {
                first_name,
                last_name,
                company,
                street_address,
                extended_street_address,
                locality,
                region,
                post_code,
                country,
            }),
            _ => Err(problems),
        }
    }

    /// The address as sealed with the card (`billingAddress`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "firstName": self.first_name,
            "lastName": self.last_name,
            "company": self.company,
            "streetAddress": self.street_address,
            "extendedStreetAddress": self.extended_street_address,
            "locality": self.locality,
            "region": self.region,
            "postCode": self.post_code,
            "country": self.country.as_str(),
        })
    }
}

/// WALLET details: an account at a wallet provider that the customer approved in the
/// hosted checkout (`{provider*: PAYPAL, payerId*}`). Only the checkout creates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletDetails {
    /// The payment method id of the wallet (`PAYPAL`).
    pub provider: String,
    /// The provider's id of the approving account (1–64 printable ASCII characters).
    pub payer_id: String,
}

impl WalletDetails {
    pub const MAX_PAYER_ID: usize = 64;
    /// The wallets Baton knows.
    pub const PROVIDERS: &'static [&'static str] = &["PAYPAL"];
}

/// How a bank account is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankAccountId {
    Iban(Iban),
    Uk { account_number: UkAccountNumber, sort_code: SortCode },
}

/// BANK_ACCOUNT details: `{accountHolderName*, iban}` or `{accountHolderName*, accountNumber, sortCode}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankAccountDetails {
    pub holder_name: HolderName,
    pub account: BankAccountId,
}

/// DIRECT_DEBIT_MANDATE details:
/// `{mandateReference*, accountHolderName*, iban*, signedDate*, scheme* SEPA|BACS}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateDetails {
    pub reference: MandateReference,
    pub holder_name: HolderName,
    pub iban: Iban,
    pub signed_date: Date,
    pub scheme: MandateScheme,
}

/// The validated `details` of a financial instrument, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstrumentDetails {
    Card(CardDetails),
    BankAccount(BankAccountDetails),
    MobilePhone(PhoneNumber),
    DirectDebitMandate(MandateDetails),
    /// REWARD instruments are authorised by the platform; they carry no client details.
    Reward,
    Wallet(WalletDetails),
}

/// What the API shows of an instrument (SPEC §5.4 "display data only"): never a full
/// number. Absent parts are omitted from JSON; names are camelCase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentDisplay {
    /// Card brand as a payment method id (`VISA`, `AMERICAN-EXPRESS`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<CardBrand>,
    /// Last four digits of a card number, IBAN or UK account number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_month: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_year: Option<u16>,
    /// `DE89 **** **** **** 3000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_iban: Option<String>,
    /// The IBAN's country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// `****5678`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_account_number: Option<String>,
    /// `12-34-56`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_code: Option<String>,
    /// `+44*******123`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mandate_reference: Option<String>,
    /// The mandate's scheme (`SEPA`, `BACS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<MandateScheme>,
    /// `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_date: Option<String>,
    /// A wallet's provider (`PAYPAL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_provider: Option<String>,
}

impl InstrumentDetails {
    /// Parses the `details` object of a `kind` instrument. Property names match
    /// case-insensitively and `null` counts as absent; problems name fields as
    /// `details.<name>` and are all reported together: `FIELD_REQUIRED` for a missing
    /// one, the type's own code for a bad one (`INVALID_CARD_NUMBER`, `INVALID_EXPIRY`,
    /// `CARD_EXPIRED`, `INVALID_IBAN`, `INVALID_ACCOUNT_NUMBER`, `INVALID_SORT_CODE`,
    /// `INVALID_PHONE_NUMBER`, `INVALID_MANDATE_REFERENCE`, `INVALID_MANDATE_SCHEME`,
    /// `INVALID_DATE`, `INVALID_HOLDER_NAME`), `INVALID_BANK_ACCOUNT` when both an IBAN
    /// and a UK account number are given, and `INVALID_FINANCIAL_INSTRUMENT_DETAILS`
    /// when `details` is not an object. REWARD ignores `details`. `now` decides card expiry.
    pub fn parse(kind: InstrumentType, details: &Value, now: OffsetDateTime) -> Result<Self, Problems> {
        if kind == InstrumentType::Reward {
            return Ok(InstrumentDetails::Reward);
        }
        let empty = Map::new();
        let obj = match details {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => {
                return Err(Problem::invalid_field(
                    "INVALID_FINANCIAL_INSTRUMENT_DETAILS",
                    "details",
                    "{field} must be an object.",
                )
                .into())
            }
        };
        let mut p = Fields { obj, problems: Vec::new() };
        let parsed = match kind {
            InstrumentType::Card => {
                let number = p.required("cardNumber", CardNumber::parse);
                let month = p.raw_required("expiryMonth");
                let year = p.raw_required("expiryYear");
                let expiry = match (month, year) {
                    (Some(m), Some(y)) => CardExpiry::from_json(m, y, now).map_err(|e| p.push(prefixed(e))).ok(),
                    _ => None,
                };
                let holder_name = p.optional("cardholderName", HolderName::parse);
                let billing_address = p.raw("billingAddress").and_then(|v| {
                    BillingAddress::parse(v, "details.billingAddress.").map_err(|e| p.problems.extend(e)).ok()
                });
                match (number, expiry) {
                    (Some(number), Some(expiry)) => Some(InstrumentDetails::Card(CardDetails {
                        number,
                        expiry,
                        holder_name: holder_name.flatten(),
                        billing_address,
                    })),
                    _ => None,
                }
            }
            InstrumentType::BankAccount => {
                let holder_name = p.required("accountHolderName", HolderName::parse);
                let has_iban = p.raw("iban").is_some();
                let has_uk = p.raw("accountNumber").is_some() || p.raw("sortCode").is_some();
                let account = if has_iban && has_uk {
                    p.push(Problem::invalid_field(
                        "INVALID_BANK_ACCOUNT",
                        "details",
                        "{field} must give either iban or accountNumber and sortCode, not both.",
                    ));
                    None
                } else if has_uk {
                    let account_number = p.required("accountNumber", UkAccountNumber::parse);
                    let sort_code = p.required("sortCode", SortCode::parse);
                    account_number
                        .zip(sort_code)
                        .map(|(account_number, sort_code)| BankAccountId::Uk { account_number, sort_code })
                } else {
                    p.required("iban", Iban::parse).map(BankAccountId::Iban)
                };
                holder_name.zip(account).map(|(holder_name, account)| {
                    InstrumentDetails::BankAccount(BankAccountDetails { holder_name, account })
                })
            }
            InstrumentType::MobilePhone => {
                p.required("phoneNumber", PhoneNumber::parse).map(InstrumentDetails::MobilePhone)
            }
            InstrumentType::DirectDebitMandate => {
                let reference = p.required("mandateReference", MandateReference::parse);
                let holder_name = p.required("accountHolderName", HolderName::parse);
                let iban = p.required("iban", Iban::parse);
                let signed_date = p.required("signedDate", parse_date);
                let scheme = p.required("scheme", MandateScheme::parse);
                match (reference, holder_name, iban, signed_date, scheme) {
                    (Some(reference), Some(holder_name), Some(iban), Some(signed_date), Some(scheme)) => {
                        Some(InstrumentDetails::DirectDebitMandate(MandateDetails {
                            reference,
                            holder_name,
                            iban,
                            signed_date,
                            scheme,
                        }))
                    }
                    _ => None,
                }
            }
            InstrumentType::Reward => Some(InstrumentDetails::Reward),
            InstrumentType::Wallet => {
                let provider = p.required("provider", |v, field| {
                    WalletDetails::PROVIDERS
                        .iter()
                        .find(|w| w.eq_ignore_ascii_case(v.trim()))
                        .map(|w| w.to_string())
                        .ok_or_else(|| {
                            Problem::invalid_field("INVALID_WALLET_PROVIDER", field, "{field} is not a known wallet.")
                        })
                });
                let payer_id = p.required("payerId", |v, field| {
                    let v = v.trim();
                    if v.is_empty()
                        || v.len() > WalletDetails::MAX_PAYER_ID
                        || !v.bytes().all(|b| (0x21..0x7f).contains(&b))
                    {
                        Err(Problem::invalid_field(
                            "INVALID_PAYER_ID",
                            field,
                            "{field} must be 1 to {limit} printable characters.",
                        )
                        .detail("limit", WalletDetails::MAX_PAYER_ID.to_string()))
                    } else {
                        Ok(v.to_string())
                    }
                });
                provider
                    .zip(payer_id)
                    .map(|(provider, payer_id)| InstrumentDetails::Wallet(WalletDetails { provider, payer_id }))
            }
        };
        Problems::into_result(p.problems)?;
        Ok(parsed.expect("no problems means every part parsed"))
    }

    pub fn kind(&self) -> InstrumentType {
        match self {
            InstrumentDetails::Card(_) => InstrumentType::Card,
            InstrumentDetails::BankAccount(_) => InstrumentType::BankAccount,
            InstrumentDetails::MobilePhone(_) => InstrumentType::MobilePhone,
            InstrumentDetails::DirectDebitMandate(_) => InstrumentType::DirectDebitMandate,
            InstrumentDetails::Reward => InstrumentType::Reward,
            InstrumentDetails::Wallet(_) => InstrumentType::Wallet,
        }
    }

    /// The display data of these details.
    pub fn display(&self) -> InstrumentDisplay {
        match self {
            InstrumentDetails::Card(c) => InstrumentDisplay {
                brand: c.number.brand(),
                last4: Some(c.number.last4().to_string()),
                expiry_month: Some(c.expiry.month()),
                expiry_year: Some(c.expiry.year()),
                ..Default::default()
            },
            InstrumentDetails::BankAccount(b) => match &b.account {
                BankAccountId::Iban(iban) => iban_display(iban),
                BankAccountId::Uk { account_number, sort_code } => InstrumentDisplay {
                    last4: Some(account_number.last4().to_string()),
                    masked_account_number: Some(account_number.masked()),
                    sort_code: Some(sort_code.display()),
                    ..Default::default()
                },
            },
            InstrumentDetails::MobilePhone(phone) => {
                InstrumentDisplay { masked_phone_number: Some(phone.masked()), ..Default::default() }
            }
            InstrumentDetails::DirectDebitMandate(m) => InstrumentDisplay {
                mandate_reference: Some(m.reference.as_str().to_string()),
                scheme: Some(m.scheme),
                signed_date: Some(format_date(m.signed_date)),
                ..iban_display(&m.iban)
            },
            InstrumentDetails::Reward => InstrumentDisplay::default(),
            InstrumentDetails::Wallet(w) => {
                InstrumentDisplay { wallet_provider: Some(w.provider.clone()), ..Default::default() }
            }
        }
    }
}

fn iban_display(iban: &Iban) -> InstrumentDisplay {
    InstrumentDisplay {
        last4: Some(iban.last4().to_string()),
        masked_iban: Some(iban.masked()),
        country: Some(iban.country().to_string()),
        ..Default::default()
    }
}

/// Prefixes a problem's `field` with `details.`.
fn prefixed(mut p: Problem) -> Problem {
    for (k, v) in p.details.iter_mut() {
        if k == "field" {
            *v = format!("details.{v}");
        }
    }
    p
}

/// Case-insensitive access to the `details` object, collecting problems.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    problems: Vec<Problem>,
}

impl<'a> Fields<'a> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// The value of `name` (case-insensitive, trimmed names; `null` = absent).
    fn raw(&self, name: &str) -> Option<&'a Value> {
        self.obj.iter().find(|(k, v)| k.trim().eq_ignore_ascii_case(name) && !v.is_null()).map(|(_, v)| v)
    }

    /// [`Fields::raw`], pushing `FIELD_REQUIRED` when absent.
    fn raw_required(&mut self, name: &'static str) -> Option<&'a Value> {
        let value = self.raw(name);
        if value.is_none() {
            self.push(Problem::invalid_field("FIELD_REQUIRED", format!("details.{name}"), "{field} is required."));
        }
        value
    }

    /// Parses a string field; absent (or blank) → `FIELD_REQUIRED`.
    fn required<T>(&mut self, name: &'static str, parse: impl FnOnce(&str, &str) -> Result<T, Problem>) -> Option<T> {
        match self.optional(name, parse) {
            Some(v) => v,
            None => {
                self.push(Problem::invalid_field("FIELD_REQUIRED", format!("details.{name}"), "{field} is required."));
                None
            }
        }
    }

    /// Parses a string field: `None` when absent or blank, `Some(None)` when present but bad.
    fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str, &str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        let field = format!("details.{name}");
        let value = self.raw(name)?;
        let text = match value {
            Value::String(s) if s.trim().is_empty() => return None,
            Value::String(s) => s.as_str(),
            // Non-strings get the parser's own problem for an empty input.
            _ => "",
        };
        match parse(text, &field) {
            Ok(v) => Some(Some(v)),
            Err(e) => {
                self.push(e);
                Some(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::{date, datetime};
    use InstrumentState::*;

    const NOW: OffsetDateTime = datetime!(2026-05-15 12:00 UTC);

    /// SPEC §0, written out pair by pair.
    const ALLOWED: &[(InstrumentState, InstrumentState)] = &[
        (Active, Inactive),
        (Inactive, Active),
        (Active, Locked),
        (Active, Closed),
        (Inactive, Closed),
        (Locked, Closed),
    ];

    fn codes(r: Result<InstrumentDetails, Problems>) -> Vec<(String, String)> {
        r.unwrap_err()
            .0
            .into_iter()
            .map(|p| {
                let field = p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.clone()).unwrap_or_default();
                (p.code.to_string(), field)
            })
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn words() {
        assert_eq!(InstrumentType::parse("bank-account", "type"), Ok(InstrumentType::BankAccount));
        assert_eq!(InstrumentType::parse("direct_debit_mandate", "type"), Ok(InstrumentType::DirectDebitMandate));
        assert_eq!(InstrumentType::parse("reward", "type"), Ok(InstrumentType::Reward));
        assert_eq!(InstrumentType::parse("wallet", "type"), Ok(InstrumentType::Wallet));
        assert_eq!(InstrumentType::parse("VOUCHER", "type").unwrap_err().code, "INVALID_FINANCIAL_INSTRUMENT_TYPE");
        assert_eq!(InstrumentState::parse("inactive", "state"), Ok(Inactive));
        assert_eq!(InstrumentState::parse("DELETED", "state").unwrap_err().code, "INVALID_STATE");
        assert_eq!(StateReason::parse("fraud_suspected", "reason"), Ok(StateReason::FraudSuspected));
        assert_eq!(StateReason::parse("BORED", "reason").unwrap_err().code, "INVALID_STATE_REASON");
        assert_eq!(serde_json::to_string(&StateReason::MandateCancelled).unwrap(), "\"MANDATE_CANCELLED\"");
        assert_eq!(InstrumentState::INITIAL, Active);
    }

    #[test]
    fn wallets_and_billing_addresses() {
        let wallet = InstrumentDetails::parse(
            InstrumentType::Wallet,
            &json!({ "provider": "paypal", "payerId": "SBX-PAYER-1" }),
            NOW,
        )
        .unwrap();
        assert_eq!(
            wallet,
            InstrumentDetails::Wallet(WalletDetails { provider: "PAYPAL".into(), payer_id: "SBX-PAYER-1".into() })
        );
        assert_eq!(serde_json::to_value(wallet.display()).unwrap(), json!({ "walletProvider": "PAYPAL" }));
        assert_eq!(
            codes(InstrumentDetails::parse(
                InstrumentType::Wallet,
                &json!({ "provider": "VENMO", "payerId": "a b" }),
                NOW
            )),
            pairs(&[("INVALID_WALLET_PROVIDER", "details.provider"), ("INVALID_PAYER_ID", "details.payerId")])
        );

        let card = |billing: Value| {
            InstrumentDetails::parse(
                InstrumentType::Card,
                &json!({ "cardNumber": "4242424242424242", "expiryMonth": 12, "expiryYear": 2030,
                         "billingAddress": billing }),
                NOW,
            )
        };
        let full = json!({ "firstName": "Jane", "lastName": "Doe", "streetAddress": "1 High St",
            "locality": "London", "postCode": "EC1A 1AA", "country": "uk", "company": " " });
        let InstrumentDetails::Card(c) = card(full).unwrap() else { panic!("a card") };
        let b = c.billing_address.unwrap();
        assert_eq!((b.country, b.company.as_deref(), b.region.as_deref()), (crate::Country::GB, None, None));
        assert_eq!(b.to_json()["country"], "GB");
        assert_eq!(
            codes(card(json!({ "firstName": "x".repeat(101), "country": "XX", "locality": "\u{7}" }))),
            pairs(&[
                ("FIELD_TOO_LONG", "details.billingAddress.firstName"),
                ("FIELD_REQUIRED", "details.billingAddress.lastName"),
                ("FIELD_REQUIRED", "details.billingAddress.streetAddress"),
                ("FIELD_TOO_LONG", "details.billingAddress.locality"),
                ("FIELD_REQUIRED", "details.billingAddress.postCode"),
                ("INVALID_COUNTRY", "details.billingAddress.country"),
            ])
        );
    }

    #[test]
    fn exactly_the_spec_transitions() {
        for &from in InstrumentState::ALL {
            for &to in InstrumentState::ALL {
                let allowed = ALLOWED.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), allowed, "{from} -> {to}");
                let r = transition(from, to, Some(StateReason::CustomerRequest));
                match r {
                    Ok(change) => assert!(allowed && change.state == to),
                    Err(p) => {
                        assert!(!allowed, "{from} -> {to}");
                        assert_eq!(p.code, "INVALID_STATE_TRANSITION");
                        assert_eq!(
                            p.render(&[]),
                            format!("A financial instrument cannot move from [{from}] to [{to}].")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn reasons() {
        let p = transition(Active, Inactive, None).unwrap_err();
        assert_eq!((p.code.as_ref(), p.details[0].1.as_str()), ("STATE_REASON_REQUIRED", "reason"));
        assert_eq!(
            Active.transition_to(Inactive, Some(StateReason::Expired)),
            Ok(StateChange { state: Inactive, reason: Some(StateReason::Expired) })
        );
        assert_eq!(
            transition(Inactive, Active, Some(StateReason::Expired)),
            Ok(StateChange { state: Active, reason: None })
        );
        assert_eq!(transition(Active, Locked, None), Ok(StateChange { state: Locked, reason: None }));
        assert_eq!(
            transition(Locked, Closed, Some(StateReason::CustomerRequest)),
            Ok(StateChange { state: Closed, reason: Some(StateReason::CustomerRequest) })
        );
        // The transition check comes first.
        assert_eq!(transition(Closed, Inactive, None).unwrap_err().code, "INVALID_STATE_TRANSITION");
    }

    #[test]
    fn only_active_is_usable() {
        assert!(ensure_active(Active).is_ok());
        for s in [Inactive, Locked, Closed] {
            let p = ensure_active(s).unwrap_err();
            assert_eq!(p.code, "FINANCIAL_INSTRUMENT_NOT_ACTIVE");
            assert_eq!(p.details, vec![("state".into(), s.as_str().to_string())]);
        }
    }

    #[test]
    fn holder_names() {
        assert_eq!(HolderName::parse("  Jane Doe ", "name").unwrap().as_str(), "Jane Doe");
        assert!(HolderName::parse(&"x".repeat(140), "name").is_ok());
        for bad in ["", "  ", "a\tb", "4242 4242 4242 4242", &"x".repeat(141)] {
            let p = HolderName::parse(bad, "name").unwrap_err();
            assert_eq!(p.code, "INVALID_HOLDER_NAME", "{bad:?}");
            assert!(!p.render(&[]).contains("4242"));
        }
    }

    #[test]
    fn card_details_and_display() {
        let d = InstrumentDetails::parse(
            InstrumentType::Card,
            &json!({ "CardNumber": "4242 4242 4242 4242", "expiryMonth": 12, "ExpiryYear": "2030", "cardholderName": "Jane Doe" }),
            NOW,
        )
        .unwrap();
        assert_eq!(d.kind(), InstrumentType::Card);
        let InstrumentDetails::Card(card) = &d else { panic!("{d:?}") };
        assert_eq!(card.number.expose(), "4242424242424242");
        assert_eq!(card.holder_name.as_ref().map(HolderName::as_str), Some("Jane Doe"));
        assert_eq!(
            serde_json::to_value(d.display()).unwrap(),
            json!({ "brand": "VISA", "last4": "4242", "expiryMonth": 12, "expiryYear": 2030 })
        );
        assert!(!format!("{d:?}").contains("424242424242"));

        let amex = InstrumentDetails::parse(
            InstrumentType::Card,
            &json!({ "cardNumber": "378282246310005", "expiryMonth": "1", "expiryYear": "31", "cardholderName": "" }),
            NOW,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(amex.display()).unwrap(),
            json!({ "brand": "AMERICAN-EXPRESS", "last4": "0005", "expiryMonth": 1, "expiryYear": 2031 })
        );
    }

    #[test]
    fn card_problems_are_collected() {
        assert_eq!(
            codes(InstrumentDetails::parse(InstrumentType::Card, &json!({}), NOW)),
            pairs(&[
                ("FIELD_REQUIRED", "details.cardNumber"),
                ("FIELD_REQUIRED", "details.expiryMonth"),
                ("FIELD_REQUIRED", "details.expiryYear"),
            ])
        );
        assert_eq!(
            codes(InstrumentDetails::parse(
                InstrumentType::Card,
                &json!({ "cardNumber": "4242424242424241", "expiryMonth": 4, "expiryYear": 2026 }),
                NOW
            )),
            pairs(&[("INVALID_CARD_NUMBER", "details.cardNumber"), ("CARD_EXPIRED", "details.expiryMonth")])
        );
        assert_eq!(
            codes(InstrumentDetails::parse(
                InstrumentType::Card,
                &json!({ "cardNumber": 4242424242424242u64, "expiryMonth": 13, "expiryYear": 2030, "cardholderName": "\u{7}" }),
                NOW
            )),
            pairs(&[
                ("INVALID_CARD_NUMBER", "details.cardNumber"),
                ("INVALID_EXPIRY", "details.expiryMonth"),
                ("INVALID_HOLDER_NAME", "details.cardholderName"),
            ])
        );
        assert_eq!(
            codes(InstrumentDetails::parse(InstrumentType::Card, &json!("4242424242424242"), NOW)),
            pairs(&[("INVALID_FINANCIAL_INSTRUMENT_DETAILS", "details")])
        );
    }

    #[test]
    fn bank_accounts() {
        let iban = InstrumentDetails::parse(
            InstrumentType::BankAccount,
            &json!({ "accountHolderName": "Jane Doe", "iban": "DE89 3704 0044 0532 0130 00" }),
            NOW,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(iban.display()).unwrap(),
            json!({ "last4": "3000", "maskedIban": "DE89 **** **** **** 3000", "country": "DE" })
        );
        let uk = InstrumentDetails::parse(
            InstrumentType::BankAccount,
            &json!({ "AccountHolderName": "Jane Doe", "accountNumber": "12345678", "sortCode": "12-34-56" }),
            NOW,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(uk.display()).unwrap(),
            json!({ "last4": "5678", "maskedAccountNumber": "****5678", "sortCode": "12-34-56" })
        );
        assert_eq!(
            codes(InstrumentDetails::parse(InstrumentType::BankAccount, &json!({}), NOW)),
            pairs(&[("FIELD_REQUIRED", "details.accountHolderName"), ("FIELD_REQUIRED", "details.iban")])
        );
        assert_eq!(
            codes(InstrumentDetails::parse(
                InstrumentType::BankAccount,
                &json!({ "accountHolderName": "J", "accountNumber": "1234" }),
                NOW
            )),
            pairs(&[("INVALID_ACCOUNT_NUMBER", "details.accountNumber"), ("FIELD_REQUIRED", "details.sortCode")])
        );
        assert_eq!(
            codes(InstrumentDetails::parse(
                InstrumentType::BankAccount,
                &json!({ "accountHolderName": "J", "iban": "GB82WEST12345698765432", "sortCode": "12-34-56" }),
                NOW
            )),
            pairs(&[("INVALID_BANK_ACCOUNT", "details")])
        );
        assert_eq!(
            codes(InstrumentDetails::parse(
                InstrumentType::BankAccount,
                &json!({ "accountHolderName": "J", "iban": "GB82WEST12345698765433", "accountNumber": null }),
                NOW
            )),
            pairs(&[("INVALID_IBAN", "details.iban")])
        );
    }

    #[test]
    fn phones_mandates_and_rewards() {
        let phone =
            InstrumentDetails::parse(InstrumentType::MobilePhone, &json!({ "phoneNumber": "+447700900123" }), NOW)
                .unwrap();
        assert_eq!(serde_json::to_value(phone.display()).unwrap(), json!({ "maskedPhoneNumber": "+44*******123" }));
        assert_eq!(
            codes(InstrumentDetails::parse(InstrumentType::MobilePhone, &json!({ "phoneNumber": "07700900123" }), NOW)),
            pairs(&[("INVALID_PHONE_NUMBER", "details.phoneNumber")])
        );

        let mandate = InstrumentDetails::parse(
            InstrumentType::DirectDebitMandate,
            &json!({
                "mandateReference": "MD-0001", "accountHolderName": "Jane Doe",
                "iban": "NL91ABNA0417164300", "signedDate": "2026-01-02", "scheme": "sepa"
            }),
            NOW,
        )
        .unwrap();
        let InstrumentDetails::DirectDebitMandate(m) = &mandate else { panic!() };
        assert_eq!((m.signed_date, m.scheme), (date!(2026 - 01 - 02), MandateScheme::Sepa));
        assert_eq!(
            serde_json::to_value(mandate.display()).unwrap(),
            json!({
                "last4": "4300", "maskedIban": "NL91 **** **** **** 4300", "country": "NL",
                "mandateReference": "MD-0001", "scheme": "SEPA", "signedDate": "2026-01-02"
            })
        );
        assert_eq!(
            codes(InstrumentDetails::parse(
                InstrumentType::DirectDebitMandate,
                &json!({ "mandateReference": "", "iban": "NL91", "signedDate": "02/01/2026", "scheme": "ACH" }),
                NOW
            )),
            pairs(&[
                ("FIELD_REQUIRED", "details.mandateReference"),
                ("FIELD_REQUIRED", "details.accountHolderName"),
                ("INVALID_IBAN", "details.iban"),
                ("INVALID_DATE", "details.signedDate"),
                ("INVALID_MANDATE_SCHEME", "details.scheme"),
            ])
        );

        assert_eq!(
            InstrumentDetails::parse(InstrumentType::Reward, &json!("anything"), NOW),
            Ok(InstrumentDetails::Reward)
        );
        assert_eq!(serde_json::to_value(InstrumentDetails::Reward.display()).unwrap(), json!({}));
    }

    fn state() -> impl Strategy<Value = InstrumentState> {
        prop::sample::select(InstrumentState::ALL.to_vec())
    }

    fn reason() -> impl Strategy<Value = Option<StateReason>> {
        prop::option::of(prop::sample::select(StateReason::ALL.to_vec()))
    }

    proptest! {
        #[test]
        fn requested_changes_follow_the_table_or_change_nothing(
            requests in prop::collection::vec((state(), reason()), 0..40),
        ) {
            let mut current = StateChange { state: InstrumentState::INITIAL, reason: None };
            for (to, reason) in requests {
                let before = current;
                match transition(before.state, to, reason) {
                    Ok(next) => {
                        prop_assert!(ALLOWED.contains(&(before.state, to)));
                        prop_assert_eq!(next.state, to);
                        prop_assert!(to != Inactive || next.reason.is_some());
                        prop_assert!(to != Active || next.reason.is_none());
                        current = next;
                    }
                    Err(p) => {
                        let refused_move = !ALLOWED.contains(&(before.state, to));
                        let missing_reason = to == Inactive && reason.is_none();
                        prop_assert!(refused_move || missing_reason);
                        prop_assert_eq!(
                            p.code.as_ref(),
                            if refused_move { "INVALID_STATE_TRANSITION" } else { "STATE_REASON_REQUIRED" }
                        );
                    }
                }
                if before.state.is_terminal() {
                    prop_assert_eq!(current, before);
                }
            }
        }

        #[test]
        fn closed_is_reachable_from_every_other_state_and_final(from in state(), to in state(), reason in reason()) {
            prop_assert_eq!(from.can_transition_to(Closed), from != Closed);
            if from == Closed {
                prop_assert!(transition(from, to, reason).is_err());
            }
            prop_assert_eq!(from.is_usable(), from == Active);
        }
    }
}
