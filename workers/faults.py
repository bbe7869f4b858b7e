"""Fault injection for the crash tests: SIMGUARD_FAULT_KILL_AT=<point> makes
the worker SIGKILL itself at that point of its N-th batch
(SIMGUARD_FAULT_KILL_AFTER_BATCHES, default 1), exactly as an OOM kill or a
node loss would, so the tests can prove recovery at each step of the commit
protocol. SIMGUARD_FAULT_STALL_AFTER_BATCHES=<N> makes the consumer stop
handing out records after the N-th batch, as a stalled client would.
SIMGUARD_FAULT_PHASE_FILE=<path> makes the worker write the step it is in to
that file, so a test that SIGKILLs it from outside can tell where the kill
landed. Unset in production; reading them costs a dict lookup each at start."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

POINTS = ("after_store_commit", "before_kafka_commit", "after_kafka_commit")
# The steps of a batch, in order: waiting for records, inside the store
# transaction, between the store's commit and Kafka's, and past both.
PHASES = ("polling", "in_store_transaction", "between_commits", "committed")
_PHASE_WIDTH = max(len(phase) for phase in PHASES)


class KillSwitch:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
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

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
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


class PhaseTrail:
    """The current step, overwritten in place: one pwrite per step when set."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("SIMGUARD_FAULT_PHASE_FILE", "")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600) if path else None

    def enter(self, phase: str) -> None:
        if self._fd is not None:
            os.pwrite(self._fd, phase.ljust(_PHASE_WIDTH).encode(), 0)


@dataclass(frozen=True)
class FaultSwitches:
    """The switches a worker loop is given; all off unless read from an
    environment that sets them (`simguard worker` reads its own)."""

    kill: KillSwitch = field(default_factory=lambda: KillSwitch({}))
    stall: StallSwitch = field(default_factory=lambda: StallSwitch({}))
    phase: PhaseTrail = field(default_factory=lambda: PhaseTrail({}))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> FaultSwitches:
        env = os.environ if environ is None else environ
        return cls(KillSwitch(env), StallSwitch(env), PhaseTrail(env))


def read_phase(path: str) -> str:
    """The step a worker writing to `path` was in, "" before its first."""
    try:
        with open(path, "rb") as file:
            return file.read(_PHASE_WIDTH).decode().strip()
    except FileNotFoundError:
        return ""
