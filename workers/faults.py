"""Fault injection for the crash tests: SIMGUARD_FAULT_KILL_AT=<point> makes
the worker SIGKILL itself at that point of its N-th batch
(SIMGUARD_FAULT_KILL_AFTER_BATCHES, default 1), exactly as an OOM kill or a
node loss would, so the tests can prove recovery at each step of the commit
protocol. SIMGUARD_FAULT_STALL_AFTER_BATCHES=<N> makes the consumer stop
handing out records after the N-th batch, as a stalled client would. Unset in
production; reading them costs a dict lookup each at start."""

from __future__ import annotations

import os
import signal
from typing import Any

POINTS = ("after_store_commit", "before_kafka_commit", "after_kafka_commit")


class KillSwitch:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.point = env.get("SIMGUARD_FAULT_KILL_AT", "")
        if self.point and self.point not in POINTS:
            raise ValueError(f"SIMGUARD_FAULT_KILL_AT must be one of {', '.join(POINTS)}")
        self.remaining = int(env.get("SIMGUARD_FAULT_KILL_AFTER_BATCHES", "1"))

    def reached(self, point: str) -> None:
        if point != self.point:
            return
        self.remaining -= 1
        if self.remaining <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


class StallSwitch:
    """Pauses every assigned partition once, after the N-th batch with records."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        value = env.get("SIMGUARD_FAULT_STALL_AFTER_BATCHES", "")
        self.remaining = int(value) if value else None

    def after_batch(self, consumer: Any) -> None:
        if self.remaining is None:
            return
        self.remaining -= 1
        if self.remaining <= 0:
            consumer.pause(*consumer.assignment())
            self.remaining = None
