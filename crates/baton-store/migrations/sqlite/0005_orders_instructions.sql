-- Orders, their customer defaults and their instructions (SPEC §4.9). Metadata is a
-- JSON object in TEXT; an instruction's own FI and scheme are stored with their
-- source, and effective values are resolved against the customer default on read.

CREATE TABLE orders (
    order_id   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    order_ref  TEXT NOT NULL,
    metadata   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT orders_ref_unique UNIQUE (tenant_id, order_ref)
);

CREATE TABLE customer_defaults (
    order_id                TEXT NOT NULL REFERENCES orders (order_id),
    customer_ref            TEXT NOT NULL,
    financial_instrument_id TEXT,
    instrument_source       TEXT NOT NULL,
    scheme_id               TEXT,
    scheme_source           TEXT NOT NULL,
    metadata                TEXT NOT NULL,
    updated_at              BIGINT NOT NULL,
    PRIMARY KEY (order_id, customer_ref)
);

CREATE TABLE instructions (
    instruction_id          TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (tenant_id),
    order_id                TEXT NOT NULL REFERENCES orders (order_id),
    instruction_ref         TEXT NOT NULL,
    customer_ref            TEXT NOT NULL,
    direction               TEXT NOT NULL,
    status                  TEXT NOT NULL,
    financial_instrument_id TEXT,
    instrument_source       TEXT NOT NULL,
    scheme_id               TEXT,
    scheme_source           TEXT NOT NULL,
    amount_minor            BIGINT NOT NULL,
    currency                TEXT NOT NULL,
    country                 TEXT NOT NULL,
    settled_by_date         TEXT,
    metadata                TEXT NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    CONSTRAINT instructions_ref_unique UNIQUE (order_id, instruction_ref)
);
CREATE INDEX instructions_customer ON instructions (order_id, customer_ref);
