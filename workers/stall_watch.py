"""Noticing a consumer that has stopped handing out records.

The consumer has stalled when some partition has records to read (lag above
zero) and no partition's position has moved for `stall_seconds`: the worker's
loop runs, but its consumer gives it nothing. Progress is judged over all the
partitions together because a working consumer drains its fetched partitions
one after another, so a single partition may wait its turn for a while.
kafka-python 3 has been seen to stop fetching; the loop answers with a new
consumer, as a restart would, and the committed offsets say where to resume.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field


@dataclass
class StallWatch:
    stall_seconds: float
    _positions: dict[Hashable, int] = field(default_factory=dict)
    # Since when the positions have stood still with records to read.
    _since: float | None = None

    def stalled(
        self, positions: Mapping[Hashable, int], lags: Mapping[Hashable, int], now: float
    ) -> bool:
        waiting = any(lag > 0 for lag in lags.values())
        moved = dict(positions) != self._positions
        self._positions = dict(positions)
        if not waiting or moved or self._since is None:
            self._since = now if waiting else None
            return False
        return now - self._since >= self.stall_seconds

    def reset(self) -> None:
        self._positions = {}
        self._since = None
