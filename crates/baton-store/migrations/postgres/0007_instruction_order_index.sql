-- Queries of one order's instructions filter on tenant and order. With only
-- (order_id, customer_ref) and the listing index (tenant_id, created_at, …), SQLite
-- picked the tenant index and scanned every instruction of the tenant for each order;
-- an index on both equality columns is the planner's clear choice.
DROP INDEX instructions_customer;
CREATE INDEX instructions_order ON instructions (tenant_id, order_id, customer_ref);
