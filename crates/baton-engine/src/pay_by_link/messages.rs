//! What a pay-by-link message says, in the customer's language: the merchant (the
//! tenant's name), the amount, the link and until when it works. Never metadata.
//!
//! E-mails are multipart (plain text and HTML); every value put into the HTML is
//! escaped. SMS messages are one short line.

use baton_domain::{Currency, Language, MessageTemplate};
use rust_decimal::Decimal;
use time::OffsetDateTime;

/// Everything a message is made of.
#[derive(Debug, Clone)]
pub(crate) struct MessageContent {
    pub merchant: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub link: String,
    pub expires_at: OffsetDateTime,
    pub language: Language,
    pub template: MessageTemplate,
    /// The theme's brand colour (`#rrggbb`), for the e-mail's button and heading.
    pub brand_color: String,
}

/// An e-mail's subject and its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `1234.5` → `1,234.50` (en) or `1.234,50` (de), with two fraction digits (every
/// supported currency has two).
fn grouped(amount: Decimal, language: Language) -> String {
    let text = format!("{:.2}", amount.round_dp(2));
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, "00"));
    let (group, decimal) = match language {
        Language::EnGb => (',', '.'),
        Language::DeDe => ('.', ','),
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    format!("{sign}{out}{decimal}{frac}")
}

/// The amount as a customer reads it: `£49.90`, `€1,234.50`, `CHF 10.00` in English;
/// `49,90 €`, `1.234,50 €`, `10,00 CHF` in German.
pub(crate) fn format_amount(amount: Decimal, currency: Currency, language: Language) -> String {
    let number = grouped(amount, language);
    let symbol = match currency.as_str() {
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        "USD" => Some("$"),
        _ => None,
    };
    match (language, symbol) {
        (Language::EnGb, Some(s)) if currency.as_str() == "USD" => format!("US{s}{number}"),
        (Language::EnGb, Some(s)) => format!("{s}{number}"),
        (Language::EnGb, None) => format!("{} {number}", currency.as_str()),
        (Language::DeDe, Some(s)) => format!("{number} {s}"),
        (Language::DeDe, None) => format!("{number} {}", currency.as_str()),
    }
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

/// `12 March 2026, 14:05 UTC` / `12. März 2026, 14:05 UTC`.
pub(crate) fn format_time(t: OffsetDateTime, language: Language) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let month = usize::from(u8::from(t.month())) - 1;
    match language {
        Language::EnGb => {
            format!("{} {} {}, {:02}:{:02} UTC", t.day(), MONTHS_EN[month], t.year(), t.hour(), t.minute())
        }
        Language::DeDe => {
            format!("{}. {} {}, {:02}:{:02} UTC", t.day(), MONTHS_DE[month], t.year(), t.hour(), t.minute())
        }
    }
}

pub(crate) use baton_domain::text::escape_html as html_escape;

/// Strips what would let a name break a header line or the message layout.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

struct Strings {
    subject: &'static str,
    greeting: &'static str,
    asks: &'static str,
    button: &'static str,
    fallback: &'static str,
    valid_until: &'static str,
    ignore: &'static str,
    secure: &'static str,
}

