-- Reads of one order's instructions filter on tenant and order and sort by creation.
-- With only (order_id, customer_ref) and the listing index (tenant_id, created_at, id),
-- SQLite used the listing index (it avoids the sort) and scanned every instruction of
-- the tenant for each order. This index matches both equalities and the order.
DROP INDEX instructions_customer;
CREATE INDEX instructions_order ON instructions (tenant_id, order_id, created_at, instruction_id);
