"""A partner's indicators about its own SIMs through the batch processor, on a
real store: the latest case version per subject stays, whatever the order."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from simguard.settings import PartnerPolicy, Settings, load_settings
from simguard.store import Store, open_store
from simguard.store import foreign_indicators as foreign_rows
from workers.processor import BatchOutcome, BatchProcessor
from workers.records import RecordInMemory

CLOCK = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
SUBJECT = "456060000000007"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    empty = tmp_path / "simguard.toml"
    empty.write_text("")
    loaded = load_settings(environ={"SIMGUARD_CONFIG": str(empty)})
    partners = {"KH": PartnerPolicy(frozenset({"HIGH_RISK_ROAMING"}), 0, "imsi")}
    return loaded.replace(rules=dataclasses.replace(loaded.rules, partners=partners))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/simguard.db")
    yield opened
    opened.close()


def indicator(version: int, status: str = "flagged") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "subject_type": "imsi",
        "subject": SUBJECT,
        "home_country": "KH",
        "status": status,
        "reasons": ["HIGH_RISK_ROAMING"] if status == "flagged" else [],
        "risk": 30 if status == "flagged" else 0,
        "since": "2026-12-05T00:00:00Z" if status == "flagged" else None,
        "case_version": version,
        "updated_at": f"2026-12-06T0{version}:00:00Z",
    }


def apply(store: Store, settings: Settings, *indicators: dict[str, Any]) -> BatchOutcome:
    (topic,) = settings.foreign_indicator_topics()
    records = [
        RecordInMemory(topic, 0, offset, SUBJECT.encode(), orjson.dumps(value))
        for offset, value in enumerate(indicators)
    ]
    processor = BatchProcessor(settings)
    with store.transaction() as tx:
        return processor.apply_records(tx, processor.decode(records, CLOCK), CLOCK)


def kept(store: Store) -> list[dict[str, Any]]:
    with store.reading() as tx:
        return foreign_rows.flagged(tx, "KH", 10)


def test_a_later_case_version_replaces_the_kept_one_and_an_older_one_changes_nothing(
    store: Store, settings: Settings
) -> None:
    apply(store, settings, indicator(2))
    outcome = apply(store, settings, indicator(3), indicator(1))
    assert [row["case_version"] for row in kept(store)] == [3]
    assert sorted(result for (_, result) in outcome.outcomes.elements()) == [
        "applied",
        "duplicate",
    ]


def test_a_withdrawal_takes_the_subject_off_the_flagged_list(
    store: Store, settings: Settings
) -> None:
    apply(store, settings, indicator(2), indicator(3, status="withdrawn"))
    assert kept(store) == []


def test_a_malformed_indicator_goes_to_the_partners_dead_letters(
    store: Store, settings: Settings
) -> None:
    outcome = apply(store, settings, {**indicator(2), "risk": 101})
    assert outcome.dead_letters == {
        (next(iter(settings.foreign_indicator_topics())), "invalid_event"): 1
    }
    assert kept(store) == []
