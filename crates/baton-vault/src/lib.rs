//! Baton's key hierarchy: the master key (key-encryption key), per-customer data keys,
//! and AES-256-GCM sealing.
//!
//! Secrets such as API private keys are sealed under the master key with the owning
//! record's identity as associated data, so a ciphertext copied onto another row does
//! not open. Each customer's instruments are sealed under that customer's [`DataKey`],
//! which is stored only wrapped (sealed) by the master key: rotating the master key
//! re-wraps data keys without touching the data, and destroying a wrapped data key
//! makes everything sealed under it unreadable (crypto-shredding).
//!
//! Nothing here logs or prints key material; the `Debug` of every key is redacted and
//! key bytes are zeroed when dropped.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of the master key, of data keys and of every derived key, in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
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

    /// [`MasterKey::derive`] as an AES-256-GCM key for sealing values of one purpose
    /// (checkout tokens: `checkout-token`).
    pub fn purpose_key(&self, label: &str) -> PurposeKey {
        let bytes = Zeroizing::new(self.derive(label));
        PurposeKey(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| key.copy_from_slice(&bytes[..])))
    }

    /// A value that identifies this key without revealing it, stored with the data it
    /// protects so that starting with the wrong key fails loudly instead of corrupting.
    pub fn check_value(&self) -> Vec<u8> {
        self.derive("key-check").to_vec()
    }

    /// A short, stable identifier of this key (16 hex digits of
    /// HMAC-SHA256(master, "baton:key-id")), recorded next to what it wraps so that a
    /// rotation can tell which rows it has already re-wrapped. It reveals nothing
    /// usable about the key.
    pub fn key_id(&self) -> String {
        self.derive("key-id")[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Encrypts `plaintext`, binding it to `aad` (the owning record's identity).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal_with(self.0.expose_secret(), plaintext, aad)
    }

    /// Decrypts a value sealed by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(self.0.expose_secret(), sealed, aad)
    }

    /// Re-seals a value sealed under this key so that it opens under `new` instead,
    /// with the same `aad` (master key rotation). The plaintext never leaves this
    /// function and is zeroed before it returns.
    pub fn reseal_to(&self, new: &MasterKey, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let plaintext = Zeroizing::new(self.open(sealed, aad)?);
        Ok(new.seal(&plaintext, aad))
    }

    /// Wraps (seals) a data key under this master key, bound to `aad` (the owner of
    /// the data key, see [`customer_key_aad`]). Same format as [`MasterKey::seal`].
    pub fn wrap(&self, key: &DataKey, aad: &[u8]) -> Vec<u8> {
        self.seal(key.0.expose_secret(), aad)
    }

    /// Unwraps a data key wrapped by [`MasterKey::wrap`] with the same `aad`.
    pub fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, VaultError> {
        let bytes = Zeroizing::new(self.open(wrapped, aad)?);
        if bytes.len() != KEY_LEN {
            return Err(VaultError::CannotOpen);
        }
        Ok(DataKey(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| key.copy_from_slice(&bytes))))
    }
}

/// A key for one purpose, derived from the master key (see [`MasterKey::purpose_key`]):
/// sealing with it never yields a value the master key or another purpose's key opens.
/// Same sealed format as [`MasterKey::seal`]; `Debug` is redacted; zeroed on drop.
pub struct PurposeKey(SecretBox<[u8; KEY_LEN]>);

impl std::fmt::Debug for PurposeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurposeKey([redacted])")
    }
}

impl PurposeKey {
    /// Encrypts `plaintext` bound to `aad`, with a fresh random 96-bit nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal_with(self.0.expose_secret(), plaintext, aad)
    }

    /// Decrypts a value sealed by [`PurposeKey::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(self.0.expose_secret(), sealed, aad)
    }

    /// HMAC-SHA256 of `message` under this key (CSRF tokens and other bindings).
    pub fn mac(&self, message: &[u8]) -> [u8; KEY_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret()).expect("any key length");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

/// A customer's data key (AES-256-GCM). It exists in clear only in memory, for the
/// duration of one use; it is stored wrapped by the master key. Not `Clone`, so that
/// copies of the key bytes do not multiply; zeroed on drop; `Debug` is redacted.
pub struct DataKey(SecretBox<[u8; KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| rand::rngs::OsRng.fill_bytes(key)))
    }

    /// Encrypts `plaintext` bound to `aad` (for an instrument: [`instrument_aad`]), in
    /// the same versioned format as [`MasterKey::seal`].
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal_with(self.0.expose_secret(), plaintext, aad)
    }

    /// Decrypts a value sealed by [`DataKey::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(self.0.expose_secret(), sealed, aad)
    }
}

