//! `Idempotency-Key` on POST: a retry with the same key and body gets the stored
//! response; the same key with another request is `409 IDEMPOTENCY_KEY_REUSED`.
//!
//! Keys belong to the caller's account and tenant, so two callers never collide.
//! Only successful responses are stored: a refused request changed nothing, so
//! running it again is harmless and answers the same.
//!
//! Once a request has claimed its key it runs to its end, even if the client hangs up,
//! so its claim is always stored or released while this node lives (and taken over by
//! a retry once the node is dead). A request that took over the key of an earlier try
//! cut off by its node's death carries [`TakenOver`]: handlers whose work that try may
//! have done answer with it rather than refuse to do it again.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_engine::{IdempotencyOutcome, Principal, StoredResponse};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::ApiError;
use crate::json::body_bytes;
use crate::AppState;

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Set on a response that is a replay of a stored one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Headers kept with a stored response.
const KEPT_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// A request extension: this request took its key over from an earlier try of the
/// same request (same key, same body), claimed at `earlier_try_at`, whose node died
/// before it answered. That try may have done the work before it was cut off.
#[derive(Debug, Clone, Copy)]
pub struct TakenOver {
    pub earlier_try_at: i64,
}

/// A claimed key, to be stored or released when its request is over.
struct Claim {
    state: AppState,
    scope: String,
    key: String,
    claimed_at: i64,
}

impl Claim {
    /// Stores a successful response for replay; releases the key after any other.
    async fn settle(self, response: Response) -> Response {
        if !response.status().is_success() {
            self.release().await;
            return response;
        }
        let (resp_parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => return ApiError::Internal(anyhow::anyhow!("reading response body: {e}")).into_response(),
        };
        let stored = StoredResponse {
            status: resp_parts.status.as_u16(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|h| Some((h.as_str().to_string(), resp_parts.headers.get(h)?.to_str().ok()?.to_string())))
                .collect(),
            body: body.to_vec(),
        };
        if let Err(e) = self.state.engine.finish_idempotent(&self.scope, &self.key, self.claimed_at, &stored).await {
            // The change is committed; failing to remember it must not turn success into an error.
            tracing::error!(error = format!("{e:#}"), "could not store idempotent response");
        }
        Response::from_parts(resp_parts, Body::from(body))
    }

    async fn release(self) {
        if let Err(e) = self.state.engine.abandon_idempotent(&self.scope, &self.key, self.claimed_at).await {
            tracing::error!(error = format!("{e:#}"), "could not release idempotency key");
        }
    }
}

pub async fn idempotent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(IDEMPOTENCY_HEADER).map(|v| v.to_str().unwrap_or("\u{0}").trim().to_string())
    else {
        return next.run(request).await;
    };
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let scope = format!("{}/{}", principal.account_id, principal.tenant_id.as_deref().unwrap_or("-"));
    let (parts, body) = request.into_parts();
    let bytes = match body_bytes(Request::new(body), state.settings.body_limit).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(parts.uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(&bytes);
    let request_hash = format!("{:x}", hasher.finalize());

    match state.engine.begin_idempotent(&scope, &key, &request_hash).await {
        Err(e) => ApiError::from(e).into_response(),
        Ok(IdempotencyOutcome::Replay(stored)) => replay(stored),
        Ok(IdempotencyOutcome::Proceed { claimed_at, taken_over_from }) => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            if let Some(earlier_try_at) = taken_over_from {
                request.extensions_mut().insert(TakenOver { earlier_try_at });
            }
            let claim = Claim { state, scope, key, claimed_at };
            // Detached from the connection: a client hanging up does not cut the request
            // (and its claim) off half-way. A panic releases the key and goes on up.
            let (answer, answered) = tokio::sync::oneshot::channel();
            let run = async move {
                let outcome = match tokio::spawn(next.run(request).in_current_span()).await {
                    Ok(response) => Ok(claim.settle(response).await),
                    Err(e) => {
                        claim.release().await;
                        Err(e)
                    }
                };
                let _ = answer.send(outcome);
            };
            tokio::spawn(run.in_current_span());
            match answered.await {
                Ok(Ok(response)) => response,
                Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                _ => ApiError::Internal(anyhow::anyhow!("an idempotent request's task was cancelled")).into_response(),
            }
        }
    }
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(n, v);
        }
    }
    response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}
