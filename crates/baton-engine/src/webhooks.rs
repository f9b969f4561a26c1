//! Webhooks (SPEC §5.1): endpoints of tenants and of the account, the event catalog,
//! and delivery of the outbox's events, signed per Standard Webhooks.
//!
//! - Endpoints are owned by a tenant (its events) or by the account (account events).
//!   Each has its own event filter (`*` = all) and signing secret, sealed under the
//!   master key with the endpoint id as associated data and shown once.
//! - The worker (`delivery.rs`) fans the outbox out into deliveries, POSTs them and
//!   retries with backoff; see that module.

pub mod catalog;
mod delivery;
pub mod safety;
pub mod signing;

use std::sync::Arc;
use std::time::Duration;

use baton_domain::{EventType, Problem};
use baton_store::{DeliveryFilter, DeliveryStatus, EventRecord, KeyOwner, WebhookEndpointRecord};

pub use delivery::{envelope, WebhookTick, RESPONSE_KEPT};

/// The delivery client held by the engine.
pub(crate) mod delivery_runtime {
    pub(crate) use super::delivery::Runtime;
}
pub use safety::{AllowList, UrlPolicy};

use crate::{new_id, Engine, EngineError, EngineResult};

/// Webhook settings of a deployment.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// How long a receiver has to answer (SPEC: 10 s).
    pub timeout: Duration,
    /// How long a failing delivery is retried before it is given up, and how long an
    /// endpoint may fail without a break before it is disabled.
    pub retry_window: Duration,
    /// How long the previous secret keeps signing after a rotation.
    pub rotation_overlap: Duration,
    /// The operator's exceptions to the address rules (`webhooks.allowed_hosts`).
    pub allow: AllowList,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_window: Duration::from_secs(72 * 3600),
            rotation_overlap: Duration::from_secs(24 * 3600),
            allow: AllowList::default(),
        }
    }
}

/// Longest description of an endpoint.
pub const MAX_DESCRIPTION: usize = 500;
/// Most endpoints per owner (tenant, or account).
pub const MAX_ENDPOINTS: usize = 50;

/// What a client sends to create or replace an endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// An endpoint as shown to its owner (never its secret, except once in [`CreatedEndpoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointView {
    pub webhook_id: String,
    pub tenant_id: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// `FAILING` when Baton disabled it after failing for the whole retry window.
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An endpoint with its secret, returned by creation and rotation only.
#[derive(Debug, Clone)]
pub struct CreatedEndpoint {
    pub endpoint: EndpointView,
    pub secret: String,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptView {
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
    pub attempted_at: i64,
}

/// One event to one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub event_created_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub attempts: Vec<AttemptView>,
}

/// Filters of `GET …/{id}/deliveries`, as sent.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub event_type: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<u32>,
}

fn not_found() -> Problem {
    Problem::not_found("WEBHOOK_NOT_FOUND").message("No webhook endpoint {webhookId}.")
}

