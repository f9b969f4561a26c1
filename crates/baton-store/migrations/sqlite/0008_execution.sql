-- Execution (SPEC §4.9, §4.10, §5.2, §5.3): one transaction row per attempt at a PSP,
-- refunds, chargebacks, the outbox of events, and the job queue of the workers.

CREATE TABLE transactions (
    transaction_id          TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (tenant_id),
    order_id                TEXT NOT NULL REFERENCES orders (order_id),
    instruction_id          TEXT NOT NULL REFERENCES instructions (instruction_id),
    customer_ref            TEXT NOT NULL,
    financial_instrument_id TEXT,
    app_id                  TEXT NOT NULL,
    payment_method          TEXT,
    operation               TEXT NOT NULL,
    transaction_type        TEXT NOT NULL,
    attempt                 INTEGER NOT NULL,
    amount_minor            BIGINT NOT NULL,
    currency                TEXT NOT NULL,
    status                  TEXT NOT NULL,
    idempotency_key         TEXT NOT NULL,
    provider_reference      TEXT,
    decline_category        TEXT,
    error_code              TEXT,
    psp_code                TEXT,
    psp_message             TEXT,
    connector_ms            BIGINT,
    reward_id               TEXT,
    result_sealed           BLOB,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    finished_at             BIGINT
);
CREATE INDEX transactions_instruction ON transactions (tenant_id, instruction_id, created_at);
CREATE INDEX transactions_unfinished ON transactions (status, updated_at) WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX transactions_provider_reference ON transactions (app_id, provider_reference);

CREATE TABLE refunds (
    refund_id          TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    instruction_id     TEXT NOT NULL REFERENCES instructions (instruction_id),
    transaction_id     TEXT NOT NULL REFERENCES transactions (transaction_id),
    app_id             TEXT NOT NULL,
    refund_ref         TEXT NOT NULL,
    amount_minor       BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    reason             TEXT NOT NULL,
    status             TEXT NOT NULL,
    provider_reference TEXT,
    error_code         TEXT,
    psp_code           TEXT,
    psp_message        TEXT,
    metadata           TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    CONSTRAINT refunds_ref_unique UNIQUE (instruction_id, refund_ref)
);

CREATE TABLE chargebacks (
    chargeback_id        TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (tenant_id),
    instruction_id       TEXT NOT NULL REFERENCES instructions (instruction_id),
    transaction_id       TEXT NOT NULL REFERENCES transactions (transaction_id),
    app_id               TEXT NOT NULL,
    provider_reference   TEXT NOT NULL,
    amount_minor         BIGINT NOT NULL,
    currency             TEXT NOT NULL,
    reason               TEXT NOT NULL,
    provider_reason_code TEXT,
    status               TEXT NOT NULL,
    due_by               BIGINT,
    evidence             TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CONSTRAINT chargebacks_provider_unique UNIQUE (tenant_id, app_id, provider_reference)
);
CREATE INDEX chargebacks_tenant ON chargebacks (tenant_id, created_at);

-- The outbox: every event is written in the transaction of the change it announces.
-- `ordering_key` (an instruction id) orders the deliveries of one subject.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL,
    tenant_id     TEXT,
    event_type    TEXT NOT NULL,
    ordering_key  TEXT,
    data          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX events_undispatched ON events (seq) WHERE dispatched_at IS NULL;
CREATE INDEX events_tenant ON events (tenant_id, created_at);

-- Work for the workers: settle an asynchronous attempt, resolve an unknown one, a
-- sandbox simulation. One job per (kind, subject); claimed with a lease.
CREATE TABLE jobs (
    job_id       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    tenant_id    TEXT,
    payload      TEXT NOT NULL,
    run_at       BIGINT NOT NULL,
    attempts     INTEGER NOT NULL,
    locked_until BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    CONSTRAINT jobs_subject_unique UNIQUE (kind, subject_id)
);
CREATE INDEX jobs_due ON jobs (run_at);
