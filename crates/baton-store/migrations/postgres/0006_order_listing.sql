-- Listings of a tenant's orders and instructions (GET /v1/order-management,
-- GET /v1/instructions): keyset pagination on (created_at, id) within a tenant.

CREATE INDEX orders_listing ON orders (tenant_id, created_at, order_id);
CREATE INDEX instructions_listing ON instructions (tenant_id, created_at, instruction_id);
