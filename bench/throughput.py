"""Worker throughput: how fast one `simguard worker` works off a backlog,
beside a raw kafka-python consumer reading the same topics from the start.

The backlog is loaded before the worker starts. The worker's rate runs from
its first committed transaction to the commit that reaches the end of the
topics (its committed offsets, read with the admin client every 0.2 s); the
raw consumer's from its first fetched batch to its last record. Both leave
out connection and start-up time, and both exclude their first batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from kafka import KafkaConsumer

from bench import events
from bench.environment import BenchEnvironment, BenchError
from bench.kafka_io import end_total, partitions, produce, watch_commits
from bench.procstat import CpuMeter, describe_cores, own_cpu_seconds, status_kib
from bench.profiling import Profiler
from bench.report import Figure, rate
from bench.sizes import Sizes
from simguard.kafka_clients import bootstrap
from simguard.settings import Settings

TARGET = 5_000
SHARE_OF_BASELINE = 0.25

Record = tuple[str, bytes, bytes]


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    return [_registrations_case(env, sizes, profiler), _observations_case(env, sizes, profiler)]


def _registrations_case(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> Figure:
    settings = env.settings("throughput-reg")
    topics = [settings.topic_registrations, settings.topic_activations]
    now = datetime.now(UTC)

    def records(first: int, count: int) -> Iterator[Record]:
        for kind, event in events.activations_and_registrations(first, count, now):
            topic = settings.topics()[kind]
            yield topic, event["imsi"].encode(), events.json_bytes(event)

    figure = Figure(
        key="worker_registrations",
        label="worker throughput, activations + registrations",
        unit="events/s",
        target=f"≥ {TARGET:,}/s and ≥ {SHARE_OF_BASELINE:.0%} of baseline",
        baseline_label="raw consumer, same topics",
    )
    _measure(
        env, settings, topics, figure, sizes, profiler,
        backlog=records(0, sizes.throughput_sims),
        more=records(sizes.throughput_sims, sizes.profile_sims),
        workload=f"{sizes.throughput_sims:,} SIMs, each a registration (active, pseudonymised "
        "holder, two SIMs per holder) and an activation five minutes later, one in ten by a "
        "dealer (20 SIMs per dealer, no burst)",
    )  # fmt: skip
    if figure.value is not None and figure.baseline:
        figure.met = figure.value >= TARGET and figure.value >= SHARE_OF_BASELINE * figure.baseline
    return figure


def _observations_case(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> Figure:
    settings = env.settings("throughput-obs")
    topics = [settings.topic_network_events]
    now = datetime.now(UTC)

    def records(first: int, count: int) -> Iterator[Record]:
        for event in events.observations(first, count, sizes.observations_per_sim, now):
            yield topics[0], event["imsi"].encode(), events.json_bytes(event)

    figure = Figure(
        key="worker_observations",
        label="worker throughput, network observations",
        unit="events/s",
        target=f"≥ {TARGET:,}/s",
        baseline_label="raw consumer, same topic",
    )
    _measure(
        env, settings, topics, figure, sizes, profiler,
        backlog=records(0, sizes.observation_sims),
        more=records(sizes.observation_sims, sizes.profile_sims // sizes.observations_per_sim),
        workload=f"{sizes.observation_sims:,} SIMs seen {sizes.observations_per_sim} times "
        "each, 5 min apart: at home on a cell (one cell in ten a border cell) about 99 times "
        "in 100, otherwise in Japan, Malaysia or Cambodia (so some SIMs are flagged)",
    )  # fmt: skip
    if figure.value is not None:
        figure.met = figure.value >= TARGET
    return figure


def _measure(
    env: BenchEnvironment,
    settings: Settings,
    topics: list[str],
    figure: Figure,
    sizes: Sizes,
    profiler: Profiler,
    backlog: Iterable[Record],
    more: Iterable[Record],
    workload: str,
) -> None:
    loaded = produce(settings, backlog)
    total = end_total(settings, topics)
    baseline_cpu = own_cpu_seconds()
    baseline, baseline_records, baseline_seconds = raw_consumer_rate(settings, topics, total)
    baseline_cpu = own_cpu_seconds() - baseline_cpu
    assert env.node is not None and env.node.pid is not None
    worker, _ = env.start_worker(settings, f"bench-{figure.key.replace('_', '-')}")
    try:
        meter = CpuMeter({"worker": worker.pid, "broker": env.node.pid})
        meter.start()
        progress = watch_commits(
            settings, topics, total, timeout=sizes.worker_max_seconds, alive=worker.running
        )
        meter.stop()
        if not worker.running():
            raise BenchError(f"the worker died:\n{worker.log_tail()}")
        events_per_second, records, seconds, steady = progress.steady_rate()
        rss_mib = status_kib(worker.pid, "VmRSS") / 1024
        if profiler.enabled:
            with profiler.record(
                figure.label.replace("worker throughput", "Worker"),
                f"`simguard worker` working off a further backlog of the same kind "
                f"(after the measured run), {settings.worker_max_batch_records} records per poll.",
                worker.pid,
            ):
                extra = produce(settings, more)
                watch_commits(settings, topics, total + extra, timeout=sizes.worker_max_seconds)
    finally:
        env.stop(worker)
    figure.value, figure.text = events_per_second, rate(events_per_second)
    figure.baseline, figure.baseline_text = baseline, rate(baseline)
    figure.method = (
        f"Backlog: {workload}; {loaded:,} events loaded with acks=all before the worker starts "
        f"(6 partitions per topic, SQLite store). One `simguard worker` (poll batches of "
        f"{settings.worker_max_batch_records}, one store transaction and one Kafka "
        "transaction per batch). Its rate: committed offsets, from its first commit to the "
        f"end of the backlog (or {sizes.worker_max_seconds:g} s). Baseline: a KafkaConsumer "
        "(read_committed, same max_poll_records) polling the same topics from the start, "
        "counting records, from its first batch to its last."
    )
    finished = "reached the end" if progress.done else "stopped at the time limit"
    worker_cpu_us = meter.used["worker"] / max(progress.samples[-1][1], 1) * 1e6
    since = "its first commit" if steady else "it was ready (one commit: start-up included)"
    figure.details = [
        f"worker: {records:,} events in {seconds:.1f} s after {since} ({finished})",
        f"baseline: {baseline_records:,} records in {baseline_seconds:.2f} s",
        f"CPU cores busy during the worker's run (2 available): {describe_cores(meter.cores())}"
        f"; CPU per event: worker {worker_cpu_us:,.0f} µs (from ready to done), raw "
        f"consumer {baseline_cpu / max(total, 1) * 1e6:,.1f} µs",
        f"worker RSS at the end: {rss_mib:.0f} MiB",
    ]


def raw_consumer_rate(
    settings: Settings, topics: list[str], total: int
) -> tuple[float, int, float]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=settings.worker_max_batch_records,
    )
    try:
        assigned = partitions(settings, topics)
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        count, first = 0, None
        polling_from = time.monotonic()
        deadline = polling_from + 120
        while count < total and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            received = sum(len(records) for records in batch.values())
            if received and first is None:
                first = (time.monotonic(), received)
            count += received
        ended = time.monotonic()
    finally:
        consumer.close()
    if first is None:
        raise BenchError("the raw consumer read nothing")
    if count == first[1]:
        first = (polling_from, 0)  # all in one batch: count it from the first poll
    seconds = ended - first[0]
    records = count - first[1]
    return records / seconds, records, seconds
