-- The SIM's registration as the rules need it lives in its `registrations` row
-- alone (the SIM's state no longer keeps a copy of it), so the row also says
-- since when a suspended or deregistered registration has been so, which
-- REGISTRATION_REVOKED compares its uses with: the earliest of the events
-- after the SIM's last active one. SQLite's history table is then rebuilt
-- keyed by its primary key alone (WITHOUT ROWID, which no portable SQL
-- spells: simguard/store/registrations.py, history_without_rowid), keeping
-- each event once instead of in a table and an index.
ALTER TABLE registrations ADD COLUMN revoked_since TEXT;
UPDATE registrations SET revoked_since = (
    SELECT min(e.registered_at) FROM registration_events e
    WHERE e.imsi = registrations.imsi AND e.status != 'active'
    AND NOT EXISTS (
        SELECT 1 FROM registration_events a
        WHERE a.imsi = e.imsi AND a.status = 'active'
        AND (a.registered_at > e.registered_at
             OR (a.registered_at = e.registered_at AND a.event_id > e.event_id))
    )
) WHERE status != 'active';
