//! Delivering webhooks, one step of every worker round:
//!
//! 1. **Fan-out.** Undispatched outbox events become one delivery per enabled endpoint
//!    that wants them, in the transaction that marks them dispatched.
//! 2. **Claims.** Due deliveries are leased to the claiming node (`FOR UPDATE SKIP
//!    LOCKED` on PostgreSQL), so no two nodes send the same delivery at once. A lease is
//!    free again when it runs out or when its node is dead (no heartbeat for a few
//!    seconds, see `liveness`): a crashed node's deliveries go out within seconds, a live
//!    node's are never taken from it. A delivery waits while an earlier event of the same
//!    instruction to the same endpoint is undelivered, so an endpoint sees an
//!    instruction's events in order.
//! 3. **Sending.** Each claimed delivery is POSTed concurrently (one slow receiver does
//!    not hold the others up) with the configured timeout (10 s), no redirects, no
//!    proxies, a capped read of the answer, to an address checked at connection time.
//!    The body is rebuilt from the stored event, so a redelivery carries the same bytes
//!    and the same `webhook-id`.
//! 4. **Recording.** The attempt is written after the POST: a crash in between means the
//!    delivery is sent again once its node is seen dead (at least once; receivers dedupe on
//!    `webhook-id`). 2xx is success; anything else is retried after 1 min, doubling to
//!    at most 6 h, with ±20 % jitter, until the delivery is older than the retry window
//!    (72 h), when it is given up (`DEAD`). An endpoint that has failed without a single
//!    success for the whole window is disabled, and `webhook_endpoint.disabled` is raised
//!    to the account's endpoints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_domain::EventType;
use baton_store::{AttemptOutcome, ClaimedDelivery, DeliveryAttemptRecord, DeliveryStatus, EventRecord};
use rand::Rng;
use serde_json::json;

use super::safety::{self, Blocked, CheckedResolver, UrlPolicy};
use super::signing;
use crate::{new_id, Engine, EngineResult};

/// What the webhook step of one worker round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookTick {
    /// Outbox events fanned out.
    pub events_dispatched: usize,
    /// Deliveries created by the fan-out.
    pub deliveries_created: usize,
    /// Deliveries that reached their endpoint (2xx).
    pub delivered: usize,
    /// Attempts that failed (to be retried, or given up).
    pub failed: usize,
}

/// Events fanned out and deliveries claimed per batch.
const BATCH: u32 = 100;
/// Batches per round at most (a later event of an instruction becomes due as soon as the
/// earlier one is delivered, so one round can carry a whole sequence).
const ROUNDS: usize = 20;
/// How long a claimed delivery is held at most (a dead node's is taken over as soon as
/// it is seen dead). Well above the send timeout, so a live node always records before
/// it lapses; it frees what a live node lost track of (a send task that panicked).
const LEASE: Duration = Duration::from_secs(60);
/// Sends in flight at once in a node's delivery loop.
const MAX_IN_FLIGHT: usize = 256;
/// How much of a receiver's answer is read and kept.
pub const RESPONSE_KEPT: usize = 1024;
const FIRST_RETRY: Duration = Duration::from_secs(60);
const LONGEST_RETRY: Duration = Duration::from_secs(6 * 3600);

/// The body of a delivery: `{eventId, eventType, createdAt, accountId, tenantId, data}`,
/// composed from the stored event so that every delivery of it has the same bytes.
pub fn envelope(event: &EventRecord) -> String {
    let created_at = baton_domain::dates::format_timestamp(
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.created_at) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    );
    let data = match serde_json::from_str::<serde_json::Value>(&event.data) {
        Ok(v) if v.is_object() => event.data.trim().to_string(),
        _ => "{}".to_string(),
    };
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let opt = |s: &Option<String>| s.as_deref().map(text).unwrap_or_else(|| "null".to_string());
    format!(
        "{{\"eventId\":{},\"eventType\":{},\"createdAt\":{},\"accountId\":{},\"tenantId\":{},\"data\":{}}}",
        text(&event.event_id),
        text(event.event_type.as_str()),
        text(&created_at),
        opt(&event.account_id),
        opt(&event.tenant_id),
        data
    )
}

