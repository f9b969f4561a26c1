//! Identity (SPEC §2): HMAC-signed requests are exchanged for JWT access tokens,
//! which then authenticate every other call.
//!
//! Per-request authentication touches no database: tokens are verified against
//! signing keys and a set of revoked keys that every node refreshes from the
//! database several times a second (see [`Engine::refresh_identity_caches`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use baton_domain::hmac_signature::HmacAuthorization;
use baton_domain::{KeyKind, Problem, RoleSet, TenantStatus};
use baton_store::{ApiKeyRecord, KeyChange, KeyOwner, SigningKeyRecord};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{new_id, Engine, EngineError, EngineResult};

/// How far a signed request's epoch may be from the server's clock.
pub const HMAC_WINDOW_SECS: f64 = 300.0;
/// How long a used nonce is remembered: longer than the window on either side.
pub const NONCE_RETENTION_MS: i64 = 900_000;
/// `aud` of management tokens.
pub const TOKEN_AUDIENCE: &str = "management-api";

/// An issued access token: `expires` is the expiry in Unix milliseconds, as text.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub access_token: String,
    pub expires: String,
}

/// The context headers a caller sent (`x-account-id`, `x-tenant-id`).
#[derive(Debug, Clone, Default)]
pub struct ContextHeaders<'a> {
    pub account_id: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
}

/// Who is calling: established from a verified, unrevoked access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The public key of the API key the token was issued for.
    pub key_id: String,
    pub account_id: String,
    pub tenant_id: Option<String>,
    pub roles: RoleSet,
    pub token_id: String,
}

