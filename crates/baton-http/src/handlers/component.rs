//! `GET /checkout.js`: the checkout component, a small script without dependencies that
//! embeds the hosted checkout in an iframe on the merchant's own page
//! (`Baton.mount(element, {token, language, onSuccess, onFailure, onCancel})`). It is
//! compiled into the binary; clients cache it and revalidate with its ETag.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The script as served.
pub const CHECKOUT_JS: &str = include_str!("../../assets/checkout.js");

/// How long browsers and proxies may use their copy before revalidating it.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// A strong ETag: a hash of the script's content, so it changes exactly when the script does.
pub fn checkout_js_etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = Sha256::digest(CHECKOUT_JS.as_bytes());
        format!("\"{}\"", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18]))
    })
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(checkout_js))]
pub struct ComponentApi;

/// The embeddable checkout component.
#[utoipa::path(get, path = "/checkout.js", tag = "checkout",
    description = "A script for merchant pages: `Baton.mount(element, {token, language, onSuccess, onFailure, onCancel, baseUrl})` \
        embeds the hosted checkout in an iframe, sizes it to its content and reports the outcome through the callbacks. \
        Cached for a day and revalidated with its ETag.",
    params(("If-None-Match" = Option<String>, Header, description = "The ETag of a cached copy")),
    responses((status = 200, content_type = "text/javascript", body = String), (status = 304, description = "The cached copy is current")))]
pub async fn checkout_js(headers: HeaderMap) -> Response {
    let etag = checkout_js_etag();
    let cached = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    let common = [
        (header::ETAG, HeaderValue::from_static(etag)),
        (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL)),
        // Any site may load it (with or without `crossorigin`, e.g. for subresource integrity).
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        (header::HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("cross-origin")),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], CHECKOUT_JS).into_response()
}
