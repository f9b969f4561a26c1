//! Storage of hosted checkout sessions (SPEC §4.11). The SQL lives in `portable_checkout.rs`.
//!
//! A session is created when a checkout token is opened; the token's `jti` is unique,
//! so a token opens at most one session (single use), whichever node is asked. A
//! submission leases its session (`busy_until`), so that one session runs one payment
//! attempt at a time, and records the attempt's result when it releases it.

use async_trait::async_trait;
use baton_domain::CheckoutStatus;

use crate::StoreResult;

/// An opened checkout token.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckoutSessionRecord {
    /// 128 random bits, base64url: the customer's capability for the session's pages.
    pub session_id: String,
    /// The token's unique id.
    pub jti: String,
    pub tenant_id: String,
    pub order_ref: String,
    pub instruction_ref: String,
    /// The token's claims as JSON text.
    pub claims: String,
    /// The token itself, reported back to the merchant with the outcome.
    pub bearer_token: String,
    /// `en-GB` or `de-DE`.
    pub language: String,
    /// The origin of the page embedding the checkout, for its messages.
    pub parent_origin: Option<String>,
    pub status: CheckoutStatus,
    /// Payment attempts submitted in this session.
    pub attempts: i64,
    /// Why the last attempt failed (a decline code), until the next one.
    pub last_failure: Option<String>,
    /// The app of the last attempt.
    pub provider_name: Option<String>,
    /// The instrument waiting for the customer's authentication (`AUTHENTICATING`).
    pub pending_instrument_id: Option<String>,
    /// Leased by a submission until then.
    pub busy_until: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

// The token and the session id are capabilities: never in a log line.
impl std::fmt::Debug for CheckoutSessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutSessionRecord")
            .field("jti", &self.jti)
            .field("tenant_id", &self.tenant_id)
            .field("order_ref", &self.order_ref)
            .field("instruction_ref", &self.instruction_ref)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What a finished submission records on its session (and releases the lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSessionUpdate {
    pub status: CheckoutStatus,
    pub last_failure: Option<String>,
    pub provider_name: Option<String>,
    pub pending_instrument_id: Option<String>,
    /// Whether the submission was a payment attempt (counted in `attempts`).
    pub attempted: bool,
}

#[async_trait]
pub trait CheckoutStore: Send + Sync + 'static {
    /// Inserts a session; `false` (nothing written) when a session already holds its
    /// `jti` (the token was opened before).
    async fn create_checkout_session(&self, session: &CheckoutSessionRecord) -> StoreResult<bool>;
    async fn checkout_session(&self, session_id: &str) -> StoreResult<Option<CheckoutSessionRecord>>;
    /// Leases the session until `until` if it is in one of `statuses`, unexpired at
    /// `now` and not leased by another submission; returns it as leased, else `None`.
    async fn lease_checkout_session(
        &self,
        session_id: &str,
        statuses: &[CheckoutStatus],
        now: i64,
        until: i64,
    ) -> StoreResult<Option<CheckoutSessionRecord>>;
    /// Records a submission's result and releases the lease taken at `leased_until`;
    /// `false` if the lease was lost (it lapsed and another submission took it).
    async fn finish_checkout_session(
        &self,
        session_id: &str,
        leased_until: i64,
        update: &CheckoutSessionUpdate,
        now: i64,
    ) -> StoreResult<bool>;
    /// The name of a tenant (the merchant the customer pays), whichever account owns it.
    async fn merchant_name(&self, tenant_id: &str) -> StoreResult<Option<String>>;
    /// Deletes sessions that expired before `before`; returns how many.
    async fn purge_checkout_sessions(&self, before: i64) -> StoreResult<u64>;
}
