//! HMAC request signatures (SPEC §2), exactly as the documented clients compute them.
//!
//! ```text
//! bodyHash     = body empty ? "" : Base64(SHA256(body bytes))
//! stringToSign = pubKey ":" nonce ":" epoch ":" bodyHash
//! signature    = Base64(HMAC_SHA256(key = Base64Decode(privateKey), stringToSign))
//! Authorization: Hmac pubKey:nonce:epoch:signature
//! ```

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::problem::Problem;

type HmacSha256 = Hmac<Sha256>;

/// Longest nonce accepted; the documented clients send GUIDs or epoch strings.
pub const MAX_NONCE_LEN: usize = 128;

/// The parts of an `Authorization: Hmac …` header, borrowed from the header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacAuthorization<'a> {
    pub public_key: &'a str,
    pub nonce: &'a str,
    pub epoch: &'a str,
    pub signature: &'a str,
}

fn malformed() -> Problem {
    Problem::unauthorized("HMAC_MALFORMED")
        .message("The Authorization header must be 'Hmac publicKey:nonce:epoch:signature'.")
}

impl<'a> HmacAuthorization<'a> {
    /// Parses the header value; the scheme word is case-insensitive.
    pub fn parse(header: &'a str) -> Result<Self, Problem> {
        let (scheme, rest) = header.trim().split_once(' ').ok_or_else(malformed)?;
        if !scheme.eq_ignore_ascii_case("hmac") {
            return Err(malformed());
        }
        let parts: Vec<&str> = rest.trim().split(':').collect();
        let [public_key, nonce, epoch, signature] = parts[..] else {
            return Err(malformed());
        };
        if public_key.is_empty()
            || nonce.is_empty()
            || nonce.len() > MAX_NONCE_LEN
            || signature.is_empty()
            || !is_valid_epoch(epoch)
        {
            return Err(malformed());
        }
        Ok(Self { public_key, nonce, epoch, signature })
    }

    /// The epoch as seconds (fractional epochs are allowed by the JS clients).
    pub fn epoch_seconds(&self) -> f64 {
        self.epoch.parse().unwrap_or(f64::NAN)
    }

    /// Constant-time check of the signature against the decoded private key.
    pub fn verify(&self, private_key: &[u8], body: &[u8]) -> bool {
        let expected = signature(private_key, self.public_key, self.nonce, self.epoch, body);
        expected.as_bytes().ct_eq(self.signature.as_bytes()).into()
    }
}

/// `^\d{1,12}(\.\d{1,9})?$`
fn is_valid_epoch(epoch: &str) -> bool {
    let (int, frac) = match epoch.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (epoch, None),
    };
    let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    digits(int, 12) && frac.is_none_or(|f| digits(f, 9))
}

/// `""` for an empty body, else Base64(SHA-256(body)).
pub fn body_hash(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        B64.encode(Sha256::digest(body))
    }
}

