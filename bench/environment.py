"""Everything a benchmark runs against, started by the bench and stopped by it:
a temporary directory, one local Kafka broker, and `simguard` processes.

Each benchmark gets its own topics, consumer group and SQLite file (a tag
appended to the default names), so one benchmark's records never reach
another's worker; the worker benchmark can run on databases of a PostgreSQL
server instead. Every command line started is recorded for RESULTS.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import events
from bench.report import command_line
from simguard.broker import KafkaNode, free_port, start_single_node
from simguard.broker_config import BrokerError, kafka_classpath
from simguard.kafka_clients import admin_client, ensure_topics
from simguard.settings import Settings, load_settings, settings_to_env

REPO_ROOT = Path(__file__).resolve().parents[1]
SIMGUARD = str(Path(sys.executable).with_name("simguard"))


@dataclass
class Spawned:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, characters: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return ""


class BenchError(RuntimeError):
    """A benchmark could not run (a process died, a wait timed out)."""


class BenchEnvironment:
    python = sys.executable

    def __init__(
        self, root: Path | None = None, keep: bool = False, worker_store: str | None = None
    ) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="simguard-bench-"))
        # A PostgreSQL server URL (no database): the worker benchmark's stores.
        self.worker_store = worker_store.rstrip("/") if worker_store else None
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs = self.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.keep = keep
        self.commands: list[str] = []
        self.node: KafkaNode | None = None
        self._spawned: list[Spawned] = []
        self.empty_config = self.root / "empty.toml"
        self.empty_config.write_text("")
        self.border_cells_csv = self.root / "border_cells.csv"
        self.border_cells_csv.write_text("cell_id\n" + "\n".join(events.border_cell_ids()) + "\n")
        defaults = load_settings(environ={"SIMGUARD_CONFIG": str(self.empty_config)})
        self.base = defaults.replace(
            hmac_secret=secrets.token_hex(32),
            # The benchmarks measure what the API can take, not what it admits.
            api_rate_limit_per_second=0.0,
            attestation_secret=secrets.token_hex(32),
            operator_signing_secret=secrets.token_hex(32),
            rules=dataclasses.replace(
                defaults.rules,
                border_cells_csv=str(self.border_cells_csv),
                border_cells=frozenset(events.border_cell_ids()),
            ),
        )

    # --- the broker ---------------------------------------------------------------
    def start_broker(self) -> KafkaNode:
        port = free_port()
        try:
            self.node = start_single_node(self.root / "kafka", port=port, timeout=120)
        except BrokerError:
            # One more try in a fresh directory: a start can fail for reasons of
            # the moment (a random cluster id the storage tool misreads, a port
            # taken between choosing and binding it).
            port = free_port()
            self.node = start_single_node(self.root / "kafka-2", port=port, timeout=120)
        self.commands += [
            f"# Kafka broker: simguard.broker.start_single_node(port={port}) in the run's "
            "temporary directory",
            "# every simguard process below gets the run's settings as SIMGUARD_* variables "
            "(simguard.settings.settings_to_env) and SIMGUARD_CONFIG naming an empty TOML file",
        ]
        self.base = self.base.replace(kafka_bootstrap_servers=self.node.bootstrap)
        return self.node

    @staticmethod
    def kafka_version() -> str:
        for jar in kafka_classpath().split(os.pathsep):
            name = Path(jar).name
            if name.startswith("kafka_2.13-"):
                return name.removeprefix("kafka_2.13-").removesuffix(".jar")
        return "unknown"

    # --- settings and topics ------------------------------------------------------------
    def settings(self, tag: str) -> Settings:
        """Own topics, group and store for one benchmark; the topics are created."""
        renamed = self.base.topics_suffixed(tag)
        settings = self.base.replace(
            **renamed,
            consumer_group=f"simguard-bench-{tag}",
            database_url=f"sqlite:///{self.root / f'{tag}.db'}",
        )
        ensure_topics(settings)
        admin = admin_client(settings)
        try:
            admin.wait_for_topics(list(settings.topics().values()), timeout_ms=30_000)
        finally:
            admin.close()
        return settings

    def worker_database_url(self, settings: Settings, suffix: str) -> str:
        """A fresh, empty store for one worker run: a SQLite file beside the
        benchmark's, or a new database on the `worker_store` server."""
        if self.worker_store is None:
            return settings.database_url.removesuffix(".db") + f"-{suffix}.db"
        import psycopg

        name = f"simguard_bench_{secrets.token_hex(4)}_{suffix}"
        with psycopg.connect(f"{self.worker_store}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
            version = connection.execute("SHOW server_version").fetchone()
        self.commands.append(
            f"# worker store: database {name} on PostgreSQL {version[0] if version else '?'} "
            f"at {self.worker_store}"
        )
        return f"{self.worker_store}/{name}"

    @property
    def worker_store_name(self) -> str:
        return "SQLite" if self.worker_store is None else "PostgreSQL"

    def database_path(self, settings: Settings) -> Path:
        return Path(settings.database_url.removeprefix("sqlite:///"))

    def process_env(self, settings: Settings, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIMGUARD_")}
        env |= settings_to_env(settings)
        env["SIMGUARD_CONFIG"] = str(self.empty_config)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env | extra

    # --- processes ------------------------------------------------------------------
    def record(self, argv: list[str]) -> None:
        line = command_line(argv, REPO_ROOT)
        # A command run again at once (the broker's warm-up chunks) is listed once.
        if not self.commands or self.commands[-1] != line:
            self.commands.append(line)

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Spawned:
        self.record(argv)
        log_path = self.logs / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )
        spawned = Spawned(name, process, log_path)
        self._spawned.append(spawned)
        return spawned

    def run(
        self, name: str, argv: list[str], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        """Run to completion (killed after `timeout`); stderr goes to the log."""
        self.record(argv)
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.run(
                argv, env=env, stdout=subprocess.PIPE, stderr=log, cwd=self.root,
                timeout=timeout, check=False,
            )  # fmt: skip

    def start_api(self, settings: Settings, name: str, workers: int = 2) -> tuple[Spawned, str]:
        port = free_port()
        env = self.process_env(settings, PROMETHEUS_MULTIPROC_DIR=str(self.root / f"prom-{name}"))
        argv = [SIMGUARD, "api", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        api = self.spawn(name, argv, env)
        url = f"http://127.0.0.1:{port}"
        self.wait_http(f"{url}/readyz", api, timeout=90)
        return api, url

    def start_worker(self, settings: Settings, name: str) -> tuple[Spawned, int]:
        return self.start_workers(settings, [name])[0]

    def start_workers(self, settings: Settings, names: list[str]) -> list[tuple[Spawned, int]]:
        """Spawn every worker before waiting for any: they join their group
        together instead of the first working alone while the next starts."""
        started = []
        for name in names:
            port = free_port()
            env = self.process_env(settings, SIMGUARD_WORKER_METRICS_PORT=str(port))
            started.append((self.spawn(name, [SIMGUARD, "worker", "--name", name], env), port))
        for worker, port in started:
            self.wait_http(f"http://127.0.0.1:{port}/healthz", worker, timeout=90)
        return started

    def wait_http(self, url: str, owner: Spawned, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not owner.running():
                raise BenchError(f"{owner.name} exited:\n{owner.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"{url} did not answer within {timeout:.0f}s:\n{owner.log_tail()}")

    def stop(self, spawned: Spawned, timeout: float = 30) -> None:
        """SIGTERM (the process drains and closes), SIGKILL if it does not end."""
        if spawned.running():
            spawned.process.send_signal(signal.SIGTERM)
            try:
                spawned.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                spawned.process.kill()
                spawned.process.wait(timeout=10)
        with contextlib.suppress(ValueError):
            self._spawned.remove(spawned)

    @contextlib.contextmanager
    def running(self, spawned: Spawned) -> Iterator[Spawned]:
        try:
            yield spawned
        finally:
            self.stop(spawned)

    def close(self) -> None:
        for spawned in list(self._spawned):
            self.stop(spawned, timeout=15)
        if self.node is not None:
            self.node.stop(timeout=30)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
