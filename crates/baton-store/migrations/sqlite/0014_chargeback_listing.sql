-- The chargeback listing (GET /v1/chargebacks) pages newest first by keyset on
-- (created_at DESC, chargeback_id) within a tenant. This index has exactly that order,
-- so a page reads its own rows from the cursor on (the status and reason filters are
-- checked on the rows read); it replaces chargebacks_tenant, a prefix of it. The
-- chargebacks of one instruction (GET …/instruction/{ref}/chargebacks) are one range
-- of the second index, in the same order.
DROP INDEX chargebacks_tenant;
CREATE INDEX chargebacks_listing ON chargebacks (tenant_id, created_at DESC, chargeback_id);
CREATE INDEX chargebacks_instruction ON chargebacks (tenant_id, instruction_id, created_at DESC, chargeback_id);