fn strings(language: Language, template: MessageTemplate) -> Strings {
    use MessageTemplate::*;
    match language {
        Language::EnGb => Strings {
            subject: match template {
                PaymentRequest => "Payment request from {merchant}: {amount}",
                PaymentReminder => "Reminder: payment request from {merchant}: {amount}",
            },
            greeting: "Hello,",
            asks: match template {
                PaymentRequest => "{merchant} asks you to pay {amount}.",
                PaymentReminder => "This is a reminder that {merchant} asks you to pay {amount}.",
            },
            button: "Pay {amount} now",
            fallback: "If the button does not work, copy this link into your browser:",
            valid_until: "The link is valid until {expires}.",
            ignore: "If you were not expecting this message, you can ignore it.",
            secure: "You enter your payment details on a secure page; {merchant} never asks for them by e-mail.",
        },
        Language::DeDe => Strings {
            subject: match template {
                PaymentRequest => "Zahlungsaufforderung von {merchant}: {amount}",
                PaymentReminder => "Erinnerung: Zahlungsaufforderung von {merchant}: {amount}",
            },
            greeting: "Guten Tag,",
            asks: match template {
                PaymentRequest => "{merchant} bittet Sie, {amount} zu bezahlen.",
                PaymentReminder => "Wir erinnern Sie daran, dass {merchant} Sie bittet, {amount} zu bezahlen.",
            },
            button: "Jetzt {amount} bezahlen",
            fallback: "Falls die Schaltfläche nicht funktioniert, kopieren Sie diesen Link in Ihren Browser:",
            valid_until: "Der Link ist gültig bis {expires}.",
            ignore: "Falls Sie diese Nachricht nicht erwartet haben, können Sie sie ignorieren.",
            secure:
                "Sie geben Ihre Zahlungsdaten auf einer sicheren Seite ein; {merchant} fragt sie nie per E-Mail ab.",
        },
    }
}

/// Fills `{merchant}`, `{amount}` and `{expires}` (values already escaped as needed).
fn fill(template: &str, merchant: &str, amount: &str, expires: &str) -> String {
    template.replace("{merchant}", merchant).replace("{amount}", amount).replace("{expires}", expires)
}

/// The e-mail: subject, plain text and HTML.
pub(crate) fn email(c: &MessageContent) -> EmailContent {
    let s = strings(c.language, c.template);
    let merchant = one_line(&c.merchant);
    let amount = format_amount(c.amount, c.currency, c.language);
    let expires = format_time(c.expires_at, c.language);
    let subject = fill(s.subject, &merchant, &amount, &expires);
    let text = format!(
        "{greeting}\n\n{asks}\n\n{link}\n\n{valid}\n\n{secure}\n{ignore}\n",
        greeting = s.greeting,
        asks = fill(s.asks, &merchant, &amount, &expires),
        link = c.link,
        valid = fill(s.valid_until, &merchant, &amount, &expires),
        secure = fill(s.secure, &merchant, &amount, &expires),
        ignore = s.ignore,
    );
    let (m, a, e, link) = (html_escape(&merchant), html_escape(&amount), html_escape(&expires), html_escape(&c.link));
    let brand = html_escape(&c.brand_color);
    let lang = c.language.as_str();
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2933">
<table role="presentation" width="100%" cellspacing="0" cellpadding="0" style="background:#f4f5f7;padding:24px 0">
<tr><td align="center">
<table role="presentation" width="100%" cellspacing="0" cellpadding="0" style="max-width:560px;background:#ffffff;border-radius:8px;border-top:4px solid {brand}">
<tr><td style="padding:32px 32px 8px 32px">
<h1 style="margin:0 0 16px 0;font-size:20px;line-height:28px;color:{brand}">{m}</h1>
<p style="margin:0 0 12px 0;font-size:16px;line-height:24px">{greeting}</p>
<p style="margin:0 0 24px 0;font-size:16px;line-height:24px">{asks}</p>
<p style="margin:0 0 24px 0"><a href="{link}" style="display:inline-block;background:{brand};color:#ffffff;text-decoration:none;font-weight:600;font-size:16px;line-height:24px;padding:12px 24px;border-radius:6px">{button}</a></p>
<p style="margin:0 0 8px 0;font-size:14px;line-height:20px;color:#52606d">{fallback}</p>
<p style="margin:0 0 24px 0;font-size:14px;line-height:20px;word-break:break-all"><a href="{link}" style="color:{brand}">{link}</a></p>
<p style="margin:0 0 12px 0;font-size:14px;line-height:20px;color:#52606d">{valid}</p>
<p style="margin:0 0 24px 0;font-size:14px;line-height:20px;color:#52606d">{secure} {ignore}</p>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"#,
        title = html_escape(&subject),
        greeting = s.greeting,
        asks = fill(s.asks, &m, &a, &e),
        button = fill(s.button, &m, &a, &e),
        fallback = s.fallback,
        valid = fill(s.valid_until, &m, &a, &e),
        secure = fill(s.secure, &m, &a, &e),
        ignore = s.ignore,
    );
    EmailContent { subject, text, html }
}

