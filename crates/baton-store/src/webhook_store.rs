//! Storage of webhooks (SPEC §5.1): endpoints, deliveries and their attempts.
//!
//! The outbox (`events`) is fanned out into one delivery per matching endpoint by
//! [`WebhookStore::dispatch_events`], in the transaction that marks the events
//! dispatched. Workers then lease due deliveries with [`WebhookStore::claim_deliveries`]
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL), POST them and record each attempt. The SQL
//! lives in `portable_webhooks.rs`.

use async_trait::async_trait;
use baton_domain::EventType;

use crate::{EventRecord, StoreResult};

/// A receiver of events.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    pub endpoint_id: String,
    pub account_id: String,
    /// `None`: an account-level endpoint (account events only).
    pub tenant_id: Option<String>,
    pub url: String,
    /// Wire names of the event types it wants, or `["*"]` for all.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// The signing secret sealed under the master key.
    pub secret_sealed: Vec<u8>,
    /// The secret before the last rotation, still signing until it expires.
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<i64>,
    /// When the current run of failed attempts began (`None` after a success).
    pub failing_since: Option<i64>,
    /// Why the endpoint was disabled by Baton (`None` when enabled or disabled by a user).
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for WebhookEndpointRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointRecord")
            .field("endpoint_id", &self.endpoint_id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("enabled", &self.enabled)
            .field("secret_sealed", &"[sealed]")
            .finish_non_exhaustive()
    }
}

impl WebhookEndpointRecord {
    /// Whether the endpoint takes this event: its owner matches (a tenant's events go to
    /// that tenant's endpoints, account events to the account's) and its filter names the
    /// type or `*`. Pings are only ever addressed to one endpoint, never fanned out.
    pub fn wants(&self, event: &EventRecord) -> bool {
        if !self.enabled || event.event_type == EventType::Ping {
            return false;
        }
        if event.account_id.as_deref().is_some_and(|a| a != self.account_id) {
            return false;
        }
        let owner_matches = if event.event_type.is_account_event() {
            self.tenant_id.is_none()
        } else {
            self.tenant_id.is_some() && self.tenant_id == event.tenant_id
        };
        owner_matches && self.event_types.iter().any(|t| t == "*" || t == event.event_type.as_str())
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not tried yet.
    Pending,
    /// Tried and failed; tried again at `next_attempt_at`.
    Failed,
    Succeeded,
    /// Given up after the retry window.
    Dead,
}

impl DeliveryStatus {
    pub const ALL: &'static [DeliveryStatus] =
        &[DeliveryStatus::Pending, DeliveryStatus::Failed, DeliveryStatus::Succeeded, DeliveryStatus::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::Succeeded => "SUCCEEDED",
            DeliveryStatus::Dead => "DEAD",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// One event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub event_seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub ordering_key: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub event_created_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// One try at POSTing a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttemptRecord {
    pub delivery_id: String,
    /// 1, 2, …
    pub attempt: i64,
    /// `None` when no HTTP answer came (refused, timed out, reset).
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    /// The first bytes of the response body (capped by the engine).
    pub response: Option<String>,
    pub error: Option<String>,
    pub attempted_at: i64,
}

/// A claimed delivery with what is needed to send it: the stored event and the endpoint.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: DeliveryRecord,
    pub event: EventRecord,
    pub endpoint: WebhookEndpointRecord,
}

/// What happened to one attempt, as [`WebhookStore::record_attempt`] writes it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: DeliveryAttemptRecord,
    /// The delivery's new status: `Succeeded`, `Failed` (retry at `next_attempt_at`) or `Dead`.
    pub status: DeliveryStatus,
    pub next_attempt_at: i64,
    /// Disable the endpoint (it failed for the whole retry window) and write this
    /// account event in the same transaction.
    pub disable_endpoint: Option<EventRecord>,
}

/// Filters of a deliveries listing.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub event_type: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// Created at or after (ms).
    pub from: Option<i64>,
    /// Created before (ms).
    pub to: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpointRecord) -> StoreResult<()>;
    /// The owner's endpoints (`tenant_id` `None`: the account-level ones), oldest first.
    async fn webhook_endpoints(
        &self,
        account_id: &str,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<WebhookEndpointRecord>>;
    async fn webhook_endpoint(
        &self,
        account_id: &str,
        tenant_id: Option<&str>,
        endpoint_id: &str,
    ) -> StoreResult<Option<WebhookEndpointRecord>>;
    /// Saves url, event types, description, enabled, secrets and failure state;
    /// `false` if the endpoint is absent.
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpointRecord) -> StoreResult<bool>;
    /// Deletes an endpoint with its deliveries; `false` if absent.
    async fn delete_webhook_endpoint(
        &self,
        account_id: &str,
        tenant_id: Option<&str>,
        endpoint_id: &str,
    ) -> StoreResult<bool>;

    /// Fans out up to `limit` undispatched events, oldest first: one delivery per
    /// enabled endpoint that wants it (due at `now`), and the events marked dispatched,
    /// in one transaction. Events another node is fanning out are skipped. Returns
    /// (events dispatched, deliveries created).
    async fn dispatch_events(
        &self,
        now: i64,
        limit: u32,
        new_id: &(dyn Fn() -> String + Send + Sync),
    ) -> StoreResult<(usize, usize)>;

    /// Writes an event that goes to one endpoint only (a `ping`), already dispatched,
    /// with its delivery, due at once.
    async fn insert_direct_delivery(
        &self,
        event: &EventRecord,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> StoreResult<()>;

    /// Leases up to `limit` due deliveries of enabled endpoints to `claimant` until
    /// `locked_until`. A delivery waits while an earlier event with the same ordering key
    /// to the same endpoint is undelivered (not yet tried, or failing and to be retried)
    /// or not yet fanned out. Safe across nodes: no delivery is leased twice at once; a
    /// lease is free once it runs out or its node is dead.
    async fn claim_deliveries(
        &self,
        now: i64,
        locked_until: i64,
        limit: u32,
        claimant: crate::Claimant<'_>,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// Records an attempt and the delivery's new state, if the delivery is still leased
    /// as `locked_until` (a worker whose lease expired and was retaken records its
    /// attempt but leaves the state to the new holder). Updates the endpoint's failure
    /// run. Returns whether the delivery's state was written.
    async fn record_attempt(&self, locked_until: i64, outcome: &AttemptOutcome, now: i64) -> StoreResult<bool> {
        Ok(self.record_attempts(&[(locked_until, outcome.clone())], now).await?.first().copied().unwrap_or(false))
    }
    /// [`Self::record_attempt`] for several attempts, in one transaction (one commit for
    /// a batch of finished sends). Returns, for each, whether its delivery's state was written.
    async fn record_attempts(&self, attempts: &[(i64, AttemptOutcome)], now: i64) -> StoreResult<Vec<bool>>;

    /// An endpoint's deliveries, newest first, with their attempts (oldest first).
    async fn webhook_deliveries(
        &self,
        endpoint_id: &str,
        filter: &DeliveryFilter,
    ) -> StoreResult<Vec<(DeliveryRecord, Vec<DeliveryAttemptRecord>)>>;
    async fn webhook_delivery(&self, delivery_id: &str) -> StoreResult<Option<DeliveryRecord>>;
    /// Makes a delivery due again at `now` (whatever its status), unless it is leased
    /// by a worker right now; `false` if absent or leased.
    async fn redeliver(&self, delivery_id: &str, now: i64) -> StoreResult<bool>;

    /// Deliveries not yet delivered or given up (PENDING or FAILED): the queue's depth.
    async fn undelivered_count(&self) -> StoreResult<i64>;
}
