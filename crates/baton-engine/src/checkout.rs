//! Hosted checkout (SPEC §4.11): checkout tokens and the grants that mint them.
//!
//! A checkout token is the customer's single-use permission to pay one DEBIT
//! instruction. Its claims (tenant, order, instruction, amount, currency, country,
//! scheme, expiry, a unique `jti`, the optional callbacks and pay-by-link id) are
//! serialised as JSON and sealed with AES-256-GCM under
//! `MasterKey::derive("checkout-token")` with a random 96-bit nonce; the token is the
//! sealed bytes in base64url without padding. It is opaque to its holder: a changed
//! byte, a token sealed under another master key or anything else that is not one of
//! ours does not open ([`TokenError::Invalid`]); a token past its `exp` opens but is
//! [`TokenError::Expired`]. Single use is enforced where the token is opened: the
//! checkout session claims the `jti` in the database. A token also ends early
//! ([`Ended`]) when its pay-by-link is cancelled or expires, or its instruction is
//! voided: that truth is in the database, read when it is opened and on its pages, and
//! checked again in the transactions that attach the instrument and start the payment.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use baton_domain::{Direction, Environment, InstructionStatus, Problem};
use baton_vault::MasterKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::internal;
use crate::{Engine, EngineResult};

mod pay;
mod session;

pub use pay::{BankInput, CardInput, CheckoutAction, PayOutcome, Unavailable, MAX_CARD_NUMBER_INPUT};
pub use session::{
    is_session_id, parse_origin, CheckoutSession, CheckoutView, Ended, OpenRefusal, CARD_METHODS, LANGUAGES,
    SESSION_RETENTION_MS,
};

/// The label of the key checkout tokens are sealed under (`MasterKey::derive`).
pub const TOKEN_KEY_LABEL: &str = "checkout-token";
/// The label of the key checkout forms' CSRF tokens are made with.
const CSRF_KEY_LABEL: &str = "checkout-csrf";
/// Associated data of every checkout token (the format's purpose and version).
const TOKEN_AAD: &[u8] = b"baton:checkout-token:v1";
/// Bounds and default of a grant's `expirySeconds` (SPEC §4.11).
pub const MIN_EXPIRY_SECONDS: i64 = 60;
pub const MAX_EXPIRY_SECONDS: i64 = 2_592_000;
pub const DEFAULT_EXPIRY_SECONDS: i64 = 3600;
/// Longer input is not a token of ours (a sealed claim set is well under 2 KiB).
pub const MAX_TOKEN_LEN: usize = 8192;
/// The longest callback URL accepted.
pub const MAX_CALLBACK_URL_LEN: usize = 2048;

/// Where the hosted page sends the customer after the payment (SPEC §4.11 "Redirects").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Callbacks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
}

impl Callbacks {
    /// No URL at all.
    pub fn is_empty(&self) -> bool {
        self.success.is_none() && self.failed.is_none() && self.cancelled.is_none()
    }

    /// The origins (`https://shop.example`) of the URLs given.
    pub fn origins(&self) -> Vec<String> {
        let mut out: Vec<String> = [&self.success, &self.failed, &self.cancelled]
            .into_iter()
            .flatten()
            .filter_map(|u| url::Url::parse(u).ok())
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What a checkout token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutClaims {
    pub tenant_id: String,
    pub order_ref: String,
    pub instruction_ref: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    pub country: String,
    pub scheme_id: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The token's unique id (UUID v4): what single use is enforced on.
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<Callbacks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_by_link_id: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this deployment: garbage, tampered, or sealed under another key.
    Invalid,
    /// A genuine token past its `exp`; its claims are given so that the page can still
    /// honour the `failed` callback.
    Expired(Box<CheckoutClaims>),
}

/// Seals `claims` into a token (base64url, no padding).
pub fn seal_token(master_key: &MasterKey, claims: &CheckoutClaims) -> String {
    let plain = serde_json::to_vec(claims).expect("claims serialise");
    URL_SAFE_NO_PAD.encode(master_key.purpose_key(TOKEN_KEY_LABEL).seal(&plain, TOKEN_AAD))
}

/// Opens a token sealed by [`seal_token`] under the same master key, as of `now`
/// (Unix seconds).
pub fn open_token(master_key: &MasterKey, token: &str, now: i64) -> Result<CheckoutClaims, TokenError> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Invalid);
    }
    let sealed = URL_SAFE_NO_PAD.decode(token).map_err(|_| TokenError::Invalid)?;
    let plain = master_key.purpose_key(TOKEN_KEY_LABEL).open(&sealed, TOKEN_AAD).map_err(|_| TokenError::Invalid)?;
    let claims: CheckoutClaims = serde_json::from_slice(&plain).map_err(|_| TokenError::Invalid)?;
    if claims.exp <= now {
        return Err(TokenError::Expired(Box::new(claims)));
    }
    Ok(claims)
}

