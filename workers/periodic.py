"""Work the loop does every N seconds, between batches rather than on a timer
thread of its own: a task then never runs beside a batch's transactions, and
a loop stuck in one step holds its tasks back too (its /healthz says so).

Pure: the caller passes the time (time.monotonic() in the loop), so the tests
need no clock of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class Every:
    """A moment that comes round every `interval_seconds`."""

    def __init__(self, interval_seconds: float, first_due_at: float = 0.0) -> None:
        self.interval_seconds = interval_seconds
        self._due_at = first_due_at

    def due(self, now: float) -> bool:
        return now >= self._due_at

    def restart(self, now: float) -> None:
        """Due again `interval_seconds` after `now`: the interval runs from
        the last time the work was done, not from a fixed grid, so a slow run
        never has the next one due at once."""
        self._due_at = now + self.interval_seconds


@dataclass
class PeriodicTask:
    """`action`, run by `run_if_due` when its schedule says so."""

    name: str
    schedule: Every
    action: Callable[[], None]

    def run_if_due(self, now: float) -> bool:
        if not self.schedule.due(now):
            return False
        # Restarted before the action: one that raises, or replaces the
        # consumer, is not tried again at the very next batch.
        self.schedule.restart(now)
        self.action()
        return True
