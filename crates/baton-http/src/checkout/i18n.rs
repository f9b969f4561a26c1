//! Every string of the hosted checkout, in English and German, and the formatting of
//! amounts in each language.

/// A language of the hosted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    /// `en-GB` / `de-DE` (also `de`, `de-AT`, `en`, … and any case); `None` otherwise.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut tags: Vec<(f32, &str)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        tags.into_iter().filter(|(q, _)| *q > 0.0).find_map(|(_, tag)| Lang::parse(tag))
    }

    /// The BCP 47 tag stored with the session and sent in `lang`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en-GB",
            Lang::De => "de-DE",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// `€1,234.50` / `1.234,50 €`.
    pub fn amount(self, minor: i64, currency: &str) -> String {
        let decimals = currency.parse::<baton_domain::Currency>().map(|c| c.exponent()).unwrap_or(2);
        let negative = minor < 0;
        let minor = minor.unsigned_abs();
        let scale = 10u64.pow(decimals);
        let (whole, frac) = (minor / scale, minor % scale);
        let (group, point) = match self {
            Lang::En => (',', '.'),
            Lang::De => ('.', ','),
        };
        let digits = whole.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(c);
        }
        let number =
            if decimals > 0 { format!("{grouped}{point}{frac:0width$}", width = decimals as usize) } else { grouped };
        let sign = if negative { "-" } else { "" };
        let symbol = match currency {
            "EUR" => Some("€"),
            "GBP" => Some("£"),
            "USD" => Some("$"),
            _ => None,
        };
        match (self, symbol) {
            (Lang::En, Some(s)) => format!("{sign}{s}{number}"),
            (Lang::En, None) => format!("{sign}{currency} {number}"),
            (Lang::De, Some(s)) => format!("{sign}{number}\u{a0}{s}"),
            (Lang::De, None) => format!("{sign}{number}\u{a0}{currency}"),
        }
    }

    /// What the customer is told about a failed payment or a refused field (never the
    /// technical code itself).
    pub fn message(self, code: &str) -> &'static str {
        let s = self.strings();
        match code {
            "INVALID_CARD_NUMBER" => s.err_card_number,
            "CARD_BRAND_NOT_ACCEPTED" => s.err_card_brand,
            "INVALID_EXPIRY" => s.err_expiry,
            "CARD_EXPIRED" => s.err_card_expired,
            "INVALID_CVC" => s.err_cvc,
            "INVALID_HOLDER_NAME" => s.err_holder_name,
            "INVALID_IBAN" => s.err_iban,
            "MANDATE_CONSENT_REQUIRED" => s.err_consent,
            "FIELD_REQUIRED" => s.err_required,
            "FIELD_TOO_LONG" => s.err_too_long,
            "INVALID_COUNTRY" => s.err_country,
            "PAYMENT_METHOD_NOT_OFFERED" => s.err_method,
            "INSUFFICIENT_FUNDS" => s.fail_funds,
            "AUTHENTICATION_REQUIRED" | "AUTHENTICATION_FAILED" => s.fail_authentication,
            "PSP_UNAVAILABLE" | "PAYMENT_METHOD_NOT_SUPPORTED" | "NO_APP_FOR_PAYMENT_METHOD" | "NO_MATCHING_RULE" => {
                s.fail_technical
            }
            "MANDATE_CANCELLED" => s.fail_mandate,
            "FRAUD_SUSPECTED" => s.fail_declined,
            _ => s.fail_declined,
        }
    }
}

