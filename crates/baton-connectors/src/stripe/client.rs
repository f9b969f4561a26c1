//! Stripe's wire: form-encoded requests, `Authorization: Bearer`, JSON answers.

use reqwest::Method;
use serde_json::Value;

use crate::http_client::{HttpClient, HttpError, HttpRequest};

/// Stripe's answer: the status and the JSON body (`None` if it was not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct StripeReply {
    pub status: u16,
    pub json: Option<Value>,
}

/// One tenant's view of Stripe: its key and base URL over the shared HTTP client.
#[derive(Clone)]
pub struct StripeClient {
    http: HttpClient,
    base_url: String,
    secret_key: String,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl StripeClient {
    pub fn new(http: HttpClient, base_url: &str, secret_key: &str) -> Self {
        Self { http, base_url: base_url.trim_end_matches('/').to_string(), secret_key: secret_key.to_string() }
    }

    /// `POST path` with a form body; `idempotency_key` on every money-moving call.
    pub async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<StripeReply, HttpError> {
        self.call(Method::POST, path, Some(form), idempotency_key).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<StripeReply, HttpError> {
        self.call(Method::GET, path, None, None).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        form: Option<&[(String, String)]>,
        idempotency_key: Option<&str>,
    ) -> Result<StripeReply, HttpError> {
        let request = HttpRequest {
            method,
            base_url: &self.base_url,
            path,
            bearer: Some(&self.secret_key),
            idempotency_key,
            form,
        };
        let response = self.http.send(&request).await?;
        Ok(StripeReply { status: response.status, json: serde_json::from_slice(&response.body).ok() })
    }
}
