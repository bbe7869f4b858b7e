"""The broker, the API and the worker of a soak run, and what /proc says of them."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import click

from simguard.settings import load_settings, settings_to_env
from tooling.soak.plan import SIMGUARD, Restart, SoakPlan

if TYPE_CHECKING:
    from simguard.broker import KafkaNode


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
            attestation_secret=secrets.token_hex(32),
            operator_signing_secret=secrets.token_hex(32),
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
