-- The regulator's allow-list: IMSIs or holders (their holder_ref) whose known,
-- legitimate pattern (a border trader, a diplomat, a fleet of IoT SIMs) must
-- not flag, for the reason codes named (empty: all), until the expiry.
-- Removed entries stay, with the time they were removed.
CREATE TABLE IF NOT EXISTS allow_list (
    entry_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    codes       TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    note        TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    removed_at  TEXT
);
CREATE INDEX IF NOT EXISTS allow_list_by_value ON allow_list (value, expires_at);