/// The SMS text: one line with the merchant, the amount and the link.
pub(crate) fn sms(c: &MessageContent) -> String {
    let merchant = one_line(&c.merchant);
    let amount = format_amount(c.amount, c.currency, c.language);
    let reminder = c.template == MessageTemplate::PaymentReminder;
    match (c.language, reminder) {
        (Language::EnGb, false) => format!("{merchant}: please pay {amount} securely at {}", c.link),
        (Language::EnGb, true) => format!("Reminder from {merchant}: please pay {amount} securely at {}", c.link),
        (Language::DeDe, false) => format!("{merchant}: Bitte zahlen Sie {amount} sicher unter {}", c.link),
        (Language::DeDe, true) => {
            format!("Erinnerung von {merchant}: Bitte zahlen Sie {amount} sicher unter {}", c.link)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn content(language: Language) -> MessageContent {
        MessageContent {
            merchant: "Acme <Insurance> & Co".into(),
            amount: Decimal::from_str("1234.5").unwrap(),
            currency: Currency::EUR,
            link: "https://pay.example.com/pay/abc".into(),
            expires_at: OffsetDateTime::from_unix_timestamp(1_773_324_300).unwrap(),
            language,
            template: MessageTemplate::PaymentRequest,
            brand_color: "#0b5cad".into(),
        }
    }

    #[test]
    fn amounts_in_each_language() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(format_amount(d("49.9"), Currency::GBP, Language::EnGb), "£49.90");
        assert_eq!(format_amount(d("1234.5"), Currency::EUR, Language::EnGb), "€1,234.50");
        assert_eq!(format_amount(d("1234567.5"), Currency::EUR, Language::DeDe), "1.234.567,50 €");
        assert_eq!(format_amount(d("10"), Currency::CHF, Language::DeDe), "10,00 CHF");
        assert_eq!(format_amount(d("10"), Currency::USD, Language::EnGb), "US$10.00");
        assert_eq!(format_amount(d("999"), Currency::EUR, Language::EnGb), "€999.00");
    }

    #[test]
    fn dates_in_each_language() {
        let t = OffsetDateTime::from_unix_timestamp(1_773_324_300).unwrap();
        assert_eq!(format_time(t, Language::EnGb), "12 March 2026, 14:05 UTC");
        assert_eq!(format_time(t, Language::DeDe), "12. März 2026, 14:05 UTC");
    }

    #[test]
    fn emails_escape_the_merchant_and_carry_link_and_amount() {
        let e = email(&content(Language::EnGb));
        assert_eq!(e.subject, "Payment request from Acme <Insurance> & Co: €1,234.50");
        assert!(e.text.contains("https://pay.example.com/pay/abc") && e.text.contains("€1,234.50"));
        assert!(e.html.contains("Acme &lt;Insurance&gt; &amp; Co") && !e.html.contains("<Insurance>"));
        assert!(e.html.contains(r#"href="https://pay.example.com/pay/abc""#));
        let de = email(&content(Language::DeDe));
        assert!(de.subject.starts_with("Zahlungsaufforderung von"), "{}", de.subject);
        assert!(de.text.contains("1.234,50 €") && de.text.contains("gültig bis 12. März 2026"));
        assert!(de.html.contains(r#"lang="de-DE""#));
    }

    #[test]
    fn sms_is_one_line() {
        let mut c = content(Language::DeDe);
        c.merchant = "Acme\nInsurance".into();
        let text = sms(&c);
        assert_eq!(text, "Acme Insurance: Bitte zahlen Sie 1.234,50 € sicher unter https://pay.example.com/pay/abc");
    }
}
