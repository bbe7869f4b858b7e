"""`simguard api` as it runs in production: gunicorn with two worker processes,
configured only through SIMGUARD_* variables, spoken to over real HTTP."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from factories import (
    imsi,
    thai_national_id,
    valid_activation,
    valid_holder,
    valid_network_event,
    valid_registration_request,
)
from kafka_helpers import read_all
from prometheus_client.mmap_dict import MmapedDict
from test_api_ingest import module_settings

from simguard.api_keys import issue_key
from simguard.broker import KafkaNode, free_port
from simguard.settings import Settings
from simguard.store import open_store

SIMGUARD = Path(sys.executable).parent / "simguard"
WORKERS = 2


@dataclass
class Server:
    url: str
    settings: Settings
    key: str
    log_path: Path
    multiproc_dir: Path

    def post(self, path: str, body: Any) -> requests.Response:
        # A new connection per request, so that both workers get to answer.
        return requests.post(
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.key}", "Connection": "close"},
            timeout=10,
        )

    def metrics(self) -> str:
        return requests.get(f"{self.url}/metrics", headers={"Connection": "close"}, timeout=10).text


def environment(settings: Settings, config_path: Path, multiproc_dir: Path) -> dict[str, str]:
    """Only what `simguard api` reads: no developer SIMGUARD_* leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMGUARD_")}
    env |= {
        f"SIMGUARD_{field.name.upper()}": str(getattr(settings, field.name))
        for field in dataclasses.fields(Settings)
        if field.name.startswith("topic_") or field.name.startswith("api_")
    }
    env |= {
        "SIMGUARD_CONFIG": str(config_path),
        "SIMGUARD_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SIMGUARD_DATABASE_URL": settings.database_url,
        "SIMGUARD_HMAC_SECRET": settings.hmac_secret,
        "SIMGUARD_ATTESTATION_SECRET": settings.attestation_secret,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
    }
    return env


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"simguard api exited:\n{log_path.read_text()[-3000:]}"
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or the workers are still importing
        time.sleep(0.2)
    raise AssertionError(f"simguard api did not answer:\n{log_path.read_text()[-3000:]}")


@contextmanager
def running_api(
    kafka_broker: KafkaNode, directory: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`simguard api` with WORKERS workers on a fresh store, until the block ends."""
    settings = module_settings(kafka_broker, directory)
    _, key = issue_key(open_store(settings.database_url), "52003")
    multiproc_dir = directory / "prometheus"
    multiproc_dir.mkdir()
    # A previous run's worker file: it must not be added to this run's counts.
    (multiproc_dir / "counter_1.db").write_bytes(b"\0" * 64)
    port = free_port()
    log_path = directory / "api.log"
    env = environment(settings, directory / "empty.toml", multiproc_dir) | (extra_env or {})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SIMGUARD), "api", "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, log_path)
        yield Server(url, settings, key, log_path, multiproc_dir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_api(kafka_broker, tmp_path_factory.mktemp("gunicorn")) as running:
        yield running


def test_the_api_serves_requests_from_gevent_workers_with_gevents_http_server(
    server: Server,
) -> None:
    # bench/RESULTS.md: greenlets answer single-event requests faster than
    # gunicorn's thread workers on the same cores, and gevent's HTTP server
    # faster than gunicorn's parser.
    assert '"msg":"Using worker: service.http_worker.ApiWorker"' in server.log_path.read_text()


def listening_sockets(port: int) -> int:
    """Sockets in LISTEN state on the port, over IPv4 (/proc/net/tcp)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for line in lines if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
    )


def test_each_worker_listens_on_the_port_itself(server: Server) -> None:
    # The kernel then spreads new connections over the workers, instead of one
    # shared socket's first waker accepting a burst of them.
    port = int(server.url.rsplit(":", 1)[1])

    assert listening_sockets(port) == WORKERS


