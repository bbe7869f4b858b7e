-- Operator notices. `notices` holds each SIM's current notice (for the open
-- and overdue counts); `notice_feed` every version of every notice, in the
-- order operators read them (GET /v1/notices?after=) and the compliance
-- report works from. The feed's sequence and its transaction id column are
-- spelt differently by each backend: simguard/store/notices.py
-- (create_feed) makes that table.
CREATE TABLE IF NOT EXISTS notices (
    imsi         TEXT PRIMARY KEY,
    operator     TEXT NOT NULL,
    status       TEXT NOT NULL,
    deadline     TEXT NOT NULL,
    notice       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_status ON notices (status, operator);
