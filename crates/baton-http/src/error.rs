//! `ApiError`: the one error type of the HTTP layer, rendered as the error envelope
//! of SPEC §1 by the correlation middleware (which knows the request's ids).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton_domain::{Problem, ProblemKind, Problems};
use baton_engine::EngineError;

/// The problems a response carries; the envelope is rendered from them on the way out.
#[derive(Debug, Clone)]
pub struct ErrorBody(pub Vec<Problem>);

#[derive(Debug)]
pub enum ApiError {
    Rejected(Problems),
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_of(kind: ProblemKind) -> StatusCode {
    match kind {
        ProblemKind::BadRequest => StatusCode::BAD_REQUEST,
        ProblemKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ProblemKind::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
        ProblemKind::Forbidden => StatusCode::FORBIDDEN,
        ProblemKind::NotFound => StatusCode::NOT_FOUND,
        ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ProblemKind::Conflict => StatusCode::CONFLICT,
        ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ProblemKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ProblemKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The problem used for an error response that carries none of its own
/// (a framework rejection, a panic, a timeout).
pub fn generic_problem(status: StatusCode) -> Problem {
    let (kind, code) = match status {
        StatusCode::NOT_FOUND => (ProblemKind::NotFound, "ROUTE_NOT_FOUND"),
        StatusCode::METHOD_NOT_ALLOWED => (ProblemKind::MethodNotAllowed, "METHOD_NOT_ALLOWED"),
        StatusCode::PAYLOAD_TOO_LARGE => (ProblemKind::PayloadTooLarge, "PAYLOAD_TOO_LARGE"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ProblemKind::UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
        StatusCode::TOO_MANY_REQUESTS => (ProblemKind::TooManyRequests, "RATE_LIMITED"),
        StatusCode::SERVICE_UNAVAILABLE => (ProblemKind::Unavailable, "SERVICE_UNAVAILABLE"),
        s if s.is_client_error() => (ProblemKind::BadRequest, "BAD_REQUEST"),
        _ => (ProblemKind::Internal, "INTERNAL_SERVER_ERROR"),
    };
    Problem::new(kind, code)
}

impl ApiError {
    pub fn problem(p: Problem) -> Self {
        ApiError::Rejected(p.into())
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::problem(p)
    }
}

impl From<Vec<Problem>> for ApiError {
    fn from(p: Vec<Problem>) -> Self {
        ApiError::Rejected(Problems(p))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(p) => ApiError::Rejected(p),
            EngineError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problems = match self {
            ApiError::Rejected(p) => p.0,
            ApiError::Internal(e) => {
                // The request's span carries the correlation id onto this line.
                tracing::error!(error = format!("{e:#}"), "internal error");
                vec![generic_problem(StatusCode::INTERNAL_SERVER_ERROR)]
            }
        };
        let status = problems.first().map(|p| status_of(p.kind)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorBody(problems));
        response
    }
}
