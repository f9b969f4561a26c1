//! What the EXT listings share (`GET /v1/order-management`, `GET /v1/instructions`,
//! `GET /v1/chargebacks`): the page size, the opaque cursor and the cut of the rows
//! fetched into a page. Each listing pages by keyset on `(created_at, id)`, in its own
//! order, fetching `limit + 1` rows to know whether a next page follows.

use baton_domain::Problem;
use baton_store::Keyset;

/// One page of a listing; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// Which listing a cursor belongs to, so one listing's cursor is refused by the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    Orders,
    Instructions,
    Chargebacks,
}

impl Listing {
    fn tag(self) -> &'static str {
        match self {
            Listing::Orders => "o",
            Listing::Instructions => "i",
            Listing::Chargebacks => "c",
        }
    }
}

/// The opaque cursor: base64url (no padding) of `<listing>:<created_at ms>:<id>`.
fn encode_cursor(listing: Listing, created_at: i64, id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{created_at}:{id}", listing.tag()))
}

pub(crate) fn decode_cursor(listing: Listing, cursor: &str) -> Result<Keyset, Problem> {
    use base64::Engine as _;
    let invalid =
        || Problem::invalid_field("INVALID_CURSOR", "cursor", "{field} is not a cursor returned by this listing.");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, ':');
    let (Some(tag), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let at: i64 = at.parse().map_err(|_| invalid())?;
    let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if tag != listing.tag() || at < 0 || !id_ok {
        return Err(invalid());
    }
    Ok(Keyset { created_at: at, id: id.to_string() })
}

/// `limit` as sent (already trimmed; `None` when absent or blank): 1 to
/// [`MAX_PAGE_SIZE`], [`DEFAULT_PAGE_SIZE`] when absent. A bad one adds `INVALID_LIMIT`.
pub(crate) fn parse_limit(limit: Option<&str>, problems: &mut Vec<Problem>) -> u32 {
    match limit {
        None => DEFAULT_PAGE_SIZE,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                problems.push(
                    Problem::invalid_field("INVALID_LIMIT", "limit", "{field} must be an integer from 1 to 200.")
                        .detail("value", l.chars().take(16).collect::<String>()),
                );
                DEFAULT_PAGE_SIZE
            }
        },
    }
}

/// Cuts the `limit + 1` rows fetched down to the page, with the cursor of its last
/// row when more follow.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    limit: u32,
    listing: Listing,
    key: impl Fn(&T) -> (i64, &str),
) -> (Vec<T>, Option<String>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|last| {
            let (at, id) = key(last);
            encode_cursor(listing, at, id)
        })
    } else {
        None
    };
    (rows, next)
}
