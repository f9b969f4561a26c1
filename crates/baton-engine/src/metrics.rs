//! The engine's own metrics: PSP call latency and execution outcomes. The HTTP layer
//! renders them at `/metrics` next to its request metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    pub app_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub app_id: String,
    pub outcome: String,
}

fn call_histogram() -> Histogram {
    // 0.1 ms … ~26 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

pub struct EngineMetrics {
    registry: Registry,
    connector_calls: Family<ConnectorLabels, Histogram, fn() -> Histogram>,
    outcomes: Family<OutcomeLabels, Counter>,
    /// Webhook delivery: queue depth, latency, attempts by outcome.
    pub webhooks: WebhookMetrics,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton");
        let connector_calls =
            Family::<ConnectorLabels, Histogram, fn() -> Histogram>::new_with_constructor(call_histogram);
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register("connector_call_duration_seconds", "Time spent waiting for PSPs", connector_calls.clone());
        registry.register("attempt_outcomes", "Attempts at PSPs by outcome", outcomes.clone());
        let webhooks = WebhookMetrics::register(&mut registry);
        Self { registry, connector_calls, outcomes, webhooks }
    }
}

impl EngineMetrics {
    pub fn record_connector_call(&self, app_id: &str, ms: i64) {
        self.connector_calls.get_or_create(&ConnectorLabels { app_id: app_id.into() }).observe(ms as f64 / 1000.0);
    }

    pub fn record_outcome(&self, app_id: &str, outcome: &str) {
        self.outcomes.get_or_create(&OutcomeLabels { app_id: app_id.into(), outcome: outcome.into() }).inc();
    }

    /// The registry, to register further engine metrics (the workers').
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format, without the final `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out.trim_end().trim_end_matches("# EOF").to_string()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookOutcomeLabels {
    pub outcome: String,
}

/// Metrics of webhook delivery.
pub struct WebhookMetrics {
    /// Deliveries not yet delivered nor given up (set every worker round).
    pub queue_depth: prometheus_client::metrics::gauge::Gauge,
    /// From the event's creation to its delivery (2xx), in seconds.
    pub latency: Histogram,
    attempts: Family<WebhookOutcomeLabels, Counter>,
}

impl WebhookMetrics {
    fn register(registry: &mut Registry) -> Self {
        let queue_depth = prometheus_client::metrics::gauge::Gauge::default();
        // 5 ms … ~46 h
        let latency = Histogram::new(exponential_buckets(0.005, 2.0, 26));
        let attempts = Family::<WebhookOutcomeLabels, Counter>::default();
        registry.register("webhook_queue_depth", "Webhook deliveries waiting to be delivered", queue_depth.clone());
        registry.register(
            "webhook_delivery_latency_seconds",
            "Time from an event's creation to its delivery",
            latency.clone(),
        );
        registry.register("webhook_attempts", "Webhook delivery attempts by outcome", attempts.clone());
        Self { queue_depth, latency, attempts }
    }

    /// Counts an attempt: `succeeded`, `http_error`, `timeout`, `network_error` or `blocked`.
    pub fn attempt(&self, outcome: &str) {
        self.attempts.get_or_create(&WebhookOutcomeLabels { outcome: outcome.into() }).inc();
    }
}
