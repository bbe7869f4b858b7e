"""Noticing a producer that has stopped getting acknowledgements.

kafka-python 3 has been seen, after the leader of a partition was SIGKILLed,
to keep a producer waiting on the dead node while the new leaders served
everyone else: every request then timed out until the process was restarted.
A producer that has acknowledged nothing for several ack timeouts in a row is
replaced, as a restart would; a new one bootstraps from the live nodes. Where
the cluster itself cannot take writes (too few in-sync replicas) the new
producer times out too, and replacing it costs one reconnect.
"""

from __future__ import annotations

from dataclasses import dataclass

# Ack timeouts without a single acknowledgement before the producer is replaced:
# one timeout is a slow moment, three are a producer or a cluster that is stuck.
STALL_ACK_TIMEOUTS = 3


def stall_seconds(ack_timeout_seconds: float) -> float:
    """Passed by the third timeout in a row: a wait on a future may end a
    little before its timeout, so three of them can add up to a hair under
    three timeouts."""
    return (STALL_ACK_TIMEOUTS - 0.5) * ack_timeout_seconds


@dataclass
class AckWatch:
    stall_seconds: float
    _last_progress: float = 0.0

    def started(self, now: float) -> None:
        """A new producer counts as progress: it has not failed yet."""
        self._last_progress = now

    def acknowledged(self, now: float) -> None:
        self._last_progress = now

    def stalled(self, now: float) -> bool:
        """Asked after a timeout: nothing acknowledged for stall_seconds."""
        return now - self._last_progress >= self.stall_seconds