/// `POST /v1/whitelabel-customer/grants`, as parsed by the HTTP layer.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub order_ref: String,
    pub instruction_ref: String,
    /// 60..=2_592_000; [`DEFAULT_EXPIRY_SECONDS`] when the caller sent none.
    pub expires_in_seconds: i64,
    pub callbacks: Option<Callbacks>,
    pub pay_by_link_id: Option<String>,
}

/// A minted checkout token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutGrant {
    pub access_token: String,
    pub expires: OffsetDateTime,
}

/// Statuses from which a DEBIT instruction can still be paid by the customer (a LATE
/// instruction can still be paid through the checkout, SPEC §4.9).
pub const PAYABLE: [InstructionStatus; 3] =
    [InstructionStatus::Incomplete, InstructionStatus::Ready, InstructionStatus::Late];

pub(crate) fn not_updatable(status: InstructionStatus) -> Problem {
    Problem::bad_request("INSTRUCTION_NOT_UPDATABLE")
        .message(
            "Only an INCOMPLETE, READY or LATE instruction can be paid through the checkout; this one is {status}.",
        )
        .detail("status", status.as_str())
}

fn not_a_debit() -> Problem {
    Problem::bad_request("NOT_A_DEBIT_INSTRUCTION")
        .message("Only a collection (DEBIT) instruction can be paid through the checkout.")
}

/// Checks one callback URL: absolute `https` (plain `http` only to a loopback host in
/// a sandbox deployment, for local testing), no credentials, at most
/// [`MAX_CALLBACK_URL_LEN`] characters.
fn check_callback(url: &str, field: &str, environment: Environment) -> Result<String, Problem> {
    let bad = || {
        Problem::invalid_field(
            "INVALID_CALLBACK_URL",
            field.to_string(),
            "{field} must be an absolute https URL of at most {limit} characters.",
        )
        .detail("limit", MAX_CALLBACK_URL_LEN.to_string())
    };
    let url = url.trim();
    if url.len() > MAX_CALLBACK_URL_LEN || url.chars().any(char::is_control) {
        return Err(bad());
    }
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.host().is_none() {
        return Err(bad());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed.to_string()),
        "http" if loopback && environment == Environment::Sandbox => Ok(parsed.to_string()),
        _ => Err(bad()),
    }
}

/// Validates the callbacks (blank URLs count as absent): every problem, with its field.
pub fn check_callbacks(callbacks: &Callbacks, environment: Environment) -> Result<Option<Callbacks>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut one = |value: &Option<String>, field: &str| -> Option<String> {
        let v = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        check_callback(v, field, environment).map_err(|p| problems.push(p)).ok()
    };
    let checked = Callbacks {
        success: one(&callbacks.success, "callbacks.success"),
        failed: one(&callbacks.failed, "callbacks.failed"),
        cancelled: one(&callbacks.cancelled, "callbacks.cancelled"),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok((!checked.is_empty()).then_some(checked))
}

/// `expirySeconds` within 60..=2_592_000, else `400 INVALID_EXPIRY_SECONDS`.
pub fn check_expiry_seconds(seconds: i64) -> Result<i64, Problem> {
    if (MIN_EXPIRY_SECONDS..=MAX_EXPIRY_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(invalid_expiry_seconds())
    }
}

/// `expirySeconds` as requests send it: a number or a numeric string (the documented
/// `"6000"`); absent, `null` or `""` means the default. Checked as `check_expiry_seconds`.
pub fn parse_expiry_seconds(value: Option<&serde_json::Value>) -> Result<i64, Problem> {
    use serde_json::Value;
    let seconds = match value {
        None | Some(Value::Null) => return Ok(DEFAULT_EXPIRY_SECONDS),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(DEFAULT_EXPIRY_SECONDS),
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| invalid_expiry_seconds())?,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(invalid_expiry_seconds)?,
        Some(_) => return Err(invalid_expiry_seconds()),
    };
    check_expiry_seconds(seconds)
}

fn invalid_expiry_seconds() -> Problem {
    Problem::invalid_field(
        "INVALID_EXPIRY_SECONDS",
        "expirySeconds",
        "{field} must be a whole number of seconds from {min} to {max}.",
    )
    .detail("min", MIN_EXPIRY_SECONDS.to_string())
    .detail("max", MAX_EXPIRY_SECONDS.to_string())
}

