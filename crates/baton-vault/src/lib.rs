//! Baton's key hierarchy: the master key (key-encryption key) and AES-256-GCM sealing.
//!
//! Secrets such as API private keys are sealed under the master key with the owning
//! record's identity as associated data, so a ciphertext copied onto another row does
//! not open. Nothing here logs or prints key material; [`MasterKey`]'s `Debug` is redacted.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

/// Length of the master key and of every derived key, in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// First byte of every sealed value: the format version.
const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("the master key must be base64 of exactly {KEY_LEN} bytes")]
    InvalidMasterKey,
    #[error("sealed value is malformed or was not sealed under this key")]
    CannotOpen,
}

/// The key-encryption key. Constructed from configuration once at start-up.
pub struct MasterKey(SecretBox<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses base64 of exactly 32 bytes (surrounding whitespace allowed, as in key files).
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = B64.decode(text.trim()).map_err(|_| VaultError::InvalidMasterKey)?;
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| VaultError::InvalidMasterKey)?;
        Ok(Self(SecretBox::new(Box::new(arr))))
    }

    /// A new random key, returned with its base64 form for writing to a key file.
    pub fn generate() -> (Self, String) {
        let bytes = random_bytes::<KEY_LEN>();
        let text = B64.encode(bytes);
        (Self(SecretBox::new(Box::new(bytes))), text)
    }

    /// A key for one purpose (e.g. token signing), derived as HMAC-SHA256(master, label).
    pub fn derive(&self, label: &str) -> [u8; KEY_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret()).expect("any key length");
        mac.update(b"baton:");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A value that identifies this key without revealing it, stored with the data it
    /// protects so that starting with the wrong key fails loudly instead of corrupting.
    pub fn check_value(&self) -> Vec<u8> {
        self.derive("key-check").to_vec()
    }

    /// Encrypts `plaintext`, binding it to `aad` (the owning record's identity).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(self.0.expose_secret()).expect("32-byte key");
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts a value sealed by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let (&version, rest) = sealed.split_first().ok_or(VaultError::CannotOpen)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN + 16 {
            return Err(VaultError::CannotOpen);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(self.0.expose_secret()).expect("32-byte key");
        cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).map_err(|_| VaultError::CannotOpen)
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_aad() {
        let (key, _) = MasterKey::generate();
        let sealed = key.seal(b"secret", b"row-1");
        assert_eq!(key.open(&sealed, b"row-1").unwrap(), b"secret");
        assert_eq!(key.open(&sealed, b"row-2"), Err(VaultError::CannotOpen));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&tampered, b"row-1"), Err(VaultError::CannotOpen));
        let (other, _) = MasterKey::generate();
        assert_eq!(other.open(&sealed, b"row-1"), Err(VaultError::CannotOpen));
    }

    #[test]
    fn parse_and_redacted_debug() {
        let (_, text) = MasterKey::generate();
        let key = MasterKey::from_base64(&format!(" {text}\n")).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
        assert!(!format!("{key:?}").contains(&text));
        assert_eq!(MasterKey::from_base64("c2hvcnQ=").unwrap_err(), VaultError::InvalidMasterKey);
        assert_eq!(key.check_value(), MasterKey::from_base64(&text).unwrap().check_value());
    }
}
