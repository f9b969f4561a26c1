//! The OpenAPI 3.1 document (generated from the handlers' annotations and the route
//! table's roles) and a human-readable reference page rendered from it. Everything
//! is served from the binary: no CDN, no scripts.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{OpenApi as OpenApiDoc, PathItem};
use utoipa::OpenApi;

use crate::auth::Access;
use crate::handlers::{account, api_keys, health, identity, tenants};
use crate::{dto, routes, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Baton API",
        description = "Self-hostable payments orchestrator. Wire-compatible with the documented Payments Orchestrator v1 API."
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        identity::issue_token,
        account::get_account,
        account::update_account,
        account::get_license,
        account::license_history,
        api_keys::create_account_key,
        api_keys::list_account_keys,
        api_keys::get_account_key,
        api_keys::update_account_key,
        api_keys::delete_account_key,
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::get_tenant,
        tenants::update_tenant,
        tenants::delete_tenant,
        tenants::approve_tenant,
        tenants::reject_tenant,
        tenants::current_tenant,
        api_keys::create_tenant_key,
        api_keys::list_tenant_keys,
        api_keys::get_tenant_key,
        api_keys::update_tenant_key,
        api_keys::delete_tenant_key,
    ),
    components(schemas(dto::ErrorEnvelope, dto::ErrorEntry))
)]
struct ApiDoc;

fn operation_mut<'a>(
    item: &'a mut PathItem,
    method: &axum::http::Method,
) -> Option<&'a mut utoipa::openapi::path::Operation> {
    match method.as_str() {
        "GET" => item.get.as_mut(),
        "POST" => item.post.as_mut(),
        "PUT" => item.put.as_mut(),
        "DELETE" => item.delete.as_mut(),
        "PATCH" => item.patch.as_mut(),
        _ => None,
    }
}

fn set_operation(item: &mut PathItem, method: &axum::http::Method, op: utoipa::openapi::path::Operation) {
    let slot = match method.as_str() {
        "GET" => &mut item.get,
        "POST" => &mut item.post,
        "PUT" => &mut item.put,
        "DELETE" => &mut item.delete,
        "PATCH" => &mut item.patch,
        _ => return,
    };
    *slot = Some(op);
}

/// The OpenAPI document, with each operation's required roles and security.
pub fn openapi() -> OpenApiDoc {
    let mut doc = ApiDoc::openapi();
    // Areas document themselves; their documents are merged here.
    // -- area documents --
    doc.merge(crate::handlers::orders::OrdersApi::openapi());
    doc.merge(crate::handlers::execution::ExecutionApi::openapi());
    doc.merge(crate::handlers::claims::ClaimsApi::openapi());
    doc.merge(crate::handlers::refunds::RefundsApi::openapi());
    doc.merge(crate::handlers::chargebacks::ChargebacksApi::openapi());
    doc.merge(crate::handlers::psp_events::PspEventsApi::openapi());
    doc.merge(crate::handlers::sandbox::SandboxApi::openapi());
    doc.merge(crate::handlers::vault::VaultApi::openapi());
    doc.merge(crate::handlers::schemes::SchemesApi::openapi());
    doc.merge(crate::handlers::marketplace::MarketplaceApi::openapi());
    doc.merge(crate::handlers::webhooks::WebhooksApi::openapi());
    doc.merge(crate::handlers::checkout::CheckoutApi::openapi());
    doc.merge(crate::checkout::CheckoutPagesApi::openapi());
    doc.merge(crate::handlers::pay_by_link::PayByLinkApi::openapi());
    doc.merge(crate::handlers::whitelabel::WhiteLabelApi::openapi());
    doc.merge(crate::handlers::component::ComponentApi::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    components.add_security_scheme(
        "hmac",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "Hmac publicKey:nonce:epoch:signature (SPEC §2)",
        ))),
    );
    // Aliases are documented as copies of their canonical operation.
    for spec in routes::specs() {
        let Some(canonical) = spec.alias_of else { continue };
        let Some(mut op) = doc.paths.paths.get_mut(canonical).and_then(|i| operation_mut(i, spec.method)).cloned()
        else {
            continue;
        };
        op.operation_id = None;
        op.summary = Some(format!("Alias of {canonical}"));
        op.description = Some(format!("Kept for older clients; behaves exactly as `{canonical}`."));
        let item = doc.paths.paths.entry(spec.path.to_string()).or_default();
        set_operation(item, spec.method, op);
    }
    for spec in routes::specs() {
        let Some(item) = doc.paths.paths.get_mut(spec.path) else { continue };
        let Some(op) = operation_mut(item, spec.method) else { continue };
        let (context, scheme) = match spec.access {
            Access::Public => continue,
            Access::Hmac => ("HMAC-signed request", "hmac"),
            Access::Account(_) => ("account token", "bearer"),
            Access::Tenant(_) => ("tenant token", "bearer"),
            Access::AccountOrTenant { .. } => ("account or tenant token", "bearer"),
        };
        let roles: Vec<&str> = spec.access.roles().iter().map(|r| r.as_str()).collect();
        let mut note = format!("**Access:** {context}");
        if !roles.is_empty() {
            note.push_str(&format!(" with any of the roles `{}`", roles.join("`, `")));
        }
        op.description = Some(match op.description.take() {
            Some(d) if !d.is_empty() => format!("{d}\n\n{note}."),
            _ => format!("{note}."),
        });
        op.security = Some(vec![SecurityRequirement::new::<&str, [&str; 0], &str>(scheme, [])]);
    }
    doc
}

