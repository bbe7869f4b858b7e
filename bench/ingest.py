"""API ingest: events/s through `simguard api` for single-event requests and
for batches, beside a raw kafka-python producer with the same guarantees
(acks=all, idempotent) publishing the same records to the same broker.

The API's load comes from `python -m bench.loadgen` in its own process; the
baseline runs in the bench process with as many threads as the load
generator has connections, each waiting for its records' acks the way an
API request does (one `get()` per record, or all 500 of a batch).

Both are measured on a warm broker: the run starts with single-event requests
through the API until the broker's JIT compilers go quiet (`_warm_broker`).
On a fresh broker they took 0.3 to 0.4 core for its first minute of load,
from the cores the API and the broker share.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench import events
from bench.environment import BenchEnvironment, BenchError, Spawned
from bench.procstat import BrokerWarmUp, CpuMeter, describe_cores, own_cpu_seconds
from bench.profiling import Profiler
from bench.report import Figure, rate
from bench.sizes import Sizes
from simguard.api_keys import issue_key
from simguard.kafka_clients import API_PRODUCER_LINGER_MS, api_producer
from simguard.settings import Settings
from simguard.store import open_store

SINGLE_TARGET = 1_500
BATCH_TARGET = 10_000
BATCH_SHARE_OF_BASELINE = 0.30


@dataclass(frozen=True)
class Workload:
    label: str
    bodies: list[bytes]  # request bodies, cycled through
    records: list[list[tuple[bytes, bytes]]]  # the same events as (key, value) per request
    connections: int

    @property
    def events_per_request(self) -> int:
        return len(self.records[0])


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    settings = env.settings("ingest")
    store = open_store(settings.database_url)
    _, key = issue_key(store, events.OPERATORS[0], list(events.OPERATORS[1:]))
    store.close()
    key_file = env.root / "ingest.key"
    key_file.write_text(key)
    now = datetime.now(UTC) - timedelta(minutes=2)
    single = _workload("single", sizes.api_single_bodies, 1, now, sizes.api_single_connections)
    batch = _workload(
        "batch", sizes.api_batch_bodies, sizes.api_batch_events, now, sizes.api_batch_connections
    )
    api, url = env.start_api(settings, "api-ingest")
    try:
        warm_up_note = _warm_broker(env, url, key_file, single, sizes)
        figures = []
        for workload, figure in (
            (single, _single_figure()),
            (batch, _batch_figure(sizes.api_batch_events)),
        ):
            baseline, baseline_note = _baseline(settings, workload, sizes)
            api_rate, notes = _through_api(env, api, url, key_file, workload, sizes)
            _fill(
                figure, api_rate, baseline, workload, sizes, [*notes, baseline_note, warm_up_note]
            )
            figures.append(figure)
        for workload in (single, batch):
            with profiler.record(
                f"API, {workload.label} requests",
                f"gunicorn master and its 2 workers (`simguard api`), under "
                f"{workload.connections} connections of {workload.label} requests.",
                api.pid,
                subprocesses=True,
                gil_only=True,
            ):
                _loadgen(env, url, key_file, workload, 0.5, sizes.api_profile_seconds, "profile")
        return figures
    finally:
        env.stop(api)


def _warm_broker(
    env: BenchEnvironment, url: str, key_file: Path, workload: Workload, sizes: Sizes
) -> str:
    """Single-event requests through the API, chunk after chunk, until the
    broker's JIT compilers go quiet or the bound is reached; a note says how
    long it took and what they compiled per chunk."""
    assert env.node is not None and env.node.pid is not None
    warm_up = BrokerWarmUp(env.node.pid, sizes.broker_warmup_chunk_seconds)
    while warm_up.seconds < sizes.broker_warmup_max_seconds and not warm_up.quiet:
        with warm_up.chunk():
            _loadgen(env, url, key_file, workload, 0, warm_up.chunk_seconds, "broker-warm-up")
    return (
        f"broker warm-up before the first figure: {warm_up.seconds:g} s of single-event "
        f"requests through the API, {warm_up.describe()}"
    )


def _single_figure() -> Figure:
    return Figure(
        key="api_single",
        label="API ingest, single-event requests",
        unit="events/s",
        target=f"≥ {SINGLE_TARGET:,}/s",
        baseline_label="raw producer, one get() per record",
    )


def _batch_figure(batch_events: int) -> Figure:
    return Figure(
        key="api_batch",
        label=f"API ingest, batches of {batch_events}",
        unit="events/s",
        target=f"≥ {BATCH_TARGET:,}/s and ≥ {BATCH_SHARE_OF_BASELINE:.0%} of baseline",
        baseline_label=f"raw producer, {batch_events} sends then all acks",
    )


def _fill(
    figure: Figure,
    api_rate: float,
    baseline: float,
    workload: Workload,
    sizes: Sizes,
    notes: list[str],
) -> None:
    figure.value, figure.text = api_rate, rate(api_rate)
    figure.baseline, figure.baseline_text = baseline, rate(baseline)
    if figure.key == "api_single":
        figure.met = api_rate >= SINGLE_TARGET
    else:
        figure.met = api_rate >= BATCH_TARGET and api_rate >= BATCH_SHARE_OF_BASELINE * baseline
    figure.method = (
        f"`simguard api --workers 2` (gunicorn gevent workers) on loopback; "
        f"`python -m bench.loadgen` in its own process keeps {workload.connections} keep-alive "
        f"connections busy with POST /v1/activations ({_events_text(workload)} per request, "
        f"{len(workload.bodies)} distinct bodies cycled), on a broker warmed up first "
        f"(below), {sizes.api_warmup_seconds:g} s warm-up, then 202 answers are counted for "
        f"{sizes.api_seconds:g} s. Baseline: a KafkaProducer configured as the API's "
        f"(acks=all, idempotent, linger {API_PRODUCER_LINGER_MS} ms) sends the same keys "
        f"and JSON values to the same topic from {workload.connections} threads, each waiting "
        f"for its {'record' if workload.events_per_request == 1 else 'batch'}'s acks before "
        f"the next, same warm-up and window."
    )
    figure.details = notes


def _events_text(workload: Workload) -> str:
    count = workload.events_per_request
    return "one event" if count == 1 else f"{count} events"


def _workload(
    label: str, requests: int, per_request: int, now: datetime, connections: int
) -> Workload:
    bodies, records = [], []
    for request in range(requests):
        batch = [
            events.activation(n, now - timedelta(seconds=n % 60))
            for n in range(request * per_request, (request + 1) * per_request)
        ]
        body = batch[0] if per_request == 1 else {"events": batch}
        bodies.append(orjson.dumps(body))
        records.append([(e["imsi"].encode(), orjson.dumps(e)) for e in batch])
    return Workload(label, bodies, records, connections)


def _loadgen(
    env: BenchEnvironment,
    url: str,
    key_file: Path,
    workload: Workload,
    warmup: float,
    seconds: float,
    tag: str,
) -> tuple[Spawned, dict[str, object]]:
    bodies_file = env.root / f"bodies-{workload.label}.jsonl"
    if not bodies_file.exists():
        bodies_file.write_bytes(b"\n".join(workload.bodies) + b"\n")
    result_file = env.root / f"loadgen-{workload.label}-{tag}.json"
    argv = [
        env.python, "-m", "bench.loadgen", "--url", f"{url}/v1/activations",
        "--key-file", str(key_file), "--bodies", str(bodies_file),
        "--connections", str(workload.connections), "--warmup", f"{warmup:g}",
        "--duration", f"{seconds:g}", "--result", str(result_file),
    ]  # fmt: skip
    loadgen = env.spawn(f"loadgen-{workload.label}-{tag}", argv, env.process_env(env.base))
    try:
        loadgen.process.wait(timeout=warmup + seconds + 90)
    except subprocess.TimeoutExpired as error:
        raise BenchError("the load generator did not stop by itself") from error
    if loadgen.process.returncode != 0 or not result_file.exists():
        raise BenchError(f"load generator failed:\n{loadgen.log_tail()}")
    result: dict[str, object] = orjson.loads(result_file.read_bytes())
    return loadgen, result


def _through_api(
    env: BenchEnvironment,
    api: Spawned,
    url: str,
    key_file: Path,
    workload: Workload,
    sizes: Sizes,
) -> tuple[float, list[str]]:
    assert env.node is not None and env.node.pid is not None
    meter = CpuMeter({"API (gunicorn)": api.pid, "broker": env.node.pid})
    meter.start()
    _, result = _loadgen(
        env, url, key_file, workload, sizes.api_warmup_seconds, sizes.api_seconds, "measured"
    )
    meter.stop()
    statuses = result["statuses"]
    assert isinstance(statuses, dict)
    measured = float(str(result["measured_seconds"]))
    accepted = int(statuses.get("202", 0))
    events_per_second = accepted * workload.events_per_request / measured
    api_cpu = meter.used["API (gunicorn)"]
    all_events = int(str(result["accepted_all"])) * workload.events_per_request
    latency = result["latency_ms"]
    assert isinstance(latency, dict)
    notes = [
        f"API: {accepted:,} requests answered 202 in {measured:.1f} s; all answers: "
        f"{statuses}; client errors: {result['errors'] or 'none'}",
        f"API request latency at the client: p50 {_ms(latency.get('p50'))}, "
        f"p99 {_ms(latency.get('p99'))}",
        f"CPU cores busy during the API run (2 available, load generator excluded): "
        f"{describe_cores(meter.cores())}; API CPU per event: "
        f"{api_cpu / max(all_events, 1) * 1e6:,.0f} µs",
    ]
    if accepted == 0:
        raise BenchError(f"the API accepted nothing: {statuses} {result['errors']}")
    return events_per_second, notes


def _ms(value: object) -> str:
    return f"{float(str(value)):.1f} ms" if value is not None else "—"


def _baseline(settings: Settings, workload: Workload, sizes: Sizes) -> tuple[float, str]:
    producer = api_producer(settings)
    topic = settings.topic_activations
    headers = [("x-correlator", str(uuid.uuid4()).encode())]
    start = time.monotonic()
    window = (
        start + sizes.api_warmup_seconds,
        start + sizes.api_warmup_seconds + sizes.api_seconds,
    )
    counted = [0] * workload.connections
    acknowledged = [0] * workload.connections

    def sender(index: int) -> Callable[[], None]:
        def loop() -> None:
            position = index
            while time.monotonic() < window[1]:
                records = workload.records[position % len(workload.records)]
                position += workload.connections
                began = time.monotonic()
                futures = [
                    producer.send(topic, key=k, value=v, headers=headers) for k, v in records
                ]
                for future in futures:
                    future.get(timeout=30)
                acknowledged[index] += len(records)
                if began >= window[0] and time.monotonic() <= window[1]:
                    counted[index] += len(records)

        return loop

    threads = [
        threading.Thread(target=sender(i), name=f"baseline-{i}")
        for i in range(workload.connections)
    ]
    cpu_before = own_cpu_seconds()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=sizes.api_warmup_seconds + sizes.api_seconds + 60)
    cpu = own_cpu_seconds() - cpu_before
    producer.close(timeout=10)
    total = sum(counted)
    return total / sizes.api_seconds, (
        f"baseline: {total:,} records acknowledged in the {sizes.api_seconds:g} s window; "
        f"CPU per record (the bench process): {cpu / max(sum(acknowledged), 1) * 1e6:,.0f} µs"
    )
