-- Every regulator decision on a case, kept for good: the audit a regulator
-- reads back (GET /v1/cases/{imsi}/decisions) and the record of what a
-- resent decision must match. `content_hash` is the hex SHA-256 of the
-- decision as published; `codes` a comma-separated list of reason codes.
CREATE TABLE IF NOT EXISTS case_decisions (
    decision_id        TEXT PRIMARY KEY,
    imsi               TEXT NOT NULL,
    action             TEXT NOT NULL,
    case_version       INTEGER NOT NULL,
    reason             TEXT,
    codes              TEXT NOT NULL,
    expires_at         TEXT,
    decided_by         TEXT NOT NULL,
    decided_at         TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    applied_at         TEXT NOT NULL,
    resulting_version  INTEGER,
    content_hash       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_decisions_by_imsi ON case_decisions (imsi, decided_at);
