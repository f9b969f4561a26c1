//! Pay-by-link (SPEC §4.11, §5.7): the link's statuses, the channels its message is
//! delivered through, the customer's language and e-mail addresses.

use std::fmt;

use crate::problem::Problem;
use crate::words::word_enum;

word_enum!(
    /// Where a pay-by-link stands. `ACTIVE` and `OPENED` links can still be paid; the
    /// others are final.
    PayByLinkStatus, "INVALID_PAY_BY_LINK_STATUS", [
        Active => "ACTIVE",
        Opened => "OPENED",
        Completed => "COMPLETED",
        Expired => "EXPIRED",
        Cancelled => "CANCELLED",
    ]
);

impl PayByLinkStatus {
    /// The statuses in which the link still opens the checkout.
    pub const LIVE: &'static [PayByLinkStatus] = &[PayByLinkStatus::Active, PayByLinkStatus::Opened];

    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }
}

word_enum!(
    /// How a pay-by-link reaches the customer.
    DeliveryChannel, "INVALID_DELIVERY_CHANNEL", [
        Email => "EMAIL",
        Sms => "SMS",
    ]
);

word_enum!(
    /// Where one message stands: queued (and retried), handed to the SMTP server or
    /// SMS gateway, or given up.
    DeliveryStatus, "INVALID_DELIVERY_STATUS", [
        Queued => "QUEUED",
        Sent => "SENT",
        Failed => "FAILED",
    ]
);

word_enum!(
    /// What a message says: the first request to pay, or a reminder.
    MessageTemplate, "INVALID_DELIVERY_TEMPLATE", [
        PaymentRequest => "PAYMENT_REQUEST",
        PaymentReminder => "PAYMENT_REMINDER",
    ]
);

/// The languages customers are addressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    #[default]
    EnGb,
    DeDe,
}

impl Language {
    pub const ALL: &'static [Language] = &[Language::EnGb, Language::DeDe];

    /// The BCP 47 tag (`en-GB`, `de-DE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::EnGb => "en-GB",
            Language::DeDe => "de-DE",
        }
    }

    /// `en-GB` or `de-DE`, matched ignoring case and `_`/`-`; a bare `en` or `de` (or
    /// another region of them) is taken as the supported one of that language.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().replace('_', "-").to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or_default();
        match primary {
            "en" => Some(Language::EnGb),
            "de" => Some(Language::DeDe),
            _ => None,
        }
    }

    /// As [`Self::from_tag`], else `400 INVALID_LANGUAGE` naming `field`.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        Self::from_tag(input).ok_or_else(|| {
            Problem::invalid_field("INVALID_LANGUAGE", field, "{field} must be en-GB or de-DE.")
                .detail("value", input.chars().take(32).collect::<String>())
        })
    }

    /// The best supported language of an `Accept-Language` header (by q-value, then
    /// order), if any is supported.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(f32, Language)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default().trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Self::from_tag(tag) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Language {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::from_tag(s).ok_or(())
    }
}

impl serde::Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An e-mail address as a message can be sent to: `local@domain`, no spaces or
/// control characters, at most 254 characters, a domain of dot-separated labels.
/// Stored lower-cased in its domain only (the local part may be case-sensitive).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX_LEN: usize = 254;

    /// Parses an address, else `400 INVALID_EMAIL_ADDRESS` naming `field`.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        let bad = || {
            Problem::invalid_field(
                "INVALID_EMAIL_ADDRESS",
                field,
                "{field} must be an e-mail address (name@example.com).",
            )
        };
        let s = input.trim();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || !c.is_ascii());
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address. Personal data: for delivery only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Display form: the first character of the local part, `***`, and the domain:
    /// `jane.doe@example.com` → `j***@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_channels_round_trip() {
        for s in PayByLinkStatus::ALL {
            assert_eq!(s.as_str().parse::<PayByLinkStatus>(), Ok(*s));
        }
        assert!(PayByLinkStatus::Opened.is_live() && !PayByLinkStatus::Expired.is_live());
        assert_eq!("sms".parse::<DeliveryChannel>(), Ok(DeliveryChannel::Sms));
        assert_eq!(DeliveryChannel::parse("FAX", "delivery.channel").unwrap_err().code, "INVALID_DELIVERY_CHANNEL");
        assert_eq!("payment-reminder".parse::<MessageTemplate>(), Ok(MessageTemplate::PaymentReminder));
    }

    #[test]
    fn languages() {
        assert_eq!(Language::parse("de-DE", "language").unwrap(), Language::DeDe);
        assert_eq!(Language::parse("EN_gb", "language").unwrap(), Language::EnGb);
        assert_eq!(Language::parse("de", "language").unwrap(), Language::DeDe);
        assert_eq!(Language::parse("fr-FR", "language").unwrap_err().code, "INVALID_LANGUAGE");
        assert_eq!(Language::from_accept_language("fr-CH, de;q=0.9, en;q=0.8"), Some(Language::DeDe));
        assert_eq!(Language::from_accept_language("en-US,en;q=0.9,de;q=0.8"), Some(Language::EnGb));
        assert_eq!(Language::from_accept_language("fr"), None);
        assert_eq!(Language::from_accept_language("de;q=0"), None);
    }

    #[test]
    fn email_addresses() {
        let a = EmailAddress::parse(" Jane.Doe+policy@Example.COM ", "to").unwrap();
        assert_eq!(a.as_str(), "Jane.Doe+policy@example.com");
        assert_eq!(a.masked(), "J***@example.com");
        assert!(!format!("{a:?}").contains("Doe"));
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "jane doe@example.com",
            "jane@exa mple.com",
            "jane@-example.com",
            "jane..doe@example.com",
            "jane@example..com",
            "jane@example.com\r\nBcc: x@y.z",
            "<script>@example.com",
        ] {
            assert_eq!(EmailAddress::parse(bad, "to").unwrap_err().code, "INVALID_EMAIL_ADDRESS", "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(65)), "to").is_err());
    }
}