/// The page's strings. `{merchant}` is replaced where it appears.
pub struct Strings {
    pub title: &'static str,
    pub pay_to: &'static str,
    pub amount_due: &'static str,
    pub secure_note: &'static str,
    pub sandbox_note: &'static str,
    pub choose_method: &'static str,
    pub card_tab: &'static str,
    pub bank_tab: &'static str,
    pub paypal_tab: &'static str,
    pub accepted_cards: &'static str,
    pub card_number: &'static str,
    pub card_number_hint: &'static str,
    pub expiry: &'static str,
    pub expiry_hint: &'static str,
    pub cvc: &'static str,
    pub cvc_hint: &'static str,
    pub cardholder_name: &'static str,
    pub billing_address: &'static str,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub company: &'static str,
    pub optional: &'static str,
    pub street: &'static str,
    pub street2: &'static str,
    pub locality: &'static str,
    pub region: &'static str,
    pub post_code: &'static str,
    pub country: &'static str,
    pub pay: &'static str,
    pub iban: &'static str,
    pub iban_hint: &'static str,
    pub account_holder: &'static str,
    pub mandate_title: &'static str,
    /// `{merchant}` is the creditor.
    pub mandate_text: &'static str,
    pub mandate_consent: &'static str,
    pub pay_by_debit: &'static str,
    pub paypal_intro: &'static str,
    pub paypal_continue: &'static str,
    pub paypal_title: &'static str,
    pub paypal_body: &'static str,
    pub paypal_approve: &'static str,
    pub paypal_cancel: &'static str,
    pub cancel: &'static str,
    pub errors_heading: &'static str,
    pub success_title: &'static str,
    pub success_body: &'static str,
    pub pending_title: &'static str,
    pub pending_body: &'static str,
    pub failed_title: &'static str,
    pub try_again: &'static str,
    pub cancelled_title: &'static str,
    pub cancelled_body: &'static str,
    pub redirecting: &'static str,
    pub continue_link: &'static str,
    pub challenge_title: &'static str,
    pub challenge_body: &'static str,
    pub challenge_approve: &'static str,
    pub challenge_fail: &'static str,
    pub invalid_title: &'static str,
    pub invalid_body: &'static str,
    pub expired_title: &'static str,
    pub expired_body: &'static str,
    pub used_title: &'static str,
    pub used_body: &'static str,
    /// `{merchant}` cancelled the pay-by-link the token came from.
    pub link_cancelled_title: &'static str,
    pub link_cancelled_body: &'static str,
    /// `{merchant}` voided the payment the token was for.
    pub withdrawn_title: &'static str,
    pub withdrawn_body: &'static str,
    pub session_expired_title: &'static str,
    pub session_expired_body: &'static str,
    pub not_payable_title: &'static str,
    pub not_payable_body: &'static str,
    pub paid_title: &'static str,
    pub paid_body: &'static str,
    pub no_methods_title: &'static str,
    pub no_methods_body: &'static str,
    pub busy_title: &'static str,
    pub busy_body: &'static str,
    pub too_many_title: &'static str,
    pub too_many_body: &'static str,
    pub form_expired_title: &'static str,
    pub form_expired_body: &'static str,
    pub error_title: &'static str,
    pub error_body: &'static str,
    pub back_to_payment: &'static str,
    pub err_card_number: &'static str,
    pub err_card_brand: &'static str,
    pub err_expiry: &'static str,
    pub err_card_expired: &'static str,
    pub err_cvc: &'static str,
    pub err_holder_name: &'static str,
    pub err_iban: &'static str,
    pub err_consent: &'static str,
    pub err_required: &'static str,
    pub err_too_long: &'static str,
    pub err_country: &'static str,
    pub err_method: &'static str,
    pub fail_declined: &'static str,
    pub fail_funds: &'static str,
    pub fail_authentication: &'static str,
    pub fail_technical: &'static str,
    pub fail_mandate: &'static str,
    pub powered_by: &'static str,
}

