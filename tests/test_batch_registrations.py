"""One batch's registrations read and write the registration tables through
the batch's own view of them (workers/batch_unit.py): what a batch of many
registrations decides is what the same events decide one batch each. On a
real SQLite file and a real PostgreSQL database, without a broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
from test_batch_processor import OPERATOR, apply, signed

from simguard.settings import Settings, load_settings
from simguard.store import Store, open_store
from workers.records import RecordInMemory

HOLDER = factories.holder_ref(41)
OTHER_HOLDER = factories.holder_ref(42)
LIMIT = 5


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "simguard-test.toml"
    config.write_text("")
    return load_settings(environ={"SIMGUARD_CONFIG": str(config)}).replace(
        operator_signing_secret="batch-registrations-operator-signing-secret"
    )


def _open(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> Store:
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path}/{name}.db")
    return open_store(request.getfixturevalue("postgres_database"))


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two empty stores of one backend: one for a whole batch, one for a batch an event."""
    opened = (_open(request, tmp_path, "one-batch"), _open(request, tmp_path, "many-batches"))
    yield opened
    for store in opened:
        store.close()


def registration(
    settings: Settings, seed: int, holder: str, minute: int, status: str = "active"
) -> RecordInMemory:
    at = datetime(2026, 11, 2, 3, 0, tzinfo=UTC) + timedelta(minutes=minute)
    event = factories.valid_registration_wire(
        operator=OPERATOR,
        imsi=factories.imsi(OPERATOR, seed),
        iccid=factories.iccid(seed),
        holder_ref=holder,
        registered_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        status=status,
    )
    return signed(settings, settings.topic_registrations, event, offset=minute)


def flagged(store: Store) -> dict[str, list[str]]:
    with store.reading() as tx:
        rows = tx.fetchall("SELECT imsi, case_record FROM sims WHERE case_status = 'flagged'")
    return {
        imsi: sorted(reason["code"] for reason in orjson.loads(record)["reasons"])
        for imsi, record in rows
    }


def registrations(store: Store) -> list[tuple[Any, ...]]:
    with store.reading() as tx:
        return tx.fetchall(
            "SELECT imsi, holder_ref, status, holder_since, revoked_since FROM registrations "
            "ORDER BY imsi"
        )


def rechecked(store: Store, settings: Settings) -> list[str]:
    with store.reading() as tx:
        rows = tx.fetchall("SELECT msg_key FROM outbox WHERE topic = ? ORDER BY msg_key", (
            settings.topic_rechecks,
        ))  # fmt: skip
    # The outbox keeps a record's key behind its partition.
    return [key.rsplit("|", 1)[-1] for (key,) in rows]


def test_a_holders_sims_registered_in_one_batch_are_ranked_as_one_batch_each_ranks_them(
    stores: tuple[Store, Store], settings: Settings
) -> None:
    one_batch, many_batches = stores
    events = [registration(settings, seed, HOLDER, minute=seed) for seed in range(1, LIMIT + 3)]

    apply(one_batch, settings, events)
    for event in events:
        apply(many_batches, settings, [event])

    over = {factories.imsi(OPERATOR, seed) for seed in (LIMIT + 1, LIMIT + 2)}
    assert set(flagged(one_batch)) == over
    assert flagged(one_batch) == flagged(many_batches)
    assert registrations(one_batch) == registrations(many_batches)


def test_a_sim_leaving_its_holder_later_in_the_batch_has_the_sim_it_let_in_rechecked(
    stores: tuple[Store, Store], settings: Settings
) -> None:
    one_batch, _ = stores
    events = [registration(settings, seed, HOLDER, minute=seed) for seed in range(1, LIMIT + 2)]
    moved = registration(settings, 1, OTHER_HOLDER, minute=30)

    apply(one_batch, settings, [*events, moved])

    # The sixth was over the limit when it was applied; the first's move lets it in.
    assert rechecked(one_batch, settings) == [factories.imsi(OPERATOR, LIMIT + 1)]
    assert registrations(one_batch)[0][1] == OTHER_HOLDER


def test_a_late_older_revocation_in_the_batch_of_a_newer_one_moves_the_revoked_since(
    stores: tuple[Store, Store], settings: Settings
) -> None:
    one_batch, many_batches = stores
    first = registration(settings, 1, HOLDER, minute=0)
    newer = registration(settings, 1, HOLDER, minute=20, status="suspended")
    older = registration(settings, 1, HOLDER, minute=10, status="suspended")
    for store in stores:
        apply(store, settings, [first])

    apply(one_batch, settings, [newer, older])
    apply(many_batches, settings, [newer])
    apply(many_batches, settings, [older])

    assert registrations(one_batch)[0][2:] == ("suspended", "2026-11-02T03:00:00.000000Z",
        "2026-11-02T03:10:00.000000Z")  # fmt: skip
    assert registrations(one_batch) == registrations(many_batches)
