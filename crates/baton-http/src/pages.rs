//! What every HTML page Baton serves shares: one escaper for text placed outside a
//! template, one Content-Security-Policy builder with a fresh nonce per page, and one
//! set of security headers. The hosted checkout, the pay-by-link pages and the API
//! reference use it; templates are askama (escaping by default), with layouts under
//! `templates/`. See "Adding a page" in `docs/design.md`.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use base64::Engine as _;

/// Marks a response whose body is a page: the error envelope is not rendered over it.
#[derive(Debug, Clone, Copy)]
pub struct PageBody;

/// A fresh nonce for one page's inline styles and scripts.
pub fn nonce() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

/// Text made safe for HTML content and attribute values (the characters askama escapes).
pub use baton_domain::text::escape_html as escape;

/// A page's Content-Security-Policy: nothing is allowed but what is named, never a
/// third party unless the tenant named it (callback origins, embedding parents).
#[derive(Debug, Clone)]
pub struct Csp {
    nonce: Option<String>,
    /// Stylesheets and scripts served by Baton itself (`'self'`).
    own_assets: bool,
    scripts: bool,
    images: &'static str,
    form_action: Vec<String>,
    frame_ancestors: Vec<String>,
}

impl Csp {
    /// Styles (and, with [`Self::scripts`], scripts) only inline with `nonce` or from
    /// Baton; no forms, no framing but by Baton's own pages.
    pub fn with_nonce(nonce: &str) -> Self {
        Self {
            nonce: Some(nonce.to_string()),
            own_assets: false,
            scripts: false,
            images: "data:",
            form_action: Vec::new(),
            frame_ancestors: vec!["'self'".into()],
        }
    }

    /// Styles from Baton only, nothing inline; never framed.
    pub fn own_styles_only() -> Self {
        Self {
            nonce: None,
            own_assets: true,
            scripts: false,
            images: "",
            form_action: Vec::new(),
            frame_ancestors: vec!["'none'".into()],
        }
    }

    /// Stylesheets, scripts and images served by Baton.
    pub fn own_assets(mut self) -> Self {
        self.own_assets = true;
        self.images = "'self' data:";
        self
    }

    /// Scripts: inline with the nonce (and Baton's own, with [`Self::own_assets`]).
    pub fn scripts(mut self) -> Self {
        self.scripts = true;
        self
    }

    /// Forms may post to Baton and to `targets` (origins).
    pub fn form_action(mut self, targets: &[String]) -> Self {
        self.form_action = std::iter::once("'self'".to_string()).chain(targets.iter().cloned()).collect();
        self
    }

    /// Pages of `origins`, besides Baton's own, may embed this one.
    pub fn frame_ancestors(mut self, origins: &[String]) -> Self {
        self.frame_ancestors = std::iter::once("'self'".to_string()).chain(origins.iter().cloned()).collect();
        self
    }

    /// The header's value.
    pub fn header(&self) -> String {
        let sources = |kind: &str| -> String {
            let mut s: Vec<String> = Vec::new();
            if self.own_assets {
                s.push("'self'".into());
            }
            if let Some(n) = &self.nonce {
                s.push(format!("'nonce-{n}'"));
            }
            if s.is_empty() {
                format!("{kind} 'none'")
            } else {
                format!("{kind} {}", s.join(" "))
            }
        };
        let mut parts = vec!["default-src 'none'".to_string(), sources("style-src")];
        if self.scripts {
            parts.push(sources("script-src"));
        }
        if !self.images.is_empty() {
            parts.push(format!("img-src {}", self.images));
        }
        if self.scripts {
            parts.push("connect-src 'none'".into());
            parts.push("font-src 'none'".into());
        }
        let form_action = if self.form_action.is_empty() { "'none'".to_string() } else { self.form_action.join(" ") };
        parts.push(format!("form-action {form_action}"));
        parts.push("base-uri 'none'".into());
        parts.push(format!("frame-ancestors {}", self.frame_ancestors.join(" ")));
        parts.join("; ")
    }
}

/// Marks `response` as an HTML page and gives it the headers every page carries: its
/// CSP, no referrer, no caching, no sniffing, its own browsing context, no device APIs.
pub fn secure(mut response: Response, csp: &Csp) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp.header()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    );
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.extensions_mut().insert(PageBody);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_policy_is_unchanged() {
        let csp = Csp::with_nonce("N")
            .own_assets()
            .scripts()
            .form_action(&["https://shop.example".into()])
            .frame_ancestors(&["https://parent.example".into()]);
        assert_eq!(
            csp.header(),
            "default-src 'none'; style-src 'self' 'nonce-N'; script-src 'self' 'nonce-N'; img-src 'self' data:; \
             connect-src 'none'; font-src 'none'; form-action 'self' https://shop.example; base-uri 'none'; \
             frame-ancestors 'self' https://parent.example"
        );
    }

    #[test]
    fn the_link_and_reference_policies() {
        let link = Csp::with_nonce("N").frame_ancestors(&[]);
        assert_eq!(
            link.header(),
            "default-src 'none'; style-src 'nonce-N'; img-src data:; form-action 'none'; base-uri 'none'; \
             frame-ancestors 'self'"
        );
        assert_eq!(
            Csp::own_styles_only().header(),
            "default-src 'none'; style-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
        );
    }
}
