//! Baton's use cases, shared by the HTTP API and (later) the portals.
//!
//! Each public method of [`Engine`] is one use case: it parses nothing from HTTP,
//! takes domain values, talks to the store and the vault, and returns views or
//! [`EngineError`]s carrying the client-facing [`Problem`]s.

mod accounts;
mod api_keys;
mod bootstrap;
pub mod chargebacks;
pub mod checkout;
pub mod claims;
mod clock;
pub mod demo;
mod error;
pub mod execution;
mod idempotency;
mod identity;
pub mod instruments;
pub mod listing;
pub mod liveness;
pub mod marketplace;
pub mod metrics;
pub mod orders;
pub mod pay_by_link;
pub mod refunds;
pub mod schemes;
mod tenants;
pub mod theme;
pub mod vault;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use baton_domain::Environment;
use baton_store::Store;
use baton_vault::MasterKey;

pub use accounts::{AccountUpdate, AccountView, LicenseView};
pub use api_keys::{ApiKeyView, CreatedApiKey, KeyRequest};
pub use baton_domain::{Problem, ProblemKind, Problems};
pub use baton_store::KeyOwner;
pub use bootstrap::{InitialCredentials, StartupCheck};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{EngineError, EngineResult};
pub use idempotency::{IdempotencyOutcome, StoredResponse, IDEMPOTENCY_TTL};
pub use identity::{AccessToken, ContextHeaders, Principal};
pub use tenants::{TenantInput, TenantView};

/// Settings the use cases need; built from the deployment's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub environment: Environment,
    /// Lifetime of access tokens.
    pub token_ttl: Duration,
    /// `iss` of issued tokens.
    pub token_issuer: String,
    /// Whether the API may receive raw card numbers (`vault.accept_raw_card_data`);
    /// when off, creating a CARD instrument is `400 RAW_CARD_DATA_NOT_ACCEPTED`.
    pub accept_raw_card_data: bool,
    pub execution: ExecutionConfig,
    /// Webhook delivery: timeout, retry window, rotation overlap, address allow-list.
    pub webhooks: webhooks::WebhookConfig,
    /// The base of the URLs customers are sent (`public_url`): pay-by-links are
    /// `{public_url}/pay/{id}`. No trailing slash.
    pub public_url: String,
    /// The deployment's SMTP server and SMS gateway for pay-by-link messages.
    pub delivery: pay_by_link::delivery::DeliveryConfig,
}

/// Timings of execution and of its worker.
#[derive(Debug, Clone)]
pub struct ExecutionConfig {
    /// How long a PSP call may take before its outcome counts as unknown.
    pub connector_timeout: Duration,
    /// When an attempt whose answer was lost is synced (and again after a failed sync).
    pub sync_retry: Duration,
    /// A `PENDING` attempt untouched this long was cut off (a crash) and is synced.
    pub stale_after: Duration,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            connector_timeout: Duration::from_secs(30),
            sync_retry: Duration::from_secs(10),
            stale_after: Duration::from_secs(60),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            environment: Environment::Sandbox,
            token_ttl: Duration::from_secs(3600),
            token_issuer: "baton".into(),
            accept_raw_card_data: false,
            execution: ExecutionConfig::default(),
            webhooks: webhooks::WebhookConfig::default(),
            public_url: "http://127.0.0.1:8080".into(),
            delivery: pay_by_link::delivery::DeliveryConfig::default(),
        }
    }
}

/// The use cases, over one store and one master key.
pub struct Engine {
    store: Arc<dyn Store>,
    master_key: Arc<MasterKey>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    tokens: identity::TokenState,
    connectors: Arc<baton_connectors::Connectors>,
    metrics: Arc<metrics::EngineMetrics>,
    webhooks: webhooks::delivery_runtime::Runtime,
    /// This node's copies of published rules and app configurations.
    routing: execution::cache::RoutingCache,
    /// This node, as its claims record it.
    node: liveness::Node,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, master_key: Arc<MasterKey>, config: EngineConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            master_key,
            config,
            tokens: identity::TokenState::default(),
            connectors: Arc::new(baton_connectors::Connectors::standard()),
            metrics: Arc::default(),
            webhooks: Default::default(),
            routing: Default::default(),
            node: liveness::Node { id: new_id(), started_at: clock.now_ms() },
            clock,
        }
    }

    /// The same engine calling `connectors` (tests replace a PSP this way).
    pub fn with_connectors(mut self, connectors: baton_connectors::Connectors) -> Self {
        self.connectors = Arc::new(connectors);
        self
    }

    pub fn metrics(&self) -> &metrics::EngineMetrics {
        &self.metrics
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn environment(&self) -> Environment {
        self.config.environment
    }

    /// Whether the database answers (readiness).
    pub async fn database_ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    pub fn backend_name(&self) -> &'static str {
        self.store.backend().as_str()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Writes `changes` in one transaction (see `ExecutionStore::apply`). Every
    /// instruction status event is followed by an `instruction.updated` ("any status
    /// change", SPEC §5.1) with the same data, so receivers can subscribe to either.
    pub(crate) async fn apply(&self, changes: &[baton_store::Change], now: i64) -> baton_store::StoreResult<bool> {
        use baton_domain::EventType::*;
        let mut all = Vec::with_capacity(changes.len() + 1);
        for change in changes {
            all.push(change.clone());
            if let baton_store::Change::Event(e) = change {
                let status_change = matches!(
                    e.event_type,
                    InstructionProcessing
                        | InstructionSettled
                        | InstructionFailed
                        | InstructionMissed
                        | InstructionVoided
                );
                if status_change {
                    let updated =
                        baton_store::EventRecord { event_id: new_id(), event_type: InstructionUpdated, ..e.clone() };
                    all.push(baton_store::Change::Event(updated));
                }
            }
        }
        self.store.apply(&all, now).await
    }

    /// The clock's time as a UTC date-time.
    pub(crate) fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.now_ms()) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// Deletes expired nonces and idempotency records, checkout sessions a day after
    /// they expired, and the heartbeats of nodes gone for a day.
    pub async fn purge_expired(&self) -> EngineResult<u64> {
        let now = self.now_ms();
        let purged = self.store.purge_expired(now).await?;
        let sessions = self.store.purge_checkout_sessions(now - checkout::SESSION_RETENTION_MS).await?;
        Ok(purged + sessions + self.forget_gone_nodes().await?)
    }
}

/// A new random id (UUID v7: time-ordered, so indexes stay compact).
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Engine {
    /// Closes the database pools (at shutdown, after the last request).
    pub async fn close(&self) {
        self.store.close().await;
    }
}
