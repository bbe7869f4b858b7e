"""Table `shard_owners`: which worker process owns each shard, and the epoch
that rises each time a shard changes hands (the fence against a worker that
lost its shard but still writes)."""

from __future__ import annotations

from collections.abc import Sequence

from simguard.store import Tx


def take(tx: Tx, shards: Sequence[int], owner: str, now_text: str) -> None:
    """Make `owner` own `shards`, raising each one's epoch only if it changes hands."""
    # In shard order, the order every taker locks the rows in.
    for shard in sorted(shards):
        tx.execute(
            "INSERT INTO shard_owners (shard, owner, epoch, taken_at) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (shard) DO UPDATE SET owner = excluded.owner, "
            "epoch = shard_owners.epoch + 1, taken_at = excluded.taken_at "
            "WHERE shard_owners.owner <> excluded.owner",
            (shard, owner, now_text),
        )


def owners_of(tx: Tx, shards: Sequence[int], share_lock: bool = True) -> dict[int, tuple[str, int]]:
    """shard -> (owner, epoch). With `share_lock`, on PostgreSQL the rows stay
    share-locked until the transaction ends, so no taker can move a shard on
    while it writes; SQLite's single writer gives that already."""
    if not shards:
        return {}
    lock = " FOR SHARE" if share_lock and tx.dialect == "postgresql" else ""
    marks = ",".join("?" for _ in shards)
    return {
        int(shard): (str(owner), int(epoch))
        for shard, owner, epoch in tx.fetchall(
            f"SELECT shard, owner, epoch FROM shard_owners WHERE shard IN ({marks}) "
            f"ORDER BY shard{lock}",
            list(shards),
        )
    }
