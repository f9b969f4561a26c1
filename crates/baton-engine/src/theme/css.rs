//! Sanitising and minifying tenants' stylesheets for the hosted checkout.
//!
//! The stylesheet is tokenised by `cssparser` (Servo's implementation of CSS Syntax
//! Level 3), so escapes, comments and nesting are read as a browser reads them, and
//! the rules are rebuilt from the tokens. What could fetch anything or run anything
//! does not survive:
//!
//! - at-rules other than `@media`, `@supports`, `@container`, `@layer`, `@keyframes`,
//!   `@font-face`, `@page`, `@property` and `@counter-style` (so `@import`,
//!   `@namespace`, `@charset`, `@document` go);
//! - declarations using `url()` (other than inline raster images: `data:image/png`,
//!   `gif`, `jpeg` or `webp` in base64, which load nothing and cannot script), or the
//!   functions `image()`, `image-set()`, `cross-fade()`, `element()`, `src()`,
//!   `paint()` and `expression()`;
//! - the properties `behavior`, `-moz-binding` and their relatives, and any value
//!   naming a `javascript:` or `vbscript:` URL;
//! - anything malformed (bad strings and URLs, unmatched brackets), and the
//!   `<!--`/`-->` markers.
//!
//! The output has no comments and no whitespace that is not needed; strings are
//! re-escaped so that `<` never appears in them, and the result never contains
//! `</` or `<!--`, so it cannot close the `<style>` element it is placed in.

use std::fmt::Write as _;

use cssparser::{ParseError, Parser, ToCss, Token};

/// Nesting deeper than this is dropped (a guard against pathological input).
const MAX_DEPTH: usize = 32;

/// A token, or a block with its contents, owned.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Ident(String),
    AtKeyword(String),
    /// A `#` token, already serialised.
    Hash(String),
    Str(String),
    Url(String),
    Delim(char),
    /// A number, percentage or dimension, already serialised.
    Num(String),
    /// `:` `,` `~=` `|=` `^=` `$=` `*=`, as written.
    Punct(&'static str),
    Semicolon,
    Ws,
    Function(String, Vec<Node>),
    Paren(Vec<Node>),
    Square(Vec<Node>),
    Curly(Vec<Node>),
    /// A bad string or URL, or an unmatched closing bracket.
    Bad,
}

fn read<'i>(p: &mut Parser<'i>, depth: usize) -> Vec<Node> {
    let mut out = Vec::new();
    while let Ok(token) = p.next_including_whitespace_and_comments() {
        let token = token.clone();
        let nested = |p: &mut Parser<'i>| -> Vec<Node> {
            if depth >= MAX_DEPTH {
                return vec![Node::Bad];
            }
            p.parse_nested_block(|p| Ok::<_, ParseError<()>>(read(p, depth + 1))).unwrap_or_else(|_| vec![Node::Bad])
        };
        let node = match token {
            Token::WhiteSpace(_) | Token::Comment(_) => Node::Ws,
            Token::Ident(v) => Node::Ident(v.to_string()),
            Token::AtKeyword(v) => Node::AtKeyword(v.to_string()),
            t @ (Token::Hash(_) | Token::IDHash(_)) => Node::Hash(t.to_css_string()),
            Token::QuotedString(v) => Node::Str(v.to_string()),
            Token::UnquotedUrl(v) => Node::Url(v.to_string()),
            Token::Delim(c) => Node::Delim(c),
            t @ (Token::Number { .. } | Token::Percentage { .. } | Token::Dimension { .. }) => {
                Node::Num(t.to_css_string())
            }
            Token::Colon => Node::Punct(":"),
            Token::Comma => Node::Punct(","),
            Token::IncludeMatch => Node::Punct("~="),
            Token::DashMatch => Node::Punct("|="),
            Token::PrefixMatch => Node::Punct("^="),
            Token::SuffixMatch => Node::Punct("$="),
            Token::SubstringMatch => Node::Punct("*="),
            Token::Semicolon => Node::Semicolon,
            Token::CDO | Token::CDC => Node::Ws,
            Token::Function(name) => {
                let inner = nested(p);
                if name.eq_ignore_ascii_case("url") {
                    // `url("…")`: the same as an unquoted URL.
                    let args: Vec<&Node> = inner.iter().filter(|n| **n != Node::Ws).collect();
                    match args.as_slice() {
                        [Node::Str(s)] => Node::Url(s.clone()),
                        _ => Node::Bad,
                    }
                } else {
                    Node::Function(name.to_string(), inner)
                }
            }
            Token::ParenthesisBlock => Node::Paren(nested(p)),
            Token::SquareBracketBlock => Node::Square(nested(p)),
            Token::CurlyBracketBlock => Node::Curly(nested(p)),
            Token::BadUrl(_)
            | Token::BadString(_)
            | Token::CloseParenthesis
            | Token::CloseSquareBracket
            | Token::CloseCurlyBracket => Node::Bad,
        };
        out.push(node);
    }
    out
}

