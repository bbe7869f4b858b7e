"""POST and GET /v1/cases/{imsi}/decisions: who may decide, what is refused
and why, and what the API publishes for the SIM's worker. The app on the
session broker and a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from factories import imsi, valid_case_record
from flask.testing import FlaskClient
from kafka_helpers import MakeSettings, read_all
from test_api_sims import insert_registration, insert_sim_state
from werkzeug.test import TestResponse

from schemas import attestation
from schemas.case_decision import CaseDecisionSchema
from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key, issue_regulator_key
from simguard.settings import Settings
from simguard.store import Store, open_store

SIM = imsi("52003", 4343)
IN_A_MONTH = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CasesApi:
    client: FlaskClient
    store: Store
    settings: Settings
    regulator_key: str
    regulator_key_id: str
    operator_key: str

    def decide(self, body: Any, key: str | None = None, sim: str = SIM) -> TestResponse:
        return self.client.post(
            f"/v1/cases/{sim}/decisions",
            json=body,
            headers={"Authorization": f"Bearer {key or self.regulator_key}"},
        )

    def decisions(self, key: str | None = None) -> TestResponse:
        return self.client.get(
            f"/v1/cases/{SIM}/decisions",
            headers={"Authorization": f"Bearer {key or self.regulator_key}"},
        )


@pytest.fixture
def api(make_settings: MakeSettings) -> Iterator[CasesApi]:
    settings = make_settings()
    app = create_app(settings)
    store = open_store(settings.database_url)
    key_id, regulator_key = issue_regulator_key(store, "nbtc")
    _, operator_key = issue_key(store, "52003")
    yield CasesApi(app.test_client(), store, settings, regulator_key, key_id, operator_key)
    app.extensions[EXTENSION_KEY].close()
    store.close()


def flagged_case(api: CasesApi, version: int = 1) -> dict[str, Any]:
    case = valid_case_record(imsi=SIM, version=version)
    insert_sim_state(api.store, SIM, {"case": case})
    return case


def dismissal(**overrides: Any) -> dict[str, Any]:
    return {
        "action": "dismiss",
        "case_version": 1,
        "reason": "Verified in person: a border trader.",
        "expires_at": IN_A_MONTH,
    } | overrides


def test_a_dismissal_is_published_signed_and_keyed_by_imsi_for_the_sims_worker(
    api: CasesApi,
) -> None:
    flagged_case(api)

    response = api.decide(dismissal())

    assert response.status_code == 202
    answer = response.get_json()
    (record,) = read_all(api.settings, api.settings.topic_decisions, min_count=1)
    assert record.key == SIM
    assert attestation.verify(
        api.settings.attestation_secret, record.value, dict(record.headers)[attestation.HEADER]
    )
    published = CaseDecisionSchema().load(orjson.loads(record.value))
    assert published["decision_id"] == answer["decision_id"]
    assert published["codes"] == ["UNREGISTERED"]
    assert published["decided_by"] == api.regulator_key_id


def test_an_operators_key_may_not_take_a_decision(api: CasesApi) -> None:
    flagged_case(api)

    response = api.decide(dismissal(), key=api.operator_key)

    assert response.status_code == 403
    assert response.get_json()["code"] == "PERMISSION_DENIED"


def test_an_operators_key_may_not_read_the_decisions(api: CasesApi) -> None:
    response = api.decisions(key=api.operator_key)

    assert response.status_code == 403


def test_a_decision_for_an_unknown_sim_is_not_found(api: CasesApi) -> None:
    response = api.decide(dismissal())

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_a_decision_on_a_stale_case_version_is_a_conflict_naming_the_field(
    api: CasesApi,
) -> None:
    flagged_case(api, version=2)

    response = api.decide(dismissal(case_version=1))

    assert response.status_code == 409
    problem = response.get_json()
    assert problem["code"] == "CONFLICT"
    assert [e["pointer"] for e in problem["errors"]] == ["/case_version"]


def test_a_decision_for_a_registered_sim_never_flagged_is_a_conflict(api: CasesApi) -> None:
    insert_registration(api.store, SIM)

    response = api.decide({"action": "confirm", "case_version": 1})

    assert response.status_code == 409


def test_dismissing_a_reason_the_case_does_not_hold_is_a_conflict(api: CasesApi) -> None:
    flagged_case(api)

    response = api.decide(dismissal(codes=["HIGH_RISK_ROAMING"]))

    assert response.status_code == 409
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/codes"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (dismissal(expires_at=None) | {"expires_at": "2020-01-01T00:00:00Z"}, "/expires_at"),
        ({k: v for k, v in dismissal().items() if k != "expires_at"}, "/expires_at"),
        ({k: v for k, v in dismissal().items() if k != "reason"}, "/reason"),
        (dismissal(action="suspend"), "/action"),
        (dismissal(case_version="1"), "/case_version"),
        ({"action": "confirm", "case_version": 1, "codes": ["UNREGISTERED"]}, "/codes"),
    ],
    ids=["expiry-past", "no-expiry", "no-reason", "bad-action", "version-text", "confirm-codes"],
)
def test_an_invalid_decision_is_unprocessable_naming_the_field(
    api: CasesApi, body: dict[str, Any], pointer: str
) -> None:
    flagged_case(api)

    response = api.decide(body)

    assert response.status_code == 422
    assert pointer in [e["pointer"] for e in response.get_json()["errors"]]


def test_a_decision_that_is_not_a_json_object_is_a_bad_request(api: CasesApi) -> None:
    flagged_case(api)

    response = api.decide([dismissal()])

    assert response.status_code == 400


def test_the_audit_lists_the_decisions_the_worker_recorded(api: CasesApi) -> None:
    with api.store.transaction() as tx:
        tx.execute(
            "INSERT INTO case_decisions (decision_id, imsi, action, case_version, reason, codes, "
            "expires_at, decided_by, decided_at, outcome, applied_at, resulting_version, "
            "content_hash) VALUES (?, ?, 'dismiss', 1, 'trader', 'UNREGISTERED', ?, 'k1', ?, "
            "'applied', ?, 2, 'ab')",
            (
                "6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4",
                SIM,
                "2026-12-02T00:00:00.000000Z",
                "2026-11-02T04:20:00.000000Z",
                "2026-11-02T04:20:01.000000Z",
            ),
        )

    response = api.decisions()

    assert response.status_code == 200
    (entry,) = response.get_json()["decisions"]
    assert (entry["codes"], entry["outcome"], entry["resulting_version"]) == (
        ["UNREGISTERED"],
        "applied",
        2,
    )


def test_an_operator_reading_its_sim_sees_no_decision(api: CasesApi) -> None:
    case = valid_case_record(
        imsi=SIM,
        decision={
            "decision_id": "6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4",
            "action": "confirm",
            "case_version": 1,
            "reason": "Seen by an investigator.",
            "codes": [],
            "expires_at": None,
            "decided_by": "k1",
            "decided_at": "2026-11-02T04:20:00Z",
        },
    )
    insert_sim_state(api.store, SIM, {"case": case})
    headers = {"Authorization": f"Bearer {api.operator_key}"}

    as_operator = api.client.get(f"/v1/sims/{SIM}", headers=headers).get_json()
    headers = {"Authorization": f"Bearer {api.regulator_key}"}
    as_regulator = api.client.get(f"/v1/sims/{SIM}", headers=headers).get_json()

    assert as_operator["case"]["decision"] is None
    assert as_regulator["case"]["decision"]["action"] == "confirm"
