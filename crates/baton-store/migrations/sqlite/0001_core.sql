-- Core: accounts, licences, tenants, API keys, token signing keys, nonces, idempotency.
-- Timestamps are Unix milliseconds (BIGINT) so that both backends share one row shape.

CREATE TABLE baton_meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE accounts (
    account_id                        TEXT PRIMARY KEY,
    account_ref                       TEXT NOT NULL UNIQUE,
    company_name                      TEXT NOT NULL,
    billing_first_name                TEXT NOT NULL,
    billing_last_name                 TEXT NOT NULL,
    street_address                    TEXT NOT NULL,
    extended_street_address           TEXT NOT NULL,
    locality                          TEXT NOT NULL,
    region                            TEXT NOT NULL,
    post_code                         TEXT NOT NULL,
    country                           TEXT,
    tenant_creation_requires_approval BOOLEAN NOT NULL,
    created_at                        BIGINT NOT NULL,
    updated_at                        BIGINT NOT NULL
);

CREATE TABLE licenses (
    license_id       TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (account_id),
    license_name     TEXT NOT NULL,
    max_tenants      BIGINT NOT NULL,
    max_transactions BIGINT NOT NULL,
    max_collect_apps BIGINT NOT NULL,
    max_payout_apps  BIGINT NOT NULL,
    valid_from       BIGINT NOT NULL,
    valid_to         BIGINT
);
CREATE UNIQUE INDEX licenses_one_current ON licenses (account_id) WHERE valid_to IS NULL;

CREATE TABLE tenants (
    tenant_id               TEXT PRIMARY KEY,
    account_id              TEXT NOT NULL REFERENCES accounts (account_id),
    name                    TEXT NOT NULL,
    name_key                TEXT NOT NULL,
    street_address          TEXT NOT NULL,
    extended_street_address TEXT NOT NULL,
    locality                TEXT NOT NULL,
    region                  TEXT NOT NULL,
    post_code               TEXT NOT NULL,
    country                 TEXT,
    status                  TEXT NOT NULL,
    status_reason           TEXT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    CONSTRAINT tenants_name_unique UNIQUE (account_id, name_key)
);

CREATE TABLE api_keys (
    public_key         TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts (account_id),
    tenant_id          TEXT REFERENCES tenants (tenant_id),
    name               TEXT NOT NULL,
    roles              TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    deleted_at         BIGINT
);
CREATE INDEX api_keys_owner ON api_keys (account_id, tenant_id);
CREATE INDEX api_keys_deleted ON api_keys (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE token_signing_keys (
    kid           TEXT PRIMARY KEY,
    secret_sealed BLOB NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE hmac_nonces (
    public_key TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (public_key, nonce)
);
CREATE INDEX hmac_nonces_expiry ON hmac_nonces (expires_at);

CREATE TABLE idempotency_keys (
    scope            TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    completed        BOOLEAN NOT NULL,
    response_status  BIGINT,
    response_headers TEXT,
    response_body    BLOB,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
