//! Notifications from PSPs (SPEC §5.3): no bearer token; the tenant's installed app
//! verifies the PSP's own signature.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::dto::ErrorEnvelope;
use crate::error::ApiResult;
use crate::AppState;

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(receive), components(schemas(PspEventReceipt)))]
pub struct PspEventsApi;

/// What Baton took from a notification.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PspEventReceipt {
    /// How many notifications the body carried.
    pub received: usize,
}

/// Receives a PSP's notification for an app installed by the tenant. The app's connector
/// verifies the PSP's signature (`SANDBOX_CARD`: `Baton-Sandbox-Signature`, HMAC-SHA256
/// under the configured `apiKey`); anything unverifiable is refused and logged.
#[utoipa::path(post, path = "/v1/psp-events/{tenantId}/{appId}", tag = "PSP events",
    params(("tenantId" = String, Path), ("appId" = String, Path)),
    request_body(content = String, description = "The PSP's own notification body", content_type = "application/json"),
    responses(
    (status = 200, body = PspEventReceipt),
    (status = 400, description = "PSP_EVENT_MALFORMED", body = ErrorEnvelope),
    (status = 401, description = "PSP_SIGNATURE_INVALID", body = ErrorEnvelope),
    (status = 404, description = "APP_NOT_INSTALLED (also for unknown tenants)", body = ErrorEnvelope),
    (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorEnvelope)))]
pub async fn receive(
    State(state): State<AppState>,
    Path((tenant_id, app_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<PspEventReceipt>> {
    let headers: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_string())))
        .collect();
    let received = state.engine.receive_psp_event(&tenant_id, &app_id, &headers, &body).await?;
    Ok(Json(PspEventReceipt { received }))
}
