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

#[cfg(test)]
mod tests {
    use super::*;

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
