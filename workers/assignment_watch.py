"""What the consumer group has done to a worker's partitions, as its loop needs it.

kafka-python calls the listener on its network thread, in the middle of the
group protocol; the listener only notes what happened and the loop acts on it
between polls. While a rebalance is open the loop asks nothing of its
consumer but the next poll: a committed-offset request sent mid-rebalance
waits behind the JoinGroup on the coordinator's connection, and kafka-python
3.0.12 then loses the group's answer to the join (the consumer stays out of
the group, polling nothing, until the stall watch replaces it).
"""

from __future__ import annotations

from typing import Any

from kafka.consumer.subscription_state import ConsumerRebalanceListener


class AssignmentWatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        # The assignment differs from what the loop last took.
        self.changed = True
        # From the revocation that opens a rebalance (or from the consumer's
        # start) to the assignment that ends it.
        self.rebalancing = True

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.rebalancing = True
        self.changed = True

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.rebalancing = False
        self.changed = True

    def restart(self) -> None:
        """A new consumer is about to join in place of the last one."""
        self.rebalancing = True
        self.changed = True
