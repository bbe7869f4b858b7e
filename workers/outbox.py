"""The outbox: records a batch produces, written in the same store transaction
as the state they come from, and published afterwards in one Kafka transaction
together with the consumed offsets.

Each shard (input partition number) numbers its outbox rows. The Kafka
transaction commits, as the offsets' metadata, the last sequence number it
published; a worker that takes a shard over reads it back and so knows exactly
which rows are already on the regulator topic, even when it died between the
Kafka commit and deleting them here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from simguard.store import Tx
from simguard.store import outbox as outbox_rows

METADATA_PREFIX = "simguard-outbox-seq="


@dataclass(frozen=True)
class OutboxRow:
    shard: int
    seq: int
    topic: str
    key: str | None
    value: str
    accepted_at: str | None
    # Records to an internal topic go to the partition that owns their SIM.
    partition: int | None = None


class OutboxWriter:
    """Collects rows during a batch and numbers them when the batch is written."""

    def __init__(self) -> None:
        self._pending: dict[int, list[tuple[str, str | None, str, str | None, int | None]]] = (
            defaultdict(list)
        )

    def add(
        self,
        shard: int,
        topic: str,
        key: str | None,
        value: str,
        accepted_at: str | None = None,
        partition: int | None = None,
    ) -> None:
        self._pending[shard].append((topic, key, value, accepted_at, partition))

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._pending.values())

    def write(self, tx: Tx) -> None:
        for shard, rows in sorted(self._pending.items()):
            outbox_rows.append(
                tx,
                shard,
                [
                    (topic, _with_partition(key, partition), value, accepted)
                    for topic, key, value, accepted, partition in rows
                ],
            )
        self._pending.clear()


# The target partition of an internal record rides in the stored key column as
# "<partition>|<key>" so that the outbox table needs no extra column.
def _with_partition(key: str | None, partition: int | None) -> str | None:
    if partition is None:
        return key
    return f"{partition}|{key or ''}"


def _split_partition(
    stored: str | None, topic: str, internal_topic: str
) -> tuple[int | None, str | None]:
    if stored is None or topic != internal_topic:
        return None, stored
    partition, _, key = stored.partition("|")
    return int(partition), key


def unpublished(
    tx: Tx, shards: list[int], after: dict[int, int], internal_topic: str
) -> list[OutboxRow]:
    """Rows of `shards` not yet published, in order; `after` maps shard -> last published seq."""
    rows: list[OutboxRow] = []
    for shard in sorted(shards):
        for seq, topic, stored_key, value, accepted in outbox_rows.after(
            tx, shard, after.get(shard, 0)
        ):
            partition, key = _split_partition(stored_key, topic, internal_topic)
            rows.append(OutboxRow(shard, seq, topic, key, value, accepted, partition))
    return rows


def forget_published(tx: Tx, published: dict[int, int]) -> None:
    for shard, seq in published.items():
        outbox_rows.delete_through(tx, shard, seq)


def metadata_for(seq: int) -> str:
    return f"{METADATA_PREFIX}{seq}"


def seq_from_metadata(metadata: str | None) -> int:
    if metadata and metadata.startswith(METADATA_PREFIX):
        return int(metadata.removeprefix(METADATA_PREFIX))
    return 0
