//! Problems: the stable, client-facing description of why a request was refused.
//!
//! Every layer reports refusals as [`Problem`]s; the HTTP layer renders them into
//! the error envelope (SPEC §1). `code` values are part of the API contract.

use std::borrow::Cow;
use std::fmt;

/// The class of a problem; the HTTP layer maps it onto a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    BadRequest,
    Unauthorized,
    PaymentRequired,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    Unavailable,
}

/// One refusal: a stable `code`, a message template whose `{placeholders}` are
/// filled from `details` (plus the correlation id added when rendered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub code: Cow<'static, str>,
    pub template: Cow<'static, str>,
    pub details: Vec<(Cow<'static, str>, String)>,
}

/// The template used when a problem has nothing more specific to say.
pub const SUPPORT_TEMPLATE: &str = "Please reference {correlationId} when contacting support.";

impl Problem {
    pub fn new(kind: ProblemKind, code: impl Into<Cow<'static, str>>) -> Self {
        Self { kind, code: code.into(), template: Cow::Borrowed(SUPPORT_TEMPLATE), details: Vec::new() }
    }

    pub fn bad_request(code: &'static str) -> Self {
        Self::new(ProblemKind::BadRequest, code)
    }
    pub fn unauthorized(code: &'static str) -> Self {
        Self::new(ProblemKind::Unauthorized, code)
    }
    pub fn forbidden(code: &'static str) -> Self {
        Self::new(ProblemKind::Forbidden, code)
    }
    pub fn not_found(code: &'static str) -> Self {
        Self::new(ProblemKind::NotFound, code)
    }
    pub fn conflict(code: &'static str) -> Self {
        Self::new(ProblemKind::Conflict, code)
    }
    pub fn payment_required(code: &'static str) -> Self {
        Self::new(ProblemKind::PaymentRequired, code)
    }

    /// A validation problem about one input field.
    pub fn invalid_field(code: &'static str, field: impl Into<String>, message: &'static str) -> Self {
        Self::bad_request(code).message(message).detail("field", field)
    }

    pub fn message(mut self, template: impl Into<Cow<'static, str>>) -> Self {
        self.template = template.into();
        self
    }

    pub fn detail(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.details.push((key.into(), value.into()));
        self
    }

    /// The template with every `{key}` replaced by `[value]` from `details` and
    /// `extra`, as the documented envelope shows (`Please reference [id] …`).
    pub fn render(&self, extra: &[(&str, &str)]) -> String {
        let mut out = self.template.to_string();
        for (k, v) in self.details.iter().map(|(k, v)| (k.as_ref(), v.as_str())).chain(extra.iter().copied()) {
            out = out.replace(&format!("{{{k}}}"), &format!("[{v}]"));
        }
        out
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.render(&[]))
    }
}

impl std::error::Error for Problem {}

/// One or more problems of the same kind, reported together (e.g. one per bad field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn kind(&self) -> ProblemKind {
        self.0.first().map(|p| p.kind).unwrap_or(ProblemKind::Internal)
    }

    /// Collects validation results: `Ok` when `problems` is empty.
    pub fn into_result(problems: Vec<Problem>) -> Result<(), Problems> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(problems))
        }
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Problems(vec![p])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_details_and_extra() {
        let p = Problem::invalid_field(
            "INVALID_COUNTRY",
            "country",
            "{field} is not a supported country ({correlationId}).",
        );
        assert_eq!(p.render(&[("correlationId", "X:1")]), "[country] is not a supported country ([X:1]).");
    }
}
