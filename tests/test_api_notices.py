"""GET /v1/notices: an operator's key pages through its own notices with a
cursor, sees no other operator's, and a bad cursor is refused. The app on a
real SQLite store holding notices as the worker writes them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from factories import imsi
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from schemas.notice import NoticeSchema
from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key, issue_regulator_key
from simguard.store import Store, open_store
from simguard.store import notices as notice_rows
from workers.notices import notice_id_for


@dataclass
class NoticesApi:
    client: FlaskClient
    store: Store
    keys: dict[str, str]

    def page(self, who: str, **query: Any) -> TestResponse:
        return self.client.get(
            "/v1/notices", query_string=query, headers={"Authorization": f"Bearer {self.keys[who]}"}
        )


@pytest.fixture
def api(make_settings: Any) -> Iterator[NoticesApi]:
    settings = make_settings()
    app = create_app(settings)
    store = open_store(settings.database_url)
    keys = {
        "52003": issue_key(store, "52003")[1],
        "52001": issue_key(store, "52001")[1],
        "regulator": issue_regulator_key(store, "nbtc")[1],
    }
    yield NoticesApi(app.test_client(), store, keys)
    app.extensions[EXTENSION_KEY].close()
    store.close()


def write_notice(store: Store, operator: str, seed: int, status: str = "open") -> dict[str, Any]:
    sim = imsi(operator, seed)
    notice = {
        "notice_id": notice_id_for(sim, 1),
        "imsi": sim,
        "operator": operator,
        "action": "reverify",
        "reasons": ["UNREGISTERED"],
        "case_version": 1,
        "issued_at": "2026-11-02T04:15:01.000000Z",
        "deadline": "2026-11-03T04:15:01.000000Z",
        "status": status,
        "notice_version": 1 if status == "open" else 2,
        "updated_at": "2026-11-02T04:15:01.000000Z",
        "actioned_at": None,
        "closed_by": None,
        "on_time": None,
    }
    value = orjson.dumps(notice).decode()
    with store.transaction() as tx:
        notice_rows.record(
            tx,
            [(sim, operator, status, notice["deadline"], value)],
            [
                (
                    notice["notice_id"],
                    notice["notice_version"],
                    sim,
                    operator,
                    status,
                    notice["issued_at"],
                    value,
                )
            ],
        )
    return notice


def test_an_operator_pages_through_its_own_notices_with_the_cursor(api: NoticesApi) -> None:
    written = [write_notice(api.store, "52003", seed) for seed in (1, 2, 3)]

    first = api.page("52003", limit=2).get_json()
    second = api.page("52003", after=first["next"], limit=2).get_json()
    third = api.page("52003", after=second["next"]).get_json()

    assert [n["imsi"] for n in first["notices"] + second["notices"]] == [n["imsi"] for n in written]
    assert third == {"notices": [], "next": second["next"]}
    for notice in first["notices"]:
        NoticeSchema().load(notice)


def test_an_operator_sees_no_other_operators_notice(api: NoticesApi) -> None:
    write_notice(api.store, "52001", 7)

    assert api.page("52003").get_json()["notices"] == []
    assert len(api.page("52001").get_json()["notices"]) == 1


def test_a_regulator_sees_every_operators_notices(api: NoticesApi) -> None:
    write_notice(api.store, "52001", 8)
    write_notice(api.store, "52003", 9)

    notices = api.page("regulator").get_json()["notices"]

    assert sorted(n["operator"] for n in notices) == ["52001", "52003"]


@pytest.mark.parametrize(
    ("query", "pointer"), [({"after": "abc"}, "/after"), ({"limit": "0"}, "/limit")]
)
def test_a_bad_cursor_or_limit_is_unprocessable(
    api: NoticesApi, query: dict[str, str], pointer: str
) -> None:
    response = api.page("52003", **query)

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == [pointer]


def test_notices_need_a_key(api: NoticesApi) -> None:
    assert api.client.get("/v1/notices").status_code == 401


def test_an_unknown_query_parameter_is_unprocessable(api: NoticesApi) -> None:
    response = api.page("52003", since="yesterday")

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/since"]
