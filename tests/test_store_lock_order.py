"""Named locks on PostgreSQL: `lock_all` takes them in one order, so workers
whose batches share holders cannot deadlock; a deadlock the server breaks
reaches the caller as StoreConflict, the signal to run the transaction again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from postgres_server import in_lock_key_order, someone_waits_for_an_advisory_lock
from worker_helpers import wait_for

from simguard.store import Store, StoreConflict, open_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(postgres_database: str) -> Iterator[Store]:
    opened = open_store(postgres_database)
    yield opened
    opened.close()


def test_lock_all_takes_names_in_one_order_whatever_order_they_come_in(
    store: Store, postgres_database: str
) -> None:
    first, second = in_lock_key_order(postgres_database, ["simguard.holder.a", "simguard.holder.b"])
    blocker_store = open_store(postgres_database, migrate=False)
    release = threading.Event()
    holding = threading.Event()

    def blocker() -> None:
        # Holds the first name, so both takers queue on it and then race for the second.
        with blocker_store.transaction() as tx:
            tx.lock(first)
            holding.set()
            release.wait(10)

    def taker(names: list[str]) -> str:
        own = open_store(postgres_database, migrate=False)
        try:
            with own.transaction() as tx:
                tx.lock_all(names)
                time.sleep(0.2)
            return "committed"
        finally:
            own.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        pool.submit(blocker)
        assert holding.wait(10)
        one: Future[str] = pool.submit(taker, [first, second])
        # Given the names the other way round: taken one by one in this order,
        # it would hold `second` while the first taker holds `first`.
        other: Future[str] = pool.submit(taker, [second, first])
        assert wait_for(
            lambda: someone_waits_for_an_advisory_lock(postgres_database), timeout=10, interval=0.02
        )
        time.sleep(0.3)
        release.set()
        assert (one.result(timeout=20), other.result(timeout=20)) == ("committed", "committed")
    blocker_store.close()


def test_a_deadlock_reaches_the_caller_as_a_store_conflict(postgres_database: str) -> None:
    names = ["simguard.holder.x", "simguard.holder.y"]
    both_hold_one = threading.Barrier(2, timeout=10)

    def crossing(order: list[str]) -> str:
        own = open_store(postgres_database, migrate=False)
        try:
            with own.transaction() as tx:
                tx.lock(order[0])
                both_hold_one.wait()
                tx.lock(order[1])
            return "committed"
        except StoreConflict:
            return "conflict"
        finally:
            own.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(crossing, [names, names[::-1]]))
    assert sorted(results) == ["committed", "conflict"]
