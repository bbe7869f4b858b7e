"""Acknowledged means durable, on a real three-node cluster under load.

Replication 3 and min.insync.replicas 2 on every simguard topic. The API runs
under gunicorn and a client posts batches of registrations and activations
about every 100 ms, resending on 503 as an operator would. Meanwhile the
leader of the activations topic's partition 0 is SIGKILLed, then a second
node (one of three left: acks=all cannot be met, so the API must refuse with
503 rather than acknowledge), then both come back. A worker runs throughout.

Afterwards every event answered 202 is on its topic, the worker applied each
event_id once, and the regulator's register is the one a fault-free run of
the same events gives on the session broker with a fresh worker.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
import requests
from application_counter import count_applications
from kafka_helpers import MakeSettings, Record, read_all
from test_worker_faults import assert_register_is_sound
from worker_helpers import (
    SIMGUARD,
    WorkerProcess,
    operator_signed,
    register,
    settings_env,
    wait_for,
)

from simguard.api_keys import issue_key
from simguard.broker import KafkaCluster, free_port
from simguard.kafka_acls import secure_for_simguard
from simguard.kafka_clients import reliable_producer
from simguard.settings import Settings
from simguard.store import open_store

OPERATOR = "52003"
# Per 20 SIMs, as in workloads.registration_workload: 11 registered properly,
# 2 never registered (UNREGISTERED), 7 registered to one holder of which the
# last 2 (by registration time) are IDENTITY_OVER_LIMIT.
GROUP_SIMS = 20
# A chunk is what the client posts in two requests: its SIMs' registrations,
# then their activations (54 and 60 events).
CHUNK_SIMS = 60
MAX_CHUNKS = 150
PACE_SECONDS = 0.1
# Batches the client must get acknowledged in each phase, so that every fault
# lands on a steady load and the cluster is seen to serve again after it.
BATCHES_PER_PHASE = 8
# Short, so never-registered SIMs are flagged while the test waits; a worker
# that lags behind it during the outage flags and then clears, which leaves
# the present register (what the test compares) unchanged.
GRACE_SECONDS = 5
ACK_TIMEOUT_SECONDS = 3.0
LOAD_DEADLINE_SECONDS = 150.0


@dataclass
class Chunk:
    registrations: list[dict[str, Any]]
    activations: list[dict[str, Any]]
    expected: dict[str, set[str]]


def chunk(index: int, start: datetime) -> Chunk:
    """The index-th chunk of SIMs, with the codes each must end up with.

    Registrations go over HTTP with the holder's Thai national ID in clear;
    the API turns it into holder_ref."""
    made = Chunk([], [], {})
    first_seed = 1 + index * CHUNK_SIMS
    for seed in range(first_seed, first_seed + CHUNK_SIMS):
        slot = (seed - 1) % GROUP_SIMS
        group = (seed - 1) // GROUP_SIMS
        sim = {
            "operator": OPERATOR,
            "imsi": factories.imsi(OPERATOR, seed),
            "iccid": factories.iccid(seed),
            "msisdn": factories.msisdn(seed),
        }
        at = (start + timedelta(seconds=seed)).strftime("%Y-%m-%dT%H:%M:%SZ")
        made.activations.append(factories.valid_activation(**sim, activated_at=at))
        if slot in (11, 12):
            made.expected[sim["imsi"]] = {"UNREGISTERED"}
            continue
        holder = 1_000_000 + group if slot >= 13 else seed
        made.registrations.append(
            factories.valid_registration_request(
                **sim,
                registered_at=at,
                holder=factories.valid_holder(id_number=factories.thai_national_id(holder)),
            )
        )
        if slot >= 18:
            made.expected[sim["imsi"]] = {"IDENTITY_OVER_LIMIT"}
    return made


@dataclass
class IngestClient:
    """One operator's client: posts batches one after another at a steady
    pace, resends a batch answered 503 (after Retry-After) or not answered,
    and remembers every event_id answered 202, by topic kind."""

    url: str
    key: str
    stop: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, set[str]] = field(
        default_factory=lambda: {"registrations": set(), "activations": set()}
    )
    expected: dict[str, set[str]] = field(default_factory=dict)
    events_posted: int = 0
    requests: int = 0
    refusals_503: int = 0
    connection_errors: int = 0
    batches_acked: int = 0
    failure: str | None = None

    def run(self) -> None:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        deadline = time.monotonic() + LOAD_DEADLINE_SECONDS
        session = requests.Session()
        try:
            for index in range(MAX_CHUNKS):
                if self.stop.is_set():
                    return
                current = chunk(index, start)
                for kind, events in (
                    ("registrations", current.registrations),
                    ("activations", current.activations),
                ):
                    if not self._post_until_accepted(session, kind, events, deadline):
                        return
                self.expected |= current.expected
            self.failure = f"ran out of chunks ({MAX_CHUNKS}) before being stopped"
        except Exception as error:  # surfaced by the test's assertion
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            session.close()

    def _post_until_accepted(
        self,
        session: requests.Session,
        kind: str,
        events: list[dict[str, Any]],
        deadline: float,
    ) -> bool:
        body = orjson.dumps({"events": events})
        path = "/v1/" + kind
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        self.events_posted += len(events)
        while time.monotonic() < deadline:
            began = time.monotonic()
            self.requests += 1
            try:
                answer = session.post(self.url + path, data=body, headers=headers, timeout=30)
            except requests.RequestException:
                self.connection_errors += 1
                time.sleep(0.5)
                continue
            if answer.status_code == 503:
                self.refusals_503 += 1
                time.sleep(min(float(answer.headers.get("Retry-After", "1")), 2.0))
                continue
            if answer.status_code != 202:
                self.failure = f"POST {path} answered {answer.status_code}: {answer.text[:500]}"
                return False
            self.acked[kind].update(answer.json()["event_ids"])
            self.batches_acked += 1
            time.sleep(max(PACE_SECONDS - (time.monotonic() - began), 0.0))
            return True
        self.failure = f"load deadline ({LOAD_DEADLINE_SECONDS:.0f} s) passed"
        return False

    def wait_for_batches(
        self, count: int, timeout: float, diagnose: Callable[[], str] = lambda: ""
    ) -> None:
        target = self.batches_acked + count
        reached = wait_for(
            lambda: self.batches_acked >= target or self.failure, timeout=timeout, interval=0.1
        )
        assert reached and not self.failure, (
            f"client stalled at {self.batches_acked} acknowledged batches (wanted {target}, "
            f"{self.refusals_503} refusals): {self.failure}\n{diagnose()}"
        )


def wait_until_in_sync(cluster: KafkaCluster, settings: Settings) -> None:
    topics = (settings.topic_registrations, settings.topic_activations)
    assert wait_for(lambda: all(cluster.in_sync(topic) for topic in topics), timeout=60), "\n".join(
        cluster.partition_states(topic) for topic in topics
    )


def api_log_tail(log_path: Path, lines: int = 40) -> str:
    """The API's log without its access lines and reconnect attempts to a
    killed node, which would push what the producer saw out of the message."""
    kept = [
        line[:400]
        for line in log_path.read_text(errors="replace").splitlines()
        if '"route":' not in line and "ECONNREFUSED" not in line
    ]
    return "\n".join(kept[-lines:])


@pytest.fixture
def cluster_settings(kafka_cluster: KafkaCluster, make_settings: MakeSettings) -> Settings:
    assert kafka_cluster.security is not None
    admin = make_settings(
        kafka_bootstrap_servers=kafka_cluster.bootstrap,
        **kafka_cluster.security.admin_settings(),
        topic_replication_factor=3,
        api_kafka_ack_timeout_seconds=ACK_TIMEOUT_SECONDS,
        api_retry_after_seconds=1,
        worker_max_batch_records=200,
    )
    # The API and workers log in as simguard's own user, under its ACLs.
    base = secure_for_simguard(admin, kafka_cluster.security)
    settings = base.replace(
        rules=dataclasses.replace(base.rules, unregistered_grace_seconds=GRACE_SECONDS)
    )
    count_applications(settings)
    return settings


@pytest.fixture
def api_url(cluster_settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`simguard api` (gunicorn, two workers) against the cluster."""
    port = free_port()
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    env = settings_env(cluster_settings) | {"PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [SIMGUARD, "api", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, f"simguard api exited:\n{log_path.read_text()[-3000:]}"
        try:
            return requests.get(f"{url}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_for(ready, timeout=60, interval=0.2), log_path.read_text()[-3000:]
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop_quietly()


def present_register(settings: Settings) -> dict[str, tuple[Any, ...]]:
    """What a regulator acts on now: each flagged SIM, its reasons and score.

    Versions, record ids and times record the path to this state, which may
    differ with arrival order (a flag raised by a lagging worker and cleared
    again); a cleared SIM stands as unflagged as one never flagged."""
    return {
        imsi: (
            tuple(sorted(reason["code"] for reason in record["reasons"])),
            record["risk_score"],
            record["iccid"],
            record["msisdn"],
            record["operator"],
        )
        for imsi, record in register(settings).items()
        if record["status"] == "flagged"
    }


def flagged_codes(settings: Settings) -> dict[str, set[str]]:
    return {imsi: set(codes) for imsi, (codes, *_) in present_register(settings).items()}


def worker_is_stuck(worker: WorkerProcess) -> bool:
    """The worker's own verdict: /healthz turns 503 when a step has not
    returned for a minute (or the worker is gone)."""
    if not worker.running():
        return True
    try:
        answer = requests.get(f"http://127.0.0.1:{worker.metrics_port}/healthz", timeout=5)
    except requests.RequestException:
        return False  # busy answering is not stuck
    return answer.status_code == 503


def applied_count(settings: Settings) -> int:
    store = open_store(settings.database_url)
    try:
        with store.transaction() as tx:
            row = tx.fetchone("SELECT count(*) FROM processed_events")
    finally:
        store.close()
    return int(row[0]) if row else 0


def first_of_each_event(records: list[Record]) -> list[Record]:
    seen: set[str] = set()
    unique = []
    for record in records:
        event_id = record.json()["event_id"]
        if event_id not in seen:
            seen.add(event_id)
            unique.append(record)
    return unique


def replay(settings: Settings, topic: str, records: list[Record]) -> None:
    producer = reliable_producer(settings, max_block_ms=30_000)
    try:
        for record in records:
            key = record.key.encode() if record.key is not None else None
            # Attested by the other run's API: here signed as their operator would.
            headers = operator_signed(settings, key or b"", record.value)
            producer.send(topic, key=key, value=record.value, headers=headers)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)


def fault_free_register(
    make_settings: MakeSettings,
    cluster_settings: Settings,
    inputs: dict[str, list[Record]],
    tmp_path: Path,
    workers: list[WorkerProcess],
    expected: dict[str, set[str]],
) -> dict[str, tuple[Any, ...]]:
    """The same events, each once, through a fresh worker on the session
    broker: registrations first and applied, then activations, so no flag
    is raised on the way."""
    base = make_settings(database_url=f"sqlite:///{tmp_path}/fault-free.db")
    settings = base.replace(rules=cluster_settings.rules)
    worker = WorkerProcess(settings, "fault-free", tmp_path).start()
    workers.append(worker)
    registrations = first_of_each_event(inputs["registrations"])
    activations = first_of_each_event(inputs["activations"])
    replay(settings, settings.topic_registrations, registrations)
    assert wait_for(lambda: applied_count(settings) == len(registrations), timeout=90), (
        worker.log_text()[-3000:]
    )
    replay(settings, settings.topic_activations, activations)
    assert wait_for(lambda: flagged_codes(settings) == expected, timeout=90), (
        f"the fault-free run does not give the workload's register: {worker.log_text()[-3000:]}"
    )
    assert applied_count(settings) == len(registrations) + len(activations)
    return present_register(settings)


@pytest.mark.slow
def test_acknowledged_events_survive_broker_crashes_and_the_register_matches_a_fault_free_run(
    kafka_cluster: KafkaCluster,
    cluster_settings: Settings,
    api_url: str,
    make_settings: MakeSettings,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    settings = cluster_settings
    _, key = issue_key(open_store(settings.database_url), OPERATOR)
    worker = WorkerProcess(settings, "w1", tmp_path).start()
    workers.append(worker)
    worker.wait_ready()
    client = IngestClient(api_url, key)
    posting = threading.Thread(target=client.run, name="ingest-client", daemon=True)
    posting.start()
    kills = 0
    began = time.monotonic()

    def diagnose() -> str:
        topics = (settings.topic_registrations, settings.topic_activations)
        try:
            partitions = "\n".join(kafka_cluster.partition_states(topic) for topic in topics)
        except Exception as error:  # the cluster may be what fails to answer
            partitions = f"(no metadata: {type(error).__name__}: {error})"
        return f"partitions:\n{partitions}\nAPI log:\n{api_log_tail(tmp_path / 'api.log')}"

    try:
        client.wait_for_batches(BATCHES_PER_PHASE, timeout=60, diagnose=diagnose)

        # A follower that fell out of sync under load would leave a partition
        # with one in-sync replica once its leader dies: no fault of simguard's.
        wait_until_in_sync(kafka_cluster, settings)
        leader = kafka_cluster.leader_of(settings.topic_activations, 0)
        first = kafka_cluster.index_of(leader)
        kafka_cluster.kill(first)
        kills += 1
        # Two of three: leaders move and acks=all is met by the two left.
        client.wait_for_batches(BATCHES_PER_PHASE, timeout=60, diagnose=diagnose)

        wait_until_in_sync(kafka_cluster, settings)
        second = (first + 1) % len(kafka_cluster.nodes)
        refusals_before = client.refusals_503
        kafka_cluster.kill(second)
        kills += 1
        # One of three: no write can reach min.insync.replicas=2.
        assert wait_for(lambda: client.refusals_503 > refusals_before, timeout=30, interval=0.1), (
            f"no 503 with one node of three left (acked {client.batches_acked} batches)"
        )

        restart_began = time.monotonic()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda index: kafka_cluster.start(index, timeout=120), (first, second)))
        restart_seconds = time.monotonic() - restart_began
        client.wait_for_batches(BATCHES_PER_PHASE, timeout=90, diagnose=diagnose)
    finally:
        client.stop.set()
        posting.join(timeout=LOAD_DEADLINE_SECONDS)
    load_seconds = time.monotonic() - began
    assert client.failure is None, client.failure
    assert worker.running(), worker.log_text()[-3000:]

    inputs = {
        kind: read_all(
            settings,
            settings.topics()[kind],
            timeout=60,
            min_count=len(client.acked[kind]),
        )
        for kind in ("registrations", "activations")
    }
    found = {kind: {r.json()["event_id"] for r in inputs[kind]} for kind in inputs}
    acked_total = sum(len(ids) for ids in client.acked.values())
    found_total = sum(len(ids) for ids in found.values())
    records_total = sum(len(records) for records in inputs.values())
    print(
        f"\ncluster faults: {kills} nodes SIGKILLed; {client.events_posted} events posted in "
        f"{client.requests} requests ({client.refusals_503} answered 503, "
        f"{client.connection_errors} unanswered); {acked_total} acknowledged (202); "
        f"{found_total} found on the input topics in {records_total} records "
        f"({records_total - found_total} duplicates from resends); load {load_seconds:.0f} s, "
        f"of which restarting the two nodes {restart_seconds:.0f} s"
    )
    for kind in inputs:
        missing = client.acked[kind] - found[kind]
        assert not missing, f"{len(missing)} acknowledged {kind} lost: {sorted(missing)[:5]}"

    settled = wait_for(
        lambda: flagged_codes(settings) == client.expected or worker_is_stuck(worker), timeout=120
    )
    assert not worker_is_stuck(worker), (
        "the worker stopped processing after the brokers came back: its step has not returned "
        "for a minute (/healthz 503) and it does not recover by itself. Where it waits:\n"
        + worker.post_mortem()
    )
    assert settled, (
        f"the register differs from the workload's; worker log:\n{worker.log_text()[-3000:]}"
    )
    assert wait_for(lambda: applied_count(settings) == found_total, timeout=60), (
        f"applied {applied_count(settings)} distinct events of {found_total}"
    )
    assert_register_is_sound(settings, found_total)

    reference = fault_free_register(
        make_settings, settings, inputs, tmp_path, workers, client.expected
    )
    assert present_register(settings) == reference
