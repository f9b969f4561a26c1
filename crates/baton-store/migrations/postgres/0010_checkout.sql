-- Hosted checkout (SPEC §4.11): one session per opened checkout token.
--
-- Opening a token inserts its session; the unique `jti` makes a token single use (a
-- second open finds the id taken). The session id (128 random bits, base64url) is the
-- customer's capability for the session's pages. `claims` is the token's claim set as
-- JSON text (refs, amount, callbacks: nothing secret); `bearer_token` is echoed in the
-- outcome the page reports to the merchant. A submission leases the session until
-- `busy_until`, so one session runs one payment attempt at a time. Rows are deleted a
-- day after they expire.
CREATE TABLE checkout_sessions (
    session_id            TEXT PRIMARY KEY,
    jti                   TEXT NOT NULL,
    tenant_id             TEXT NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    order_ref             TEXT NOT NULL,
    instruction_ref       TEXT NOT NULL,
    claims                TEXT NOT NULL,
    bearer_token          TEXT NOT NULL,
    language              TEXT NOT NULL,
    parent_origin         TEXT,
    status                TEXT NOT NULL,
    attempts              BIGINT NOT NULL,
    last_failure          TEXT,
    provider_name         TEXT,
    pending_instrument_id TEXT,
    busy_until            BIGINT,
    expires_at            BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    CONSTRAINT checkout_sessions_jti_unique UNIQUE (jti)
);
CREATE INDEX checkout_sessions_expiry ON checkout_sessions (expires_at);