/// Functions that fetch something or run something.
const FORBIDDEN_FUNCTIONS: &[&str] = &[
    "expression",
    "image",
    "image-set",
    "-webkit-image-set",
    "cross-fade",
    "-webkit-cross-fade",
    "element",
    "-moz-element",
    "src",
    "paint",
    "url",
];

/// Properties that attach behaviour or bindings.
const FORBIDDEN_PROPERTIES: &[&str] =
    &["behavior", "-ms-behavior", "behaviour", "-moz-binding", "binding", "-o-link", "-o-link-source"];

/// An inline raster image in base64: loads nothing, runs nothing.
fn is_safe_data_image(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["data:image/png;base64,", "data:image/gif;base64,", "data:image/jpeg;base64,", "data:image/webp;base64,"]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix))
        .is_some_and(|data| !data.is_empty() && data.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)))
}

fn names_script_url(text: &str) -> bool {
    let squashed: String = text.chars().filter(|c| !c.is_whitespace() && !c.is_control()).collect();
    let lower = squashed.to_ascii_lowercase();
    lower.contains("javascript:") || lower.contains("vbscript:")
}

/// Whether every node (recursively) is harmless in a value or prelude.
fn is_safe(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| match n {
        Node::Bad | Node::AtKeyword(_) | Node::Curly(_) => false,
        Node::Url(u) => is_safe_data_image(u),
        Node::Ident(s) | Node::Str(s) => !names_script_url(s),
        Node::Function(name, inner) => {
            !FORBIDDEN_FUNCTIONS.iter().any(|f| f.eq_ignore_ascii_case(name))
                && !names_script_url(name)
                && is_safe(inner)
        }
        Node::Paren(inner) | Node::Square(inner) => is_safe(inner),
        _ => true,
    })
}

/// Writes a string token: quoted, with `"`, `\`, `<`, `>` and control characters
/// escaped as hexadecimal, so nothing in it can end a `<style>` element.
fn write_string(value: &str, out: &mut String) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' | '<' | '>' => {
                let _ = write!(out, "\\{:x} ", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\{:x} ", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether whitespace next to this node can go (on both sides).
fn absorbs_space(n: &Node) -> bool {
    matches!(n, Node::Punct(",") | Node::Semicolon | Node::Curly(_) | Node::Delim('>' | '~' | '!'))
}

/// Whether whitespace after this node can go: also after `:` (but not before it,
/// where it separates a descendant from a pseudo-class: `a :hover`).
fn absorbs_space_after(n: &Node) -> bool {
    absorbs_space(n) || matches!(n, Node::Punct(":"))
}

/// Writes nodes with the least whitespace that keeps their meaning.
fn write_nodes(nodes: &[Node], out: &mut String) {
    let mut prev: Option<&Node> = None;
    let mut pending_space = false;
    for n in nodes {
        if *n == Node::Ws {
            pending_space = prev.is_some();
            continue;
        }
        if pending_space && !prev.is_some_and(absorbs_space_after) && !absorbs_space(n) {
            out.push(' ');
        }
        pending_space = false;
        write_node(n, out);
        prev = Some(n);
    }
}

fn write_node(n: &Node, out: &mut String) {
    match n {
        Node::Ident(v) => {
            let _ = Token::Ident(v.as_str().into()).to_css(out);
        }
        Node::AtKeyword(v) => {
            let _ = Token::AtKeyword(v.as_str().into()).to_css(out);
        }
        Node::Hash(s) | Node::Num(s) => out.push_str(s),
        Node::Str(s) => write_string(s, out),
        Node::Url(u) => {
            // Only checked data images get here: base64 characters, no quotes or spaces.
            out.push_str("url(");
            out.push_str(u.trim());
            out.push(')');
        }
        Node::Delim(c) => out.push(*c),
        Node::Punct(p) => out.push_str(p),
        Node::Semicolon => out.push(';'),
        Node::Ws => out.push(' '),
        Node::Function(name, inner) => {
            let _ = Token::Function(name.as_str().into()).to_css(out);
            write_nodes(inner, out);
            out.push(')');
        }
        Node::Paren(inner) => {
            out.push('(');
            write_nodes(inner, out);
            out.push(')');
        }
        Node::Square(inner) => {
            out.push('[');
            write_nodes(inner, out);
            out.push(']');
        }
        Node::Curly(inner) => {
            out.push('{');
            write_nodes(inner, out);
            out.push('}');
        }
        Node::Bad => {}
    }
}

fn trim(nodes: &[Node]) -> &[Node] {
    let start = nodes.iter().position(|n| *n != Node::Ws).unwrap_or(nodes.len());
    let end = nodes.iter().rposition(|n| *n != Node::Ws).map_or(start, |e| e + 1);
    &nodes[start..end.max(start)]
}

/// What a block of an at-rule holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    Rules,
    Declarations,
}

