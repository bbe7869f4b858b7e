"""The worker's metrics, on its own port from its default registry. Labels are
bounded: worker names, topics, partitions and reason codes; never an IMSI or an
event id. The API's are in service/api_metrics.py.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Event to flag includes the UNREGISTERED grace (15 min by default).
EVENT_TO_FLAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1200, 1800, 3600)
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

worker_events_total = Counter(
    "simguard_worker_events_total",
    "Input records handled by a worker, by outcome.",
    ["worker", "topic", "outcome"],
)
worker_batch_duration_seconds = Histogram(
    "simguard_worker_batch_duration_seconds",
    "Time from poll to committed transaction for one batch.",
    ["worker"],
    buckets=BATCH_BUCKETS,
)
consumer_lag = Gauge(
    "simguard_consumer_lag",
    "Records between a partition's end and the group's position.",
    ["group", "topic", "partition"],
    multiprocess_mode="max",
)
event_to_flag_seconds = Histogram(
    "simguard_event_to_flag_seconds",
    "From the triggering event's acceptance to its case record being published.",
    buckets=EVENT_TO_FLAG_BUCKETS,
)
flags_total = Counter("simguard_flags_total", "Reasons raised on SIMs.", ["reason"])
flags_cleared_total = Counter(
    "simguard_flags_cleared_total", "Reasons cleared from SIMs.", ["reason"]
)
cases_flagged = Gauge(
    "simguard_cases_flagged", "SIMs whose case is flagged now.", multiprocess_mode="max"
)
pending_activations = Gauge(
    "simguard_pending_activations",
    "Activations waiting for their UNREGISTERED deadline.",
    multiprocess_mode="max",
)
case_decisions_total = Counter(
    "simguard_case_decisions_total",
    "Regulators' decisions recorded, by action and outcome (applied, stale_case_version, "
    "nothing_to_dismiss).",
    ["action", "outcome"],
)
notice_time_to_action_seconds = Histogram(
    "simguard_notice_time_to_action_seconds",
    "From an operator notice to the suspension or re-verification that closed it.",
    ["operator"],
    buckets=(600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 7 * 86400),
)
notices_pending = Gauge(
    "simguard_notices_pending",
    "Operator notices waiting for their action, by operator and status (open, overdue).",
    ["operator", "status"],
    multiprocess_mode="max",
)
partner_indicators_total = Counter(
    "simguard_partner_indicators_total",
    "Early-warning indicators published for partner regulators, by status.",
    ["partner", "status"],
)
partner_sightings_total = Counter(
    "simguard_partner_sightings_total",
    "Partner regulators' sightings of our SIMs: applied, duplicate or dead_lettered.",
    ["partner", "outcome"],
)
partner_link_lag_seconds = Gauge(
    "simguard_partner_link_lag_seconds",
    "Age of the newest MirrorMaker 2 heartbeat replicated from each partner's cluster.",
    ["partner"],
)
dead_letters_total = Counter(
    "simguard_dead_letters_total", "Records sent to the dead-letter topic.", ["topic", "error"]
)
