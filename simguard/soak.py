"""`simguard soak`: a bounded run at a steady rate, looking for what only time shows.

Starts its own single-node broker, the API (gunicorn) and a worker on
loopback, and posts the simulator's realistic mix (registrations, then
activations, then network events, chunk after chunk) at a steady rate while
the worker is restarted (SIGTERM, then started again) every minute. Every few
seconds it samples the resident memory of the API and the worker, the
consumer group's lag and the events sent and acknowledged. When the time is
up it waits for the lag to return to zero and checks that nothing was lost:
every event_id the API answered 202 for is in the worker's ledger, and the
regulator topic never carries one (imsi, version) with two contents. The
figures go to the console and to bench/RESULTS.md between the soak markers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import math
import multiprocessing
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
import orjson

from simguard.settings import Rules, Settings, load_settings, settings_to_env

if TYPE_CHECKING:
    from simguard.broker import KafkaNode

# Kafka clients, the broker launcher and the store are imported where they
# are used: `simguard` registers this command at start-up, and every other
# subcommand must not pay for them.

SIMGUARD: Final = str(Path(sys.executable).with_name("simguard"))
RESULTS_BEGIN: Final = "<!-- soak:begin -->"
RESULTS_END: Final = "<!-- soak:end -->"
SAMPLE_SECONDS: Final = 5.0
# A chunk is one simulated population; ~9 events per SIM, so ~4,500 events.
CHUNK_SIMS: Final = 500
SENDER_THREADS: Final = 4
# Behind schedule by more than this, the senders do not try to catch up: a
# stall must not turn into a burst that measures something else.
MAX_CATCH_UP_SECONDS: Final = 1.0
PATHS: Final = {
    "registrations": "/v1/registrations",
    "activations": "/v1/activations",
    "network_events": "/v1/network-events",
}


@dataclass(frozen=True)
class SoakPlan:
    minutes: float
    rate_per_second: float
    restart_every_seconds: float
    batch_events: int
    grace_seconds: int
    drain_timeout_seconds: float


@dataclass
class Sample:
    elapsed_seconds: float
    worker_rss_mib: float
    api_rss_mib: float
    lag: int
    sent: int
    acked: int


@dataclass
class Restart:
    drain_seconds: float
    exit_code: int | None
    ready_seconds: float


@dataclass
class Tally:
    """What the senders did; updated under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked_ids: set[str] = field(default_factory=set)
    sent: int = 0
    acked: int = 0
    requests: int = 0
    refused_503: int = 0
    connection_errors: int = 0
    failures: list[str] = field(default_factory=list)


