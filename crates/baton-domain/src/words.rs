//! `word_enum!`: the enums of fixed API words (`DEBIT`, `FIXED_VALUE`, `READY`, …).
//!
//! Each gets `ALL`, `as_str`, `parse(input, field)` with a stable error code, `FromStr`
//! (case-insensitive, `-` matching `_`), `Display` and `Serialize` as its word.

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident, $err:literal, [$($variant:ident => $text:literal),* $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Parses case-insensitively, `-` matching `_`; `field` names the input for the problem.
            pub fn parse(input: &str, field: &str) -> Result<Self, $crate::problem::Problem> {
                input.parse().map_err(|_| {
                    $crate::problem::Problem::invalid_field($err, field, "{field} is not one of the accepted values.")
                        .detail("value", input.chars().take(32).collect::<String>())
                })
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                let s = s.trim();
                let same = |a: &str| {
                    a.len() == s.len()
                        && a.bytes().zip(s.bytes()).all(|(x, y)| {
                            let norm = |c: u8| if c == b'-' { b'_' } else { c.to_ascii_uppercase() };
                            norm(x) == norm(y)
                        })
                };
                Self::ALL.iter().copied().find(|v| same(v.as_str())).ok_or(())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub(crate) use word_enum;
