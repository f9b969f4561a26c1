//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_domain::{Problem, ProblemKind};

use crate::dto::{HealthDto, ReadinessDto};
use crate::error::ApiError;
use crate::AppState;

/// Liveness: the process is up. Names the environment this deployment serves.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthDto)))]
pub async fn healthz(State(state): State<AppState>) -> Json<HealthDto> {
    Json(HealthDto {
        status: "ok".into(),
        environment: state.engine.environment().as_str().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = ReadinessDto),
    (status = 503, description = "DATABASE_UNAVAILABLE", body = crate::dto::ErrorEnvelope)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.engine.database_ready().await {
        Json(ReadinessDto { status: "ready".into(), database: state.engine.backend_name().into() }).into_response()
    } else {
        ApiError::problem(Problem::new(ProblemKind::Unavailable, "DATABASE_UNAVAILABLE")).into_response()
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render_with(&state.engine.metrics().render()),
    )
        .into_response()
}
