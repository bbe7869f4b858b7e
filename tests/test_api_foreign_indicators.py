"""GET /v1/foreign-indicators: partners' flagged indicators about their own
SIMs, from a real store, for a regulator's key only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from kafka_helpers import MakeSettings

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key, issue_regulator_key
from simguard.store import foreign_indicators as foreign_rows
from simguard.store import open_store

PROBLEM = "application/problem+json"


def row(partner: str, subject: str, status: str = "flagged", **changes: Any) -> dict[str, Any]:
    return {
        "partner": partner,
        "subject": subject,
        "subject_type": "imsi",
        "status": status,
        "reasons": "HIGH_RISK_ROAMING,IMPOSSIBLE_TRAVEL",
        "risk": 75,
        "since": "2026-12-05T01:00:00Z",
        "case_version": 3,
        "updated_at": "2026-12-05T02:00:00Z",
        "received_at": "2026-12-05T02:00:05Z",
        **changes,
    }


@pytest.fixture
def client(make_settings: MakeSettings) -> Iterator[tuple[FlaskClient, str, str]]:
    settings = make_settings()
    store = open_store(settings.database_url)
    with store.transaction() as tx:
        foreign_rows.put(tx, row("KH", "456060000000001"))
        foreign_rows.put(tx, row("KH", "456060000000002", status="withdrawn", reasons=""))
        foreign_rows.put(tx, row("PH", "515020000000003", updated_at="2026-12-06T00:00:00Z"))
    _, regulator = issue_regulator_key(store, "nbtc")
    _, operator = issue_key(store, "52003")
    app = create_app(settings)
    yield app.test_client(), regulator, operator
    app.extensions[EXTENSION_KEY].close()
    store.close()


def get(client: FlaskClient, key: str, query: str = "") -> Any:
    return client.get(f"/v1/foreign-indicators{query}", headers={"Authorization": f"Bearer {key}"})


def test_a_regulator_sees_each_partners_flagged_subjects_with_their_reasons(
    client: tuple[FlaskClient, str, str],
) -> None:
    test_client, regulator, _ = client
    answer = get(test_client, regulator)
    assert answer.status_code == 200
    listed = answer.get_json()["indicators"]
    assert [(i["partner"], i["subject"]) for i in listed] == [
        ("KH", "456060000000001"),
        ("PH", "515020000000003"),
    ]
    assert listed[0]["reasons"] == ["HIGH_RISK_ROAMING", "IMPOSSIBLE_TRAVEL"]


def test_one_partners_indicators_are_asked_for_by_its_country(
    client: tuple[FlaskClient, str, str],
) -> None:
    test_client, regulator, _ = client
    listed = get(test_client, regulator, "?partner=PH").get_json()["indicators"]
    assert [i["subject"] for i in listed] == ["515020000000003"]


def test_an_operators_key_is_refused(client: tuple[FlaskClient, str, str]) -> None:
    test_client, _, operator = client
    answer = get(test_client, operator)
    assert answer.status_code == 403
    assert answer.mimetype == PROBLEM


@pytest.mark.parametrize("query", ["?partner=kh", "?limit=0", "?limit=1001", "?colour=red"])
def test_a_query_this_route_does_not_take_is_refused(
    client: tuple[FlaskClient, str, str], query: str
) -> None:
    test_client, regulator, _ = client
    answer = get(test_client, regulator, query)
    assert answer.status_code == 422
    assert answer.mimetype == PROBLEM
