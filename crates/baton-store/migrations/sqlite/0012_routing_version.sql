-- A version of each tenant's routing configuration (its installed apps and their
-- configuration, its schemes and their drafts), raised in the same transaction as every
-- change to it. Executions read it with the instruction, so a node may keep what routing
-- needs (published rules, opened app configurations) in memory and knows, on every
-- execution and whichever node made the change, when its copy has become stale.
ALTER TABLE tenants ADD COLUMN routing_version BIGINT NOT NULL DEFAULT 0;
