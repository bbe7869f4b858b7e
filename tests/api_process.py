"""`simguard api` as a real subprocess (gunicorn) for end-to-end tests."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from worker_helpers import SIMGUARD, settings_env, wait_for

from simguard.broker import free_port
from simguard.settings import Settings


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
