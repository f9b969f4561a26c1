//! Generated SVG badges for payment methods and reward brands: small self-contained
//! documents (a coloured card with a short label), so that no image comes from a third party.

use std::fmt::Write;

/// Width and height of a badge (an 8:5 card).
pub const BADGE_WIDTH: u32 = 160;
pub const BADGE_HEIGHT: u32 = 100;

/// A badge titled `title`, showing `short`, coloured from a hash of `seed`.
pub(crate) fn badge_svg(title: &str, short: &str, seed: &str) -> String {
    let hue = fnv1a(seed) % 360;
    let font_size = match short.chars().count() {
        0..=2 => 44,
        3 => 38,
        4 => 32,
        _ => 24,
    };
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{title}">"#,
            r#"<title>{title}</title>"#,
            r#"<rect width="{w}" height="{h}" rx="12" fill="hsl({hue},55%,38%)"/>"#,
            r#"<rect x="8" y="8" width="{iw}" height="{ih}" rx="8" fill="none" stroke="hsl({hue},60%,70%)" stroke-width="2"/>"#,
            r##"<text x="{cx}" y="{ty}" text-anchor="middle" dominant-baseline="middle" font-family="system-ui,sans-serif" font-size="{font_size}" font-weight="700" fill="#ffffff">{short}</text>"##,
            "</svg>"
        ),
        w = BADGE_WIDTH,
        h = BADGE_HEIGHT,
        iw = BADGE_WIDTH - 16,
        ih = BADGE_HEIGHT - 16,
        cx = BADGE_WIDTH / 2,
        ty = BADGE_HEIGHT / 2 + 2,
        title = escape(title),
        short = escape(short),
        hue = hue,
        font_size = font_size,
    );
    out
}

/// Up to two initials of `name`'s words (`Caffè Nero` → `CN`), or its first two letters
/// when it has one word (`Amazon.de` → `AM`).
pub(crate) fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).collect();
    let first_alnum = |w: &str| w.chars().find(|c| c.is_alphanumeric());
    let out: String = match words.as_slice() {
        [] => String::new(),
        [one] => one.chars().filter(|c| c.is_alphanumeric()).take(2).collect(),
        many => many.iter().filter_map(|w| first_alnum(w)).take(2).collect(),
    };
    out.to_uppercase()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_of_names() {
        assert_eq!(initials("Caffè Nero"), "CN");
        assert_eq!(initials("Amazon.de"), "AM");
        assert_eq!(initials("Sandbox Prepaid Visa"), "SP");
        assert_eq!(initials(""), "");
    }

    #[test]
    fn badges_escape_and_stay_local() {
        let svg = badge_svg("Fish & <Chips>", "F&C", "fish");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Fish &amp; &lt;Chips&gt;") && svg.contains("F&amp;C"));
        assert!(!svg.contains("href"));
        assert_eq!(badge_svg("a", "A", "same"), badge_svg("a", "A", "same"));
    }
}
