"""The API's metrics. Labels are bounded: route templates, kinds, operators'
PLMN ids and reason codes; never an IMSI, an event id or an API key.

The API runs under gunicorn with PROMETHEUS_MULTIPROC_DIR set before this module
is imported, so these objects write to per-process files that every scrape
aggregates. The worker's metrics live in workers/worker_metrics.py: a
multiprocess registry exports every metric its processes defined, so defining
them here too would have the API report the worker's gauges as zeros.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds; HTTP handlers wait for Kafka acks, so the tail reaches into seconds.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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
