"""A worker whose store transaction PostgreSQL undoes to break a deadlock runs
the batch again and applies it, instead of exiting: a real worker process, a
real broker and a real PostgreSQL server, with the deadlock made for real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factories
import psycopg
import pytest
from kafka_helpers import MakeSettings
from postgres_server import in_lock_key_order, someone_waits_for_an_advisory_lock
from worker_helpers import WorkerProcess, produce, wait_for

from simguard.settings import Settings
from workers.registry import holder_lock

pytestmark = pytest.mark.postgres

OPERATOR = "52003"
SEED = 1
IMSI = factories.imsi(OPERATOR, SEED)
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def registration(holder: int, minutes: int) -> dict[str, object]:
    return factories.valid_registration_wire(
        operator=OPERATOR,
        imsi=IMSI,
        iccid=factories.iccid(SEED),
        msisdn=factories.msisdn(SEED),
        registered_at=(START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        holder_ref=factories.holder_ref(holder),
    )


def current_holder(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT holder_ref FROM registrations WHERE imsi = %s", (IMSI,)
        ).fetchone()
    return None if row is None else str(row[0])


@pytest.fixture
def worker(
    make_settings: MakeSettings, postgres_database: str, tmp_path: Path
) -> Iterator[tuple[Settings, WorkerProcess]]:
    settings = make_settings(database_url=postgres_database)
    process = WorkerProcess(settings, "conflicts-1", tmp_path).start()
    process.wait_ready()
    yield settings, process
    process.stop_quietly()


def test_a_batch_undone_by_a_deadlock_is_run_again_and_applied(
    worker: tuple[Settings, WorkerProcess], postgres_database: str
) -> None:
    settings, process = worker
    first_holder, second_holder = factories.holder_ref(1), factories.holder_ref(2)
    produce(settings, settings.topic_registrations, [registration(holder=1, minutes=0)])
    assert wait_for(lambda: current_holder(postgres_database) == first_holder)

    # The move to the second holder needs both holders' locks; this session
    # takes them in the other order, one before and one after the worker.
    with psycopg.connect(postgres_database) as side:
        # The worker's wait is the one PostgreSQL's deadlock check finds first.
        side.execute("SET deadlock_timeout = '30s'")
        taken_first, taken_last = in_lock_key_order(
            postgres_database, [holder_lock(first_holder), holder_lock(second_holder)]
        )
        side.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (taken_last,))
        produce(settings, settings.topic_registrations, [registration(holder=2, minutes=1)])
        assert wait_for(lambda: someone_waits_for_an_advisory_lock(postgres_database), interval=0.1)
        # Blocks until PostgreSQL undoes the worker's transaction (1 s).
        side.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (taken_first,))
        side.commit()

    assert wait_for(lambda: current_holder(postgres_database) == second_holder)
    assert process.running()
    assert "store transaction undone by a conflict" in process.log_text()
