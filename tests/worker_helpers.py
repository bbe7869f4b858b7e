"""Running real worker processes in tests, feeding them, and reading the register."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import orjson
from kafka_helpers import read_all

from schemas import operator_signature
from simguard.broker import free_port
from simguard.kafka_clients import reliable_producer
from simguard.settings import Settings, settings_to_env

SIMGUARD = str(Path(sys.executable).with_name("simguard"))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `simguard` process use exactly `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMGUARD_")}
    # An empty config file, so a developer's simguard.toml cannot leak in.
    handle, config = tempfile.mkstemp(suffix=".toml", prefix="simguard-test-")
    os.close(handle)
    env["SIMGUARD_CONFIG"] = config
    return env | settings_to_env(settings)


class WorkerProcess:
    """`simguard worker` as a subprocess: started, SIGTERMed or SIGKILLed for real."""

    # Started during the current test; a failing test's report shows their
    # logs and stacks (conftest.py).
    started: ClassVar[list[WorkerProcess]] = []

    def __init__(
        self, settings: Settings, name: str, log_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.name = name
        self.metrics_port = free_port()
        self.log_path = log_dir / f"worker-{name}.log"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = settings_env(self.settings) | self.extra_env
        env["SIMGUARD_WORKER_METRICS_PORT"] = str(self.metrics_port)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [SIMGUARD, "worker", "--name", self.name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        WorkerProcess.started.append(self)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker serves /healthz, i.e. it has joined and polls."""

        def healthy() -> bool:
            if not self.running():
                raise AssertionError(f"worker exited: {self.log_text()[-2000:]}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1
                ) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        if not wait_for(healthy, timeout=timeout, interval=0.2):
            raise AssertionError(f"worker not ready: {self.log_text()[-2000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stacks(self) -> str:
        """Where the running worker's threads are (py-spy, when installed)."""
        spy = Path(sys.executable).with_name("py-spy")
        if not self.running() or not spy.exists():
            return "(not running, or no py-spy to show where)"
        assert self.process is not None
        dump = subprocess.run(
            [str(spy), "dump", "--pid", str(self.process.pid)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return dump.stdout or dump.stderr

    def post_mortem(self) -> str:
        """The log's tail and the threads' stacks, for a failing test's report."""
        return f"worker {self.name} log:\n{self.log_text()[-3000:]}\nstacks:\n{self.stacks()}"

    def stop_quietly(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)


def produce(settings: Settings, topic: str, events: Iterable[dict[str, Any]]) -> int:
    """Send events keyed by IMSI, as an operator producing straight to Kafka
    would: each signed with the key of the operator it names."""
    producer = reliable_producer(settings)
    count = 0
    try:
        for event in events:
            key, value = event["imsi"].encode(), orjson.dumps(event)
            producer.send(
                topic, key=key, value=value, headers=operator_signed(settings, key, value)
            )
            count += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
    return count


def operator_signed(settings: Settings, key: bytes, value: bytes) -> list[tuple[str, bytes]]:
    """The signature header of the operator `value` names; none when it names none."""
    plmn = orjson.loads(value).get("operator")
    if not isinstance(plmn, str):
        return []
    signature = operator_signature.sign_for(settings.operator_signing_secret, plmn, key, value)
    return [(operator_signature.HEADER, signature)]


def register(settings: Settings, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """The regulator's live register: the latest case record per IMSI."""
    latest: dict[str, dict[str, Any]] = {}
    for record in read_all(settings, settings.topic_flagged, timeout=timeout):
        value = orjson.loads(record.value)
        latest[value["imsi"]] = value
    return latest


def flagged_reasons(settings: Settings) -> dict[str, set[str]]:
    return {
        imsi: {r["code"] for r in record["reasons"]}
        for imsi, record in register(settings).items()
        if record["status"] == "flagged"
    }


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Poll until `condition()` is truthy; returns its last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = condition()
    return value