impl Principal {
    pub fn kind(&self) -> KeyKind {
        if self.tenant_id.is_some() {
            KeyKind::Tenant
        } else {
            KeyKind::Account
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    exp: i64,
    iat: i64,
    jti: String,
    /// The API key the token was issued for.
    sid: String,
    account: String,
    #[serde(default)]
    tenant: Option<String>,
    role: Vec<String>,
    env: String,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Signing keys by `kid`, and the newest, which signs.
#[derive(Default)]
struct SigningKeys {
    by_kid: HashMap<String, Arc<SigningKey>>,
    newest: Option<Arc<SigningKey>>,
}

/// Per-node caches behind token verification.
#[derive(Default)]
pub(crate) struct TokenState {
    keys: RwLock<SigningKeys>,
    /// API keys changed within a token lifetime, with their current roles; a token
    /// of such a key is honoured only while the key lives and its roles are the ones
    /// in the token.
    changed: RwLock<HashMap<String, KeyChange>>,
}

fn token_invalid() -> Problem {
    Problem::unauthorized("TOKEN_INVALID").message("The access token is not valid.")
}

impl Engine {
    /// Exchanges an HMAC-signed request for an access token.
    pub async fn issue_token(
        &self,
        authorization: &str,
        body: &[u8],
        ctx: ContextHeaders<'_>,
    ) -> EngineResult<AccessToken> {
        let auth = HmacAuthorization::parse(authorization)?;
        let now_ms = self.now_ms();
        if !((now_ms as f64 / 1000.0) - auth.epoch_seconds()).abs().le(&HMAC_WINDOW_SECS) {
            return Err(Problem::unauthorized("HMAC_TIMESTAMP_OUT_OF_RANGE")
                .message("The request's epoch is more than 300 seconds from the server's time.")
                .into());
        }
        // Public keys are GUIDs issued in lower case; clients may send them in upper case.
        // The signature still covers the key exactly as sent.
        let public_key = auth.public_key.to_ascii_lowercase();
        let key = self.store.api_key_by_public_key(&public_key).await?.ok_or_else(|| {
            Problem::unauthorized("API_KEY_NOT_FOUND").message("The API key does not exist or was deleted.")
        })?;
        let private_key = self.open_private_key(&key)?;
        if !auth.verify(&private_key, body) {
            return Err(Problem::unauthorized("HMAC_SIGNATURE_INVALID")
                .message("The HMAC signature does not match.")
                .into());
        }
        check_context(&key.owner, &ctx)?;
        if let KeyOwner::Tenant { account_id, tenant_id } = &key.owner {
            let tenant = self.store.tenant(account_id, tenant_id).await?;
            if tenant.map(|t| t.status) != Some(TenantStatus::Active) {
                return Err(Problem::forbidden("TENANT_NOT_ACTIVE").message("The tenant is not active.").into());
            }
        }
        let fresh = self.store.remember_nonce(&public_key, auth.nonce, now_ms, now_ms + NONCE_RETENTION_MS).await?;
        if !fresh {
            return Err(Problem::unauthorized("HMAC_NONCE_REUSED")
                .message("The nonce was already used with this key.")
                .into());
        }
        self.sign_token(&key, now_ms).await
    }

    fn open_private_key(&self, key: &ApiKeyRecord) -> EngineResult<Vec<u8>> {
        self.master_key
            .open(&key.private_key_sealed, key.public_key.as_bytes())
            .map_err(|e| EngineError::Internal(anyhow::anyhow!("cannot open private key of {}: {e}", key.public_key)))
    }

    async fn sign_token(&self, key: &ApiKeyRecord, now_ms: i64) -> EngineResult<AccessToken> {
        let signing = match self.current_signing_key() {
            Some(k) => k,
            None => {
                self.reload_signing_keys().await?;
                self.current_signing_key()
                    .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("no token signing key in the database")))?
            }
        };
        let iat = now_ms / 1000;
        let exp = iat + self.config.token_ttl.as_secs() as i64;
        let claims = Claims {
            iss: self.config.token_issuer.clone(),
            aud: TOKEN_AUDIENCE.into(),
            exp,
            iat,
            jti: new_id(),
            sid: key.public_key.clone(),
            account: key.owner.account_id().to_string(),
            tenant: key.owner.tenant_id().map(str::to_string),
            role: key.roles.names().into_iter().map(String::from).collect(),
            env: self.config.environment.as_str().into(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(signing.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &signing.encoding)
            .map_err(|e| EngineError::Internal(anyhow::anyhow!("signing token: {e}")))?;
        Ok(AccessToken { access_token: token, expires: (exp * 1000).to_string() })
    }

    /// Verifies a bearer token and returns who is calling.
    pub async fn authenticate(&self, token: &str) -> EngineResult<Principal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| token_invalid())?;
        let kid = header.kid.ok_or_else(token_invalid)?;
        let key = match self.signing_key(&kid) {
            Some(k) => k,
            None => {
                // A node that has not yet seen a freshly rotated key loads it now.
                self.reload_signing_keys().await?;
                self.signing_key(&kid).ok_or_else(token_invalid)?
            }
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[TOKEN_AUDIENCE]);
        validation.set_issuer(&[&self.config.token_issuer]);
        // Expiry is checked below against the engine's clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims =
            jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(|_| token_invalid())?.claims;
        if claims.env != self.config.environment.as_str() {
            return Err(token_invalid().into());
        }
        if claims.exp * 1000 <= self.now_ms() {
            return Err(Problem::unauthorized("TOKEN_EXPIRED").message("The access token has expired.").into());
        }
        let roles = RoleSet::new(
            claims.role.iter().map(|r| r.parse().map_err(|_| token_invalid())).collect::<Result<Vec<_>, _>>()?,
        );
        if let Some(change) = self.tokens.changed.read().expect("lock").get(&claims.sid) {
            if change.deleted || change.roles != roles {
                return Err(Problem::unauthorized("TOKEN_REVOKED")
                    .message("The access token was revoked: its API key was deleted or its roles changed.")
                    .into());
            }
        }
        Ok(Principal {
            key_id: claims.sid,
            account_id: claims.account,
            tenant_id: claims.tenant,
            roles,
            token_id: claims.jti,
        })
    }

    /// Reloads signing keys and recently changed API keys from the database. Every
    /// node calls this several times a second, so a deleted or re-roled key's tokens
    /// stop working everywhere within that period.
    pub async fn refresh_identity_caches(&self) -> EngineResult<()> {
        self.reload_signing_keys().await?;
        // Older changes cannot matter: every token issued before them has expired.
        let horizon = self.now_ms() - self.config.token_ttl.as_millis() as i64 - 60_000;
        let changed =
            self.store.keys_changed_since(horizon).await?.into_iter().map(|c| (c.public_key.clone(), c)).collect();
        *self.tokens.changed.write().expect("lock") = changed;
        Ok(())
    }

    /// Applies a key change on this node at once (other nodes follow on refresh).
    pub(crate) fn note_key_change(&self, change: KeyChange) {
        self.tokens.changed.write().expect("lock").insert(change.public_key.clone(), change);
    }

    /// Adds a new token signing key; tokens signed with older keys stay valid until
    /// they expire, after which the old keys are pruned.
    pub async fn rotate_signing_key(&self) -> EngineResult<String> {
        let now = self.now_ms();
        let record = self.new_signing_key(now);
        self.store.insert_signing_key(&record).await?;
        let keep_after = now - self.config.token_ttl.as_millis() as i64 - 60_000;
        self.store.prune_signing_keys(keep_after).await?;
        self.reload_signing_keys().await?;
        Ok(record.kid)
    }

    pub(crate) fn new_signing_key(&self, now: i64) -> SigningKeyRecord {
        let kid = new_id();
        let secret = baton_vault::random_bytes::<32>();
        SigningKeyRecord { secret_sealed: self.master_key.seal(&secret, kid.as_bytes()), kid, created_at: now }
    }

    async fn reload_signing_keys(&self) -> EngineResult<()> {
        let records = self.store.signing_keys().await?;
        {
            // Usually nothing changed since the last refresh: keep the opened keys.
            let current = self.tokens.keys.read().expect("lock");
            let unchanged = records.len() == current.by_kid.len()
                && records.iter().all(|r| current.by_kid.contains_key(&r.kid))
                && records.last().map(|r| &r.kid) == current.newest.as_ref().map(|k| &k.kid);
            if unchanged {
                return Ok(());
            }
        }
        let mut by_kid = HashMap::with_capacity(records.len());
        let mut newest = None;
        for r in records {
            let secret = self
                .master_key
                .open(&r.secret_sealed, r.kid.as_bytes())
                .map_err(|e| EngineError::Internal(anyhow::anyhow!("cannot open signing key {}: {e}", r.kid)))?;
            let key = Arc::new(SigningKey {
                kid: r.kid.clone(),
                encoding: EncodingKey::from_secret(&secret),
                decoding: DecodingKey::from_secret(&secret),
            });
            newest = Some(key.clone());
            by_kid.insert(r.kid, key);
        }
        *self.tokens.keys.write().expect("lock") = SigningKeys { by_kid, newest };
        Ok(())
    }

    fn current_signing_key(&self) -> Option<Arc<SigningKey>> {
        self.tokens.keys.read().expect("lock").newest.clone()
    }

    fn signing_key(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.tokens.keys.read().expect("lock").by_kid.get(kid).cloned()
    }
}

/// Context headers, when sent, must name the key's own account and tenant.
fn check_context(owner: &KeyOwner, ctx: &ContextHeaders<'_>) -> Result<(), Problem> {
    if let Some(a) = ctx.account_id {
        if !a.eq_ignore_ascii_case(owner.account_id()) {
            return Err(
                Problem::forbidden("ACCOUNT_ID_MISMATCH").message("x-account-id does not match the API key's account.")
            );
        }
    }
    if let Some(t) = ctx.tenant_id {
        if owner.tenant_id().is_none_or(|own| !own.eq_ignore_ascii_case(t)) {
            return Err(
                Problem::forbidden("TENANT_ID_MISMATCH").message("x-tenant-id does not match the API key's tenant.")
            );
        }
    }
    Ok(())
}

/// A new API key pair: a GUID public key and base64 of 32 random bytes.
pub(crate) fn new_key_pair() -> (String, String) {
    (uuid::Uuid::new_v4().to_string(), B64.encode(baton_vault::random_bytes::<32>()))
}
