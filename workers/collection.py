"""The garbage collector's passes, moved between the worker's steps.

A step holds a whole batch at once (records, events, SIM states), and
CPython's automatic collector, started by allocations, walks those objects
again and again while the step runs: in the worker benchmark its passes took
10 to 19 % of a worker's CPU, the full ones 25 to 45 ms each. Between two
steps the batch has already been freed by reference counting, so a pass there
walks little; only reference cycles need the collector at all.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# How often a pass walks every generation; the young ones are walked after
# every step.
FULL_PASS_SECONDS = 60.0


class CollectorBetweenSteps:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next_full_pass = clock() + FULL_PASS_SECONDS

    def start(self) -> None:
        """Stop the automatic passes (in the whole process: the worker's
        other threads allocate little)."""
        gc.disable()

    def after_step(self) -> None:
        if self._clock() >= self._next_full_pass:
            gc.collect()
            self._next_full_pass = self._clock() + FULL_PASS_SECONDS
        else:
            gc.collect(1)

    def stop(self) -> None:
        gc.enable()
