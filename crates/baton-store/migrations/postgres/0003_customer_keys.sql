-- The customer vault's data keys: one per (tenant, customer), wrapped by the master
-- key recorded in `master_key_id`. Shredding (right to be forgotten) removes the
-- wrapped key and sets `shredded_at`; the row stays so the customer remains erased.

CREATE TABLE customer_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    customer_ref  TEXT NOT NULL,
    wrapped_key   BYTEA,
    master_key_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    shredded_at   BIGINT,
    PRIMARY KEY (tenant_id, customer_ref),
    -- Live rows hold a key; shredded rows hold none.
    CONSTRAINT customer_keys_shredded CHECK ((wrapped_key IS NULL) = (shredded_at IS NOT NULL))
);
-- Master key rotation walks the live keys not yet wrapped by the new key.
CREATE INDEX customer_keys_rotation ON customer_keys (master_key_id, tenant_id, customer_ref)
    WHERE wrapped_key IS NOT NULL;
