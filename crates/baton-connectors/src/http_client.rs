//! The HTTP client every connector of a real PSP uses.
//!
//! - TLS through rustls; a connect timeout and a total timeout per request.
//! - Money-moving calls carry an `Idempotency-Key` (the attempt's key, from the engine).
//! - Retries only where they cannot move money twice: a connection that could not be
//!   opened (nothing was sent), or a `409`/`429`/`5xx` answer to a request carrying an
//!   idempotency key (the PSP recognises the key). Bounded, with exponential backoff.
//! - A failure after the request may have been sent (timeout, connection lost) is
//!   [`HttpError::Unknown`]: the engine then syncs the attempt, never charges blindly.
//! - Logs carry the method, the path, the status and the duration only: never a
//!   header, a query string or a body (API keys and card numbers live there).

use std::time::{Duration, Instant};

use reqwest::Method;

/// Timeouts and the retry budget.
#[derive(Debug, Clone, Copy)]
pub struct HttpClientConfig {
    pub connect_timeout: Duration,
    /// From sending the request to the last byte of the answer.
    pub total_timeout: Duration,
    /// Tries per call, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
            max_attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// One request to a PSP.
#[derive(Clone)]
pub struct HttpRequest<'a> {
    pub method: Method,
    /// The PSP's base URL, without a trailing slash.
    pub base_url: &'a str,
    /// The path (`/v1/payment_intents`), logged as is: it must hold no secret.
    pub path: &'a str,
    /// Sent as `Authorization: Bearer …`.
    pub bearer: Option<&'a str>,
    /// Sent as `Idempotency-Key`; required on every money-moving call.
    pub idempotency_key: Option<&'a str>,
    /// A form-encoded body (`application/x-www-form-urlencoded`), if any.
    pub form: Option<&'a [(String, String)]>,
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A call without an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request never left: no connection could be opened (or it could not be built).
    #[error("the PSP could not be reached: {0}")]
    NotSent(String),
    /// The request may have reached the PSP: its outcome is unknown.
    #[error("the PSP's answer was lost: {0}")]
    Unknown(String),
}

/// A pooled client; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    config: HttpClientConfig,
}