/// The Base64 HMAC-SHA256 signature of a request.
pub fn signature(private_key: &[u8], public_key: &str, nonce: &str, epoch: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(private_key).expect("HMAC accepts keys of any length");
    mac.update(format!("{public_key}:{nonce}:{epoch}:{}", body_hash(body)).as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// A complete `Authorization` header value, as a client would send it.
pub fn authorization_header(
    public_key: &str,
    private_key_base64: &str,
    nonce: &str,
    epoch: &str,
    body: &[u8],
) -> Result<String, base64::DecodeError> {
    let key = B64.decode(private_key_base64.trim())?;
    let sig = signature(&key, public_key, nonce, epoch, body);
    Ok(format!("Hmac {public_key}:{nonce}:{epoch}:{sig}"))
}

#[cfg(test)]
mod tests {
    //! The verified vectors of SPEC §2.
    use super::*;

    const PUB: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    const PRIV: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    const NONCE: &str = "7c1f0e9a2b4d4e6f8a0b1c2d3e4f5a6b";
    const EPOCH: &str = "1700000000";
    const V2_BODY: &str =
        r#"{"orderRef":"REF1","instructions":[],"metadata":{"someInternalRef2":"another-internal-ref"}}"#;
    const V3_BODY: &str = r#"{"name":"Test tenant","streetAddress":"Bahnhofstrasse 1","extendedStreetAddress":"","locality":"Zürich","region":"ZH","postCode":"8001","country":"CH"}"#;

    fn header(body: &str) -> String {
        authorization_header(PUB, PRIV, NONCE, EPOCH, body.as_bytes()).unwrap()
    }

    #[test]
    fn v1_empty_body() {
        assert_eq!(body_hash(b""), "");
        assert_eq!(
            header(""),
            "Hmac 3f2504e0-4f89-41d3-9a0c-0305e82c3301:7c1f0e9a2b4d4e6f8a0b1c2d3e4f5a6b:1700000000:SJMH57glGU7sVmEvtIFW/4DeGgtlZA6O09R3LF50Bmo="
        );
    }

    #[test]
    fn v2_order_body() {
        assert_eq!(V2_BODY.len(), 92);
        assert_eq!(body_hash(V2_BODY.as_bytes()), "x4i4sZF5R3g8PeKbUXKX0xg8hNFNBF1rR3RHLJnzLmw=");
        assert_eq!(
            header(V2_BODY),
            "Hmac 3f2504e0-4f89-41d3-9a0c-0305e82c3301:7c1f0e9a2b4d4e6f8a0b1c2d3e4f5a6b:1700000000:MhxHGgPoBtfWx8wv4ECPS8dRGzWSPZcxXXpB0N2KOak="
        );
    }

    #[test]
    fn v3_utf8_body() {
        assert_eq!(V3_BODY.len(), 152);
        assert_eq!(body_hash(V3_BODY.as_bytes()), "CQBXwMtRCvxKP0tytxG08QK6xdeZa9UBeDCV4rTeBjc=");
        assert_eq!(
            header(V3_BODY),
            "Hmac 3f2504e0-4f89-41d3-9a0c-0305e82c3301:7c1f0e9a2b4d4e6f8a0b1c2d3e4f5a6b:1700000000:LSSiW2P0r5dgBW8V0IeuLysf1FtqaNBFMOm1e8YULkI="
        );
    }

    #[test]
    fn v4_fractional_epoch_as_nonce() {
        let key = B64.decode(PRIV).unwrap();
        let e = "1535617532.123";
        assert_eq!(signature(&key, PUB, e, e, b""), "A9U+/9gZaCwhKcqdYp8P7hjAbh8JJ0S/fg4YDsnp6co=");
    }

    #[test]
    fn must_fail_vectors_do_not_verify() {
        let key = B64.decode(PRIV).unwrap();
        // V3 hashed as Latin-1 instead of UTF-8.
        let latin1_sig = "YiKWk/wWtvyR6HFcZY44aC9ryrmTc9TPKBRbkCrIfyI=";
        let h = format!("Hmac {PUB}:{NONCE}:{EPOCH}:{latin1_sig}");
        assert!(!HmacAuthorization::parse(&h).unwrap().verify(&key, V3_BODY.as_bytes()));
        // V1 keyed with the Base64 text rather than the decoded bytes.
        let text_key_sig = "8E4xMJ2DpbxC4Osq46jfQzxZsnHtHIdqkh7T/84CdmU=";
        let h = format!("Hmac {PUB}:{NONCE}:{EPOCH}:{text_key_sig}");
        assert!(!HmacAuthorization::parse(&h).unwrap().verify(&key, b""));
        // And the text-keyed signature is indeed what keying with the text gives.
        assert_eq!(signature(PRIV.as_bytes(), PUB, NONCE, EPOCH, b""), text_key_sig);
    }

    #[test]
    fn parse_accepts_scheme_words_and_verifies() {
        let key = B64.decode(PRIV).unwrap();
        for word in ["Hmac", "HMAC", "hmac"] {
            let h = header(V2_BODY).replacen("Hmac", word, 1);
            let auth = HmacAuthorization::parse(&h).unwrap();
            assert!(auth.verify(&key, V2_BODY.as_bytes()));
            assert!(!auth.verify(&key, b"{\"orderRef\":\"REF2\"}"));
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "Bearer abc",
            "Hmac a:b:c",
            "Hmac a:b:1700000000:s:extra",
            "Hmac a::1700000000:s",
            "Hmac a:b:17000000001234:s",
            "Hmac a:b:1700000000.:s",
            "Hmac a:b:1e9:s",
            "Hmac a:b:1700000000:",
        ] {
            assert_eq!(HmacAuthorization::parse(bad).unwrap_err().code, "HMAC_MALFORMED", "{bad}");
        }
        let ok = HmacAuthorization::parse("hmac k:n:1535617532.123:sig").unwrap();
        assert!((ok.epoch_seconds() - 1535617532.123).abs() < 1e-6);
    }
}
