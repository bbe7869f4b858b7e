"""POST, GET and DELETE /v1/allow-list: a regulator's key keeps the list, an
operator's may not, a holder is stored by its holder_ref only, and each change
sends its SIMs a recheck. The app on the session broker and a real store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from factories import imsi
from flask.testing import FlaskClient
from kafka_helpers import MakeSettings, read_all
from werkzeug.test import TestResponse
from worker_helpers import settings_env

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key, issue_regulator_key
from simguard.cli import main
from simguard.settings import Settings
from simguard.store import Store, open_store

SIM = imsi("52003", 5151)
IN_A_MONTH = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
HOLDER = {"id_type": "passport", "id_number": "AB 123-4567", "nationality": "KH"}


@dataclass
class AllowListApi:
    client: FlaskClient
    store: Store
    settings: Settings
    regulator_key: str
    operator_key: str

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {key or self.regulator_key}"}
        return self.client.open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def api(make_settings: MakeSettings) -> Iterator[AllowListApi]:
    settings = make_settings()
    app = create_app(settings)
    store = open_store(settings.database_url)
    _, regulator_key = issue_regulator_key(store, "nbtc")
    _, operator_key = issue_key(store, "52003")
    yield AllowListApi(app.test_client(), store, settings, regulator_key, operator_key)
    app.extensions[EXTENSION_KEY].close()
    store.close()


def entry(**overrides: Any) -> dict[str, Any]:
    return {"imsi": SIM, "expires_at": IN_A_MONTH, "note": "A diplomat's SIM."} | overrides


def test_an_entry_for_an_imsi_is_stored_and_its_sim_sent_a_recheck(api: AllowListApi) -> None:
    response = api.call("POST", "/v1/allow-list", json=entry(codes=["HIGH_RISK_ROAMING"]))

    assert response.status_code == 201
    assert response.get_json()["rechecked"] == 1
    (sent,) = read_all(api.settings, api.settings.topic_rechecks, min_count=1)
    assert (sent.key, orjson.loads(sent.value)["check"]) == (SIM, "allow_list")
    listed = api.call("GET", "/v1/allow-list").get_json()["entries"]
    assert [(e["value"], e["codes"]) for e in listed] == [(SIM, ["HIGH_RISK_ROAMING"])]


def test_a_holder_is_stored_by_its_holder_ref_and_never_its_number(api: AllowListApi) -> None:
    body = {k: v for k, v in entry().items() if k != "imsi"} | {"holder": HOLDER}
    response = api.call("POST", "/v1/allow-list", json=body)

    assert response.status_code == 201
    stored = response.get_json()
    assert stored["kind"] == "holder" and len(stored["value"]) == 64
    with api.store.reading() as tx:
        rows = tx.fetchall("SELECT value, note FROM allow_list")
    assert "1234567" not in repr(rows)


def test_a_removed_entry_is_gone_and_cannot_be_removed_twice(api: AllowListApi) -> None:
    added = api.call("POST", "/v1/allow-list", json=entry()).get_json()

    first = api.call("DELETE", f"/v1/allow-list/{added['entry_id']}")
    second = api.call("DELETE", f"/v1/allow-list/{added['entry_id']}")

    assert (first.status_code, second.status_code) == (204, 404)
    assert api.call("GET", "/v1/allow-list").get_json()["entries"] == []


def test_an_operators_key_may_not_use_the_allow_list(api: AllowListApi) -> None:
    response = api.call("POST", "/v1/allow-list", key=api.operator_key, json=entry())

    assert response.status_code == 403
    assert api.call("GET", "/v1/allow-list", key=api.operator_key).status_code == 403


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (entry(expires_at="2020-01-01T00:00:00Z"), "/expires_at"),
        ({"expires_at": IN_A_MONTH, "note": "n"}, "/imsi"),
        (entry(codes=["NOT_A_CODE"]), "/codes/0"),
        (entry(note=""), "/note"),
    ],
    ids=["past-expiry", "names-nothing", "bad-code", "empty-note"],
)
def test_an_invalid_entry_is_unprocessable_naming_the_field(
    api: AllowListApi, body: dict[str, Any], pointer: str
) -> None:
    response = api.call("POST", "/v1/allow-list", json=body)

    assert response.status_code == 422
    assert pointer in [e["pointer"] for e in response.get_json()["errors"]]


def _load(settings: Settings, path: Path) -> Any:
    env = settings_env(settings)
    return CliRunner().invoke(main, ["allow-list", "load", str(path)], env=env)


def test_a_file_loads_imsi_and_holder_entries_and_rechecks_their_sims(
    api: AllowListApi, tmp_path: Path
) -> None:
    listing = tmp_path / "allow.csv"
    listing.write_text(
        "imsi,id_type,id_number,nationality,codes,expires_at,note\n"
        f"{SIM},,,,HIGH_RISK_ROAMING;BORDER_CELL_DWELL,{IN_A_MONTH},border trader\n"
        f",passport,AB1234567,KH,,{IN_A_MONTH},diplomat\n"
    )

    result = _load(api.settings, listing)

    assert result.exit_code == 0, result.output
    listed = api.call("GET", "/v1/allow-list").get_json()["entries"]
    assert sorted(e["kind"] for e in listed) == ["holder", "imsi"]
    assert [r.key for r in read_all(api.settings, api.settings.topic_rechecks, min_count=1)] == [
        SIM
    ]


def test_a_file_with_a_bad_row_stores_nothing(api: AllowListApi, tmp_path: Path) -> None:
    listing = tmp_path / "allow.csv"
    listing.write_text(
        "imsi,id_type,id_number,nationality,codes,expires_at,note\n"
        f"{SIM},,,,,{IN_A_MONTH},fine\n"
        f"{SIM},,,,NOT_A_CODE,{IN_A_MONTH},bad\n"
    )

    result = _load(api.settings, listing)

    assert result.exit_code != 0 and "row 3" in result.output
    assert api.call("GET", "/v1/allow-list").get_json()["entries"] == []