impl HttpClient {
    pub fn new(config: HttpClientConfig) -> Self {
        let inner = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .user_agent(concat!("Baton/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's configuration is valid");
        Self { inner, config }
    }

    pub fn config(&self) -> &HttpClientConfig {
        &self.config
    }

    /// Sends the request, retrying where that is safe (see the module docs).
    pub async fn send(&self, request: &HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
        let attempts = self.config.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.send_once(request).await;
            let ms = started.elapsed().as_millis() as u64;
            let retry = match &result {
                Ok(response) => {
                    tracing::info!(method = %request.method, path = request.path, status = response.status,
                        duration_ms = ms, attempt, "PSP call");
                    request.idempotency_key.is_some() && retryable_status(response.status)
                }
                Err(HttpError::NotSent(reason)) => {
                    tracing::warn!(method = %request.method, path = request.path, duration_ms = ms, attempt,
                        %reason, "PSP call not sent");
                    true
                }
                Err(HttpError::Unknown(reason)) => {
                    tracing::warn!(method = %request.method, path = request.path, duration_ms = ms, attempt,
                        %reason, "PSP call without an answer");
                    false
                }
            };
            if !retry || attempt >= attempts {
                return result;
            }
            let wait = self.config.backoff.saturating_mul(1 << (attempt - 1).min(10));
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(&self, request: &HttpRequest<'_>) -> Result<HttpResponse, HttpError> {
        let url = format!("{}{}", request.base_url.trim_end_matches('/'), request.path);
        let mut builder = self.inner.request(request.method.clone(), url);
        if let Some(token) = request.bearer {
            builder = builder.bearer_auth(token);
        }
        if let Some(key) = request.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(form) = request.form {
            builder = builder.form(form);
        }
        let response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| HttpError::Unknown(describe(&e)))?;
        Ok(HttpResponse { status, body: body.to_vec() })
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(HttpClientConfig::default())
    }
}

/// Answers worth retrying with the same idempotency key: a concurrent request with the
/// key (`409`), rate limiting (`429`), the PSP's own failures (`5xx`).
pub fn retryable_status(status: u16) -> bool {
    status == 409 || status == 429 || (500..600).contains(&status)
}

/// Whether a failed send may have reached the PSP.
fn classify(e: reqwest::Error) -> HttpError {
    // A connection that failed to open (refused, or a connect timeout) carried nothing.
    if e.is_builder() || e.is_connect() {
        HttpError::NotSent(describe(&e))
    } else {
        HttpError::Unknown(describe(&e))
    }
}

/// The error without its URL (which may carry a query).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut short"
    } else if e.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use axum::Router;

    use super::*;

    fn fast() -> HttpClient {
        HttpClient::new(HttpClientConfig {
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_millis(300),
            max_attempts: 3,
            backoff: Duration::from_millis(1),
        })
    }

    /// A server answering `statuses` in turn (then 200), recording each request's idempotency key.
    async fn server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let k = keys.clone();
        let app = Router::new().route(
            "/v1/things",
            post(move |headers: HeaderMap| {
                let k = k.clone();
                let calls = calls.clone();
                let statuses = statuses.clone();
                async move {
                    k.lock()
                        .unwrap()
                        .push(headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string));
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    let status = statuses.get(n).copied().unwrap_or(200);
                    (StatusCode::from_u16(status).unwrap(), format!("{{\"n\":{n}}}"))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), keys)
    }

    fn request<'a>(base: &'a str, key: Option<&'a str>, form: &'a [(String, String)]) -> HttpRequest<'a> {
        HttpRequest {
            method: Method::POST,
            base_url: base,
            path: "/v1/things",
            bearer: Some("sk_test_x"),
            idempotency_key: key,
            form: Some(form),
        }
    }

    #[tokio::test]
    async fn a_5xx_is_retried_with_the_same_idempotency_key() {
        let (base, keys) = server(vec![500, 503]).await;
        let form = vec![("amount".to_string(), "100".to_string())];
        let response = fast().send(&request(&base, Some("key-1"), &form)).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(*keys.lock().unwrap(), vec![Some("key-1".to_string()); 3]);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let (base, keys) = server(vec![500, 500, 500, 500]).await;
        let response = fast().send(&request(&base, Some("key-2"), &[])).await.unwrap();
        assert_eq!(response.status, 500);
        assert_eq!(keys.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn without_an_idempotency_key_nothing_is_retried() {
        let (base, keys) = server(vec![500, 429]).await;
        let response = fast().send(&request(&base, None, &[])).await.unwrap();
        assert_eq!(response.status, 500);
        assert_eq!(keys.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_4xx_decline_is_not_retried() {
        let (base, keys) = server(vec![402]).await;
        let response = fast().send(&request(&base, Some("key-3"), &[])).await.unwrap();
        assert_eq!(response.status, 402);
        assert_eq!(keys.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let error = fast().send(&request(&base, Some("key-4"), &[])).await.unwrap_err();
        assert!(matches!(error, HttpError::NotSent(_)), "{error:?}");
    }

    #[tokio::test]
    async fn no_answer_in_time_is_unknown_and_not_retried() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let a = accepted.clone();
        // Accepts and reads, never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        let error = fast().send(&request(&base, Some("key-5"), &[])).await.unwrap_err();
        assert!(matches!(error, HttpError::Unknown(_)), "{error:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_do_not_echo_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let mut req = request(&base, None, &[]);
        req.path = "/v1/things?card=4242424242424242";
        let error = fast().send(&req).await.unwrap_err();
        assert!(!error.to_string().contains("4242"), "{error}");
    }
}
