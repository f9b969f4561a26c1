//! Thin handlers: extract, call one engine function, map the result.

pub mod account;
pub mod api_keys;
pub mod chargebacks;
pub mod checkout;
pub mod claims;
pub mod component;
pub mod execution;
pub mod health;
pub mod identity;
pub mod marketplace;
pub mod orders;
pub mod pay_by_link;
pub mod psp_events;
pub mod refunds;
pub mod sandbox;
pub mod schemes;
pub mod tenants;
pub mod vault;
pub mod webhooks;
pub mod whitelabel;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// `201 Created` with a `Location` header and a JSON body.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Path ids are GUIDs, which Baton issues in lower case; clients may send upper case.
pub fn normalise_id(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}