pub async fn openapi_json(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], state.docs.openapi_json.clone()).into_response()
}

pub async fn reference_page(State(state): State<AppState>) -> Response {
    crate::pages::secure(state.docs.reference_html.clone().into_response(), &crate::pages::Csp::own_styles_only())
}

pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../assets/reference.css")).into_response()
}

/// The rendered documents, built once at start-up.
pub struct Documents {
    pub openapi_json: String,
    pub reference_html: String,
}

impl Documents {
    pub fn build() -> Self {
        let doc = openapi();
        let openapi_json = doc.to_pretty_json().expect("the OpenAPI document serialises");
        let value: serde_json::Value = serde_json::from_str(&openapi_json).expect("own JSON");
        Self { reference_html: render_reference(&value), openapi_json }
    }
}

use crate::pages::escape;

/// `#/components/schemas/Name` → `Name`; arrays as `[Name]`.
fn schema_name(schema: &serde_json::Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(|r| r.as_str()) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    if let Some(items) = schema.get("items") {
        return format!("[{}]", schema_name(items));
    }
    match schema.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect::<Vec<_>>().join(" | "),
        _ => "object".into(),
    }
}

fn render_reference(doc: &serde_json::Value) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Baton API reference</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/docs/reference.css\"></head><body><main>\
         <h1>Baton API reference</h1><p>Machine-readable: <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI 3.1). \
         Errors always use the <a href=\"#schema-ErrorEnvelope\">error envelope</a>.</p>",
    );
    let empty = serde_json::Map::new();
    let paths = doc.get("paths").and_then(|p| p.as_object()).unwrap_or(&empty);
    html.push_str("<nav><h2>Endpoints</h2><ul>");
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap_or(&empty) {
            let id = format!("{method}-{path}").replace(['/', '{', '}'], "_");
            let summary = op.get("summary").and_then(|s| s.as_str()).unwrap_or("");
            html.push_str(&format!(
                "<li><a href=\"#{id}\"><span class=\"method {m}\">{M}</span> <code>{p}</code></a> {s}</li>",
                m = escape(method),
                M = escape(&method.to_uppercase()),
                p = escape(path),
                s = escape(summary)
            ));
        }
    }
    html.push_str("</ul></nav>");
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap_or(&empty) {
            let id = format!("{method}-{path}").replace(['/', '{', '}'], "_");
            html.push_str(&format!(
                "<section id=\"{id}\" class=\"operation\"><h3><span class=\"method {m}\">{M}</span> <code>{p}</code></h3>",
                m = escape(method),
                M = escape(&method.to_uppercase()),
                p = escape(path)
            ));
            for key in ["summary", "description"] {
                if let Some(text) = op.get(key).and_then(|s| s.as_str()) {
                    for para in text.split("\n\n") {
                        html.push_str(&format!("<p>{}</p>", escape(para).replace('`', "")));
                    }
                }
            }
            if let Some(params) = op.get("parameters").and_then(|p| p.as_array()) {
                html.push_str("<h4>Parameters</h4><ul>");
                for p in params {
                    html.push_str(&format!(
                        "<li><code>{}</code> ({})</li>",
                        escape(p.get("name").and_then(|n| n.as_str()).unwrap_or("")),
                        escape(p.get("in").and_then(|n| n.as_str()).unwrap_or(""))
                    ));
                }
                html.push_str("</ul>");
            }
            if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                let name = schema_name(schema);
                html.push_str(&format!(
                    "<h4>Request body</h4><p><a href=\"#schema-{n}\">{n}</a></p>",
                    n = escape(&name)
                ));
            }
            html.push_str("<h4>Responses</h4><ul>");
            for (status, resp) in op.get("responses").and_then(|r| r.as_object()).unwrap_or(&empty) {
                let desc = resp.get("description").and_then(|d| d.as_str()).unwrap_or("");
                let body = resp
                    .pointer("/content/application~1json/schema")
                    .map(|s| {
                        format!(
                            " — <a href=\"#schema-{n}\">{n}</a>",
                            n = escape(schema_name(s).trim_matches(['[', ']']))
                        )
                    })
                    .unwrap_or_default();
                html.push_str(&format!("<li><strong>{}</strong> {}{}</li>", escape(status), escape(desc), body));
            }
            html.push_str("</ul></section>");
        }
    }
    html.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = doc.pointer("/components/schemas").and_then(|s| s.as_object()) {
        for (name, schema) in schemas {
            html.push_str(&format!("<section id=\"schema-{n}\" class=\"schema\"><h3>{n}</h3><table><tr><th>Property</th><th>Type</th><th>Notes</th></tr>", n = escape(name)));
            let required: Vec<&str> = schema
                .get("required")
                .and_then(|r| r.as_array())
                .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let mut props: Vec<(&String, &serde_json::Value)> = Vec::new();
            if let Some(p) = schema.get("properties").and_then(|p| p.as_object()) {
                props.extend(p.iter());
            }
            for part in schema.get("allOf").and_then(|a| a.as_array()).into_iter().flatten() {
                if let Some(p) = part.get("properties").and_then(|p| p.as_object()) {
                    props.extend(p.iter());
                }
            }
            for (prop, s) in props {
                let note = s.get("description").and_then(|d| d.as_str()).unwrap_or("");
                let req = if required.contains(&prop.as_str()) { " (required)" } else { "" };
                html.push_str(&format!(
                    "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(prop),
                    req,
                    escape(&schema_name(s)),
                    escape(note).replace('`', "")
                ));
            }
            html.push_str("</table></section>");
        }
    }
    html.push_str("</main></body></html>");
    html
}
