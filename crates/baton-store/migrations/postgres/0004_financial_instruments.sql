-- The customer vault's financial instruments (SPEC §5.4). Sensitive details and
-- provider tokens are sealed with the customer's data key (crypto-shredded on
-- erasure); display data (last four digits, brand, masked IBAN, expiry) is in clear.

CREATE TABLE financial_instruments (
    financial_instrument_id TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (tenant_id),
    customer_ref            TEXT NOT NULL,
    type                    TEXT NOT NULL,
    state                   TEXT NOT NULL,
    state_reason            TEXT,
    display                 TEXT NOT NULL,
    details_sealed          BYTEA NOT NULL,
    provider_tokens_sealed  BYTEA,
    single_use              BOOLEAN NOT NULL,
    supports_debit          BOOLEAN NOT NULL,
    supports_credit         BOOLEAN NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX financial_instruments_customer ON financial_instruments (tenant_id, customer_ref, created_at);

-- Every state an instrument has been in, numbered from 1 (its state at creation).
CREATE TABLE financial_instrument_states (
    financial_instrument_id TEXT NOT NULL REFERENCES financial_instruments (financial_instrument_id),
    seq                     BIGINT NOT NULL,
    state                   TEXT NOT NULL,
    reason                  TEXT,
    changed_at              BIGINT NOT NULL,
    PRIMARY KEY (financial_instrument_id, seq)
);

-- Customers forgotten on request (right to be forgotten).
CREATE TABLE erasures (
    erasure_id         TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    customer_ref       TEXT NOT NULL,
    instruments_closed BIGINT NOT NULL,
    created_at         BIGINT NOT NULL
);
