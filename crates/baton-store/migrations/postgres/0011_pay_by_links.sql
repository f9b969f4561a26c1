-- Pay-by-links (SPEC §4.11, §5.7): links that open the hosted checkout of one
-- instruction, the messages that carry them to customers, and two per-tenant
-- documents of the checkout: the theme template and the delivery settings.

-- The id is the capability in the link's URL (at least 128 random bits).
CREATE TABLE pay_by_links (
    pay_by_link_id TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    order_id       TEXT NOT NULL REFERENCES orders (order_id),
    instruction_id TEXT NOT NULL REFERENCES instructions (instruction_id),
    status         TEXT NOT NULL,
    language       TEXT NOT NULL,
    callbacks      TEXT,
    expires_at     BIGINT NOT NULL,
    opened_at      BIGINT,
    finished_at    BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX pay_by_links_instruction ON pay_by_links (tenant_id, instruction_id, created_at);
CREATE INDEX pay_by_links_live ON pay_by_links (expires_at) WHERE status IN ('ACTIVE', 'OPENED');

-- One message per send (the first and every resend). The recipient is sealed with
-- the customer's data key; only its masked form is readable.
CREATE TABLE message_deliveries (
    delivery_id      TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    pay_by_link_id   TEXT NOT NULL REFERENCES pay_by_links (pay_by_link_id),
    customer_ref     TEXT NOT NULL,
    channel          TEXT NOT NULL,
    recipient_sealed BYTEA NOT NULL,
    recipient_masked TEXT NOT NULL,
    language         TEXT NOT NULL,
    template         TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX message_deliveries_link ON message_deliveries (pay_by_link_id, created_at);

-- The white-label document of the checkout, as validated and sanitised (JSON).
CREATE TABLE theme_templates (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    document       TEXT NOT NULL,
    secrets_sealed BYTEA,
    updated_at     BIGINT NOT NULL
);

-- A tenant's own SMTP server and SMS gateway (JSON); their secrets sealed under the
-- master key.
CREATE TABLE delivery_settings (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    document       TEXT NOT NULL,
    secrets_sealed BYTEA,
    updated_at     BIGINT NOT NULL
);
