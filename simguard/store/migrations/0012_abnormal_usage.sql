-- HIGH_CALL_VOLUME and STATIC_HIGH_VOLUME: the daily usage reports that met
-- either rule's daily condition, one row per SIM and UTC day (days since the
-- epoch), for the weekly abnormal-usage report. An ordinary day writes
-- nothing. Pruned after usage_report_retention_days.
CREATE TABLE IF NOT EXISTS abnormal_usage (
    imsi                     TEXT NOT NULL,
    day                      INTEGER NOT NULL,
    operator                 TEXT NOT NULL,
    -- The SIM's number as the worker knew it then (NULL when it knew none).
    msisdn                   TEXT,
    outgoing_calls           INTEGER NOT NULL,
    distinct_called_numbers  INTEGER NOT NULL,
    distinct_cells           INTEGER NOT NULL,
    top_cell_share           REAL NOT NULL,
    PRIMARY KEY (imsi, day)
);
CREATE INDEX IF NOT EXISTS abnormal_usage_by_day ON abnormal_usage (day, operator);