def test_the_api_stops_with_a_message_when_its_port_is_taken(
    server: Server, tmp_path: Path
) -> None:
    env = environment(server.settings, server.log_path.parent / "empty.toml", tmp_path)
    taken = server.url.removeprefix("http://")

    result = subprocess.run(
        [str(SIMGUARD), "api", "--bind", taken, "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert f"cannot listen on {taken}" in result.stderr


def test_events_posted_over_http_are_acknowledged_and_on_their_topic(server: Server) -> None:
    single = valid_activation()
    batch = [valid_network_event(imsi=imsi("52003", seed)) for seed in range(1, 51)]

    first = server.post("/v1/activations", single)
    second = server.post("/v1/network-events", {"events": batch})

    assert first.status_code == 202, first.text
    assert second.status_code == 202, second.text
    assert second.json()["accepted"] == 50
    activations = read_all(server.settings, server.settings.topic_activations, min_count=1)
    assert single["event_id"] in {r.json()["event_id"] for r in activations}
    observations = read_all(server.settings, server.settings.topic_network_events, min_count=50)
    assert {e["event_id"] for e in batch} <= {r.json()["event_id"] for r in observations}


def test_a_refusal_over_http_is_a_problem_with_the_correlator(server: Server) -> None:
    response = requests.post(
        f"{server.url}/v1/activations",
        json=valid_activation(channel="shop"),
        headers={"Authorization": f"Bearer {server.key}", "x-correlator": "op-52003:abc-1"},
        timeout=10,
    )

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["x-correlator"] == "op-52003:abc-1"
    assert response.json()["errors"][0]["pointer"] == "/channel"


def test_no_identity_number_reaches_the_server_log_or_the_topic(server: Server) -> None:
    national_id = thai_national_id(31337)
    event = valid_registration_request(holder=valid_holder(id_number=national_id))

    response = server.post("/v1/registrations", event)

    assert response.status_code == 202
    records = read_all(server.settings, server.settings.topic_registrations, min_count=1)
    assert records
    assert all(national_id.encode() not in record.value for record in records)
    log = server.log_path.read_text()
    assert national_id not in log
    assert server.key not in log
    assert '"route":"/v1/registrations"' in log


UNKNOWN_SIM_LABELS = {"method": "GET", "route": "/v1/sims/<imsi>", "status": "404"}


def per_worker_counts(multiproc_dir: Path, sample: str, labels: dict[str, str]) -> dict[str, float]:
    """One counter's value in each worker's own file, by worker pid."""
    counts: dict[str, float] = {}
    for path in multiproc_dir.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, value, *_ in values:
            _, name, key_labels, _ = json.loads(key)
            if name == sample and key_labels == labels:
                pid = path.stem.removeprefix("counter_")
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def scraped_count(exposition: str, sample: str, labels: dict[str, str]) -> float:
    rendered = ",".join(f'{name}="{labels[name]}"' for name in sorted(labels))
    match = re.search(
        rf"^{re.escape(sample)}\{{{re.escape(rendered)}\}} (\S+)$", exposition, re.MULTILINE
    )
    assert match, f"{sample}{{{rendered}}} not in the exposition"
    return float(match.group(1))


def test_the_metrics_directory_is_emptied_when_the_server_starts(server: Server) -> None:
    assert not (server.multiproc_dir / "counter_1.db").exists()


def test_every_scrape_reports_the_counts_of_all_workers(server: Server) -> None:
    unknown_sim = f"{server.url}/v1/sims/{imsi('52003', 999_999)}"
    headers = {"Authorization": f"Bearer {server.key}", "Connection": "close"}
    sample = "simguard_http_requests_total"

    def get_unknown_sim(_: int) -> int:
        return requests.get(unknown_sim, headers=headers, timeout=10).status_code

    # Concurrent requests on fresh connections until both workers answered some.
    with ThreadPoolExecutor(max_workers=12) as pool:
        for _ in range(20):
            assert set(pool.map(get_unknown_sim, range(24))) == {404}
            counts = per_worker_counts(server.multiproc_dir, sample, UNKNOWN_SIM_LABELS)
            if len(counts) == WORKERS:
                break
    assert len(counts) == WORKERS, f"one worker answered everything: {counts}"

    total = sum(counts.values())
    for _ in range(6):
        assert scraped_count(server.metrics(), sample, UNKNOWN_SIM_LABELS) == total


def test_the_api_exports_its_own_metrics_and_none_of_the_workers(server: Server) -> None:
    exposed = {
        line.split()[2]
        for line in server.metrics().splitlines()
        if line.startswith("# TYPE simguard_")
    }

    assert "simguard_http_request_duration_seconds" in exposed
    worker_families = {
        "simguard_cases_flagged",
        "simguard_pending_activations",
        "simguard_event_to_flag_seconds",
        "simguard_consumer_lag",
        "simguard_worker_events",
        "simguard_worker_batch_duration_seconds",
    }
    assert exposed & worker_families == set()


def test_the_api_refuses_to_start_without_an_hmac_secret(server: Server, tmp_path: Path) -> None:
    env = environment(server.settings, server.log_path.parent / "empty.toml", tmp_path)
    del env["SIMGUARD_HMAC_SECRET"]

    result = subprocess.run(
        [str(SIMGUARD), "api", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "hmac_secret" in result.stderr


def test_the_api_refuses_to_start_without_an_attestation_secret(
    server: Server, tmp_path: Path
) -> None:
    env = environment(server.settings, server.log_path.parent / "empty.toml", tmp_path)
    del env["SIMGUARD_ATTESTATION_SECRET"]

    result = subprocess.run(
        [str(SIMGUARD), "api", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "attestation_secret" in result.stderr
