-- Early warning: what each partner regulator says about its own SIMs seen
-- here, the latest indicator per (partner, subject): `flagged` or
-- `withdrawn`, reasons comma-separated, times as RFC 3339 text.
CREATE TABLE IF NOT EXISTS foreign_indicators (
    partner       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    status        TEXT NOT NULL,
    reasons       TEXT NOT NULL,
    risk          INTEGER NOT NULL,
    since         TEXT,
    case_version  INTEGER NOT NULL,
    updated_at    TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    PRIMARY KEY (partner, subject)
);
CREATE INDEX IF NOT EXISTS foreign_indicators_by_status ON foreign_indicators (status, partner);
