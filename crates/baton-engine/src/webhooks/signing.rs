//! Standard Webhooks signatures (SPEC §5.1): `webhook-signature` is `v1,` + Base64 of
//! HMAC-SHA256, keyed with the Base64-decoded secret (without its `whsec_` prefix), over
//! `{webhook-id}.{webhook-timestamp}.{body}`. During a rotation, one signature per live
//! secret, space-separated.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` + Base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key of a secret; `None` if it is not `whsec_` + Base64.
fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX).unwrap_or(secret)).ok()
}

/// One `v1,<base64>` signature of `body` sent as message `id` at `timestamp` (Unix seconds).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = key_of(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().filter_map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Whether any signature of a `webhook-signature` header was made with `secret` (what a
/// receiver checks; Baton's tests use it next to an independent verifier).
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(expected) = sign(secret, id, timestamp, body) else { return false };
    header.split(' ').any(|candidate| bool::from(candidate.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference implementations.
    #[test]
    fn matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, id, 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(secret, id, 1614265330, body, &format!("v1,bogus {signature}")));
        assert!(!verify(secret, id, 1614265331, body, &signature));
    }

    #[test]
    fn secrets_are_32_random_bytes() {
        let s = new_secret();
        assert_eq!(key_of(&s).unwrap().len(), 32);
        assert_ne!(s, new_secret());
        let both = signature_header(&[&s, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "id", 1, b"{}");
        assert_eq!(both.split(' ').count(), 2);
        assert!(verify(&s, "id", 1, b"{}", &both));
    }
}