impl Engine {
    /// Mints a checkout token for a payable DEBIT instruction: `INCOMPLETE`, `READY` or
    /// `LATE` (else `400 INSTRUCTION_NOT_UPDATABLE`), a collection (else
    /// `400 NOT_A_DEBIT_INSTRUCTION`) with an effective scheme (else `400 SCHEME_REQUIRED`).
    /// `expires_in_seconds` outside 60..=2_592_000 is `400 INVALID_EXPIRY_SECONDS`;
    /// a callback that is not https is `400 INVALID_CALLBACK_URL`.
    pub async fn grant_checkout(&self, tenant_id: &str, request: GrantRequest) -> EngineResult<CheckoutGrant> {
        let mut problems = Vec::new();
        let expires_in = check_expiry_seconds(request.expires_in_seconds).map_err(|p| problems.push(p)).ok();
        let callbacks = match &request.callbacks {
            Some(c) => check_callbacks(c, self.environment()).map_err(|p| problems.extend(p)).ok().flatten(),
            None => None,
        };
        if request.order_ref.trim().is_empty() {
            problems.push(Problem::invalid_field("FIELD_REQUIRED", "orderRef", "{field} is required."));
        }
        if request.instruction_ref.trim().is_empty() {
            problems.push(Problem::invalid_field("FIELD_REQUIRED", "instructionRef", "{field} is required."));
        }
        if !problems.is_empty() {
            return Err(problems.into());
        }
        let expires_in = expires_in.expect("checked above");
        let order = self.order_record(tenant_id, request.order_ref.trim()).await?;
        let (instruction, view) = self.instruction_and_view(&order, request.instruction_ref.trim()).await?;
        if instruction.direction != Direction::Debit {
            return Err(not_a_debit().into());
        }
        if !PAYABLE.contains(&instruction.status) {
            return Err(not_updatable(instruction.status).into());
        }
        let scheme_id = view
            .scheme
            .id
            .clone()
            .ok_or_else(|| Problem::bad_request("SCHEME_REQUIRED").message("The instruction has no scheme."))?;
        let now = self.now_utc();
        let exp = now.unix_timestamp() + expires_in;
        let claims = CheckoutClaims {
            tenant_id: tenant_id.to_string(),
            order_ref: order.order_ref.clone(),
            instruction_ref: instruction.instruction_ref.clone(),
            amount: instruction.amount_minor,
            currency: instruction.currency.clone(),
            country: instruction.country.clone(),
            scheme_id,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            callbacks,
            pay_by_link_id: request.pay_by_link_id.clone(),
        };
        let access_token = seal_token(&self.master_key, &claims);
        let expires = OffsetDateTime::from_unix_timestamp(exp).map_err(|e| internal(e.to_string()))?;
        tracing::info!(tenant_id, order_ref = %claims.order_ref, instruction_ref = %claims.instruction_ref,
            jti = %claims.jti, "checkout token granted");
        Ok(CheckoutGrant { access_token, expires })
    }

