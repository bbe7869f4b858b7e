"""Fencing in the store: a worker writes only to the shards it still owns.

Kafka fences a worker that lost a partition only when it publishes; its store
transaction would already have been committed. So each worker process takes
the shards it is assigned by raising their epoch in `shard_owners`, and every
transaction it runs checks, first, that those epochs are still the ones it
took. On PostgreSQL the check locks the rows (FOR SHARE): a successor's take
waits until the transaction ends, so a transaction that passed the check
cannot be overtaken half-way. SQLite's single writer gives the same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from simguard.store import Store, Tx, shard_owners
from simguard.timefmt import to_text, utc_now


class ShardFenced(Exception):
    """Another worker took a shard this transaction touches: it was undone."""


class ShardFence:
    def __init__(self, worker_name: str) -> None:
        # One process, one owner: a restarted worker of the same name fences
        # the process it replaces, which may still be running.
        self.owner = f"{worker_name}:{uuid.uuid4().hex[:12]}"
        self.epochs: dict[int, int] = {}

    def take(self, tx: Tx, shards: Iterable[int]) -> dict[int, int]:
        """Own exactly `shards` from now on. The epoch rises only when the shard
        changes hands, so taking again what one holds fences nothing."""
        wanted = sorted(set(shards))
        now = to_text(utc_now())
        shard_owners.take(tx, wanted, self.owner, now)
        self.epochs = {
            shard: epoch
            for shard, (_, epoch) in shard_owners.owners_of(tx, wanted, share_lock=False).items()
        }
        return dict(self.epochs)

    def check(self, tx: Tx, shards: Iterable[int]) -> None:
        """Raise ShardFenced unless every one of `shards` is still ours."""
        wanted = sorted(set(shards))
        if not wanted:
            return
        not_taken = [shard for shard in wanted if shard not in self.epochs]
        if not_taken:
            raise ShardFenced(f"shards {not_taken} were never taken by {self.owner}")
        current = shard_owners.owners_of(tx, wanted)
        lost = [shard for shard in wanted if current.get(shard) != (self.owner, self.epochs[shard])]
        if lost:
            for shard in lost:
                self.epochs.pop(shard, None)
            raise ShardFenced(f"shards {lost} were taken by another worker")

    @contextmanager
    def transaction(self, store: Store, shards: Iterable[int]) -> Iterator[Tx]:
        """A store transaction that writes only while `shards` are ours."""
        with store.transaction() as tx:
            self.check(tx, shards)
            yield tx
