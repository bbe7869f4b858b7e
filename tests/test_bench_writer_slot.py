"""`python -m bench.writer_slot` applies the worker benchmark's backlog with
the workers' batch code and reports each process's share. Smoke only: no
timing is asserted, only that every event was applied and accounted for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_share_the_backlog_and_report_their_time_in_the_writer_slot() -> None:
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.writer_slot",
            "--workers",
            "2",
            "--sims",
            "300",
            "--batch-records",
            "100",
            "--kafka-ms",
            "0",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert re.search(
        r"^2 worker\(s\), 600 events in [0-9.]+ s: [0-9,]+ events/s$", finished.stdout, re.M
    )
    shares = re.findall(
        r"worker (\d): ([0-9,]+) events, CPU \d+ µs/event, in the writer slot \d+ µs/event",
        finished.stdout,
    )
    assert [worker for worker, _ in shares] == ["0", "1"]
    assert sum(int(count.replace(",", "")) for _, count in shares) == 600
    assert all(int(count.replace(",", "")) > 0 for _, count in shares)
