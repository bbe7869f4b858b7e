-- The SIM's last published case record as its own column, so that readers
-- (GET /v1/sims/{imsi}) query the store instead of parsing the worker's
-- private rule state. Rows written before this migration are filled from
-- their state by the store (simguard.store, after migration 5).
ALTER TABLE sims ADD COLUMN case_record TEXT;
