"""What the consumer group has done to a worker's partitions, as its loop needs it.

kafka-python calls the listener on its network thread, in the middle of the
group protocol; the listener only notes what happened and the loop acts on it
between polls. While a rebalance is open the loop asks nothing of its
consumer but the next poll: a committed-offset request sent mid-rebalance
waits behind the JoinGroup on the coordinator's connection, and kafka-python
3.0.12 then loses the group's answer to the join (the consumer stays out of
the group, polling nothing). A rebalance left open for too long, by a group
that never answers or a consumer that never takes its assignment, has the
loop replace the consumer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka.consumer.subscription_state import ConsumerRebalanceListener


class AssignmentWatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # The assignment differs from what the loop last took.
        self.changed = True
        # From the revocation that opens a rebalance (or from the consumer's
        # start) to the assignment that ends it.
        self.rebalancing = True
        self._rebalancing_since = clock()

    def on_partitions_revoked(self, revoked: Any) -> None:
        # A rebalance already open (a join tried again) keeps its start.
        if not self.rebalancing:
            self._rebalancing_since = self._clock()
        self.rebalancing = True
        self.changed = True

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.rebalancing = False
        self.changed = True

    def restart(self) -> None:
        """A new consumer is about to join in place of the last one: its
        rebalance starts now."""
        self._rebalancing_since = self._clock()
        self.rebalancing = True
        self.changed = True

    def overdue(self, limit_seconds: float) -> bool:
        """A rebalance has been open for `limit_seconds`: the group should
        have answered long before, and a consumer that never takes its
        assignment would otherwise leave the loop idle for good."""
        return self.rebalancing and self._clock() - self._rebalancing_since >= limit_seconds
