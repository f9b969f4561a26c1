//! Control characters in a request's path or query, neutralised before routing.
//!
//! No id, reference or filter value Baton stores can hold a control character
//! (`baton_domain::text`), and PostgreSQL cannot even be asked about one holding NUL.
//! So each percent-encoded control character (`%00`–`%1F`, `%7F`, and the C1 controls
//! `%C2%80`–`%C2%9F`) is replaced by U+FFFD (`%EF%BF%BD`) before any handler reads the
//! URI: such a path id is then answered exactly as any other id that does not exist
//! (the route's own 404, or the 400 of a malformed reference), the same on every
//! backend, and never reaches the database as a NUL.

use axum::extract::Request;
use axum::http::uri::{PathAndQuery, Uri};

const REPLACEMENT: &str = "%EF%BF%BD";

fn hex_byte(s: &[u8]) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    match s {
        [b'%', h, l, ..] => Some(digit(*h)? << 4 | digit(*l)?),
        _ => None,
    }
}

/// `raw` with every percent-encoded control character replaced; `None` when it has none.
pub fn neutralise(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some(b) = hex_byte(&bytes[i..]) else {
            i += 1;
            continue;
        };
        let len = match b {
            0x00..=0x1f | 0x7f => 3,
            0xc2 if hex_byte(&bytes[i + 3..]).is_some_and(|c| (0x80..=0x9f).contains(&c)) => 6,
            _ => {
                i += 3;
                continue;
            }
        };
        out.push_str(&raw[copied..i]);
        out.push_str(REPLACEMENT);
        i += len;
        copied = i;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&raw[copied..]);
    Some(out)
}

/// Rewrites the request's URI if its path or query holds an encoded control character.
pub fn neutralise_request(mut request: Request) -> Request {
    let Some(rewritten) = request.uri().path_and_query().and_then(|pq| neutralise(pq.as_str())) else {
        return request;
    };
    let mut parts = request.uri().clone().into_parts();
    match rewritten.parse::<PathAndQuery>() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return request,
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_controls_become_the_replacement_character() {
        assert_eq!(neutralise("/v1/chargebacks/a%00b").as_deref(), Some("/v1/chargebacks/a%EF%BF%BDb"));
        assert_eq!(neutralise("/x/%1f%7F?q=%0A").as_deref(), Some("/x/%EF%BF%BD%EF%BF%BD?q=%EF%BF%BD"));
        assert_eq!(neutralise("/x/%C2%85y").as_deref(), Some("/x/%EF%BF%BDy"));
        assert_eq!(neutralise("/x/%c2%9f").as_deref(), Some("/x/%EF%BF%BD"));
    }

    #[test]
    fn other_encodings_are_left_alone() {
        for raw in ["/v1/chargebacks/abc", "/x/%20y", "/x/%C3%BC", "/x/%C2%A0", "/x/%", "/x/%0", "/x/%zz", "/x/%C2"] {
            assert_eq!(neutralise(raw), None, "{raw}");
        }
    }
}
