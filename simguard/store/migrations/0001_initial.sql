-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Timestamps are RFC 3339 UTC text, which sorts in time order.

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL,          -- SHA-256 of the secret; the secret is never stored
    operator    TEXT NOT NULL,
    plmns       TEXT NOT NULL,          -- comma-separated PLMN ids the key may send for
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    expires_at  TEXT
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);

-- The idempotency ledger: first content for an event_id wins.
CREATE TABLE processed_events (
    event_id      TEXT PRIMARY KEY,
    content_hash  TEXT NOT NULL,
    processed_at  TEXT NOT NULL
);
-- Housekeeping prunes the ledger by age (ledger_retention_days).
CREATE INDEX processed_events_time ON processed_events (processed_at);

-- Every registration event per SIM: the current registration and when a SIM's
-- registration to its holder began are derived from it, whatever the arrival order.
CREATE TABLE registration_events (
    imsi                TEXT NOT NULL,
    registered_at       TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    holder_ref          TEXT NOT NULL,
    status              TEXT NOT NULL,
    verification        TEXT NOT NULL,
    PRIMARY KEY (imsi, registered_at, event_id)
);

-- The current registration per SIM (the latest event by registered_at, event_id).
CREATE TABLE registrations (
    imsi                TEXT PRIMARY KEY,
    event_id            TEXT NOT NULL,
    operator            TEXT NOT NULL,
    iccid               TEXT NOT NULL,
    msisdn              TEXT NOT NULL,
    holder_ref          TEXT NOT NULL,
    holder_nationality  TEXT NOT NULL,
    verification        TEXT NOT NULL,
    status              TEXT NOT NULL,
    registered_at       TEXT NOT NULL,
    holder_since        TEXT NOT NULL,  -- when this SIM's registration to this holder began
    holder_since_event  TEXT NOT NULL   -- tie-break between SIMs that began at the same time
);
CREATE INDEX registrations_by_holder ON registrations (holder_ref, status, holder_since, holder_since_event);

-- Per-SIM rule state and case, as compact JSON, owned by the worker of the SIM's partition.
CREATE TABLE sims (
    imsi         TEXT PRIMARY KEY,
    shard        INTEGER NOT NULL,
    case_status  TEXT,                  -- flagged | cleared | NULL (never flagged)
    state        TEXT NOT NULL
);
CREATE INDEX sims_case_status ON sims (case_status);

-- Durable clock-driven work: UNREGISTERED deadlines and reasons that age out.
CREATE TABLE deadlines (
    imsi     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    ref      TEXT NOT NULL,
    shard    INTEGER NOT NULL,
    due_at   TEXT NOT NULL,
    PRIMARY KEY (imsi, kind, ref)
);
CREATE INDEX deadlines_due ON deadlines (shard, due_at);

-- Records a batch produced, kept until the Kafka transaction that publishes them
-- has committed (the committed offsets' metadata names the last published seq).
CREATE TABLE outbox (
    shard        INTEGER NOT NULL,
    seq          BIGINT NOT NULL,
    topic        TEXT NOT NULL,
    msg_key      TEXT,
    msg_value    TEXT NOT NULL,
    accepted_at  TEXT,
    PRIMARY KEY (shard, seq)
);

-- Next outbox sequence number per shard; survives the outbox being emptied.
CREATE TABLE shard_cursors (
    shard     INTEGER PRIMARY KEY,
    next_seq  BIGINT NOT NULL
);

-- Activations per dealer, for BULK_ACTIVATION_BURST across all workers.
-- One row per activation: a SIM activated twice by a dealer may join a burst
-- with either. in_burst is set once a burst contains the row, and never unset.
CREATE TABLE dealer_activations (
    dealer_key    TEXT NOT NULL,        -- operator:dealer_id
    imsi          TEXT NOT NULL,
    activated_at  TEXT NOT NULL,
    in_burst      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dealer_key, imsi, activated_at)
);
CREATE INDEX dealer_activations_time ON dealer_activations (dealer_key, activated_at);
CREATE INDEX dealer_activations_in_burst ON dealer_activations (imsi, in_burst);
