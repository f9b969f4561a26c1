//! Checkout sessions: opening a token (single use) and what the hosted page shows.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use baton_domain::{CheckoutStatus, InstructionStatus, PayByLinkStatus, SchemeKind};
use baton_store::{Change, CheckoutSessionRecord, InstructionRecord};

use super::{CheckoutClaims, TokenError, PAYABLE};
use crate::error::internal;
use crate::schemes::OptionsQuery;
use crate::{Engine, EngineResult};

/// How long a session row is kept after it expired (its token is refused as expired
/// from then on anyway).
pub const SESSION_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// The languages of the hosted page; the first is the default.
pub const LANGUAGES: [&str; 2] = ["en-GB", "de-DE"];

/// The card payment methods a collect rule can offer.
pub const CARD_METHODS: [&str; 5] = ["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER", "MAESTRO"];

/// Why a token that has not expired, and every session it opened, can no longer pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The pay-by-link that minted the token was cancelled.
    LinkCancelled,
    /// The pay-by-link that minted the token expired (its tokens may outlive it).
    LinkExpired,
    /// The instruction was voided.
    InstructionVoided,
}

/// Why a token opened no session. Invalid tokens reveal nothing; the others carry the
/// claims so that the page can still honour the token's `failed` callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenRefusal {
    Invalid,
    Expired(Box<CheckoutClaims>),
    AlreadyUsed(Box<CheckoutClaims>),
    Ended(Ended, Box<CheckoutClaims>),
}

impl From<TokenError> for OpenRefusal {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => OpenRefusal::Invalid,
            TokenError::Expired(claims) => OpenRefusal::Expired(claims),
        }
    }
}

/// An opened token: its session and claims.
#[derive(Debug, Clone)]
pub struct CheckoutSession {
    pub record: CheckoutSessionRecord,
    pub claims: CheckoutClaims,
}

impl CheckoutSession {
    /// Whether the session (its token) has expired at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        now_ms >= self.record.expires_at
    }
}

/// Everything the hosted page shows for a session.
#[derive(Debug, Clone)]
pub struct CheckoutView {
    pub session: CheckoutSession,
    pub expired: bool,
    /// The tenant's name.
    pub merchant_name: String,
    /// The instruction's status now (a payment made elsewhere shows as `SETTLED`).
    pub instruction_status: InstructionStatus,
    /// Whether the instruction can still be paid with this token: payable, and with the
    /// amount and currency the token was granted for.
    pub payable: bool,
    /// Set when the token can no longer pay though it has not expired.
    pub ended: Option<Ended>,
    /// The card methods offered (`VISA`, …), in the scheme's order.
    pub card_brands: Vec<String>,
    pub direct_debit: bool,
    pub paypal: bool,
}

impl CheckoutView {
    pub fn offers_anything(&self) -> bool {
        !self.card_brands.is_empty() || self.direct_debit || self.paypal
    }
}

/// What the collect scheme offers for the token's amount, currency and country.
#[derive(Debug, Clone, Default)]
pub(crate) struct Offer {
    pub card_brands: Vec<String>,
    pub direct_debit: bool,
    pub paypal: bool,
}

/// A new session id: 128 random bits, base64url.
fn new_session_id() -> String {
    URL_SAFE_NO_PAD.encode(baton_vault::random_bytes::<16>())
}

/// Whether `id` has the shape of a session id (so that junk never reaches the database).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `https://shop.example` (scheme, host, optional port; nothing else), else `None`.
pub fn parse_origin(origin: &str) -> Option<String> {
    let origin = origin.trim();
    if origin.len() > 255 {
        return None;
    }
    let url = url::Url::parse(origin).ok()?;
    let serialised = url.origin().ascii_serialization();
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    (matches!(url.scheme(), "https" | "http") && bare && url.username().is_empty() && serialised != "null")
        .then_some(serialised)
}