/// The delay before retry number `attempts` (1 after the first failure), with jitter.
fn backoff(attempts: i64) -> i64 {
    let base = FIRST_RETRY.as_millis() as i64;
    let exact = (base << (attempts.clamp(1, 20) - 1)).min(LONGEST_RETRY.as_millis() as i64);
    let jittered = exact as f64 * rand::thread_rng().gen_range(0.8..1.2);
    (jittered as i64).min(LONGEST_RETRY.as_millis() as i64)
}

/// What one POST came to.
struct Sent {
    status_code: Option<u16>,
    duration_ms: i64,
    response: Option<String>,
    error: Option<String>,
    /// `succeeded`, `http_error`, `timeout`, `network_error` or `blocked` (metrics label).
    outcome: &'static str,
}

impl Sent {
    fn succeeded(&self) -> bool {
        self.outcome == "succeeded"
    }
}

/// A request ready to go.
struct Outgoing {
    url: reqwest::Url,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn error_text(e: &reqwest::Error) -> String {
    // The URL may carry credentials: describe the failure without it.
    let mut text = format!("{}", WithoutUrl(e));
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(500).collect()
}

struct WithoutUrl<'a>(&'a reqwest::Error);

impl std::fmt::Display for WithoutUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.0;
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_redirect() {
            "redirect"
        } else if e.is_body() || e.is_decode() {
            "error reading the response"
        } else {
            "request failed"
        };
        f.write_str(what)
    }
}

fn is_blocked(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<Blocked>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A finished send task; a panicked one leaves its lease to lapse (retried then).
fn joined_send(
    joined: Result<(ClaimedDelivery, i64, Sent), tokio::task::JoinError>,
) -> Option<(ClaimedDelivery, i64, Sent)> {
    match joined {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(error = %e, "a webhook send task failed");
            None
        }
    }
}

async fn send(client: reqwest::Client, policy: Arc<UrlPolicy>, out: Outgoing, timeout: Duration) -> Sent {
    let started = Instant::now();
    let elapsed = |started: Instant| started.elapsed().as_millis() as i64;
    // Literal addresses never reach the resolver: check them here.
    if let Some(ip) = safety::literal_ip(&out.url) {
        if !policy.address_allowed(&safety::host_of(&out.url), ip) {
            return Sent {
                status_code: None,
                duration_ms: 0,
                response: None,
                error: Some("the endpoint's address is not one webhooks may reach".into()),
                outcome: "blocked",
            };
        }
    }
    let mut request = client.post(out.url).timeout(timeout).body(out.body);
    for (name, value) in out.headers {
        request = request.header(name, value);
    }
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let outcome = if is_blocked(&e) {
                "blocked"
            } else if e.is_timeout() {
                "timeout"
            } else {
                "network_error"
            };
            let error = if outcome == "blocked" {
                "the endpoint's host resolves only to addresses webhooks may not reach".to_string()
            } else {
                error_text(&e)
            };
            return Sent {
                status_code: None,
                duration_ms: elapsed(started),
                response: None,
                error: Some(error),
                outcome,
            };
        }
    };
    let status = response.status();
    let mut kept: Vec<u8> = Vec::new();
    let mut read_error = None;
    // Read only the first bytes: a huge answer is cut off, not buffered.
    while kept.len() < RESPONSE_KEPT {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_KEPT - kept.len())]),
            Ok(None) => break,
            Err(e) => {
                read_error = Some(error_text(&e));
                break;
            }
        }
    }
    drop(response);
    let text = String::from_utf8_lossy(&kept).into_owned();
    let ok = status.is_success();
    Sent {
        status_code: Some(status.as_u16()),
        duration_ms: elapsed(started),
        response: (!text.is_empty()).then_some(text),
        error: if ok { None } else { read_error.or_else(|| Some(format!("HTTP {}", status.as_u16()))) },
        outcome: if ok { "succeeded" } else { "http_error" },
    }
}

/// The HTTP client of deliveries, built once per engine.
#[derive(Default)]
pub(crate) struct Runtime {
    client: std::sync::OnceLock<reqwest::Client>,
}

