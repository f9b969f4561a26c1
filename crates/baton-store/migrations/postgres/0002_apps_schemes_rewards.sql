-- Installed apps, collect and payout schemes with their drafts, reward groups and the
-- sandbox reward app's account. Every row is owned by a tenant.

CREATE TABLE installed_apps (
    tenant_id             TEXT NOT NULL REFERENCES tenants (tenant_id),
    app_id                TEXT NOT NULL,
    -- What the app can do, for the licence's maxCollectApps / maxPayoutApps.
    can_debit             BOOLEAN NOT NULL,
    can_credit            BOOLEAN NOT NULL,
    config_public         TEXT,
    config_secrets_sealed BYTEA,
    installed_at          BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
);

CREATE TABLE schemes (
    scheme_id          TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    kind               TEXT NOT NULL,
    published_draft_id TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX schemes_tenant ON schemes (tenant_id, kind, created_at);

CREATE TABLE scheme_drafts (
    draft_id      TEXT PRIMARY KEY,
    scheme_id     TEXT NOT NULL REFERENCES schemes (scheme_id),
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    code          TEXT,
    rules         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_modified BIGINT NOT NULL,
    CONSTRAINT scheme_drafts_name_unique UNIQUE (scheme_id, name_key)
);
CREATE INDEX scheme_drafts_scheme ON scheme_drafts (scheme_id, created_at);

-- What each draft references, so that uninstalling an app or deleting a reward group
-- can be refused while a draft uses it.
CREATE TABLE draft_references (
    draft_id  TEXT NOT NULL REFERENCES scheme_drafts (draft_id),
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    target_id TEXT NOT NULL,
    PRIMARY KEY (draft_id, kind, target_id)
);
CREATE INDEX draft_references_target ON draft_references (tenant_id, kind, target_id);

CREATE TABLE reward_groups (
    reward_group_id TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL,
    members         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT reward_groups_name_unique UNIQUE (tenant_id, name_key)
);

CREATE TABLE reward_accounts (
    tenant_id           TEXT NOT NULL REFERENCES tenants (tenant_id),
    app_id              TEXT NOT NULL,
    customer_identifier TEXT NOT NULL,
    account_identifier  TEXT NOT NULL,
    currency            TEXT NOT NULL,
    balance_minor       BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
);
