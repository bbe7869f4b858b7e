"""A simulated population of 2,000 SIMs through the real system: `simguard api`
under gunicorn, the session's Kafka broker, and a `simguard worker` process.
The regulator's register must then hold exactly the simulator's truth: every
reason with precision and recall 1.0."""

from __future__ import annotations

import dataclasses
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka_helpers import MakeSettings
from worker_helpers import SIMGUARD, WorkerProcess, register, settings_env, wait_for

from simguard.api_keys import issue_key
from simguard.broker import free_port
from simguard.settings import Settings
from simguard.simulator.check import check
from simguard.simulator.files import write_border_cells
from simguard.simulator.population import Scenario, generate
from simguard.simulator.post import post
from simguard.store import open_store

SIMS = 2000
SEED = 7
# Short, so that the unregistered SIMs are judged within the test; long enough
# for a running worker to apply registrations posted before their activations.
GRACE_SECONDS = 5


class ApiProcess:
    """`simguard api` as a subprocess on a free loopback port."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / "api.log"
        env = settings_env(settings) | {"PROMETHEUS_MULTIPROC_DIR": str(log_dir / "prometheus")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [SIMGUARD, "api", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"api exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=3) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        if not wait_for(ready, timeout=timeout, interval=0.3):
            raise AssertionError(f"api not ready: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def system(make_settings: MakeSettings, tmp_path: Path) -> Iterator[tuple[Settings, Scenario, str]]:
    """Settings whose rules load the simulated border cells, the scenario,
    and a running API (its URL) and worker on those settings."""
    base = make_settings()
    rules = dataclasses.replace(base.rules, unregistered_grace_seconds=GRACE_SECONDS)
    scenario = generate(SIMS, SEED, datetime.now(UTC), rules)
    border_csv = write_border_cells(scenario.border_cells, tmp_path / "border_cells.csv")
    rules = dataclasses.replace(
        rules, border_cells_csv=str(border_csv), border_cells=frozenset(scenario.border_cells)
    )
    settings = make_settings(rules=rules)
    api = ApiProcess(settings, tmp_path)
    worker = WorkerProcess(settings, "simulated", tmp_path)
    try:
        worker.start()
        api.wait_ready()
        worker.wait_ready()
        yield settings, scenario, api.url
    finally:
        api.stop()
        worker.stop_quietly()


def _explain(settings: Settings, scenario: Scenario, imsis: set[str], path: Path) -> str:
    """Each mismatching SIM's actor, expected codes, latest case and events,
    written to `path`; the first few also go into the assertion message."""
    actor_of = {imsi: kind for kind, members in scenario.actors.items() for imsi in members}
    cases = register(settings, timeout=10)
    lines = []
    for imsi in sorted(imsis):
        events = {
            kind: [event for event in events if event["imsi"] == imsi]
            for kind, events in scenario.events.items()
        }
        lines.append(
            orjson.dumps(
                {
                    "imsi": imsi,
                    "actor": actor_of.get(imsi),
                    "expected": sorted(scenario.truth.get(imsi, ())),
                    "case": cases.get(imsi),
                    "events": events,
                }
            ).decode()
        )
    path.write_text("\n".join(lines) + "\n")
    return "\n".join(line[:1500] for line in lines[:5])


@pytest.mark.timeout(240)
def test_a_simulated_population_ends_with_exactly_the_true_flags(
    system: tuple[Settings, Scenario, str], tmp_path: Path
) -> None:
    settings, scenario, api_url = system
    store = open_store(settings.database_url)
    keys = {operator: issue_key(store, operator)[1] for operator in scenario.operators}
    store.close()

    started = time.monotonic()
    report = post(scenario, api_url, keys, batch_size=500, concurrency=4)
    posted_seconds = time.monotonic() - started
    assert report.accepted == report.sent == sum(scenario.counts().values())

    result = check(
        settings, scenario.truth, timeout=120, population=scenario.imsis, settle_seconds=3
    )
    print(report.summary(), f"posted in {posted_seconds:.1f} s", result.table(), sep="\n")
    wrong = {
        imsi
        for sample in (result.score.false_positive_sample, result.score.false_negative_sample)
        for imsis in sample.values()
        for imsi in imsis
    }
    details = _explain(settings, scenario, wrong, tmp_path / "mismatches.jsonl") if wrong else ""
    assert result.perfect, f"{result.table()}\n{details}"
    for reason in result.score.reasons:
        assert (reason.precision, reason.recall) == (1.0, 1.0), reason
