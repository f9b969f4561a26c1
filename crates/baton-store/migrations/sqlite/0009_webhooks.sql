-- Webhooks (SPEC §5.1): endpoints, one delivery per (endpoint, event), and the log of
-- every attempt at delivering.

-- An endpoint of a tenant, or of the account itself when `tenant_id` is NULL (account
-- events such as `tenant.approval_requested`). Secrets are sealed under the master key;
-- during a rotation the previous secret keeps signing until `previous_secret_expires_at`.
CREATE TABLE webhook_endpoints (
    endpoint_id                TEXT PRIMARY KEY,
    account_id                 TEXT NOT NULL REFERENCES accounts (account_id),
    tenant_id                  TEXT REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    url                        TEXT NOT NULL,
    event_types                TEXT NOT NULL,
    description                TEXT,
    enabled                    BOOLEAN NOT NULL,
    secret_sealed              BLOB NOT NULL,
    previous_secret_sealed     BLOB,
    previous_secret_expires_at BIGINT,
    failing_since              BIGINT,
    disabled_reason            TEXT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (account_id, tenant_id, created_at);

-- One event to one endpoint. PENDING: not tried yet; FAILED: tried, tried again at
-- `next_attempt_at`; SUCCEEDED; DEAD: given up. `locked_until` leases it to one worker.
CREATE TABLE webhook_deliveries (
    delivery_id      TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
    event_seq        BIGINT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    ordering_key     TEXT,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    event_created_at BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    CONSTRAINT webhook_deliveries_unique UNIQUE (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('PENDING', 'FAILED');
CREATE INDEX webhook_deliveries_ordering ON webhook_deliveries (endpoint_id, ordering_key, event_seq)
    WHERE status IN ('PENDING', 'FAILED');
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
    attempt      BIGINT NOT NULL,
    status_code  BIGINT,
    duration_ms  BIGINT NOT NULL,
    response     TEXT,
    error        TEXT,
    attempted_at BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE INDEX events_ordering_undispatched ON events (ordering_key, seq) WHERE dispatched_at IS NULL;