pub static EN: Strings = Strings {
    title: "Secure payment",
    pay_to: "Payment to",
    amount_due: "Amount due",
    secure_note: "Your details are sent encrypted and stored securely.",
    sandbox_note: "Test mode: no real money moves.",
    choose_method: "How would you like to pay?",
    card_tab: "Card",
    bank_tab: "Direct debit",
    paypal_tab: "PayPal",
    accepted_cards: "Accepted cards",
    card_number: "Card number",
    card_number_hint: "The 13 to 19 digits on the front of your card.",
    expiry: "Expiry date",
    expiry_hint: "MM / YY",
    cvc: "Security code",
    cvc_hint: "3 digits on the back (Amex: 4 on the front).",
    cardholder_name: "Name on card",
    billing_address: "Billing address",
    first_name: "First name",
    last_name: "Last name",
    company: "Company",
    optional: "optional",
    street: "Street and number",
    street2: "Address line 2",
    locality: "Town or city",
    region: "County or region",
    post_code: "Postcode",
    country: "Country",
    pay: "Pay",
    iban: "IBAN",
    iban_hint: "Your account number in IBAN form, e.g. DE89 3704 0044 0532 0130 00.",
    account_holder: "Account holder",
    mandate_title: "SEPA Direct Debit mandate",
    mandate_text: "By accepting this mandate, you authorise {merchant} to send instructions to your bank to debit your account, and your bank to debit your account in accordance with those instructions. You are entitled to a refund from your bank under the terms and conditions of your agreement with your bank. A refund must be claimed within 8 weeks starting from the date on which your account was debited.",
    mandate_consent: "I accept the direct debit mandate.",
    pay_by_debit: "Pay by direct debit",
    paypal_intro: "You will confirm the payment with PayPal.",
    paypal_continue: "Continue with PayPal",
    paypal_title: "PayPal (test)",
    paypal_body: "This is PayPal's test approval step. Approve to pay, or cancel to choose another way to pay.",
    paypal_approve: "Approve payment",
    paypal_cancel: "Cancel and go back",
    cancel: "Cancel payment",
    errors_heading: "Please check the highlighted fields.",
    success_title: "Payment successful",
    success_body: "Thank you. Your payment to {merchant} has been made.",
    pending_title: "Payment submitted",
    pending_body: "Thank you. Your payment to {merchant} has been submitted and will be collected from your account.",
    failed_title: "Payment not completed",
    try_again: "Try another card or payment method",
    cancelled_title: "Payment cancelled",
    cancelled_body: "You cancelled the payment. Nothing has been charged.",
    redirecting: "You will be returned to {merchant} in a moment.",
    continue_link: "Continue",
    challenge_title: "Confirm it's you",
    challenge_body: "Your bank asks you to confirm this payment. (Test mode: choose the outcome of the check.)",
    challenge_approve: "Confirm payment",
    challenge_fail: "Fail the check",
    invalid_title: "This payment link is not valid",
    invalid_body: "The link may be incomplete. Please use the link you were sent, or ask the sender for a new one.",
    expired_title: "This payment link has expired",
    expired_body: "Please ask the sender for a new payment link.",
    used_title: "This payment link has already been used",
    used_body: "For your security, a payment link opens only once. Please ask the sender for a new one.",
    link_cancelled_title: "This payment link is no longer valid",
    link_cancelled_body: "{merchant} has withdrawn this payment request. Nothing has been charged. If you have questions, please contact {merchant}.",
    withdrawn_title: "This payment request has been withdrawn",
    withdrawn_body: "{merchant} has withdrawn this payment request. Nothing has been charged. If you have questions, please contact {merchant}.",
    session_expired_title: "This payment session has expired",
    session_expired_body: "Please ask the sender for a new payment link.",
    not_payable_title: "This payment is no longer due",
    not_payable_body: "It may have been paid or withdrawn. Nothing has been charged.",
    paid_title: "Already paid",
    paid_body: "This payment has already been made. Nothing more is due.",
    no_methods_title: "No payment method available",
    no_methods_body: "This payment cannot be made online at the moment. Please contact {merchant}.",
    busy_title: "Your payment is being processed",
    busy_body: "Please wait a moment, then reload this page.",
    too_many_title: "Too many attempts",
    too_many_body: "Please wait a minute before trying again.",
    form_expired_title: "This form has expired",
    form_expired_body: "Please go back to the payment page and try again.",
    error_title: "Something went wrong",
    error_body: "We could not complete your request. Nothing has been charged. Please try again in a moment.",
    back_to_payment: "Back to the payment",
    err_card_number: "Enter a valid card number.",
    err_card_brand: "This type of card is not accepted for this payment.",
    err_expiry: "Enter the expiry date as MM / YY.",
    err_card_expired: "This card has expired.",
    err_cvc: "Enter the security code from your card.",
    err_holder_name: "Enter the name as it appears on the card or account (up to 140 characters).",
    err_iban: "Enter a valid IBAN.",
    err_consent: "Please accept the direct debit mandate.",
    err_required: "This field is required.",
    err_too_long: "This entry is too long.",
    err_country: "Enter a valid two-letter country code.",
    err_method: "This payment method is not available for this payment.",
    fail_declined: "Your payment was declined. No money has been taken. Please try another card or payment method.",
    fail_funds: "Your payment was declined because of insufficient funds. Please try another card or payment method.",
    fail_authentication: "Your bank could not confirm this payment. No money has been taken. Please try again.",
    fail_technical: "We could not reach the payment provider. No money has been taken. Please try again.",
    fail_mandate: "Your bank refused the direct debit. Please try another payment method.",
    powered_by: "Secure checkout by Baton",
};

