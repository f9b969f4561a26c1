-- The worker looks for dated instructions that are due (to collect, or to mark LATE)
-- on every tick; without an index that is a scan of every instruction ever made.
-- Status leads, so each status the worker asks for is one range of this index.
CREATE INDEX instructions_due ON instructions (status, settled_by_date, created_at, instruction_id)
    WHERE settled_by_date IS NOT NULL;
