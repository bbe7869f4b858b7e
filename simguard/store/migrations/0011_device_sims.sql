-- DEVICE_MANY_SIMS: which SIMs each handset was seen with, one row per handset,
-- UTC day and SIM (a SIM sitting in a SIM box's slot writes one row a day,
-- not one per observation). `device` is the IMEI's first 14 digits as a
-- number; `in_group` marks a row once it belongs to a group of the rule.
-- Pruned like the ledger, after ledger_retention_days.
CREATE TABLE IF NOT EXISTS device_sims (
    device    BIGINT NOT NULL,
    day       INTEGER NOT NULL,
    imsi      TEXT NOT NULL,
    in_group  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device, day, imsi)
);
CREATE INDEX IF NOT EXISTS device_sims_in_group ON device_sims (imsi, in_group);
CREATE INDEX IF NOT EXISTS device_sims_by_day ON device_sims (day);