/// Associated data of a customer's wrapped data key: the key opens only for the
/// (tenant, customer) row it was wrapped for.
pub fn customer_key_aad(tenant_id: &str, customer_ref: &str) -> Vec<u8> {
    encode_aad("baton:customer-key:v1", &[tenant_id, customer_ref])
}

/// Associated data of an instrument's sealed fields: a ciphertext moved to another
/// instrument, customer or tenant does not open.
pub fn instrument_aad(tenant_id: &str, customer_ref: &str, instrument_id: &str) -> Vec<u8> {
    encode_aad("baton:instrument:v1", &[tenant_id, customer_ref, instrument_id])
}

/// An unambiguous encoding: the purpose label, then every field, each preceded by its
/// length as a big-endian `u32`, so that no two different tuples encode the same
/// (plain concatenation would equate ("ab", "c") with ("a", "bc")).
fn encode_aad(label: &str, fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + fields.iter().map(|f| f.len() + 4).sum::<usize>() + 4);
    for part in std::iter::once(label).chain(fields.iter().copied()) {
        let len = u32::try_from(part.len()).expect("associated data fields are far shorter than 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// `FORMAT_V1 || nonce (12) || AES-256-GCM(ciphertext || tag)`, with a random nonce.
fn seal_with(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
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

fn open_with(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let (&version, rest) = sealed.split_first().ok_or(VaultError::CannotOpen)?;
    if version != FORMAT_V1 || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::CannotOpen);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).map_err(|_| VaultError::CannotOpen)
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

    #[test]
    fn key_id_is_short_stable_and_distinct() {
        let (key, text) = MasterKey::generate();
        let id = key.key_id();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{id}");
        assert_eq!(MasterKey::from_base64(&text).unwrap().key_id(), id);
        assert_ne!(MasterKey::generate().0.key_id(), id);
        // Neither the key nor its check value shows through.
        assert!(!id.contains(&text));
        assert_ne!(key.check_value()[..8].iter().map(|b| format!("{b:02x}")).collect::<String>(), id);
    }

    #[test]
    fn wrap_unwrap_round_trip_bound_to_owner_and_master_key() {
        let (master, _) = MasterKey::generate();
        let data_key = DataKey::generate();
        let aad = customer_key_aad("tenant-1", "cust-1");
        let wrapped = master.wrap(&data_key, &aad);
        assert_eq!(wrapped[0], FORMAT_V1);
        assert_eq!(wrapped.len(), 1 + NONCE_LEN + KEY_LEN + TAG_LEN);

        let unwrapped = master.unwrap(&wrapped, &aad).unwrap();
        let sealed = data_key.seal(b"4111111111111111", b"fi");
        assert_eq!(unwrapped.open(&sealed, b"fi").unwrap(), b"4111111111111111");

        // Another customer's row, another tenant's row, another master key: no.
        assert_eq!(
            master.unwrap(&wrapped, &customer_key_aad("tenant-1", "cust-2")).unwrap_err(),
            VaultError::CannotOpen
        );
        assert_eq!(
            master.unwrap(&wrapped, &customer_key_aad("tenant-2", "cust-1")).unwrap_err(),
            VaultError::CannotOpen
        );
        let (other, _) = MasterKey::generate();
        assert_eq!(other.unwrap(&wrapped, &aad).unwrap_err(), VaultError::CannotOpen);
        // A sealed value of the wrong length is not a data key.
        assert_eq!(master.unwrap(&master.seal(b"short", &aad), &aad).unwrap_err(), VaultError::CannotOpen);
        assert_eq!(master.unwrap(&[], &aad).unwrap_err(), VaultError::CannotOpen);
    }

    #[test]
    fn reseal_to_moves_a_value_to_the_new_key() {
        let (old, _) = MasterKey::generate();
        let (new, _) = MasterKey::generate();
        let sealed = old.seal(b"private key", b"pk-1");
        let resealed = old.reseal_to(&new, &sealed, b"pk-1").unwrap();
        assert_eq!(new.open(&resealed, b"pk-1").unwrap(), b"private key");
        assert_eq!(old.open(&resealed, b"pk-1").unwrap_err(), VaultError::CannotOpen);
        // The same associated data is kept: it still does not open for another row.
        assert_eq!(new.open(&resealed, b"pk-2").unwrap_err(), VaultError::CannotOpen);
        // Only values this key can open are re-sealed.
        assert_eq!(new.reseal_to(&old, &sealed, b"pk-1").unwrap_err(), VaultError::CannotOpen);
        assert_eq!(old.reseal_to(&new, &sealed, b"pk-2").unwrap_err(), VaultError::CannotOpen);
        // A wrapped data key re-seals to one the new key unwraps.
        let data_key = DataKey::generate();
        let aad = customer_key_aad("t", "c");
        let rewrapped = old.reseal_to(&new, &old.wrap(&data_key, &aad), &aad).unwrap();
        let sealed = data_key.seal(b"iban", b"fi");
        assert_eq!(new.unwrap(&rewrapped, &aad).unwrap().open(&sealed, b"fi").unwrap(), b"iban");
    }

    #[test]
    fn data_key_seal_open_round_trip() {
        let key = DataKey::generate();
        let aad = instrument_aad("t", "c", "fi-1");
        for plaintext in [&b""[..], b"x", &[0u8; 4096]] {
            let sealed = key.seal(plaintext, &aad);
            assert_eq!(key.open(&sealed, &aad).unwrap(), plaintext);
        }
        // Fresh nonce per seal: equal plaintexts give different ciphertexts.
        assert_ne!(key.seal(b"same", &aad), key.seal(b"same", &aad));
        let sealed = key.seal(b"secret", &aad);
        assert_eq!(key.open(&sealed, b"").unwrap_err(), VaultError::CannotOpen);
        assert_eq!(DataKey::generate().open(&sealed, &aad).unwrap_err(), VaultError::CannotOpen);
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(key.open(&tampered, &aad).unwrap_err(), VaultError::CannotOpen, "byte {i}");
        }
        assert_eq!(key.open(&sealed[..sealed.len() - 1], &aad).unwrap_err(), VaultError::CannotOpen);
        // The master key and a data key never open each other's values.
        let (master, _) = MasterKey::generate();
        assert_eq!(master.open(&sealed, &aad).unwrap_err(), VaultError::CannotOpen);
        assert_eq!(key.open(&master.seal(b"secret", &aad), &aad).unwrap_err(), VaultError::CannotOpen);
    }

    #[test]
    fn instrument_ciphertext_does_not_move_between_rows() {
        let key = DataKey::generate();
        let sealed = key.seal(b"GB33BUKB20201555555555", &instrument_aad("t1", "c1", "fi1"));
        assert!(key.open(&sealed, &instrument_aad("t1", "c1", "fi1")).is_ok());
        for (t, c, i) in [("t2", "c1", "fi1"), ("t1", "c2", "fi1"), ("t1", "c1", "fi2"), ("t1c1", "", "fi1")] {
            assert_eq!(key.open(&sealed, &instrument_aad(t, c, i)).unwrap_err(), VaultError::CannotOpen, "{t}/{c}/{i}");
        }
    }

    #[test]
    fn associated_data_is_unambiguous() {
        // Plain concatenation would make these equal.
        assert_ne!(instrument_aad("ab", "c", "d"), instrument_aad("a", "bc", "d"));
        assert_ne!(instrument_aad("a", "b", "cd"), instrument_aad("a", "bc", "d"));
        assert_ne!(instrument_aad("", "", "abc"), instrument_aad("abc", "", ""));
        assert_ne!(customer_key_aad("a:b", "c"), customer_key_aad("a", "b:c"));
        // Purposes are separated: a customer key's AAD is never an instrument's.
        assert_ne!(customer_key_aad("t", "c"), instrument_aad("t", "c", ""));
        assert_eq!(instrument_aad("t", "c", "i"), instrument_aad("t", "c", "i"));
    }

    #[test]
    fn purpose_keys_are_separated() {
        let (master, _) = MasterKey::generate();
        let tokens = master.purpose_key("checkout-token");
        let sealed = tokens.seal(b"claims", b"aad");
        assert_eq!(tokens.open(&sealed, b"aad").unwrap(), b"claims");
        assert_eq!(master.purpose_key("checkout-token").open(&sealed, b"aad").unwrap(), b"claims");
        assert_eq!(master.purpose_key("other").open(&sealed, b"aad").unwrap_err(), VaultError::CannotOpen);
        assert_eq!(master.open(&sealed, b"aad").unwrap_err(), VaultError::CannotOpen);
        assert_eq!(tokens.open(&sealed, b"other").unwrap_err(), VaultError::CannotOpen);
        assert_eq!(format!("{tokens:?}"), "PurposeKey([redacted])");
        assert_eq!(tokens.mac(b"x"), master.purpose_key("checkout-token").mac(b"x"));
        assert_ne!(tokens.mac(b"x"), master.purpose_key("other").mac(b"x"));
    }

    #[test]
    fn data_key_debug_is_redacted() {
        let key = DataKey::generate();
        assert_eq!(format!("{key:?}"), "DataKey([redacted])");
        assert_eq!(format!("{key:#?}"), "DataKey([redacted])");
        let bytes = format!("{:?}", key.0.expose_secret());
        assert!(!format!("{key:?}").contains(&bytes));
    }
}
