"""The fault tests' count of applications sees an event applied twice, which
the ledger's own row count cannot."""

from __future__ import annotations

import pytest
from application_counter import applications, count_applications
from kafka_helpers import MakeSettings

from simguard.settings import Settings
from simguard.store import ledger, open_store

DAY = ledger.day_of("2026-12-01T00:00:00Z")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, make_settings: MakeSettings) -> Settings:
    if request.param == "postgresql":
        return make_settings(database_url=request.getfixturevalue("postgres_database"))
    return make_settings()


def _apply(settings: Settings, event_id: str) -> None:
    store = open_store(settings.database_url, migrate=False)
    try:
        with store.transaction() as tx:
            ledger.record_applied(tx, {event_id: bytes(8)}, DAY)
    finally:
        store.close()


def test_an_event_applied_again_after_its_ledger_row_was_pruned_counts_twice(
    settings: Settings,
) -> None:
    count_applications(settings)
    _apply(settings, "e-1")
    store = open_store(settings.database_url, migrate=False)
    with store.transaction() as tx:
        ledger.prune_before(tx, DAY + 1, limit=100, after=b"")
    store.close()
    _apply(settings, "e-1")
    assert applications(settings) == (2, 1)


def test_an_application_rolled_back_is_not_counted(settings: Settings) -> None:
    count_applications(settings)
    store = open_store(settings.database_url, migrate=False)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        ledger.record_applied(tx, {"e-2": bytes(8)}, DAY)
        raise RuntimeError("the batch failed before its commit")
    store.close()
    assert applications(settings) == (0, 0)
