//! Icons of apps and payment methods and images of reward brands: self-contained SVG
//! documents from the connectors crate, served publicly (they are what `iconUrl` and
//! `imageUrl` point at).

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use baton_domain::{AppId, Problem};

use crate::dto::ErrorEnvelope;
use crate::error::ApiResult;

fn not_found() -> Problem {
    Problem::not_found("ASSET_NOT_FOUND").message("No such image.")
}

fn svg(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            // The documents are static, but an SVG opened directly must never run anything.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"),
        ],
        body,
    )
        .into_response()
}

/// An app's icon: `/assets/apps/sandbox-card.svg` (ids in any case, `-` or `_`).
#[utoipa::path(get, path = "/assets/apps/{file}", tag = "assets", params(("file" = String, Path, description = "`<app-id>.svg`")),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, description = "ASSET_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn app_icon(Path(file): Path<String>) -> ApiResult<Response> {
    let id = file.strip_suffix(".svg").unwrap_or(&file);
    let app = AppId::parse(id).ok().and_then(|id| baton_connectors::find(&id)).ok_or_else(not_found)?;
    Ok(svg(app.icon_svg.to_string()))
}

/// A payment method's icon: `/assets/payment-methods/visa.svg`.
#[utoipa::path(get, path = "/assets/payment-methods/{file}", tag = "assets", params(("file" = String, Path, description = "`<method-id>.svg`")),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, description = "ASSET_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn payment_method_icon(Path(file): Path<String>) -> ApiResult<Response> {
    Ok(svg(baton_connectors::payment_method_icon_svg(&file).ok_or_else(not_found)?))
}

/// A reward brand's image: `/assets/rewards/amazon-de.svg`.
#[utoipa::path(get, path = "/assets/rewards/{file}", tag = "assets", params(("file" = String, Path, description = "`<brandKey>.svg`")),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, description = "ASSET_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn reward_image(Path(file): Path<String>) -> ApiResult<Response> {
    Ok(svg(baton_connectors::sandbox_rewards::brand_image_svg(&file).ok_or_else(not_found)?))
}