# --- the processes -----------------------------------------------------------------
class Stack:
    """The broker, the API and the worker, all in one directory."""

    def __init__(self, root: Path, plan: SoakPlan) -> None:
        from simguard.broker import free_port, start_single_node

        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        empty = root / "empty.toml"
        empty.write_text("")
        self.node: KafkaNode = start_single_node(root / "kafka", port=free_port(), timeout=120)
        base = load_settings(environ={"SIMGUARD_CONFIG": str(empty)})
        self.settings = base.replace(
            kafka_bootstrap_servers=self.node.bootstrap,
            database_url=f"sqlite:///{root / 'simguard.db'}",
            hmac_secret=secrets.token_hex(32),
            rules=dataclasses.replace(base.rules, unregistered_grace_seconds=plan.grace_seconds),
        )
        self.api_port = free_port()
        self.worker_port = free_port()
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.restarts: list[Restart] = []
        self.worker_peaks_mib: list[float] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def use_border_cells(self, cells: list[str]) -> None:
        """The simulator's border cells become the deployment's CSV."""
        csv = self.root / "border_cells.csv"
        csv.write_text("cell_id\n" + "\n".join(cells) + "\n")
        rules = dataclasses.replace(
            self.settings.rules, border_cells_csv=str(csv), border_cells=frozenset(cells)
        )
        self.settings = self.settings.replace(rules=rules)

    def start(self) -> None:
        from simguard.kafka_clients import ensure_topics

        ensure_topics(self.settings)
        self.api = self._spawn(
            "api", ["api", "--bind", f"127.0.0.1:{self.api_port}", "--workers", "2"]
        )
        self.worker = self._spawn_worker()
        _wait_http(f"{self.api_url}/readyz", 90, self.logs / "api.log")
        _wait_http(f"http://127.0.0.1:{self.worker_port}/healthz", 90, self.logs / "worker.log")

    def restart_worker(self) -> Restart:
        assert self.worker is not None
        with contextlib.suppress(OSError, LookupError):
            self.worker_peaks_mib.append(_status_mib(self.worker.pid, "VmHWM"))
        began = time.monotonic()
        self.worker.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait()
            code = None  # did not drain in time
        drained = time.monotonic()
        self.worker = self._spawn_worker()
        _wait_http(f"http://127.0.0.1:{self.worker_port}/healthz", 90, self.logs / "worker.log")
        restart = Restart(drained - began, code, time.monotonic() - drained)
        self.restarts.append(restart)
        return restart

    def rss_mib(self) -> tuple[float, float]:
        """(worker, API) VmRSS; the API is gunicorn's master and its workers."""
        worker = api = 0.0
        with contextlib.suppress(OSError, LookupError):
            assert self.worker is not None
            worker = _status_mib(self.worker.pid, "VmRSS")
        if self.api is not None:
            for pid in _process_tree(self.api.pid):
                with contextlib.suppress(OSError, LookupError):
                    api += _status_mib(pid, "VmRSS")
        return worker, api

    def stop(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(OSError, LookupError):
                self.worker_peaks_mib.append(_status_mib(self.worker.pid, "VmHWM"))
        for process in (self.api, self.worker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (self.api, self.worker):
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.node.stop()

    def _environment(self, name: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SIMGUARD_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        env |= settings_to_env(self.settings)
        env |= {
            "SIMGUARD_CONFIG": str(self.root / "empty.toml"),
            "SIMGUARD_WORKER_METRICS_PORT": str(self.worker_port),
        }
        if name == "api":  # gunicorn's workers share their metrics through files
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.root / "prometheus")
        return env

    def _spawn_worker(self) -> subprocess.Popen[bytes]:
        return self._spawn("worker", ["worker", "--name", "soak-worker"])

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [SIMGUARD, *args],
                env=self._environment(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )


# --- the load ------------------------------------------------------------------------
Batch = tuple[str, str, bytes, int]  # path, operator, body, events


def _generate(sims: int, seed: int, rules: Rules) -> dict[str, Any]:
    """One chunk of the simulator's population (run in a helper process)."""
    from simguard.simulator.population import generate

    scenario = generate(sims, seed=seed, now=datetime.now(UTC), rules=rules)
    return {"events": scenario.events, "border_cells": scenario.border_cells}


class Load:
    """Chunks generated ahead in a helper process; sender threads post their
    batches on a schedule of `rate_per_second`, resending on 503."""

    def __init__(self, stack: Stack, plan: SoakPlan) -> None:
        from simguard.store import open_store

        self.stack = stack
        self.plan = plan
        self.tally = Tally()
        self.stopping = threading.Event()
        self._batches: queue.Queue[Batch] = queue.Queue(maxsize=200)
        self._keys: dict[str, str] = {}
        self._store = open_store(stack.settings.database_url)
        # spawn, not fork: this process already runs Kafka clients' threads.
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self._schedule_lock = threading.Lock()
        self._next_send_at = 0.0
        self._threads: list[threading.Thread] = []

    def first_chunk(self) -> dict[str, Any]:
        return self._pool.submit(_generate, CHUNK_SIMS, 1, self.stack.settings.rules).result()

    def start(self, first: dict[str, Any]) -> None:
        self._next_send_at = time.monotonic()
        feeder = threading.Thread(target=self._feed, args=(first,), name="soak-feed", daemon=True)
        self._threads = [feeder] + [
            threading.Thread(target=self._send_loop, name=f"soak-send-{i}", daemon=True)
            for i in range(SENDER_THREADS)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._store.close()

    def _feed(self, first: dict[str, Any]) -> None:
        try:
            self._feed_chunks(first)
        except Exception as error:  # the run reports it and fails
            with self.tally.lock:
                self.tally.failures.append(f"generating events: {type(error).__name__}: {error}")

    def _feed_chunks(self, first: dict[str, Any]) -> None:
        from simguard.simulator.post import batches

        rules = self.stack.settings.rules
        seed = 2
        upcoming: Future[dict[str, Any]] = self._pool.submit(_generate, CHUNK_SIMS, seed, rules)
        chunk = first
        while not self.stopping.is_set():
            for kind, path in PATHS.items():
                for batch in batches(chunk["events"][kind], self.plan.batch_events):
                    operator = batch[0]["operator"]
                    self._key_for(operator)
                    item = (path, operator, orjson.dumps({"events": batch}), len(batch))
                    while not self.stopping.is_set():
                        with contextlib.suppress(queue.Full):
                            self._batches.put(item, timeout=0.5)
                            break
            chunk = upcoming.result()
            seed += 1
            upcoming = self._pool.submit(_generate, CHUNK_SIMS, seed, rules)

    def _key_for(self, operator: str) -> str:
        from simguard.api_keys import issue_key

        with self.tally.lock:
            if operator not in self._keys:
                self._keys[operator] = issue_key(self._store, operator)[1]
            return self._keys[operator]

    def _send_loop(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.stack.api_port, timeout=60)
        try:
            while not self.stopping.is_set():
                try:
                    path, operator, body, events = self._batches.get(timeout=0.5)
                except queue.Empty:
                    continue
                with self._schedule_lock:
                    now = time.monotonic()
                    send_at = max(self._next_send_at, now - MAX_CATCH_UP_SECONDS)
                    self._next_send_at = send_at + events / self.plan.rate_per_second
                time.sleep(max(send_at - now, 0.0))
                connection = self._post(connection, path, self._key_for(operator), body, events)
        finally:
            connection.close()

    def _post(
        self,
        connection: http.client.HTTPConnection,
        path: str,
        key: str,
        body: bytes,
        events: int,
    ) -> http.client.HTTPConnection:
        """Post until 202 (an operator resends on 503 or a dropped connection);
        a batch still unanswered when the soak stops counts as sent only."""
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with self.tally.lock:
            self.tally.sent += events
        while True:
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(
                    "127.0.0.1", self.stack.api_port, timeout=60
                )
                with self.tally.lock:
                    self.tally.requests += 1
                    self.tally.connection_errors += 1
                if self.stopping.wait(0.5):
                    return connection
                continue
            with self.tally.lock:
                self.tally.requests += 1
                if response.status == 202:
                    ids = orjson.loads(raw)["event_ids"]
                    self.tally.acked_ids.update(ids)
                    self.tally.acked += len(ids)
                    return connection
                if response.status != 503:
                    self.tally.failures.append(f"{path} {response.status}: {raw[:300]!r}")
                    return connection
                self.tally.refused_503 += 1
            retry_after = float(response.getheader("Retry-After") or 1)
            if self.stopping.wait(min(retry_after, 5.0)):
                return connection


# --- what is measured ------------------------------------------------------------------
class LagGauge:
    """The consumer group's lag over the input topics: each partition's last
    stable offset minus the group's committed offset."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        from simguard.kafka_clients import bootstrap

        self.settings = settings
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap(settings))
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap(settings),
            group_id=None,
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        self._partitions = [
            TopicPartition(topic, partition)
            for topic in settings.input_topics()
            for partition in range(settings.topic_partitions)
        ]

    def lag(self) -> int:
        ends = self._consumer.end_offsets(self._partitions)
        group = self.settings.consumer_group
        committed = self._admin.list_group_offsets({group: None}).get(group, {})
        total = 0
        for tp in self._partitions:
            done = committed.get(tp)
            total += max(ends[tp] - (done.offset if done is not None else 0), 0)
        return total

    def records(self, topics: list[str]) -> int:
        """Offsets written to `topics`: records, each resend counted."""
        partitions = [tp for tp in self._partitions if tp.topic in topics]
        return sum(self._consumer.end_offsets(partitions).values())

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()


def read_topic(settings: Settings, topic: str, timeout: float = 120.0) -> Iterator[bytes]:
    """Every committed record's value, as a read_committed regulator sees it."""
    from kafka import KafkaConsumer, TopicPartition

    from simguard.kafka_clients import bootstrap

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap(settings),
        group_id=None,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise click.ClickException(f"could not read {topic} to its end in {timeout:.0f} s")
            for messages in consumer.poll(timeout_ms=500).values():
                for message in messages:
                    if message.value:
                        yield bytes(message.value)
    finally:
        consumer.close()


@dataclass
class Verdict:
    acked: int
    applied: int
    missing: int
    case_records: int
    sims_with_cases: int
    conflicting_versions: int
    repeated_records: int
    gapped_sims: int

    @property
    def sound(self) -> bool:
        return not (
            self.missing or self.conflicting_versions or self.repeated_records or self.gapped_sims
        )


def verify(settings: Settings, acked_ids: set[str]) -> Verdict:
    from simguard.store import open_store

    store = open_store(settings.database_url)
    try:
        with store.transaction() as tx:
            ledger = {row[0] for row in tx.fetchall("SELECT event_id FROM processed_events")}
    finally:
        store.close()
    contents: dict[tuple[str, int], set[bytes]] = {}
    seen: dict[tuple[str, int], int] = {}
    records = 0
    for value in read_topic(settings, settings.topic_flagged):
        record = orjson.loads(value)
        case = (record["imsi"], int(record["version"]))
        contents.setdefault(case, set()).add(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        seen[case] = seen.get(case, 0) + 1
        records += 1
    versions: dict[str, list[int]] = {}
    for imsi, version in contents:
        versions.setdefault(imsi, []).append(version)
    gapped = sum(1 for v in versions.values() if sorted(v) != list(range(1, len(v) + 1)))
    return Verdict(
        acked=len(acked_ids),
        applied=len(ledger),
        missing=len(acked_ids - ledger),
        case_records=records,
        sims_with_cases=len(versions),
        conflicting_versions=sum(1 for c in contents.values() if len(c) > 1),
        repeated_records=sum(1 for count in seen.values() if count > 1),
        gapped_sims=gapped,
    )


# --- the run ------------------------------------------------------------------------------
@dataclass
class SoakResult:
    plan: SoakPlan
    command: str
    started_at: datetime
    load_seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)
    worker_peaks_mib: list[float] = field(default_factory=list)
    drain_seconds: float | None = None
    final_lag: int = -1
    input_records: int = 0
    dead_letters: int = 0
    sent: int = 0
    requests: int = 0
    refused_503: int = 0
    connection_errors: int = 0
    failures: list[str] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def acked_rate(self) -> float:
        acked = self.verdict.acked if self.verdict else 0
        return acked / self.load_seconds if self.load_seconds else 0.0

    @property
    def passed(self) -> bool:
        return (
            self.verdict is not None
            and self.verdict.sound
            and self.final_lag == 0
            and not self.failures
            and self.dead_letters == 0
            and all(r.exit_code == 0 for r in self.restarts)
        )


def run_soak(plan: SoakPlan, command: str, root: Path, echo: Any = click.echo) -> SoakResult:
    result = SoakResult(plan, command, datetime.now(UTC))
    echo(f"soak: {plan.minutes:g} min at {plan.rate_per_second:,.0f} events/s; work dir {root}")
    stack = Stack(root, plan)
    load: Load | None = None
    gauge: LagGauge | None = None
    try:
        load = Load(stack, plan)
        first = load.first_chunk()
        stack.use_border_cells(first["border_cells"])
        stack.start()
        gauge = LagGauge(stack.settings)
        echo(f"broker {stack.node.bootstrap}, API {stack.api_url}, worker :{stack.worker_port}")
        began = time.monotonic()
        load.start(first)
        _drive(stack, load, gauge, plan, result, began, echo)
        load.stop()
        result.load_seconds = time.monotonic() - began
        result.drain_seconds = _wait_for_zero_lag(gauge, plan, result, began, stack, echo)
        settings = stack.settings
        inputs = [settings.topic_activations, settings.topic_registrations]
        result.input_records = gauge.records([*inputs, settings.topic_network_events])
        result.dead_letters = gauge.records([settings.topic_dead_letter])
        tally = load.tally
        with tally.lock:
            acked_ids = set(tally.acked_ids)
            result.sent, result.requests = tally.sent, tally.requests
            result.refused_503 = tally.refused_503
            result.connection_errors = tally.connection_errors
            result.failures = list(tally.failures)
        echo("verifying: ledger against the acknowledged event_ids, then the regulator topic")
        result.verdict = verify(settings, acked_ids)
    finally:
        if load is not None:
            load.stop()
        if gauge is not None:
            gauge.close()
        result.restarts = stack.restarts
        result.worker_peaks_mib = stack.worker_peaks_mib
        stack.stop()
    return result


def _drive(
    stack: Stack,
    load: Load,
    gauge: LagGauge,
    plan: SoakPlan,
    result: SoakResult,
    began: float,
    echo: Any,
) -> None:
    ends_at = began + plan.minutes * 60
    next_sample = began
    next_restart = began + plan.restart_every_seconds
    while (now := time.monotonic()) < ends_at:
        if now >= next_restart and next_restart < ends_at:
            restart = stack.restart_worker()
            next_restart += plan.restart_every_seconds
            echo(
                f"  worker restarted: drained in {restart.drain_seconds:.1f} s "
                f"(exit {restart.exit_code}), ready in {restart.ready_seconds:.1f} s"
            )
        if now >= next_sample:
            sample = _sample(stack, load, gauge, now - began)
            result.samples.append(sample)
            next_sample += SAMPLE_SECONDS
            if len(result.samples) % 6 == 1:
                echo(_sample_line(sample))
        time.sleep(max(min(next_sample, next_restart, ends_at) - time.monotonic(), 0.05))


def _sample(stack: Stack, load: Load, gauge: LagGauge, elapsed: float) -> Sample:
    worker_mib, api_mib = stack.rss_mib()
    with load.tally.lock:
        sent, acked = load.tally.sent, load.tally.acked
    return Sample(elapsed, worker_mib, api_mib, gauge.lag(), sent, acked)


def _sample_line(sample: Sample) -> str:
    return (
        f"  {sample.elapsed_seconds:6.0f} s  sent {sample.sent:>9,}  acked {sample.acked:>9,}  "
        f"lag {sample.lag:>7,}  RSS worker {sample.worker_rss_mib:5.0f} MiB  "
        f"API {sample.api_rss_mib:5.0f} MiB"
    )


def _wait_for_zero_lag(
    gauge: LagGauge, plan: SoakPlan, result: SoakResult, began: float, stack: Stack, echo: Any
) -> float | None:
    echo("load stopped; waiting for the worker to catch up")
    stopped = time.monotonic()
    while True:
        lag = gauge.lag()
        now = time.monotonic()
        result.final_lag = lag
        worker_mib, api_mib = stack.rss_mib()
        result.samples.append(Sample(now - began, worker_mib, api_mib, lag, -1, -1))
        if lag == 0:
            return now - stopped
        if now - stopped > plan.drain_timeout_seconds:
            echo(f"  lag still {lag:,} after {plan.drain_timeout_seconds:.0f} s")
            return None
        time.sleep(2.0)


# --- /proc ------------------------------------------------------------------------------
def _status_mib(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"/proc/{pid}/status has no {field_name}")


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (gunicorn's workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(parents.get(current, []))
    return found


def _wait_http(url: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.3)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise click.ClickException(f"{url} did not answer in {timeout:.0f} s:\n{tail}")


# --- the report ---------------------------------------------------------------------------
def _memory_row(name: str, values: list[float], peak: float | None = None) -> str:
    if not values:
        return f"| {name} | — | — | — |"
    top = max(values) if peak is None else max(peak, *values)
    return f"| {name} | {values[0]:.0f} | {values[-1]:.0f} | {top:.0f} |"


def markdown(result: SoakResult) -> str:
    plan, verdict = result.plan, result.verdict
    loaded = [s for s in result.samples if s.sent >= 0]
    drain = (
        f"{result.drain_seconds:.0f} s after the load stopped"
        if result.drain_seconds is not None
        else f"NOT reached within {plan.drain_timeout_seconds:.0f} s"
    )
    drains = [r.drain_seconds for r in result.restarts]
    exits = sorted({str(r.exit_code) for r in result.restarts})
    out = [
        "## Soak",
        "",
        f"- run: {result.started_at.strftime('%Y-%m-%d %H:%M UTC')}, command `{result.command}`, "
        f"**{'PASSED' if result.passed else 'FAILED'}**",
        f"- machine: {os.cpu_count()} cores, load average at the end "
        + " ".join(f"{v:.2f}" for v in os.getloadavg()),
        f"- load: {result.load_seconds / 60:.1f} min of the simulator's mix (registrations, "
        f"activations, network events) at a target of {plan.rate_per_second:,.0f} events/s in "
        f"batches of up to {plan.batch_events}; achieved {result.acked_rate:,.0f} events/s "
        "acknowledged",
        f"- events: sent {result.sent:,}, acknowledged (202) "
        f"{verdict.acked if verdict else 0:,}, applied (ledger) "
        f"{verdict.applied if verdict else 0:,}, acknowledged but not applied "
        f"{verdict.missing if verdict else '—'}; {result.input_records:,} records on the input "
        f"topics ({result.input_records - (verdict.applied if verdict else 0):,} duplicates from "
        f"resends); {result.requests:,} requests, {result.refused_503} answered 503, "
        f"{result.connection_errors} unanswered; dead letters {result.dead_letters}",
        f"- worker restarts (SIGTERM, then start): {len(result.restarts)}, every "
        f"{plan.restart_every_seconds:.0f} s; drain {max(drains, default=0):.1f} s at most, "
        f"exit codes {', '.join(exits) or '—'}",
        f"- consumer lag (records, input topics): max "
        f"{max((s.lag for s in result.samples), default=0):,}, final {result.final_lag:,}, "
        f"zero {drain}",
    ]
    if verdict is not None:
        out.append(
            f"- regulator topic: {verdict.case_records:,} case records for "
            f"{verdict.sims_with_cases:,} SIMs; (imsi, version) with two contents: "
            f"{verdict.conflicting_versions}; seen twice: {verdict.repeated_records}; SIMs with "
            f"a gap in their versions: {verdict.gapped_sims}"
        )
    out += [
        f"- UNREGISTERED grace shortened to {plan.grace_seconds} s so that deadlines fire "
        "(and survive restarts) during the run",
        "",
        "| memory (VmRSS, MiB) | start | end | max |",
        "|---|---|---|---|",
        _memory_row(
            "worker (max: peak VmHWM of any incarnation)",
            [s.worker_rss_mib for s in result.samples],
            max(result.worker_peaks_mib, default=None),
        ),
        _memory_row("API (gunicorn master + 2 workers)", [s.api_rss_mib for s in result.samples]),
        "",
        "| minute | acknowledged events/s | lag at the end | worker RSS | API RSS |",
        "|---|---|---|---|---|",
    ]
    previous = Sample(0.0, 0.0, 0.0, 0, 0, 0)
    for minute in range(1, math.ceil(result.load_seconds / 60) + 1):
        window = [s for s in loaded if s.elapsed_seconds <= minute * 60 + SAMPLE_SECONDS / 2]
        if not window or window[-1] is previous:
            continue
        last = window[-1]
        span = last.elapsed_seconds - previous.elapsed_seconds
        rate = (last.acked - previous.acked) / span if span > 0 else 0.0
        out.append(
            f"| {minute} | {rate:,.0f} | {last.lag:,} | {last.worker_rss_mib:.0f} | "
            f"{last.api_rss_mib:.0f} |"
        )
        previous = last
    if result.failures:
        out += ["", "Refused batches:", "", *[f"- {f}" for f in result.failures[:10]]]
    return "\n".join(out) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace what lies between the soak markers (appended when missing);
    the rest of the file belongs to the benchmark."""
    block = f"{RESULTS_BEGIN}\n{section}{RESULTS_END}"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(RESULTS_BEGIN) + r".*?" + re.escape(RESULTS_END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- the command -------------------------------------------------------------------------
@click.command("soak")
@click.option("--minutes", type=click.FloatRange(min=0.5), default=10.0, show_default=True)
@click.option("--rate", type=click.FloatRange(min=1), default=1000.0, show_default=True,
              help="Target events per second.")  # fmt: skip
@click.option("--restart-every", type=click.FloatRange(min=10), default=60.0, show_default=True,
              help="Seconds between worker restarts (SIGTERM, then start).")  # fmt: skip
@click.option("--batch", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Events per request at most.")  # fmt: skip
@click.option("--grace-seconds", type=click.IntRange(min=1), default=60, show_default=True,
              help="UNREGISTERED grace during the soak (production: 900).")  # fmt: skip
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench/RESULTS.md"), show_default=True,
              help="Markdown file whose soak section is rewritten.")  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the work directory (logs, store, broker).")
def soak(
    minutes: float,
    rate: float,
    restart_every: float,
    batch: int,
    grace_seconds: int,
    results: Path,
    keep: bool,
) -> None:
    """Run broker, API and worker at a steady rate for --minutes, restarting
    the worker every minute (at least once); then check that no acknowledged
    event was lost and write the figures to the soak section of --results."""
    plan = SoakPlan(
        minutes=minutes,
        rate_per_second=rate,
        # A quick run still restarts the worker at least once.
        restart_every_seconds=min(restart_every, minutes * 30),
        batch_events=batch,
        grace_seconds=grace_seconds,
        drain_timeout_seconds=max(120.0, minutes * 30),
    )
    command = " ".join(["simguard soak", *sys.argv[2:]]).strip()
    root = Path(tempfile.mkdtemp(prefix="simguard-soak-"))
    result = run_soak(plan, command, root)
    section = markdown(result)
    click.echo("\n" + section)
    write_section(results, section)
    click.echo(f"written to {results} (between {RESULTS_BEGIN} and {RESULTS_END})")
    if keep or not result.passed:
        click.echo(f"work directory kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    if not result.passed:
        sys.exit(1)