pub static DE: Strings = Strings {
    title: "Sichere Zahlung",
    pay_to: "Zahlung an",
    amount_due: "Zu zahlender Betrag",
    secure_note: "Ihre Daten werden verschlüsselt übertragen und sicher gespeichert.",
    sandbox_note: "Testmodus: Es wird kein echtes Geld bewegt.",
    choose_method: "Wie möchten Sie bezahlen?",
    card_tab: "Karte",
    bank_tab: "Lastschrift",
    paypal_tab: "PayPal",
    accepted_cards: "Akzeptierte Karten",
    card_number: "Kartennummer",
    card_number_hint: "Die 13 bis 19 Ziffern auf der Vorderseite Ihrer Karte.",
    expiry: "Ablaufdatum",
    expiry_hint: "MM / JJ",
    cvc: "Prüfnummer",
    cvc_hint: "3 Ziffern auf der Rückseite (Amex: 4 vorne).",
    cardholder_name: "Name auf der Karte",
    billing_address: "Rechnungsadresse",
    first_name: "Vorname",
    last_name: "Nachname",
    company: "Firma",
    optional: "optional",
    street: "Straße und Hausnummer",
    street2: "Adresszusatz",
    locality: "Ort",
    region: "Bundesland oder Region",
    post_code: "Postleitzahl",
    country: "Land",
    pay: "Bezahlen",
    iban: "IBAN",
    iban_hint: "Ihre Kontonummer im IBAN-Format, z. B. DE89 3704 0044 0532 0130 00.",
    account_holder: "Kontoinhaber",
    mandate_title: "SEPA-Lastschriftmandat",
    mandate_text: "Ich ermächtige {merchant}, Zahlungen von meinem Konto mittels Lastschrift einzuziehen. Zugleich weise ich mein Kreditinstitut an, die von {merchant} auf mein Konto gezogenen Lastschriften einzulösen. Hinweis: Ich kann innerhalb von acht Wochen, beginnend mit dem Belastungsdatum, die Erstattung des belasteten Betrages verlangen. Es gelten dabei die mit meinem Kreditinstitut vereinbarten Bedingungen.",
    mandate_consent: "Ich erteile das Lastschriftmandat.",
    pay_by_debit: "Per Lastschrift bezahlen",
    paypal_intro: "Sie bestätigen die Zahlung bei PayPal.",
    paypal_continue: "Weiter mit PayPal",
    paypal_title: "PayPal (Test)",
    paypal_body: "Dies ist der Test-Freigabeschritt von PayPal. Geben Sie die Zahlung frei oder brechen Sie ab, um eine andere Zahlungsart zu wählen.",
    paypal_approve: "Zahlung freigeben",
    paypal_cancel: "Abbrechen und zurück",
    cancel: "Zahlung abbrechen",
    errors_heading: "Bitte prüfen Sie die markierten Felder.",
    success_title: "Zahlung erfolgreich",
    success_body: "Vielen Dank. Ihre Zahlung an {merchant} ist erfolgt.",
    pending_title: "Zahlung übermittelt",
    pending_body: "Vielen Dank. Ihre Zahlung an {merchant} wurde übermittelt und wird von Ihrem Konto eingezogen.",
    failed_title: "Zahlung nicht abgeschlossen",
    try_again: "Andere Karte oder Zahlungsart versuchen",
    cancelled_title: "Zahlung abgebrochen",
    cancelled_body: "Sie haben die Zahlung abgebrochen. Es wurde nichts belastet.",
    redirecting: "Sie werden gleich zu {merchant} zurückgeleitet.",
    continue_link: "Weiter",
    challenge_title: "Bestätigen Sie Ihre Identität",
    challenge_body: "Ihre Bank bittet Sie, diese Zahlung zu bestätigen. (Testmodus: Wählen Sie das Ergebnis der Prüfung.)",
    challenge_approve: "Zahlung bestätigen",
    challenge_fail: "Prüfung fehlschlagen lassen",
    invalid_title: "Dieser Zahlungslink ist ungültig",
    invalid_body: "Der Link ist möglicherweise unvollständig. Bitte verwenden Sie den erhaltenen Link oder fordern Sie einen neuen an.",
    expired_title: "Dieser Zahlungslink ist abgelaufen",
    expired_body: "Bitte fordern Sie beim Absender einen neuen Zahlungslink an.",
    used_title: "Dieser Zahlungslink wurde bereits verwendet",
    used_body: "Zu Ihrer Sicherheit lässt sich ein Zahlungslink nur einmal öffnen. Bitte fordern Sie einen neuen an.",
    link_cancelled_title: "Dieser Zahlungslink ist nicht mehr gültig",
    link_cancelled_body: "{merchant} hat diese Zahlungsaufforderung zurückgezogen. Es wurde nichts belastet. Bei Fragen wenden Sie sich bitte an {merchant}.",
    withdrawn_title: "Diese Zahlungsaufforderung wurde zurückgezogen",
    withdrawn_body: "{merchant} hat diese Zahlungsaufforderung zurückgezogen. Es wurde nichts belastet. Bei Fragen wenden Sie sich bitte an {merchant}.",
    session_expired_title: "Diese Zahlungssitzung ist abgelaufen",
    session_expired_body: "Bitte fordern Sie beim Absender einen neuen Zahlungslink an.",
    not_payable_title: "Diese Zahlung ist nicht mehr fällig",
    not_payable_body: "Sie wurde möglicherweise bereits bezahlt oder zurückgezogen. Es wurde nichts belastet.",
    paid_title: "Bereits bezahlt",
    paid_body: "Diese Zahlung ist bereits erfolgt. Es ist nichts mehr offen.",
    no_methods_title: "Keine Zahlungsart verfügbar",
    no_methods_body: "Diese Zahlung ist derzeit online nicht möglich. Bitte wenden Sie sich an {merchant}.",
    busy_title: "Ihre Zahlung wird bearbeitet",
    busy_body: "Bitte warten Sie einen Moment und laden Sie die Seite dann neu.",
    too_many_title: "Zu viele Versuche",
    too_many_body: "Bitte warten Sie eine Minute, bevor Sie es erneut versuchen.",
    form_expired_title: "Dieses Formular ist abgelaufen",
    form_expired_body: "Bitte kehren Sie zur Zahlungsseite zurück und versuchen Sie es erneut.",
    error_title: "Etwas ist schiefgelaufen",
    error_body: "Ihre Anfrage konnte nicht abgeschlossen werden. Es wurde nichts belastet. Bitte versuchen Sie es gleich noch einmal.",
    back_to_payment: "Zurück zur Zahlung",
    err_card_number: "Geben Sie eine gültige Kartennummer ein.",
    err_card_brand: "Diese Kartenart wird für diese Zahlung nicht akzeptiert.",
    err_expiry: "Geben Sie das Ablaufdatum als MM / JJ ein.",
    err_card_expired: "Diese Karte ist abgelaufen.",
    err_cvc: "Geben Sie die Prüfnummer Ihrer Karte ein.",
    err_holder_name: "Geben Sie den Namen wie auf der Karte bzw. dem Konto ein (bis zu 140 Zeichen).",
    err_iban: "Geben Sie eine gültige IBAN ein.",
    err_consent: "Bitte erteilen Sie das Lastschriftmandat.",
    err_required: "Dieses Feld ist erforderlich.",
    err_too_long: "Diese Eingabe ist zu lang.",
    err_country: "Geben Sie einen gültigen zweistelligen Ländercode ein.",
    err_method: "Diese Zahlungsart ist für diese Zahlung nicht verfügbar.",
    fail_declined: "Ihre Zahlung wurde abgelehnt. Es wurde kein Geld abgebucht. Bitte versuchen Sie eine andere Karte oder Zahlungsart.",
    fail_funds: "Ihre Zahlung wurde mangels Deckung abgelehnt. Bitte versuchen Sie eine andere Karte oder Zahlungsart.",
    fail_authentication: "Ihre Bank konnte diese Zahlung nicht bestätigen. Es wurde kein Geld abgebucht. Bitte versuchen Sie es erneut.",
    fail_technical: "Der Zahlungsdienstleister war nicht erreichbar. Es wurde kein Geld abgebucht. Bitte versuchen Sie es erneut.",
    fail_mandate: "Ihre Bank hat die Lastschrift abgelehnt. Bitte versuchen Sie eine andere Zahlungsart.",
    powered_by: "Sicherer Checkout von Baton",
};

