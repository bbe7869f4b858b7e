"""Event accepted → case record published, at a steady arrival rate, beside
the latency of a plain produce → consume on the same broker.

Each measured event flags its SIM at once, with no grace: the SIMs' registrations
were suspended an hour earlier (loaded and applied before the clock starts),
and each SIM is then seen on the network, which raises REGISTRATION_REVOKED.
A paced producer (acks=all, idempotent, as the API's) sends one observation
per SIM at the planned rate, noting the send time per IMSI; a read_committed
consumer of the regulator topic, in the same process, notes when each SIM's
case record arrives. The baseline sends the same records at the same rate to
a plain topic and reads them back the same way.

Both are measured after a warm-up: the same traffic, on SIMs of their own, at
the same rate, whose latencies are not counted but reported. A broker spends
its first minute under this load compiling the paths it takes (its JIT
compiler threads took 0.5 of a core in the first 5 s of paced traffic and
still 0.1 to 0.3 after 30 s, even after the worker benchmark), and the first
transactions of a worker pay for its connections and caches; a regulator's
deployment runs warm. The warm-up lasts at least 30 s (the broker's share of
the two cores was seen to fall for about that long, with the worker's steps
getting shorter in step), then goes on in 10 s chunks until the compiler
threads go quiet (`procstat.JIT_QUIET_CORES`), up to 60 s in all. The
baseline's warm-up sends as many records.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kafka import KafkaConsumer
from kafka.admin import NewTopic

from bench import events
from bench.environment import BenchEnvironment, BenchError
from bench.kafka_io import operator_signed, partitions, produce, watch_commits
from bench.procstat import BrokerWarmUp, CpuMeter, describe_cores
from bench.profiling import Profiler
from bench.report import Figure
from bench.sizes import Sizes
from simguard.kafka_clients import (
    API_PRODUCER_LINGER_MS,
    CLIENT_METRICS,
    admin_client,
    api_producer,
    connection_config,
)
from simguard.settings import Settings

P99_TARGET_MS = 250.0
# After the last send, how long to wait for the last case records.
DRAIN_SECONDS = 30.0


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    del profiler  # the worker is profiled under full load by the throughput benchmark
    settings = env.settings("latency")
    sims = int(sizes.latency_rate * sizes.latency_seconds)
    warmup_sims = int(sizes.latency_rate * sizes.latency_warmup_max_seconds)
    now = datetime.now(UTC)
    suspended_at = now - timedelta(hours=1)
    produce(
        settings,
        (
            (
                settings.topic_registrations,
                events.imsi(n).encode(),
                events.json_bytes(events.registration_wire(n, suspended_at, status="suspended")),
            )
            for n in range(sims + warmup_sims)
        ),
    )
    worker, metrics_port = env.start_worker(settings, "bench-latency")
    try:
        applied = watch_commits(
            settings, [settings.topic_registrations], sims + warmup_sims, timeout=300
        )
        if not applied.done:
            raise BenchError("the worker did not apply the suspended registrations in time")
        observed_at = datetime.now(UTC)
        records = [
            (
                events.imsi(n).encode(),
                events.json_bytes(events.observation(n, 0, observed_at + timedelta(seconds=n % 5))),
            )
            for n in range(sims + warmup_sims)
        ]
        warmup, records = records[sims:], records[:sims]
        assert env.node is not None and env.node.pid is not None
        warmup, warmup_measured, warmup_note = _warm_up(settings, env.node.pid, warmup, sizes)
        meter = CpuMeter({"worker": worker.pid, "broker": env.node.pid})
        meter.start()
        measured, missing = paced_round_trip(
            settings, settings.topic_network_events, settings.topic_flagged, records,
            sizes.latency_rate,
        )  # fmt: skip
        meter.stop()
        histogram = _worker_histogram(metrics_port)
    finally:
        env.stop(worker)
    baseline_topic = f"bench.latency-baseline.{settings.consumer_group}"
    _create_topic(settings, baseline_topic)
    warmup_baseline, _ = paced_round_trip(
        settings, baseline_topic, baseline_topic, warmup, sizes.latency_rate
    )
    baseline, baseline_missing = paced_round_trip(
        settings, baseline_topic, baseline_topic, records, sizes.latency_rate
    )
    if not measured:
        raise BenchError("no case record arrived")
    p50, p99 = _quantile(measured, 0.5), _quantile(measured, 0.99)
    b50, b99 = _quantile(baseline, 0.5), _quantile(baseline, 0.99)
    figure = Figure(
        key="event_to_case",
        label=f"event accepted → case record published, at {sizes.latency_rate:,} events/s",
        unit="ms",
        value=p99,
        text=f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
        baseline=b99,
        baseline_text=f"p50 {b50:.0f} ms, p99 {b99:.0f} ms",
        baseline_label="produce → consume alone",
        target=f"p99 ≤ {P99_TARGET_MS:.0f} ms",
        met=p99 <= P99_TARGET_MS and not missing,
    )
    figure.method = (
        f"{sims:,} SIMs with a registration suspended an hour earlier (applied by the worker "
        f"before the clock starts); one network observation per SIM sent at "
        f"{sizes.latency_rate:,}/s for {sizes.latency_seconds:g} s straight to the input topic, "
        f"after a warm-up at that rate on other SIMs that is not counted (at least "
        f"{sizes.latency_warmup_seconds:g} s, then until the broker's JIT compilers go quiet, "
        f"up to {sizes.latency_warmup_max_seconds:g} s) "
        f"(acks=all, idempotent, linger {API_PRODUCER_LINGER_MS} ms: the API's producer "
        "settings), each raising "
        "REGISTRATION_REVOKED at once. Latency: from the send to the moment a read_committed "
        "consumer of the regulator topic, in the same process, receives that SIM's case record "
        "(so it includes the ack of the input record, the worker's poll, its store and Kafka "
        "transactions, and the transaction markers). Baseline: the same records at the same "
        "rate to a plain topic on the same broker, read back the same way, after the same "
        "warm-up. The ratio column "
        "compares the p99s."
    )
    figure.details = [
        f"case records received: {len(measured):,} of {sims:,}"
        + (f" ({missing:,} missing after {DRAIN_SECONDS:g} s)" if missing else ""),
        f"baseline records received: {len(baseline):,} of {sims:,}"
        + (f" ({baseline_missing:,} missing)" if baseline_missing else ""),
        f"{warmup_note}; its latencies, not counted: {_percentiles(warmup_measured)} "
        f"(baseline's warm-up: {_percentiles(warmup_baseline)})",
        f"worker's own simguard_event_to_flag_seconds (Kafka record timestamp to published, "
        f"bucket upper bounds, warm-up included): {histogram}",
        f"CPU cores busy during the measured window (2 available): {describe_cores(meter.cores())}",
    ]
    return [figure]


def _warm_up(
    settings: Settings, broker_pid: int, records: list[tuple[bytes, bytes]], sizes: Sizes
) -> tuple[list[tuple[bytes, bytes]], list[float], str]:
    """Paced traffic on the warm-up SIMs, chunk after chunk: at least the
    minimum, then until the broker's JIT compilers go quiet or the records
    (the bound) run out. Returns the records sent, their latencies and a note."""
    chunk = int(sizes.latency_rate * sizes.latency_warmup_chunk_seconds)
    least = int(sizes.latency_rate * sizes.latency_warmup_seconds)
    warm_up = BrokerWarmUp(broker_pid, sizes.latency_warmup_chunk_seconds)
    latencies: list[float] = []
    sent = 0
    while sent < len(records) and not (sent >= least and warm_up.quiet):
        with warm_up.chunk():
            measured, _ = paced_round_trip(
                settings, settings.topic_network_events, settings.topic_flagged,
                records[sent : sent + chunk], sizes.latency_rate,
            )  # fmt: skip
        latencies += measured
        sent += chunk
    note = (
        f"warm-up: {sent / sizes.latency_rate:g} s at the rate on {sent:,} SIMs, "
        f"{warm_up.describe()}"
    )
    return records[:sent], latencies, note


def paced_round_trip(
    settings: Settings,
    send_topic: str,
    read_topic: str,
    records: Sequence[tuple[bytes, bytes]],
    per_second: int,
) -> tuple[list[float], int]:
    """Latencies in ms (send → first record with the same key read back), and
    how many keys never came back."""
    consumer = KafkaConsumer(
        **connection_config(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=100,
        metrics_enabled=CLIENT_METRICS,
    )
    assigned = partitions(settings, [read_topic])
    consumer.assign(assigned)
    consumer.seek_to_end(*assigned)
    for tp in assigned:
        consumer.position(tp)  # resolve the end now, before anything is sent
    sent: dict[bytes, float] = {}
    latencies: dict[bytes, float] = {}
    drain_until = [float("inf")]

    def read() -> None:
        while time.monotonic() < drain_until[0] and len(latencies) < len(records):
            batch = consumer.poll(timeout_ms=50)
            arrived = time.perf_counter()
            for batch_records in batch.values():
                for record in batch_records:
                    started = sent.get(record.key)
                    if started is not None and record.key not in latencies:
                        latencies[record.key] = (arrived - started) * 1000

    # Signed as an operator producing straight to Kafka signs, before the
    # clock starts; the baseline carries the same headers.
    headers = [operator_signed(settings, key, value) for key, value in records]
    reader = threading.Thread(target=read, name="latency-reader")
    reader.start()
    producer = api_producer(settings)
    try:
        producer.partitions_for(send_topic)  # metadata and connection before the clock
        interval = 1.0 / per_second
        start = time.perf_counter()
        for index, (key, value) in enumerate(records):
            delay = start + index * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[key] = time.perf_counter()
            producer.send(send_topic, key=key, value=value, headers=headers[index])
        producer.flush(timeout=30)
        drain_until[0] = time.monotonic() + DRAIN_SECONDS
        reader.join(timeout=DRAIN_SECONDS + 10)
    finally:
        drain_until[0] = 0.0
        reader.join(timeout=10)
        producer.close(timeout=10)
        consumer.close()
    return list(latencies.values()), len(records) - len(latencies)


def _percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no record came back"
    return f"p50 {_quantile(latencies, 0.5):.0f} ms, p99 {_quantile(latencies, 0.99):.0f} ms"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _create_topic(settings: Settings, topic: str) -> None:
    admin = admin_client(settings)
    try:
        admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
        admin.wait_for_topics([topic], timeout_ms=30_000)
    finally:
        admin.close()


def _worker_histogram(port: int) -> str:
    """p50 and p99 of simguard_event_to_flag_seconds as bucket upper bounds."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("simguard_event_to_flag_seconds_bucket{"):
            upper = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(upper), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return "no observations"
    count = buckets[-1][1]

    def bound(q: float) -> str:
        upper = next(b for b, cumulative in buckets if cumulative >= q * count)
        return f"≤ {upper * 1000:.0f} ms" if upper != float("inf") else "> largest bucket"

    return f"{int(count):,} observations, p50 {bound(0.5)}, p99 {bound(0.99)}"