impl Engine {
    /// Opens a checkout token: claims its `jti` in a new session (so a token opens once,
    /// whichever node is asked) and returns the session id. `language` must be one of
    /// [`LANGUAGES`] (others fall back to the default); `parent_origin` is kept only if
    /// it is an origin.
    pub async fn open_checkout(
        &self,
        token: &str,
        language: &str,
        parent_origin: Option<&str>,
    ) -> EngineResult<Result<String, OpenRefusal>> {
        let claims = match self.open_checkout_token(token) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.into())),
        };
        let instruction = self.checkout_instruction(&claims).await?;
        if let Some(ended) = self.checkout_ended(&claims, instruction.status).await? {
            tracing::info!(tenant_id = %claims.tenant_id, jti = %claims.jti, ?ended, "checkout token ended: refused");
            return Ok(Err(OpenRefusal::Ended(ended, Box::new(claims))));
        }
        let now = self.now_ms();
        let language = LANGUAGES.iter().find(|l| l.eq_ignore_ascii_case(language)).unwrap_or(&LANGUAGES[0]);
        let record = CheckoutSessionRecord {
            session_id: new_session_id(),
            jti: claims.jti.clone(),
            tenant_id: claims.tenant_id.clone(),
            order_ref: claims.order_ref.clone(),
            instruction_ref: claims.instruction_ref.clone(),
            claims: serde_json::to_string(&claims).map_err(|e| internal(e.to_string()))?,
            bearer_token: token.trim().to_string(),
            language: language.to_string(),
            parent_origin: parent_origin.and_then(parse_origin),
            status: CheckoutStatus::Open,
            attempts: 0,
            last_failure: None,
            provider_name: None,
            pending_instrument_id: None,
            busy_until: None,
            expires_at: claims.exp * 1000,
            created_at: now,
            updated_at: now,
        };
        if !self.store.create_checkout_session(&record).await? {
            tracing::info!(tenant_id = %claims.tenant_id, jti = %claims.jti, "checkout token opened again: refused");
            return Ok(Err(OpenRefusal::AlreadyUsed(Box::new(claims))));
        }
        tracing::info!(tenant_id = %claims.tenant_id, jti = %claims.jti, "checkout token opened");
        Ok(Ok(record.session_id))
    }

    /// The name of the merchant (tenant) a token pays.
    pub async fn checkout_merchant_name(&self, tenant_id: &str) -> EngineResult<String> {
        Ok(self.store.merchant_name(tenant_id).await?.unwrap_or_default())
    }

    /// The session `session_id` and its token's claims; `None` for an unknown id.
    pub async fn checkout_session(&self, session_id: &str) -> EngineResult<Option<CheckoutSession>> {
        if !is_session_id(session_id) {
            return Ok(None);
        }
        let Some(record) = self.store.checkout_session(session_id).await? else { return Ok(None) };
        let claims: CheckoutClaims = serde_json::from_str(&record.claims)
            .map_err(|e| internal(format!("stored checkout claims do not parse: {e}")))?;
        Ok(Some(CheckoutSession { record, claims }))
    }

    /// What the hosted page shows for the session; `None` for an unknown id.
    pub async fn checkout_view(&self, session_id: &str) -> EngineResult<Option<CheckoutView>> {
        let Some(session) = self.checkout_session(session_id).await? else { return Ok(None) };
        let claims = &session.claims;
        let merchant_name = self.store.merchant_name(&claims.tenant_id).await?.unwrap_or_default();
        let instruction = self.checkout_instruction(claims).await?;
        let payable = PAYABLE.contains(&instruction.status)
            && instruction.amount_minor == claims.amount
            && instruction.currency == claims.currency;
        let ended = self.checkout_ended(claims, instruction.status).await?;
        let offer = if payable && ended.is_none() { self.checkout_offer(claims).await? } else { Offer::default() };
        Ok(Some(CheckoutView {
            expired: session.expired_at(self.now_ms()),
            session,
            merchant_name,
            instruction_status: instruction.status,
            payable,
            ended,
            card_brands: offer.card_brands,
            direct_debit: offer.direct_debit,
            paypal: offer.paypal,
        }))
    }

    /// The instruction a token pays, as it stands now.
    async fn checkout_instruction(&self, claims: &CheckoutClaims) -> EngineResult<InstructionRecord> {
        let order = self.order_record(&claims.tenant_id, &claims.order_ref).await?;
        self.store
            .instruction(&claims.tenant_id, &order.order_id, &claims.instruction_ref)
            .await?
            .ok_or_else(|| internal("the instruction of a checkout token is gone".into()))
    }

    /// Why the token can no longer pay though it has not expired (its instruction
    /// `status` as just read): its pay-by-link was cancelled or expired, or the
    /// instruction was voided. `None` once the instruction is paid: the page says that
    /// instead. Read from the database, so every node answers alike; the start of a
    /// payment checks the link again in its own transaction ([`Self::checkout_guards`]).
    pub(crate) async fn checkout_ended(
        &self,
        claims: &CheckoutClaims,
        status: InstructionStatus,
    ) -> EngineResult<Option<Ended>> {
        if status == InstructionStatus::Settled {
            return Ok(None);
        }
        if let Some(id) = &claims.pay_by_link_id {
            let link = self.store.pay_by_link(&claims.tenant_id, id).await?.map(|r| r.link);
            match link {
                // Links are never deleted: one that is not there cannot be paid.
                None => return Ok(Some(Ended::LinkCancelled)),
                Some(l) if l.status == PayByLinkStatus::Cancelled => return Ok(Some(Ended::LinkCancelled)),
                Some(l) if l.status == PayByLinkStatus::Expired => return Ok(Some(Ended::LinkExpired)),
                // Past its expiry before the worker marked it.
                Some(l) if l.status.is_live() && l.expires_at <= self.now_ms() => return Ok(Some(Ended::LinkExpired)),
                Some(_) => {}
            }
        }
        Ok((status == InstructionStatus::Void).then_some(Ended::InstructionVoided))
    }

    /// What must still hold in the transactions that attach the customer's instrument
    /// and start the payment: the pay-by-link the token came from is live.
    pub(crate) fn checkout_guards(claims: &CheckoutClaims) -> Vec<Change> {
        claims
            .pay_by_link_id
            .iter()
            .map(|id| Change::PayByLinkLive { tenant_id: claims.tenant_id.clone(), pay_by_link_id: id.clone() })
            .collect()
    }

    /// The methods the token's collect scheme offers for its amount, currency and
    /// country (SPEC §4.6): nothing when no rule matches or nothing is published.
    pub(crate) async fn checkout_offer(&self, claims: &CheckoutClaims) -> EngineResult<Offer> {
        let currency: baton_domain::Currency =
            claims.currency.parse().map_err(|_| internal(format!("claims currency {}", claims.currency)))?;
        let amount = baton_domain::Amount { minor: claims.amount, currency }.to_decimal();
        let query = OptionsQuery {
            amount: Some(amount.to_string()),
            currency: Some(claims.currency.clone()),
            country: Some(claims.country.clone()),
            match_type: None,
        };
        let options = match self.scheme_options(&claims.tenant_id, SchemeKind::Collect, &claims.scheme_id, &query).await
        {
            Ok(o) => o,
            // Unpublished or deleted meanwhile: nothing to offer.
            Err(crate::EngineError::Rejected(_)) => return Ok(Offer::default()),
            Err(e) => return Err(e),
        };
        let mut offer = Offer::default();
        for m in &options.outcome.payment_methods {
            let id = m.payment_method_id.to_ascii_uppercase();
            if CARD_METHODS.contains(&id.as_str()) {
                if !offer.card_brands.contains(&id) {
                    offer.card_brands.push(id);
                }
            } else if id == "DIRECT_DEBIT" {
                offer.direct_debit = true;
            } else if id == "PAYPAL" {
                offer.paypal = true;
            }
        }
        Ok(offer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_and_origins() {
        let id = new_session_id();
        assert!(is_session_id(&id), "{id}");
        assert_ne!(new_session_id(), id);
        assert!(!is_session_id("short") && !is_session_id(&format!("{}=", &id[..21])));
        assert!(!is_session_id("../../../../etc/passwd00"));

        assert_eq!(parse_origin("https://shop.example").as_deref(), Some("https://shop.example"));
        assert_eq!(parse_origin("https://shop.example/").as_deref(), Some("https://shop.example"));
        assert_eq!(parse_origin("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(parse_origin("HTTPS://Shop.Example:443").as_deref(), Some("https://shop.example"));
        for bad in ["", "null", "shop.example", "https://shop.example/path", "javascript:alert(1)", "data:,x"] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }
}