impl Engine {
    fn webhook_client(&self) -> EngineResult<reqwest::Client> {
        if let Some(c) = self.webhooks.client.get() {
            return Ok(c.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(self.config.webhooks.timeout)
            .timeout(self.config.webhooks.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("Baton-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedResolver(self.webhook_policy())))
            .build()
            .map_err(|e| crate::EngineError::Internal(anyhow::anyhow!("building the webhook client: {e}")))?;
        Ok(self.webhooks.client.get_or_init(|| client).clone())
    }

    /// Fans out what the outbox holds; returns (events, deliveries created).
    async fn fan_out(&self) -> EngineResult<(usize, usize)> {
        let mut total = (0, 0);
        for _ in 0..ROUNDS {
            let (events, deliveries) = self.store.dispatch_events(self.now_ms(), BATCH, &new_id).await?;
            total = (total.0 + events, total.1 + deliveries);
            if events < BATCH as usize {
                break;
            }
        }
        Ok(total)
    }

    /// The webhook step of a worker round (see the module docs): fan-out, then claim and
    /// send until nothing is due, waiting for every send of a batch.
    pub async fn deliver_webhooks(&self) -> EngineResult<WebhookTick> {
        let mut tick = WebhookTick::default();
        (tick.events_dispatched, tick.deliveries_created) = self.fan_out().await?;
        for _ in 0..ROUNDS {
            let now = self.now_ms();
            let lease = now + LEASE.as_millis() as i64;
            let claimed = self.store.claim_deliveries(now, lease, BATCH, self.claimant()).await?;
            if claimed.is_empty() {
                break;
            }
            let mut tasks = tokio::task::JoinSet::new();
            for c in claimed {
                self.spawn_send(&mut tasks, c, lease)?;
            }
            let mut finished = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                let Some((c, lease, sent)) = joined_send(joined) else { continue };
                if sent.succeeded() {
                    tick.delivered += 1;
                } else {
                    tick.failed += 1;
                }
                finished.push((c, lease, sent));
            }
            self.record(finished).await?;
        }
        let depth = self.store.undelivered_count().await?;
        self.metrics.webhooks.queue_depth.set(depth);
        Ok(tick)
    }

    /// The delivery loop of a worker node: every `poll` it fans out the outbox and claims
    /// what is due, up to [`MAX_IN_FLIGHT`] sends at a time, recording each send as soon as
    /// it finishes, so a slow receiver never holds up the others. Runs until `stop`
    /// resolves, then lets the sends in flight finish and records them.
    pub async fn run_webhook_deliveries(self: Arc<Self>, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        let mut tasks: tokio::task::JoinSet<(ClaimedDelivery, i64, Sent)> = tokio::task::JoinSet::new();
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut gauge = Instant::now() - Duration::from_secs(10);
        // Whether the last poll found more due than it could take: then the next poll
        // comes as soon as half the sends are done, not at the next tick.
        let mut backlog = false;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    // Every send finished by now is recorded in one transaction.
                    let mut finished: Vec<_> = joined_send(joined).into_iter().collect();
                    while let Some(more) = tasks.try_join_next() {
                        finished.extend(joined_send(more));
                    }
                    if let Err(e) = self.record(finished).await {
                        tracing::warn!(error = format!("{e:#}"), "could not record webhook attempts");
                    }
                    if backlog && tasks.len() <= MAX_IN_FLIGHT / 2 {
                        backlog = self.poll_logged(&mut tasks).await;
                    }
                }
                _ = ticks.tick() => {
                    backlog = self.poll_logged(&mut tasks).await;
                    if gauge.elapsed() >= Duration::from_secs(1) {
                        gauge = Instant::now();
                        match self.store.undelivered_count().await {
                            Ok(depth) => { self.metrics.webhooks.queue_depth.set(depth); }
                            Err(e) => tracing::warn!(error = %e, "could not count undelivered webhooks"),
                        }
                    }
                }
            }
        }
        let mut finished = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            finished.extend(joined_send(joined));
        }
        if let Err(e) = self.record(finished).await {
            tracing::warn!(error = format!("{e:#}"), "could not record webhook attempts");
        }
    }

    /// [`Self::poll_deliveries`], logging a failure; whether more is due than was taken.
    async fn poll_logged(&self, tasks: &mut tokio::task::JoinSet<(ClaimedDelivery, i64, Sent)>) -> bool {
        match self.poll_deliveries(tasks).await {
            Ok(backlog) => backlog,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "webhook delivery round failed");
                false
            }
        }
    }

    /// Fans out, then claims as many due deliveries as there is room for and starts
    /// sending them. Returns whether it filled the room (more may be due).
    async fn poll_deliveries(
        &self,
        tasks: &mut tokio::task::JoinSet<(ClaimedDelivery, i64, Sent)>,
    ) -> EngineResult<bool> {
        self.fan_out().await?;
        let room = MAX_IN_FLIGHT.saturating_sub(tasks.len());
        if room == 0 {
            return Ok(true);
        }
        let now = self.now_ms();
        let lease = now + LEASE.as_millis() as i64;
        let claimed = self.store.claim_deliveries(now, lease, room as u32, self.claimant()).await?;
        let full = claimed.len() == room;
        for c in claimed {
            self.spawn_send(tasks, c, lease)?;
        }
        Ok(full)
    }

    /// Starts the POST of a claimed delivery.
    fn spawn_send(
        &self,
        tasks: &mut tokio::task::JoinSet<(ClaimedDelivery, i64, Sent)>,
        c: ClaimedDelivery,
        lease: i64,
    ) -> EngineResult<()> {
        match self.outgoing(&c) {
            Ok(out) => {
                let (client, policy, timeout) =
                    (self.webhook_client()?, self.webhook_policy(), self.config.webhooks.timeout);
                tasks.spawn(async move {
                    let sent = send(client, policy, out, timeout).await;
                    (c, lease, sent)
                });
            }
            Err(e) => {
                tracing::error!(delivery_id = %c.delivery.delivery_id, error = %e, "cannot prepare a webhook delivery");
                let sent = Sent {
                    status_code: None,
                    duration_ms: 0,
                    response: None,
                    error: Some("the delivery could not be signed".into()),
                    outcome: "network_error",
                };
                tasks.spawn(async move { (c, lease, sent) });
            }
        }
        Ok(())
    }

    /// The signed request of a claimed delivery.
    fn outgoing(&self, c: &ClaimedDelivery) -> EngineResult<Outgoing> {
        let now = self.now_ms();
        let endpoint = &c.endpoint;
        let mut secrets = vec![self.open_secret(&endpoint.endpoint_id, &endpoint.secret_sealed)?];
        if let (Some(previous), Some(until)) = (&endpoint.previous_secret_sealed, endpoint.previous_secret_expires_at) {
            if until > now {
                secrets.push(self.open_secret(&endpoint.endpoint_id, previous)?);
            }
        }
        let body = envelope(&c.event);
        let timestamp = now.div_euclid(1000);
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let signature = signing::signature_header(&refs, &c.event.event_id, timestamp, body.as_bytes());
        let url = reqwest::Url::parse(&endpoint.url)
            .map_err(|e| crate::EngineError::Internal(anyhow::anyhow!("stored webhook URL unreadable: {e}")))?;
        Ok(Outgoing {
            url,
            headers: vec![
                ("content-type", "application/json".to_string()),
                ("webhook-id", c.event.event_id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body,
        })
    }

    /// Writes finished sends and what follows from them, in one transaction.
    async fn record(&self, finished: Vec<(ClaimedDelivery, i64, Sent)>) -> EngineResult<()> {
        if finished.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        let outcomes: Vec<(i64, AttemptOutcome)> =
            finished.iter().map(|(c, lease, sent)| (*lease, self.outcome_of(c, sent, now))).collect();
        let written = self.store.record_attempts(&outcomes, now).await?;
        for ((c, _, _), ((_, outcome), written)) in finished.iter().zip(outcomes.iter().zip(written)) {
            if !written {
                tracing::info!(delivery_id = %c.delivery.delivery_id, "webhook delivery lease lapsed before its attempt was recorded");
            }
            if outcome.disable_endpoint.is_some() {
                tracing::warn!(webhook_id = %c.endpoint.endpoint_id, "webhook endpoint disabled after failing for the whole retry window");
            }
        }
        Ok(())
    }

    /// What a finished send comes to (and its metrics).
    fn outcome_of(&self, c: &ClaimedDelivery, sent: &Sent, now: i64) -> AttemptOutcome {
        let window = self.config.webhooks.retry_window.as_millis() as i64;
        let attempt_no = c.delivery.attempts + 1;
        let is_ping = c.event.event_type == EventType::Ping;
        let (status, next_attempt_at) = if sent.succeeded() {
            (DeliveryStatus::Succeeded, now)
        } else if is_ping || now - c.delivery.created_at >= window {
            (DeliveryStatus::Dead, now)
        } else {
            (DeliveryStatus::Failed, now + backoff(attempt_no))
        };
        let failing_for = c.endpoint.failing_since.map(|since| now - since);
        let disable_endpoint = (!sent.succeeded() && failing_for.is_some_and(|f| f >= window))
            .then(|| self.endpoint_disabled_event(c, now));
        let metrics = &self.metrics.webhooks;
        metrics.attempt(sent.outcome);
        if status == DeliveryStatus::Succeeded {
            metrics.latency.observe((now - c.event.created_at).max(0) as f64 / 1000.0);
        }
        AttemptOutcome {
            attempt: DeliveryAttemptRecord {
                delivery_id: c.delivery.delivery_id.clone(),
                attempt: attempt_no,
                status_code: sent.status_code.map(i64::from),
                duration_ms: sent.duration_ms,
                response: sent.response.clone(),
                error: sent.error.clone(),
                attempted_at: now,
            },
            status,
            next_attempt_at,
            disable_endpoint,
        }
    }

    fn endpoint_disabled_event(&self, c: &ClaimedDelivery, now: i64) -> EventRecord {
        let e = &c.endpoint;
        let iso = |ms: i64| {
            baton_domain::dates::format_timestamp(
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            )
        };
        EventRecord {
            event_id: new_id(),
            account_id: Some(e.account_id.clone()),
            tenant_id: e.tenant_id.clone(),
            event_type: EventType::WebhookEndpointDisabled,
            ordering_key: Some(e.endpoint_id.clone()),
            data: json!({
                "webhook": {
                    "webhookId": e.endpoint_id,
                    "tenantId": e.tenant_id,
                    "url": e.url,
                    "description": e.description,
                    "events": e.event_types,
                },
                "reason": "FAILING",
                "failingSince": e.failing_since.map(iso),
                "disabledAt": iso(now),
            })
            .to_string(),
            created_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_minute_to_at_most_six_hours() {
        for (attempts, exact) in [(1, 60_000i64), (2, 120_000), (3, 240_000), (9, 60_000 << 8)] {
            let d = backoff(attempts);
            assert!((exact * 8 / 10..=exact * 12 / 10).contains(&d), "{attempts}: {d}");
        }
        for attempts in [10, 15, 40] {
            let d = backoff(attempts);
            assert!((6 * 3_600_000 * 8 / 10..=6 * 3_600_000).contains(&d), "{attempts}: {d}");
        }
    }

    #[test]
    fn the_envelope_is_the_stored_event_in_a_fixed_shape() {
        let event = EventRecord {
            event_id: "e-1".into(),
            account_id: Some("a-1".into()),
            tenant_id: None,
            event_type: EventType::Ping,
            ordering_key: None,
            data: r#"{"b":1,"a":"x"}"#.into(),
            created_at: 1_609_372_800_123,
        };
        assert_eq!(
            envelope(&event),
            r#"{"eventId":"e-1","eventType":"ping","createdAt":"2020-12-31T00:00:00.123Z","accountId":"a-1","tenantId":null,"data":{"b":1,"a":"x"}}"#
        );
        assert_eq!(envelope(&event), envelope(&event.clone()));
    }
}
