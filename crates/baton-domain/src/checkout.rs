//! The hosted checkout (SPEC §4.11): where a checkout session stands.

use crate::words::word_enum;

word_enum!(
    /// A checkout session's state. `OPEN`: the customer may pay (again, after a failed
    /// attempt); `AUTHENTICATING`: a card waits for the customer to pass the issuer's
    /// challenge; `SUCCEEDED`: paid (or, for a bank collection, submitted); `CANCELLED`:
    /// the customer gave up. The last two are final.
    CheckoutStatus, "INVALID_CHECKOUT_STATUS", [
        Open => "OPEN",
        Authenticating => "AUTHENTICATING",
        Succeeded => "SUCCEEDED",
        Cancelled => "CANCELLED",
    ]
);

impl CheckoutStatus {
    /// `SUCCEEDED` and `CANCELLED` accept no further submission.
    pub fn is_final(self) -> bool {
        matches!(self, CheckoutStatus::Succeeded | CheckoutStatus::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_finality() {
        assert_eq!(
            CheckoutStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["OPEN", "AUTHENTICATING", "SUCCEEDED", "CANCELLED"]
        );
        let finals: Vec<_> = CheckoutStatus::ALL.iter().copied().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [CheckoutStatus::Succeeded, CheckoutStatus::Cancelled]);
        assert_eq!("open".parse(), Ok(CheckoutStatus::Open));
    }
}
