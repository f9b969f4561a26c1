-- An instruction's attempts are found by the instruction; the tenant need not lead the
-- index. Led by the tenant, it let a planner without statistics answer "this attempt of
-- this tenant" by reading every attempt of the tenant instead of the primary key.
DROP INDEX transactions_instruction;
CREATE INDEX transactions_instruction ON transactions (instruction_id, created_at);
