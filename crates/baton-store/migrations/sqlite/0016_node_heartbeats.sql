-- Every node writes its heartbeat here about once a second. A claim records the node
-- that made it (an idempotency key, a webhook delivery's or a job's lease, an attempt
-- in flight at a PSP), and a claim whose node has been silent for a few seconds (a
-- crash) is taken over then, not when its lease or staleness limit would run out.
CREATE TABLE nodes (
    node_id    TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

ALTER TABLE idempotency_keys ADD COLUMN node_id TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN locked_by TEXT;
ALTER TABLE jobs ADD COLUMN locked_by TEXT;
ALTER TABLE transactions ADD COLUMN node_id TEXT;