/// `template` with `{merchant}` replaced (the result is escaped where it is shown).
pub fn with_merchant(template: &str, merchant: &str) -> String {
    template.replace("{merchant}", merchant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        assert_eq!(Lang::parse("de-DE"), Some(Lang::De));
        assert_eq!(Lang::parse("EN-gb"), Some(Lang::En));
        assert_eq!(Lang::parse("de_AT"), Some(Lang::De));
        assert_eq!(Lang::parse("fr-FR"), None);
        assert_eq!(Lang::from_accept_language("fr-CH, fr;q=0.9, de;q=0.8, en;q=0.7"), Some(Lang::De));
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.5"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de;q=0, en;q=0.1"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("ja"), None);
    }

    #[test]
    fn amounts() {
        assert_eq!(Lang::En.amount(4990, "EUR"), "€49.90");
        assert_eq!(Lang::De.amount(4990, "EUR"), "49,90\u{a0}€");
        assert_eq!(Lang::En.amount(123_456_789, "GBP"), "£1,234,567.89");
        assert_eq!(Lang::De.amount(123_456_789, "CHF"), "1.234.567,89\u{a0}CHF");
        assert_eq!(Lang::En.amount(5, "USD"), "$0.05");
        assert_eq!(Lang::En.amount(100_000, "ZAR"), "ZAR 1,000.00");
    }

    #[test]
    fn every_failure_has_a_plain_message() {
        for code in ["PAYMENT_DECLINED", "INSUFFICIENT_FUNDS", "CUSTOMER_ERASED", "anything"] {
            for lang in [Lang::En, Lang::De] {
                let m = lang.message(code);
                assert!(!m.is_empty() && !m.contains('_'), "{code}: {m}");
            }
        }
        assert_ne!(Lang::En.message("INVALID_IBAN"), Lang::De.message("INVALID_IBAN"));
    }
}
