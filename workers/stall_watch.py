"""Noticing a consumer that has stopped fetching.

A partition with records to read (lag above zero) whose position has not
moved for `stall_seconds` is stalled: the worker's loop runs, but its
consumer hands it nothing. kafka-python 3 has been seen to do this after a
rebalance (fetch state it never clears); the loop answers with a new
consumer, as a restart would, and the committed offsets say where to resume.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field


@dataclass
class StallWatch:
    stall_seconds: float
    # partition -> (position, since when it stands there with records to read)
    _since: dict[Hashable, tuple[int, float]] = field(default_factory=dict)

    def stalled(
        self, positions: Mapping[Hashable, int], lags: Mapping[Hashable, int], now: float
    ) -> list[Hashable]:
        """The partitions whose position stood still for `stall_seconds`
        while they had records to read; forgets partitions no longer given."""
        for tp in set(self._since) - set(positions):
            del self._since[tp]
        found = []
        for tp, position in positions.items():
            if lags.get(tp, 0) <= 0:
                self._since.pop(tp, None)
                continue
            seen = self._since.get(tp)
            if seen is None or seen[0] != position:
                self._since[tp] = (position, now)
            elif now - seen[1] >= self.stall_seconds:
                found.append(tp)
        return found

    def reset(self) -> None:
        self._since.clear()
