"""The worker's store gauges: what they count, and that counting never waits
for another process's write transaction."""

from __future__ import annotations

import threading
from pathlib import Path

from simguard.store import SqliteStore, open_store
from workers.store_gauges import StoreCounts, store_counts


def _open(path: Path) -> SqliteStore:
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqliteStore)
    return store


def test_store_counts_give_flagged_cases_and_pending_unregistered_deadlines(
    tmp_path: Path,
) -> None:
    store = _open(tmp_path / "store.db")
    try:
        with store.transaction() as tx:
            tx.executemany(
                "INSERT INTO sims (imsi, shard, case_status, state) VALUES (?, 0, ?, '{}')",
                [("1", "flagged"), ("2", "cleared"), ("3", None), ("4", "flagged")],
            )
            tx.executemany(
                "INSERT INTO deadlines (imsi, kind, ref, shard, due_at) VALUES (?, ?, '', 0, 'z')",
                [("1", "unregistered"), ("2", "unregistered"), ("3", "reason_expiry")],
            )
        assert store_counts(store) == StoreCounts(
            flagged_cases=2, pending_activations=2, pending_notices={}
        )
    finally:
        store.close()


def test_store_counts_are_read_while_another_process_holds_the_writer_slot(
    tmp_path: Path,
) -> None:
    writer = _open(tmp_path / "store.db")
    counted: list[StoreCounts] = []

    def count_in_another_connection() -> None:
        reader = open_store(f"sqlite:///{tmp_path / 'store.db'}", migrate=False)
        try:
            counted.append(store_counts(reader))
        finally:
            reader.close()

    try:
        with writer.transaction() as tx:
            tx.execute(
                "INSERT INTO sims (imsi, shard, case_status, state) "
                "VALUES ('1', 0, 'flagged', '{}')"
            )
            counting = threading.Thread(target=count_in_another_connection)
            counting.start()
            counting.join(timeout=10)
            assert not counting.is_alive()
        # The writer's uncommitted row is not counted: the read saw the last commit.
        assert counted == [StoreCounts(flagged_cases=0, pending_activations=0, pending_notices={})]
    finally:
        writer.close()
