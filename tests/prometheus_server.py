"""What the end-to-end observability tests run for real: `simguard api` under
gunicorn, `simguard worker`, and a Prometheus server (Debian's `prometheus`
package, installed by `make test`) that scrapes both, with its HTTP API to ask
what it saw.

The scrape configuration is deploy/prometheus/prometheus.yml itself, with only
what a test must change: the targets (free ports), a 1 s scrape and evaluation
interval, and the alert rules by absolute path.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests
import yaml
from worker_helpers import SIMGUARD, WorkerProcess, settings_env, wait_for

from simguard.api_keys import issue_key
from simguard.broker import KafkaNode, free_port
from simguard.kafka_clients import admin_client, ensure_topics
from simguard.settings import Settings, load_settings
from simguard.store import open_store

PROMETHEUS_DIR: Final = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
DEPLOYED_CONFIG: Final = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES: Final = PROMETHEUS_DIR / "alerts.yml"
API_JOB: Final = "simguard-api"
WORKER_JOB: Final = "simguard-worker"
# Every wait in these tests is bounded by this; a scrape every second leaves
# room for start-up, a consumer group join and several scrapes.
WAIT_SECONDS: Final = 60.0
# Production scrapes every 15 s; at 1 s a test sees a change within a second or
# two instead of waiting out several production intervals.
SCRAPE_INTERVAL: Final = "1s"


def stack_settings(broker: KafkaNode, directory: Path, **overrides: Any) -> Settings:
    """conftest's `make_settings`, for a stack shared by a whole module:
    topics and consumer group of its own, a SQLite file in `directory`, its own
    HMAC secret, 3 partitions, the session broker; topics created and led."""
    empty_config = directory / "simguard-test.toml"
    empty_config.write_text("")
    defaults = load_settings(environ={"SIMGUARD_CONFIG": str(empty_config)})
    suffix = uuid.uuid4().hex[:8]
    topics = defaults.topics_suffixed(suffix)
    values: dict[str, Any] = topics | {
        "consumer_group": f"{defaults.consumer_group}-{suffix}",
        "database_url": f"sqlite:///{directory}/simguard.db",
        "hmac_secret": f"test-secret-{suffix}".ljust(32, "0"),
        "attestation_secret": f"test-attestation-secret-{suffix}".ljust(32, "0"),
        "operator_signing_secret": f"test-operator-signing-secret-{suffix}".ljust(32, "0"),
        "topic_partitions": 3,
        "kafka_bootstrap_servers": broker.bootstrap,
    }
    settings = defaults.replace(**(values | overrides))
    ensure_topics(settings)
    admin = admin_client(settings)
    try:
        admin.wait_for_topics(list(settings.topics().values()), timeout_ms=30_000)
    finally:
        admin.close()
    return settings


def _stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, so a server shuts down as in production; SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class ApiProcess:
    """`simguard api` (gunicorn) as a subprocess, its stdout and stderr each in a file."""

    def __init__(self, settings: Settings, directory: Path, workers: int = 2) -> None:
        self.settings = settings
        self.directory = directory
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = directory / "api.stdout.log"
        self.stderr_path = directory / "api.stderr.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiProcess:
        multiproc_dir = self.directory / "prometheus-multiproc"
        multiproc_dir.mkdir(exist_ok=True)
        env = settings_env(self.settings) | {"PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
        workers = ["--workers", str(self.workers)]
        with self.stdout_path.open("ab") as stdout, self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                [SIMGUARD, "api", "--bind", f"127.0.0.1:{self.port}", *workers],
                env=env,
                stdout=stdout,
                stderr=stderr,
                cwd=self.directory,
            )
        return self

    def wait_ready(self, timeout: float = WAIT_SECONDS) -> None:
        def serving() -> bool:
            if not self.running():
                raise AssertionError(f"simguard api exited:\n{self.log_text()[-3000:]}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False  # not listening yet, or the workers are still importing

        if not wait_for(serving, timeout=timeout, interval=0.2):
            raise AssertionError(f"simguard api did not answer:\n{self.log_text()[-3000:]}")

    def post(
        self, path: str, body: Any, key: str, headers: dict[str, str] | None = None
    ) -> requests.Response:
        return requests.post(
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {key}"} | (headers or {}),
            timeout=10,
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return "".join(
            path.read_text(errors="replace")
            for path in (self.stdout_path, self.stderr_path)
            if path.exists()
        )

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


def scrape_config(api_target: str, worker_target: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, pointed at this test's processes."""
    config: dict[str, Any] = yaml.safe_load(DEPLOYED_CONFIG.read_text())
    config["global"] |= {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"}
    config["rule_files"] = [str(ALERT_RULES)]
    targets = {API_JOB: api_target, WORKER_JOB: worker_target}
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    if jobs != set(targets):
        raise AssertionError(f"{DEPLOYED_CONFIG} scrapes {sorted(jobs)}, not {sorted(targets)}")
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        job["scrape_interval"] = SCRAPE_INTERVAL
    return config


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusServer:
    """A Prometheus server on a free port with its own config and empty TSDB."""

    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise AssertionError(
                "prometheus not found: install Debian's `prometheus` package (make test does)"
            )
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        return self

    def wait_ready(self, timeout: float = WAIT_SECONDS) -> None:
        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log_text()[-3000:]}")
            try:
                return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        if not wait_for(ready, timeout=timeout, interval=0.2):
            raise AssertionError(f"prometheus not ready:\n{self.log_text()[-3000:]}")

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a successful answer of Prometheus's HTTP API."""
        answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = answer.json()
        if answer.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"prometheus {path} {params}: {answer.status_code} {body}")
        return body["data"]

    def query(self, expression: str) -> list[Sample]:
        """An instant vector query, now."""
        data = self.api("query", query=expression)
        if data["resultType"] != "vector":
            raise AssertionError(f"{expression} is a {data['resultType']}, not a vector")
        return [Sample(item["metric"], float(item["value"][1])) for item in data["result"]]

    def wait_for_query(
        self,
        expression: str,
        condition: Callable[[list[Sample]], bool],
        timeout: float = WAIT_SECONDS,
    ) -> list[Sample]:
        """Query until `condition` holds of the result; the last result either way."""
        last: list[Sample] = []

        def holds() -> bool:
            nonlocal last
            last = self.query(expression)
            return condition(last)

        wait_for(holds, timeout=timeout, interval=0.5)
        return last

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        # Already gone, or not answering: the signal below ends it.
        with contextlib.suppress(requests.RequestException):
            requests.post(f"{self.url}/-/quit", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(self.process)


def single_value(samples: list[Sample]) -> float | None:
    """The value of a one-element vector (an aggregation), None when empty."""
    if len(samples) > 1:
        raise AssertionError(f"expected at most one sample, got {samples}")
    return samples[0].value if samples else None


@dataclass
class Simguard:
    """The API and one worker, on the same topics, store and secret."""

    settings: Settings
    api: ApiProcess
    worker: WorkerProcess
    key: str


@contextlib.contextmanager
def running_simguard(
    settings: Settings, directory: Path, operator: str, worker_name: str = "w1"
) -> Iterator[Simguard]:
    """Start both, wait until both serve, and stop both (SIGTERM) at the end."""
    store = open_store(settings.database_url)
    try:
        _, key = issue_key(store, operator)
    finally:
        store.close()
    api = ApiProcess(settings, directory)
    worker = WorkerProcess(settings, worker_name, directory)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(api.stop)
        api.start()
        cleanup.callback(_stop_worker, worker)
        worker.start()
        api.wait_ready()
        worker.wait_ready()
        yield Simguard(settings, api, worker, key)


def _stop_worker(worker: WorkerProcess) -> None:
    if worker.running():
        try:
            worker.terminate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.stop_quietly()
