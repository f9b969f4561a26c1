//! Correlation ids and the error envelope.
//!
//! Every request gets a platform id (`0HLPSRAQ7S0I6:00000002`: a per-process prefix
//! and a counter). Errors carry it as the outer `correlationId`; the inner one is the
//! caller's `X-Correlation-ID` if sent. This middleware also renders every 4xx/5xx
//! into the envelope, so no error leaves Baton in another shape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::dto::{ErrorEntry, ErrorEnvelope};
use crate::error::{generic_problem, ErrorBody};
use crate::AppState;

pub const CORRELATION_HEADER: &str = "x-correlation-id";
const MAX_CALLER_ID: usize = 128;

/// Issues platform correlation ids.
pub struct CorrelationIds {
    prefix: String,
    counter: AtomicU64,
}

impl Default for CorrelationIds {
    fn default() -> Self {
        // 13 characters of base32 from random bits, like the hosted platform's ids.
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
        let mut bits = u64::from_le_bytes(rand::random::<[u8; 8]>());
        let prefix = (0..13)
            .map(|_| {
                let c = ALPHABET[(bits & 31) as usize] as char;
                bits >>= 5;
                c
            })
            .collect();
        Self { prefix, counter: AtomicU64::new(0) }
    }
}

impl CorrelationIds {
    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}:{:08X}", self.prefix, n & 0xFFFF_FFFF)
    }
}

/// The ids of the request being served.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub platform: String,
    /// The caller's `X-Correlation-ID`, when it was valid.
    pub caller: Option<String>,
}

impl Correlation {
    /// The id reported inside each error: the caller's if given, else the platform's.
    pub fn inner(&self) -> &str {
        self.caller.as_deref().unwrap_or(&self.platform)
    }
}

fn caller_id(request: &Request) -> Option<String> {
    let v = request.headers().get(CORRELATION_HEADER)?.to_str().ok()?.trim();
    let ok = !v.is_empty() && v.len() <= MAX_CALLER_ID && v.bytes().all(|b| (0x20..0x7f).contains(&b));
    ok.then(|| v.to_string())
}

pub async fn correlate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let correlation = Correlation { platform: state.correlation_ids.next(), caller: caller_id(&request) };
    request.extensions_mut().insert(correlation.clone());
    let span = tracing::info_span!(
        "request",
        correlation_id = %correlation.platform,
        caller_correlation_id = correlation.caller.as_deref().unwrap_or(""),
        method = %request.method(),
        path = %crate::checkout::loggable_path(request.uri().path()),
        environment = %state.engine.environment(),
        client_ip = tracing::field::Empty,
    );
    async move {
        let started = std::time::Instant::now();
        let mut response = next.run(request).await;
        let page = response.extensions().get::<crate::checkout::PageBody>().is_some();
        if (response.status().is_client_error() || response.status().is_server_error()) && !page {
            response = render_envelope(response, &correlation);
        }
        let echo = correlation.caller.as_deref().unwrap_or(&correlation.platform);
        if let Ok(v) = HeaderValue::from_str(echo) {
            response.headers_mut().insert(CORRELATION_HEADER, v);
        }
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request served");
        }
        response
    }
    .instrument(span)
    .await
}

/// Replaces an error response's body with the envelope built from its problems.
fn render_envelope(response: Response, correlation: &Correlation) -> Response {
    let (mut parts, _body) = response.into_parts();
    let problems = match parts.extensions.remove::<ErrorBody>() {
        Some(ErrorBody(p)) if !p.is_empty() => p,
        _ => vec![generic_problem(parts.status)],
    };
    let inner = correlation.inner();
    let envelope = ErrorEnvelope {
        timestamp: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
        correlation_id: correlation.platform.clone(),
        errors: problems
            .iter()
            .map(|p| ErrorEntry {
                error_code: p.code.to_string(),
                message: p.render(&[("correlationId", inner)]),
                message_template: p.template.to_string(),
                metadata: std::iter::once(("correlationId".to_string(), inner.to_string()))
                    .chain(p.details.iter().map(|(k, v)| (k.to_string(), v.clone())))
                    .collect(),
            })
            .collect(),
    };
    let body = serde_json::to_vec(&envelope).expect("the envelope serialises");
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    parts.headers.remove(header::CONTENT_LENGTH);
    if parts.status == StatusCode::TOO_MANY_REQUESTS && !parts.headers.contains_key(header::RETRY_AFTER) {
        parts.headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Response::from_parts(parts, Body::from(body))
}
