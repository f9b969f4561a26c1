//! Characters text from outside may not hold.
//!
//! PostgreSQL cannot store NUL in text at all, so NUL is refused in every string at the
//! edge (JSON bodies, forms, path segments, query strings), the same on every backend.
//! Other control characters in an id, a reference, a name, an address or metadata are
//! never meant (they hide text in logs and pages and make one value look like another):
//! each of those types refuses them when it parses its input, with its own error code.
//! Tab, line feed and carriage return stay allowed in free text that may span lines.

/// Whether `c` is refused in input text: NUL and the other C0 controls except tab,
/// line feed and carriage return, DEL, and the C1 controls (U+0080–U+009F).
pub fn is_refused_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Whether `s` holds a NUL, which no text column can store.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// Whether `s` holds a character [`is_refused_control`] refuses.
pub fn has_refused_control(s: &str) -> bool {
    s.chars().any(is_refused_control)
}

/// Text made safe for HTML content and attribute values: the one escaper of the pages
/// (`baton_http::pages`) and the e-mails (built in the engine), for text placed outside
/// a template.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }

    #[test]
    fn nul_and_controls_are_refused_but_line_breaks_and_tabs_are_not() {
        for s in ["a\0b", "\u{1}", "x\u{1b}[31m", "\u{7f}", "\u{85}", "\u{9f}"] {
            assert!(has_refused_control(s), "{s:?}");
        }
        for s in ["", "plain", "two\nlines\r\n", "tab\there", "Grüße – €", "\u{a0}", "\u{fffd}"] {
            assert!(!has_refused_control(s), "{s:?}");
        }
    }
}
