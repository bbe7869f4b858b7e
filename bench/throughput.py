"""Worker throughput: how fast one `simguard worker`, then two in one group,
work off a backlog, beside a raw kafka-python consumer reading the same topics
from the start.

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
from bench.kafka_io import Progress, end_total, partitions, produce, watch_commits
from bench.procstat import CpuMeter, describe_cores, own_cpu_seconds, status_kib
from bench.profiling import Profiler
from bench.report import Figure, rate
from bench.sizes import Sizes
from simguard.kafka_clients import CLIENT_METRICS, connection_config
from simguard.settings import Settings

TARGET = 5_000
SHARE_OF_BASELINE = 0.25

Record = tuple[str, bytes, bytes]


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    return [
        _registrations_case(env, sizes, profiler),
        _observations_case(env, sizes, profiler),
        _observations_case(env, sizes, profiler, with_imei=True),
        _usage_case(env, sizes, profiler),
    ]


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


def _observations_case(
    env: BenchEnvironment, sizes: Sizes, profiler: Profiler, with_imei: bool = False
) -> Figure:
    settings = env.settings("throughput-obs-imei" if with_imei else "throughput-obs")
    topics = [settings.topic_network_events]
    now = datetime.now(UTC)

    def records(first: int, count: int) -> Iterator[Record]:
        per_sim = sizes.observations_per_sim
        for event in events.observations(first, count, per_sim, now, with_imei=with_imei):
            yield topics[0], event["imsi"].encode(), events.json_bytes(event)

    handsets = (
        f"; each naming its handset's IMEI, one handset per SIM but for "
        f"{events.SIM_BOX_SLOTS} of every {events.SIMS_PER_BOX_BLOCK} SIMs sharing one "
        "(a SIM box: DEVICE_MANY_SIMS)"
        if with_imei
        else ""
    )
    figure = Figure(
        key="worker_observations_imei" if with_imei else "worker_observations",
        label="worker throughput, network observations" + (" with IMEI" if with_imei else ""),
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
        f"in 100, otherwise in Japan, Malaysia or Cambodia (so some SIMs are flagged){handsets}",
    )  # fmt: skip
    if figure.value is not None:
        figure.met = figure.value >= TARGET
    return figure


# Daily usage reports per SIM in the usage case's backlog.
USAGE_DAYS = 5


def _usage_case(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> Figure:
    settings = env.settings("throughput-usage")
    topics = [settings.topic_usage]
    now = datetime.now(UTC)
    per_sim = min(USAGE_DAYS, sizes.observations_per_sim)

    def records(first: int, count: int) -> Iterator[Record]:
        for event in events.usage_days(first, count, per_sim, now):
            yield topics[0], event["imsi"].encode(), events.json_bytes(event)

    sims = sizes.observation_sims * sizes.observations_per_sim // per_sim
    figure = Figure(
        key="worker_usage",
        label="worker throughput, daily usage reports",
        unit="events/s",
        target=f"≥ {TARGET:,}/s",
        baseline_label="raw consumer, same topic",
    )
    _measure(
        env, settings, topics, figure, sizes, profiler,
        backlog=records(0, sims),
        more=records(sims, sizes.profile_sims // per_sim),
        workload=f"{sims:,} SIMs' usage for each of the {per_sim} days before today: an "
        "ordinary day of 0 to 19 calls from a few cells, but one SIM in "
        f"{events.USAGE_BOX_BLOCK} calling 150 times a day from one cell (HIGH_CALL_VOLUME and "
        "STATIC_HIGH_VOLUME)",
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
    runs: list[_WorkersRun] = []
    for count in WORKER_COUNTS:
        # Each count works off the whole backlog as a consumer group of its own,
        # with a store of its own: the same work, from the same start.
        group_settings = settings.replace(
            consumer_group=f"{settings.consumer_group}-{count}w",
            database_url=env.worker_database_url(settings, f"{count}w"),
        )
        runs.append(_run_workers(env, group_settings, topics, figure, sizes, count, total))
        if count == 1 and profiler.enabled:
            total += _profile(env, group_settings, topics, figure, profiler, more, total, sizes)
    best = max(runs, key=lambda run: run.rate)
    figure.value, figure.text = best.rate, rate(best.rate)
    figure.baseline, figure.baseline_text = baseline, rate(baseline)
    figure.method = (
        f"Backlog: {workload}; {loaded:,} events loaded with acks=all before any worker starts "
        f"(6 partitions per topic, {env.worker_store_name} store). Worked off by one "
        "`simguard worker`, then "
        f"again from the start by {' and by '.join(str(c) for c in WORKER_COUNTS[1:])} worker "
        "processes in one consumer group (a fresh group and store each time); each worker "
        f"polls batches of {settings.worker_max_batch_records}, with one store transaction and "
        "one Kafka transaction per batch. The workers of a count are started together. A rate: "
        "committed offsets, from the first commit once every worker of the group holds "
        f"partitions to the end of the backlog (or {sizes.worker_max_seconds:g} s); the "
        "figure is the best "
        f"count's ({best.count} here). Baseline: one KafkaConsumer (read_committed, same "
        "max_poll_records) polling the same topics from the start, counting records, from its "
        "first batch to its last."
    )
    figure.details = [run.describe() for run in runs] + [
        f"baseline: {baseline_records:,} records in {baseline_seconds:.2f} s, CPU per record "
        f"{baseline_cpu / max(total, 1) * 1e6:,.1f} µs (the bench process)",
    ]


# One worker process, and as many as the machine has cores.
WORKER_COUNTS = (1, 2)


class _WorkersRun:
    def __init__(
        self, count: int, progress: Progress, meter: CpuMeter, rss_mib: list[float]
    ) -> None:
        self.count = count
        self.rate, self.records, self.seconds, self.steady = progress.steady_rate()
        self.done = progress.done
        self.committed = progress.samples[-1][1] if progress.samples else 0
        self.worker_cpu = sum(v for k, v in meter.used.items() if k.startswith("worker"))
        self.cores = meter.cores()
        self.rss_mib = rss_mib

    def describe(self) -> str:
        workers = "1 worker" if self.count == 1 else f"{self.count} workers"
        since = "the first commit" if self.count == 1 else "the first commit with all in the group"
        if not self.steady:
            since = "ready (one commit: start-up included)"
        finished = "reached the end" if self.done else "stopped at the time limit"
        cpu_per_event = self.worker_cpu / max(self.committed, 1) * 1e6
        return (
            f"{workers}: {self.records:,} events in {self.seconds:.1f} s after {since} "
            f"({finished}), {rate(self.rate)}; CPU cores busy (2 available): "
            f"{describe_cores(self.cores)}; CPU per event {cpu_per_event:,.0f} µs (all "
            "workers, from ready to done); RSS at the end "
            + " / ".join(f"{mib:.0f} MiB" for mib in self.rss_mib)
        )


def _run_workers(
    env: BenchEnvironment,
    settings: Settings,
    topics: list[str],
    figure: Figure,
    sizes: Sizes,
    count: int,
    total: int,
) -> _WorkersRun:
    assert env.node is not None and env.node.pid is not None
    name = f"bench-{figure.key.replace('_', '-')}"
    workers = [w for w, _ in env.start_workers(settings, [f"{name}-{i}" for i in range(count)])]
    try:
        pids = {f"worker {i + 1}": w.pid for i, w in enumerate(workers)}
        meter = CpuMeter({**pids, "broker": env.node.pid})
        meter.start()
        progress = watch_commits(
            settings,
            topics,
            total,
            timeout=sizes.worker_max_seconds,
            alive=lambda: all(w.running() for w in workers),
            members=count,
        )
        meter.stop()
        for worker in workers:
            if not worker.running():
                raise BenchError(f"a worker died:\n{worker.log_tail()}")
        rss = [status_kib(w.pid, "VmRSS") / 1024 for w in workers]
    finally:
        for worker in workers:
            env.stop(worker)
    return _WorkersRun(count, progress, meter, rss)


def _profile(
    env: BenchEnvironment,
    settings: Settings,
    topics: list[str],
    figure: Figure,
    profiler: Profiler,
    more: Iterable[Record],
    total: int,
    sizes: Sizes,
) -> int:
    """Profile one worker on a further backlog; returns how many records were added."""
    worker, _ = env.start_worker(settings, f"bench-{figure.key.replace('_', '-')}-profiled")
    try:
        with profiler.record(
            figure.label.replace("worker throughput", "Worker"),
            "`simguard worker` working off a further backlog of the same kind "
            f"(after the measured run), {settings.worker_max_batch_records} records per poll.",
            worker.pid,
        ):
            extra = produce(settings, more)
            watch_commits(settings, topics, total + extra, timeout=sizes.worker_max_seconds)
    finally:
        env.stop(worker)
    return extra


def raw_consumer_rate(
    settings: Settings, topics: list[str], total: int
) -> tuple[float, int, float]:
    consumer = KafkaConsumer(
        **connection_config(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=settings.worker_max_batch_records,
        metrics_enabled=CLIENT_METRICS,  # as the worker's consumer
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
