"""How big and how long each benchmark runs: the full run, and `--quick`
(seconds per benchmark, a smoke test of the whole machinery)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    name: str
    # API ingest: each row is warmed up, then measured for a fixed window.
    api_warmup_seconds: float
    api_seconds: float
    # Before any API figure, single-event requests in chunks until the
    # broker's JIT compilers go quiet, or the bound (bench/ingest.py).
    broker_warmup_chunk_seconds: float
    broker_warmup_max_seconds: float
    api_profile_seconds: float
    # Connections kept busy by the load generator: 32 single-event requests in
    # flight; fewer for batches of 500, which are 500 records in flight each.
    api_single_connections: int
    api_batch_connections: int
    api_single_bodies: int
    api_batch_bodies: int
    api_batch_events: int
    # Worker throughput: a backlog loaded before the worker starts.
    throughput_sims: int
    observation_sims: int
    observations_per_sim: int
    worker_max_seconds: float
    profile_sims: int
    # Event to case record at a fixed arrival rate, after a warm-up at that
    # rate whose latencies are not counted.
    latency_rate: int
    latency_warmup_seconds: float
    # The warm-up goes on in chunks past its minimum until the broker's JIT
    # compilers go quiet, up to its bound (bench/latency.py).
    latency_warmup_chunk_seconds: float
    latency_warmup_max_seconds: float
    latency_seconds: float
    # Worker RSS: a worker writes the rows of the template's SIMs, copied in
    # the store up to each size in turn; at each size a fresh worker applies
    # `memory_events` events of SIMs drawn from the whole store.
    memory_template_sims: int
    memory_store_sims: tuple[int, ...]
    memory_events: int
    # Registry import and lookups; the size shrinks to what fits the budget,
    # which covers the whole registry benchmark (CSV, import, baseline, lookups).
    registry_rows: int
    registry_probe_rows: int
    registry_budget_seconds: float
    lookup_seconds: float
    # Kafka security: records produced to each broker (PLAINTEXT, SASL_SSL).
    security_records: int
    # Storage: SIMs registered and activated, then observed this many times each.
    storage_sims: int
    storage_observations_per_sim: int
    storage_days_events: int


FULL = Sizes(
    name="full",
    api_warmup_seconds=2,
    api_seconds=10,
    broker_warmup_chunk_seconds=10,
    broker_warmup_max_seconds=90,
    api_profile_seconds=8,
    api_single_connections=32,
    api_batch_connections=8,
    api_single_bodies=20_000,
    api_batch_bodies=40,
    api_batch_events=500,
    throughput_sims=50_000,
    observation_sims=10_000,
    observations_per_sim=10,
    worker_max_seconds=120,
    profile_sims=10_000,
    latency_rate=1_000,
    latency_warmup_seconds=30,
    latency_warmup_chunk_seconds=10,
    latency_warmup_max_seconds=60,
    latency_seconds=30,
    memory_template_sims=4_000,
    memory_store_sims=(100_000, 1_000_000, 10_000_000),
    memory_events=40_000,
    registry_rows=10_000_000,
    registry_probe_rows=200_000,
    # About 8 minutes: `make bench` stays under 15 with the others (about 6).
    registry_budget_seconds=500,
    lookup_seconds=10,
    security_records=200_000,
    storage_sims=20_000,
    storage_observations_per_sim=10,
    storage_days_events=60_000,
)

QUICK = Sizes(
    name="quick",
    api_warmup_seconds=1,
    api_seconds=2,
    broker_warmup_chunk_seconds=1,
    broker_warmup_max_seconds=2,
    api_profile_seconds=2,
    api_single_connections=8,
    api_batch_connections=2,
    api_single_bodies=500,
    api_batch_bodies=4,
    api_batch_events=500,
    throughput_sims=1_000,
    observation_sims=200,
    observations_per_sim=5,
    worker_max_seconds=60,
    profile_sims=300,
    latency_rate=200,
    latency_warmup_seconds=1,
    latency_warmup_chunk_seconds=1,
    latency_warmup_max_seconds=2,
    latency_seconds=3,
    memory_template_sims=400,
    memory_store_sims=(2_000, 10_000),
    memory_events=2_000,
    registry_rows=20_000,
    registry_probe_rows=20_000,
    registry_budget_seconds=60,
    lookup_seconds=1,
    security_records=10_000,
    storage_sims=1_000,
    storage_observations_per_sim=3,
    storage_days_events=2_000,
)