struct Sanitizer {
    dropped: usize,
}

impl Sanitizer {
    /// A list of rules (the stylesheet, or the block of `@media` at the top level).
    fn rules(&mut self, nodes: &[Node], depth: usize) -> String {
        let mut out = String::new();
        let mut start = 0;
        let mut i = 0;
        while i < nodes.len() {
            match &nodes[i] {
                Node::Curly(block) => {
                    out.push_str(&self.rule(&nodes[start..i], Some(block), Body::Rules, depth));
                    start = i + 1;
                }
                Node::Semicolon => {
                    let prelude = trim(&nodes[start..i]);
                    if !prelude.is_empty() {
                        out.push_str(&self.rule(prelude, None, Body::Rules, depth));
                    }
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        if !trim(&nodes[start..]).is_empty() {
            // A prelude without a block: not a rule.
            self.dropped += 1;
        }
        out
    }

    /// One rule: an at-rule, or a style rule with its declarations. `context` is what
    /// the enclosing block holds (rules at the top, declarations inside a style rule).
    fn rule(&mut self, prelude: &[Node], block: Option<&Vec<Node>>, context: Body, depth: usize) -> String {
        let prelude = trim(prelude);
        if depth > MAX_DEPTH {
            self.dropped += 1;
            return String::new();
        }
        if let Some(Node::AtKeyword(name)) = prelude.first() {
            return self.at_rule(name, trim(&prelude[1..]), block, context, depth);
        }
        let Some(block) = block else {
            self.dropped += 1;
            return String::new();
        };
        if prelude.is_empty() || !is_safe(prelude) {
            self.dropped += 1;
            return String::new();
        }
        let body = self.declarations(block, depth + 1);
        if body.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        write_nodes(prelude, &mut out);
        out.push('{');
        out.push_str(&body);
        out.push('}');
        out
    }

    fn at_rule(
        &mut self,
        name: &str,
        prelude: &[Node],
        block: Option<&Vec<Node>>,
        context: Body,
        depth: usize,
    ) -> String {
        let lower = name.to_ascii_lowercase();
        let body = match lower.as_str() {
            "media" | "supports" | "container" | "layer" => context,
            "keyframes" | "-webkit-keyframes" | "-moz-keyframes" => Body::Rules,
            "font-face" | "page" | "property" | "counter-style" => Body::Declarations,
            _ => {
                self.dropped += 1;
                return String::new();
            }
        };
        if !is_safe(prelude) {
            self.dropped += 1;
            return String::new();
        }
        let mut out = String::new();
        let _ = Token::AtKeyword(name.into()).to_css(&mut out);
        if !prelude.is_empty() {
            let needs_space = !matches!(prelude.first(), Some(Node::Paren(_)));
            if needs_space {
                out.push(' ');
            }
            write_nodes(prelude, &mut out);
        }
        match block {
            None if lower == "layer" => {
                out.push(';');
                out
            }
            None => {
                self.dropped += 1;
                String::new()
            }
            Some(block) => {
                let inner = match body {
                    Body::Rules => self.rules(block, depth + 1),
                    Body::Declarations => self.declarations(block, depth + 1),
                };
                if inner.is_empty() {
                    return String::new();
                }
                out.push('{');
                out.push_str(&inner);
                out.push('}');
                out
            }
        }
    }

    /// Declarations (and nested rules) of a block, joined by `;`.
    fn declarations(&mut self, nodes: &[Node], depth: usize) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut start = 0;
        for (i, n) in nodes.iter().enumerate() {
            match n {
                Node::Semicolon => {
                    if let Some(d) = self.declaration(&nodes[start..i]) {
                        parts.push(d);
                    }
                    start = i + 1;
                }
                Node::Curly(block) => {
                    // A nested rule: what came since the last `;` is its prelude.
                    let nested = self.rule(&nodes[start..i], Some(block), Body::Declarations, depth + 1);
                    if !nested.is_empty() {
                        parts.push(nested);
                    }
                    start = i + 1;
                }
                _ => {}
            }
        }
        if let Some(d) = self.declaration(&nodes[start..]) {
            parts.push(d);
        }
        // A nested rule needs no `;` after it, but one does no harm and keeps this simple.
        parts.join(";")
    }

    fn declaration(&mut self, nodes: &[Node]) -> Option<String> {
        let nodes = trim(nodes);
        if nodes.is_empty() {
            return None;
        }
        let (Node::Ident(name), rest) = (&nodes[0], &nodes[1..]) else {
            self.dropped += 1;
            return None;
        };
        let rest = trim(rest);
        let Some((Node::Punct(":"), value)) = rest.split_first() else {
            self.dropped += 1;
            return None;
        };
        let value = trim(value);
        let lower = name.to_ascii_lowercase();
        if value.is_empty() || FORBIDDEN_PROPERTIES.contains(&lower.as_str()) || !is_safe(value) {
            self.dropped += 1;
            return None;
        }
        let mut out = String::new();
        let _ = Token::Ident(name.as_str().into()).to_css(&mut out);
        out.push(':');
        write_nodes(value, &mut out);
        Some(out)
    }
}

/// A sanitised stylesheet and how many rules or declarations were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanitizedCss {
    pub css: String,
    pub dropped: usize,
}

/// Never lets the text close an HTML element or open a comment, whatever it holds.
fn seal_for_html(css: String) -> String {
    css.replace("</", "<\\/").replace("<!--", "<\\!--")
}

/// Sanitises and minifies a stylesheet (see the module docs).
pub fn sanitize_stylesheet(css: &str) -> SanitizedCss {
    let mut parser = Parser::new(css);
    let nodes = read(&mut parser, 0);
    let mut s = Sanitizer { dropped: 0 };
    let out = s.rules(&nodes, 0);
    SanitizedCss { css: seal_for_html(out), dropped: s.dropped }
}

/// One property value (an input field style): harmless tokens only, no `;` or
/// blocks; minified. `None` if it is not a safe value.
pub fn sanitize_value(value: &str) -> Option<String> {
    let mut parser = Parser::new(value);
    let nodes = read(&mut parser, 0);
    let nodes = trim(&nodes);
    if nodes.is_empty() || nodes.iter().any(|n| matches!(n, Node::Semicolon)) || !is_safe(nodes) {
        return None;
    }
    let mut out = String::new();
    write_nodes(nodes, &mut out);
    let out = seal_for_html(out);
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(css: &str) -> String {
        sanitize_stylesheet(css).css
    }

    #[test]
    fn minifies_without_changing_meaning() {
        let css = "/* brand */\n.button ,  a:hover > span {\n  color : #0B5CAD ;\n  margin: 0 auto !important;\n  width: calc(100% - 2 * 8px);\n}\n\n@media (max-width: 600px) {\n  .card { padding: 8px 12px; }\n}\n";
        assert_eq!(
            clean(css),
            ".button,a:hover>span{color:#0B5CAD;margin:0 auto!important;width:calc(100% - 2 * 8px)}\
             @media(max-width:600px){.card{padding:8px 12px}}"
        );
        assert_eq!(
            clean("a b  .c{font-family: \"Open Sans\", sans-serif}"),
            "a b .c{font-family:\"Open Sans\",sans-serif}"
        );
        assert_eq!(clean(".a{}"), "");
        assert_eq!(
            clean("@keyframes pulse { from { opacity: 0 } 50% { opacity: .5 } }"),
            "@keyframes pulse{from{opacity:0}50%{opacity:0.5}}"
        );
        assert_eq!(clean(".a { color: red; .b & { color: blue } }"), ".a{color:red;.b &{color:blue}}");
        assert_eq!(clean(":root{--brand: #123456}"), ":root{--brand:#123456}");
    }

    #[test]
    fn drops_what_loads_or_runs() {
        let cases = [
            "@import url(https://evil.example/x.css); .a{color:red}",
            "@import 'https://evil.example/x.css'; .a{color:red}",
            ".a{background:url(https://evil.example/x.png);color:red}",
            ".a{background:url('//evil.example/x.png');color:red}",
            ".a{background-image:\\75 rl(https://evil.example/x.png);color:red}",
            ".a{background:image-set('https://evil.example/x.png' 1x);color:red}",
            ".a{width:expression(alert(1));color:red}",
            ".a{behavior:url(x.htc);color:red}",
            ".a{-moz-binding:url(x.xml#x);color:red}",
            ".a{background:url(javascript:alert(1));color:red}",
            ".a{cursor:url(data:image/svg+xml;base64,PHN2Zz4=),auto;color:red}",
            ".a{color:red}@namespace svg url(http://www.w3.org/2000/svg);",
            ".a{color:red}@-moz-document url-prefix(){.b{color:blue}}",
            "@font-face{font-family:X;src:url(https://evil.example/f.woff2)}.a{color:red}",
        ];
        for css in cases {
            let out = clean(css);
            assert!(!out.contains("evil") && !out.contains("url(") && !out.contains("@import"), "{css} -> {out}");
            assert!(out.contains(".a{color:red}"), "{css} -> {out}");
        }
        assert_eq!(
            clean("@charset \"utf-8\"; @font-face{font-family:X;src:local(Arial)}"),
            "@font-face{font-family:X;src:local(Arial)}"
        );
    }

    #[test]
    fn keeps_inline_raster_images() {
        let css = ".logo{background:url(data:image/png;base64,iVBORw0KGgo=) no-repeat}";
        assert_eq!(clean(css), css);
        assert_eq!(
            clean(".logo{background:url(\"data:image/png;base64,iVBORw0KGgo=\")}"),
            ".logo{background:url(data:image/png;base64,iVBORw0KGgo=)}"
        );
        assert_eq!(clean(".logo{background:url(data:text/html;base64,PHNjcmlwdD4=)}"), "");
    }

    #[test]
    fn cannot_close_the_style_element() {
        for css in [
            ".a{content:\"</style><script>alert(1)</script>\"}",
            ".a{font-family:'</STYLE'}",
            "</style><script>alert(1)</script>",
            ".a{color:red}<!-- .b{color:blue} -->",
            ".a\\3c/style\\3e{color:red}",
        ] {
            let out = clean(css);
            let lower = out.to_ascii_lowercase();
            assert!(!lower.contains("</") && !lower.contains("<!--") && !lower.contains("<script"), "{css} -> {out}");
        }
        assert_eq!(clean(".a{content:\"</style>\"}"), ".a{content:\"\\3c /style\\3e \"}");
    }

    #[test]
    fn malformed_input_is_dropped_not_passed_through() {
        assert_eq!(clean(".a{color:red;content:\"unterminated\n;} .b{color:blue}"), ".a{color:red}.b{color:blue}");
        assert_eq!(clean(".a{color red} .b{color:blue}"), ".b{color:blue}");
        assert_eq!(clean(".a{color:red}}}} .b{color:blue}"), ".a{color:red}");
        let deep = format!("{}x{}", "(".repeat(200), ")".repeat(200));
        assert!(sanitize_stylesheet(&format!(".a{{width:{deep}}}")).css.is_empty());
    }

    #[test]
    fn values() {
        assert_eq!(sanitize_value("  16px "), Some("16px".into()));
        assert_eq!(sanitize_value("\"Open Sans\", sans-serif"), Some("\"Open Sans\",sans-serif".into()));
        assert_eq!(sanitize_value("0 0 2px rgba(0, 0, 0, .3)"), Some("0 0 2px rgba(0,0,0,0.3)".into()));
        assert_eq!(sanitize_value("red; background: url(x)"), None);
        assert_eq!(sanitize_value("url(https://evil.example)"), None);
        assert_eq!(sanitize_value("red}body{color:blue"), None);
        assert_eq!(sanitize_value(""), None);
    }
}
