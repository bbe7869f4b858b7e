"""Every simguard metric, defined once. Labels are bounded: route templates,
kinds, operators' PLMN ids, reason codes, topics and partitions; never an IMSI,
an event id or an API key.

The API runs under gunicorn with PROMETHEUS_MULTIPROC_DIR set before this module
is imported, so these objects write to per-process files; the worker is a single
process and uses the default registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds; HTTP handlers wait for Kafka acks, so the tail reaches into seconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Event to flag includes the UNREGISTERED grace (15 min by default).
EVENT_TO_FLAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1200, 1800, 3600)
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

http_requests_total = Counter(
    "simguard_http_requests_total", "HTTP requests answered.", ["route", "method", "status"]
)
http_request_duration_seconds = Histogram(
    "simguard_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["route"],
    buckets=HTTP_BUCKETS,
)
events_accepted_total = Counter(
    "simguard_events_accepted_total",
    "Events acknowledged by Kafka and answered 202.",
    ["kind", "operator"],
)
events_rejected_total = Counter(
    "simguard_events_rejected_total", "Events refused by the API.", ["kind", "reason"]
)
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
dead_letters_total = Counter(
    "simguard_dead_letters_total", "Records sent to the dead-letter topic.", ["topic", "error"]
)