fn view(e: &WebhookEndpointRecord) -> EndpointView {
    EndpointView {
        webhook_id: e.endpoint_id.clone(),
        tenant_id: e.tenant_id.clone(),
        url: e.url.clone(),
        events: e.event_types.clone(),
        description: e.description.clone(),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason.clone(),
        failing_since: e.failing_since,
        previous_secret_expires_at: e.previous_secret_expires_at,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

/// What the master key binds an endpoint's secrets to.
pub(crate) fn secret_aad(endpoint_id: &str) -> Vec<u8> {
    format!("webhook-endpoint:{endpoint_id}").into_bytes()
}

/// Parses an instant of a listing filter: RFC 3339, or a date (midnight UTC).
fn parse_instant(text: &str, field: &'static str) -> Result<i64, Problem> {
    let text = text.trim();
    let bad = || Problem::invalid_field("INVALID_DATE", field, "Expected an ISO-8601 date or date-time.");
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let date = baton_domain::dates::parse_date(text, field).map_err(|_| bad())?;
    Ok(baton_domain::dates::start_of_day(date).unix_timestamp() * 1000)
}

impl Engine {
    fn url_policy(&self) -> UrlPolicy {
        UrlPolicy { environment: self.environment(), allow: self.config.webhooks.allow.clone() }
    }

    pub(crate) fn webhook_policy(&self) -> Arc<UrlPolicy> {
        Arc::new(self.url_policy())
    }

    /// Checks an endpoint's input against the owner's kind; every problem at once.
    async fn validate_endpoint(
        &self,
        owner: &KeyOwner,
        input: &EndpointInput,
    ) -> EngineResult<(String, Vec<String>, Option<String>)> {
        let mut problems = Vec::new();
        let url = match self.url_policy().check(input.url.as_deref().unwrap_or_default()).await {
            Ok(u) => Some(u.to_string()),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let account_level = owner.tenant_id().is_none();
        let mut events = Vec::new();
        match &input.events {
            None => problems.push(Problem::invalid_field(
                "EVENTS_REQUIRED",
                "events",
                "Name the event types to receive, or \"*\" for all.",
            )),
            Some(list) if list.is_empty() => problems.push(Problem::invalid_field(
                "EVENTS_REQUIRED",
                "events",
                "Name the event types to receive, or \"*\" for all.",
            )),
            Some(list) => {
                for (i, name) in list.iter().enumerate() {
                    let name = name.trim();
                    if name == "*" {
                        events.push("*".to_string());
                        continue;
                    }
                    match name.parse::<EventType>() {
                        Ok(t) if t.is_account_event() != account_level && t != EventType::Ping => {
                            problems.push(
                                Problem::invalid_field(
                                    "EVENT_TYPE_NOT_AVAILABLE",
                                    format!("events[{i}]"),
                                    "{eventType} is not sent to this kind of endpoint (account events go to account \
                                     endpoints, all others to tenant endpoints).",
                                )
                                .detail("eventType", t.as_str()),
                            );
                        }
                        Ok(t) => events.push(t.as_str().to_string()),
                        Err(_) => problems.push(
                            Problem::invalid_field("UNKNOWN_EVENT_TYPE", format!("events[{i}]"), "Unknown event type.")
                                .detail("eventType", name),
                        ),
                    }
                }
            }
        }
        events.dedup();
        let description = input.description.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_string);
        if description.as_deref().is_some_and(baton_domain::text::has_refused_control) {
            problems.push(Problem::invalid_field(
                "CONTROL_CHARACTER_NOT_ALLOWED",
                "description",
                "{field} must not contain control characters.",
            ));
        } else if description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            problems.push(
                Problem::invalid_field("DESCRIPTION_TOO_LONG", "description", "At most {max} characters.")
                    .detail("max", MAX_DESCRIPTION.to_string()),
            );
        }
        match url {
            Some(url) if problems.is_empty() => Ok((url, events, description)),
            _ => Err(EngineError::from(problems)),
        }
    }

    async fn endpoint_record(&self, owner: &KeyOwner, webhook_id: &str) -> EngineResult<WebhookEndpointRecord> {
        self.store
            .webhook_endpoint(owner.account_id(), owner.tenant_id(), webhook_id)
            .await?
            .ok_or_else(|| not_found().detail("webhookId", webhook_id).into())
    }

    fn seal_secret(&self, endpoint_id: &str, secret: &str) -> Vec<u8> {
        self.master_key.seal(secret.as_bytes(), &secret_aad(endpoint_id))
    }

    pub(crate) fn open_secret(&self, endpoint_id: &str, sealed: &[u8]) -> EngineResult<String> {
        let bytes = self.master_key.open(sealed, &secret_aad(endpoint_id)).map_err(|e| {
            EngineError::Internal(anyhow::anyhow!("cannot open the secret of webhook {endpoint_id}: {e}"))
        })?;
        String::from_utf8(bytes).map_err(|_| EngineError::Internal(anyhow::anyhow!("webhook secret is not text")))
    }

    /// `POST …/notifications/webhooks`: a new endpoint and its secret (shown only here).
    pub async fn create_webhook(&self, owner: &KeyOwner, input: EndpointInput) -> EngineResult<CreatedEndpoint> {
        let (url, events, description) = self.validate_endpoint(owner, &input).await?;
        let existing = self.store.webhook_endpoints(owner.account_id(), owner.tenant_id()).await?;
        if existing.len() >= MAX_ENDPOINTS {
            return Err(Problem::bad_request("TOO_MANY_WEBHOOKS")
                .message("At most {max} webhook endpoints.")
                .detail("max", MAX_ENDPOINTS.to_string())
                .into());
        }
        let now = self.now_ms();
        let endpoint_id = new_id();
        let secret = signing::new_secret();
        let record = WebhookEndpointRecord {
            endpoint_id: endpoint_id.clone(),
            account_id: owner.account_id().to_string(),
            tenant_id: owner.tenant_id().map(str::to_string),
            url,
            event_types: events,
            description,
            enabled: input.enabled.unwrap_or(true),
            secret_sealed: self.seal_secret(&endpoint_id, &secret),
            previous_secret_sealed: None,
            previous_secret_expires_at: None,
            failing_since: None,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook_endpoint(&record).await?;
        Ok(CreatedEndpoint { endpoint: view(&record), secret })
    }

    pub async fn webhooks(&self, owner: &KeyOwner) -> EngineResult<Vec<EndpointView>> {
        Ok(self.store.webhook_endpoints(owner.account_id(), owner.tenant_id()).await?.iter().map(view).collect())
    }

    pub async fn webhook(&self, owner: &KeyOwner, webhook_id: &str) -> EngineResult<EndpointView> {
        Ok(view(&self.endpoint_record(owner, webhook_id).await?))
    }

    /// `PUT …/{id}`: replaces url, events, description and enabled. Enabling an endpoint
    /// Baton disabled clears its failure record.
    pub async fn update_webhook(
        &self,
        owner: &KeyOwner,
        webhook_id: &str,
        input: EndpointInput,
    ) -> EngineResult<EndpointView> {
        let mut record = self.endpoint_record(owner, webhook_id).await?;
        let (url, events, description) = self.validate_endpoint(owner, &input).await?;
        record.url = url;
        record.event_types = events;
        record.description = description;
        let enabled = input.enabled.unwrap_or(record.enabled);
        if enabled && !record.enabled {
            record.failing_since = None;
            record.disabled_reason = None;
        }
        record.enabled = enabled;
        record.updated_at = self.now_ms();
        if !self.store.update_webhook_endpoint(&record).await? {
            return Err(not_found().detail("webhookId", webhook_id).into());
        }
        Ok(view(&record))
    }

    /// `DELETE …/{id}`: the endpoint and its deliveries go.
    pub async fn delete_webhook(&self, owner: &KeyOwner, webhook_id: &str) -> EngineResult<()> {
        if !self.store.delete_webhook_endpoint(owner.account_id(), owner.tenant_id(), webhook_id).await? {
            return Err(not_found().detail("webhookId", webhook_id).into());
        }
        Ok(())
    }

    /// `POST …/{id}/rotate-secret`: a new secret (shown only here); the current one keeps
    /// signing next to it for `overlap` (default: the configured overlap, 24 h).
    pub async fn rotate_webhook_secret(
        &self,
        owner: &KeyOwner,
        webhook_id: &str,
        overlap: Option<Duration>,
    ) -> EngineResult<CreatedEndpoint> {
        let mut record = self.endpoint_record(owner, webhook_id).await?;
        let overlap = overlap.unwrap_or(self.config.webhooks.rotation_overlap);
        if overlap > Duration::from_secs(7 * 86_400) {
            return Err(
                Problem::invalid_field("INVALID_OVERLAP", "overlapSeconds", "At most 7 days (604800 s).").into()
            );
        }
        let now = self.now_ms();
        let secret = signing::new_secret();
        if overlap.is_zero() {
            record.previous_secret_sealed = None;
            record.previous_secret_expires_at = None;
        } else {
            record.previous_secret_sealed = Some(record.secret_sealed.clone());
            record.previous_secret_expires_at = Some(now + overlap.as_millis() as i64);
        }
        record.secret_sealed = self.seal_secret(&record.endpoint_id, &secret);
        record.updated_at = now;
        if !self.store.update_webhook_endpoint(&record).await? {
            return Err(not_found().detail("webhookId", webhook_id).into());
        }
        Ok(CreatedEndpoint { endpoint: view(&record), secret })
    }

    /// `POST …/{id}/test`: a `ping` event delivered to this endpoint only (at the next
    /// worker round). Returns the event id.
    pub async fn ping_webhook(&self, owner: &KeyOwner, webhook_id: &str) -> EngineResult<DeliveryView> {
        let record = self.endpoint_record(owner, webhook_id).await?;
        let now = self.now_ms();
        let event = EventRecord {
            event_id: new_id(),
            account_id: Some(record.account_id.clone()),
            tenant_id: record.tenant_id.clone(),
            event_type: EventType::Ping,
            ordering_key: None,
            data: serde_json::json!({"webhookId": record.endpoint_id, "message": "ping"}).to_string(),
            created_at: now,
        };
        let delivery_id = new_id();
        self.store.insert_direct_delivery(&event, &record.endpoint_id, &delivery_id).await?;
        Ok(DeliveryView {
            delivery_id,
            webhook_id: record.endpoint_id,
            event_id: event.event_id,
            event_type: EventType::Ping.as_str().to_string(),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now),
            event_created_at: now,
            created_at: now,
            delivered_at: None,
            attempts: Vec::new(),
        })
    }

    /// `GET …/{id}/deliveries`: newest first, with their attempts.
    pub async fn webhook_deliveries(
        &self,
        owner: &KeyOwner,
        webhook_id: &str,
        query: DeliveryQuery,
    ) -> EngineResult<Vec<DeliveryView>> {
        let record = self.endpoint_record(owner, webhook_id).await?;
        let mut problems = Vec::new();
        let mut filter = DeliveryFilter { limit: query.limit.unwrap_or(50).clamp(1, 200), ..Default::default() };
        if let Some(t) = query.event_type.as_deref().filter(|t| !t.trim().is_empty()) {
            match t.parse::<EventType>() {
                Ok(t) => filter.event_type = Some(t.as_str().to_string()),
                Err(_) => problems.push(
                    Problem::invalid_field("UNKNOWN_EVENT_TYPE", "eventType", "Unknown event type.")
                        .detail("eventType", t),
                ),
            }
        }
        if let Some(s) = query.status.as_deref().filter(|s| !s.trim().is_empty()) {
            match DeliveryStatus::parse(s) {
                Some(s) => filter.status = Some(s),
                None => problems.push(Problem::invalid_field(
                    "INVALID_STATUS",
                    "status",
                    "Expected PENDING, FAILED, SUCCEEDED or DEAD.",
                )),
            }
        }
        for (text, field, slot) in [(&query.from, "from", &mut filter.from), (&query.to, "to", &mut filter.to)] {
            if let Some(t) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                match parse_instant(t, field) {
                    Ok(ms) => *slot = Some(ms),
                    Err(p) => problems.push(p),
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems.into());
        }
        let rows = self.store.webhook_deliveries(&record.endpoint_id, &filter).await?;
        Ok(rows
            .into_iter()
            .map(|(d, attempts)| DeliveryView {
                delivery_id: d.delivery_id,
                webhook_id: d.endpoint_id,
                event_id: d.event_id,
                event_type: d.event_type,
                status: d.status,
                next_attempt_at: matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Failed)
                    .then_some(d.next_attempt_at),
                event_created_at: d.event_created_at,
                created_at: d.created_at,
                delivered_at: d.delivered_at,
                attempts: attempts
                    .into_iter()
                    .map(|a| AttemptView {
                        attempt: a.attempt,
                        status_code: a.status_code,
                        duration_ms: a.duration_ms,
                        response: a.response,
                        error: a.error,
                        attempted_at: a.attempted_at,
                    })
                    .collect(),
            })
            .collect())
    }

    /// `POST …/deliveries/{deliveryId}/redeliver`: sends a delivery again at the next
    /// worker round, with the same `webhook-id`, whatever became of it.
    pub async fn redeliver_webhook(&self, owner: &KeyOwner, delivery_id: &str) -> EngineResult<()> {
        let missing = || -> EngineError {
            Problem::not_found("DELIVERY_NOT_FOUND")
                .message("No webhook delivery {deliveryId}.")
                .detail("deliveryId", delivery_id)
                .into()
        };
        let delivery = self.store.webhook_delivery(delivery_id).await?.ok_or_else(missing)?;
        // Only the owner of the endpoint may see or touch its deliveries.
        if self.store.webhook_endpoint(owner.account_id(), owner.tenant_id(), &delivery.endpoint_id).await?.is_none() {
            return Err(missing());
        }
        if !self.store.redeliver(delivery_id, self.now_ms()).await? {
            return Err(Problem::conflict("DELIVERY_IN_PROGRESS")
                .message("The delivery is being sent right now; try again in a moment.")
                .into());
        }
        Ok(())
    }
}