    /// The CSRF token of a checkout session's forms: HMAC-SHA256 of the session id under
    /// `MasterKey::derive("checkout-csrf")`, base64url.
    pub fn checkout_csrf_token(&self, session_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.master_key.purpose_key(CSRF_KEY_LABEL).mac(session_id.as_bytes()))
    }

    /// Whether `token` is the session's CSRF token (compared in constant time).
    pub fn check_checkout_csrf(&self, session_id: &str, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.checkout_csrf_token(session_id);
        token.len() == expected.len() && bool::from(token.as_bytes().ct_eq(expected.as_bytes()))
    }

    /// Opens a checkout token of this deployment as of the engine's clock (no database
    /// work; single use is enforced when a session claims it).
    pub fn open_checkout_token(&self, token: &str) -> Result<CheckoutClaims, TokenError> {
        open_token(&self.master_key, token, self.now_utc().unix_timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(exp: i64) -> CheckoutClaims {
        CheckoutClaims {
            tenant_id: "t-1".into(),
            order_ref: "O-1".into(),
            instruction_ref: "I-1".into(),
            amount: 4990,
            currency: "EUR".into(),
            country: "DE".into(),
            scheme_id: "s-1".into(),
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            callbacks: Some(Callbacks { success: Some("https://shop.example/ok".into()), ..Default::default() }),
            pay_by_link_id: None,
        }
    }

    #[test]
    fn expiry_seconds_as_number_or_string() {
        assert_eq!(parse_expiry_seconds(None), Ok(3600));
        assert_eq!(parse_expiry_seconds(Some(&serde_json::Value::Null)), Ok(3600));
        assert_eq!(parse_expiry_seconds(Some(&json!(""))), Ok(3600));
        assert_eq!(parse_expiry_seconds(Some(&json!("6000"))), Ok(6000));
        assert_eq!(parse_expiry_seconds(Some(&json!(" 60 "))), Ok(60));
        assert_eq!(parse_expiry_seconds(Some(&json!(120))), Ok(120));
        for bad in [json!("1e3"), json!("abc"), json!(1.5), json!(true), json!([60])] {
            assert_eq!(parse_expiry_seconds(Some(&bad)).unwrap_err().code, "INVALID_EXPIRY_SECONDS", "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip_and_are_opaque() {
        let (key, _) = MasterKey::generate();
        let c = claims(2_000);
        let token = seal_token(&key, &c);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        assert!(!token.contains("O-1") && !URL_SAFE_NO_PAD.decode(&token).unwrap().windows(3).any(|w| w == b"O-1"));
        assert_eq!(open_token(&key, &token, 1_999), Ok(c.clone()));
        // Fresh nonce: the same claims never give the same token.
        assert_ne!(seal_token(&key, &c), token);
    }

    #[test]
    fn expired_tampered_foreign_and_garbage_tokens_are_refused() {
        let (key, _) = MasterKey::generate();
        let c = claims(2_000);
        let token = seal_token(&key, &c);
        assert_eq!(open_token(&key, &token, 2_000), Err(TokenError::Expired(Box::new(c.clone()))));
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            assert_eq!(open_token(&key, &URL_SAFE_NO_PAD.encode(&tampered), 0), Err(TokenError::Invalid), "byte {i}");
        }
        let (other, _) = MasterKey::generate();
        assert_eq!(open_token(&other, &token, 0), Err(TokenError::Invalid));
        // Sealed under the master key itself or another purpose: not a token.
        let plain = serde_json::to_vec(&c).unwrap();
        assert_eq!(open_token(&key, &URL_SAFE_NO_PAD.encode(key.seal(&plain, TOKEN_AAD)), 0), Err(TokenError::Invalid));
        let other_purpose = key.purpose_key("checkout-csrf").seal(&plain, TOKEN_AAD);
        assert_eq!(open_token(&key, &URL_SAFE_NO_PAD.encode(other_purpose), 0), Err(TokenError::Invalid));
        for garbage in ["", "   ", "not a token", "eyJhbGciOiJIUzI1NiJ9.e30.x", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(open_token(&key, garbage, 0), Err(TokenError::Invalid), "{garbage:.20}");
        }
        // Genuine ciphertext of something that is not claims.
        let sealed = key.purpose_key(TOKEN_KEY_LABEL).seal(b"{\"hello\":1}", TOKEN_AAD);
        assert_eq!(open_token(&key, &URL_SAFE_NO_PAD.encode(sealed), 0), Err(TokenError::Invalid));
    }

    #[test]
    fn callbacks_are_https_except_loopback_in_sandbox() {
        let ok = |u: &str, env| check_callback(u, "callbacks.success", env).is_ok();
        assert!(ok("https://shop.example/paid?x=1", Environment::Production));
        assert!(ok("http://127.0.0.1:9000/ok", Environment::Sandbox));
        assert!(ok("http://localhost/ok", Environment::Sandbox));
        assert!(ok("http://[::1]:8080/ok", Environment::Sandbox));
        assert!(!ok("http://127.0.0.1:9000/ok", Environment::Production));
        assert!(!ok("http://shop.example/ok", Environment::Sandbox));
        for bad in ["javascript:alert(1)", "data:text/html,x", "/relative", "ftp://x.example", "https://u:p@x.example/"]
        {
            assert!(!ok(bad, Environment::Sandbox), "{bad}");
        }
        assert!(!ok(&format!("https://x.example/{}", "a".repeat(MAX_CALLBACK_URL_LEN)), Environment::Sandbox));
        let all = Callbacks {
            success: Some(" ".into()),
            failed: Some("http://evil.example".into()),
            cancelled: Some("nope".into()),
        };
        let problems = check_callbacks(&all, Environment::Sandbox).unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.details[0].1.clone()).collect();
        assert_eq!(fields, ["callbacks.failed", "callbacks.cancelled"]);
        assert_eq!(check_callbacks(&Callbacks::default(), Environment::Sandbox), Ok(None));
        let some = Callbacks { success: Some("https://a.example/x".into()), ..Default::default() };
        assert_eq!(check_callbacks(&some, Environment::Sandbox).unwrap().unwrap().origins(), ["https://a.example"]);
    }

    #[test]
    fn expiry_seconds_bounds() {
        assert!(check_expiry_seconds(59).is_err());
        assert_eq!(check_expiry_seconds(60), Ok(60));
        assert_eq!(check_expiry_seconds(2_592_000), Ok(2_592_000));
        assert!(check_expiry_seconds(2_592_001).is_err());
        assert!(check_expiry_seconds(-1).is_err());
    }
}
