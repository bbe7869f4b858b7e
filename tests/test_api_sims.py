"""GET /v1/sims/{imsi}: an operator reads its own SIMs' registration status and
case from the registry store, and nothing personal comes back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from factories import MSISDN, holder_ref, iccid, imsi
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from werkzeug.test import TestResponse

from schemas.case_record import record_id_for
from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key, issue_regulator_key
from simguard.store import Store, open_store

SIM = imsi("52003", 4242)
HOLDER_REF = holder_ref(4242)
ICCID = iccid(4242)


@dataclass
class SimsApi:
    client: FlaskClient
    store: Store
    key: str

    def get(self, sim: str, key: str | None = None) -> TestResponse:
        return self.client.get(
            f"/v1/sims/{sim}", headers={"Authorization": f"Bearer {key or self.key}"}
        )


@pytest.fixture
def api(make_settings: Any) -> Iterator[SimsApi]:
    settings = make_settings()
    app = create_app(settings)
    store = open_store(settings.database_url)
    _, key = issue_key(store, "52003")
    yield SimsApi(app.test_client(), store, key)
    app.extensions[EXTENSION_KEY].close()


def insert_registration(store: Store, sim: str, status: str = "active") -> None:
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
            "holder_nationality, verification, status, registered_at, holder_since, "
            "holder_since_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sim,
                "0b7d6c1e-4a4e-4c1e-9a55-2f1f4f5e6a7b",
                "52003",
                ICCID,
                MSISDN,
                HOLDER_REF,
                "TH",
                "biometric",
                status,
                "2026-11-02T03:00:00.000000Z",
                "2026-11-02T03:00:00.000000Z",
                "0b7d6c1e-4a4e-4c1e-9a55-2f1f4f5e6a7b",
            ),
        )


def case_record(sim: str) -> dict[str, Any]:
    return {
        "record_id": record_id_for(sim, 2),
        "imsi": sim,
        "iccid": ICCID,
        "msisdn": MSISDN,
        "operator": "52003",
        "status": "flagged",
        "version": 2,
        "risk_score": 40,
        "reasons": [
            {"code": "UNREGISTERED", "since": "2026-11-02T03:15:00Z", "evidence": {"grace": 900}}
        ],
        "first_flagged_at": "2026-11-02T03:15:00Z",
        "updated_at": "2026-11-02T03:15:00Z",
        "rules_version": "th-2026.11.1",
    }


def insert_sim_state(store: Store, sim: str, state: dict[str, Any]) -> None:
    """A `sims` row as the worker writes it: the state, and the case record
    (with its status) in columns of their own."""
    case = state.get("case")
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO sims (imsi, shard, case_status, case_record, state) "
            "VALUES (?, 0, ?, ?, ?)",
            (
                sim,
                case["status"] if case else None,
                orjson.dumps(case).decode() if case else None,
                orjson.dumps(state).decode(),
            ),
        )


def test_an_unknown_sim_is_not_found(api: SimsApi) -> None:
    response = api.get(SIM)

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "NOT_FOUND"


def test_a_registered_sim_shows_its_registration_status_without_personal_data(
    api: SimsApi,
) -> None:
    insert_registration(api.store, SIM, status="suspended")

    response = api.get(SIM)

    assert response.status_code == 200
    assert response.get_json() == {
        "imsi": SIM,
        "registration": {
            "status": "suspended",
            "verification": "biometric",
            "operator": "52003",
            "registered_at": "2026-11-02T03:00:00.000000Z",
        },
        "case": None,
    }
    text = response.get_data(as_text=True)
    for personal in (HOLDER_REF, MSISDN, ICCID):
        assert personal not in text


def test_a_flagged_sim_shows_its_current_case_without_subscriber_identifiers(
    api: SimsApi,
) -> None:
    insert_registration(api.store, SIM)
    insert_sim_state(api.store, SIM, {"imsi": SIM, "case": case_record(SIM)})

    response = api.get(SIM)

    assert response.status_code == 200
    case = response.get_json()["case"]
    assert case["status"] == "flagged"
    assert case["version"] == 2
    assert case["record_id"] == record_id_for(SIM, 2)
    assert [reason["code"] for reason in case["reasons"]] == ["UNREGISTERED"]
    assert "msisdn" not in case
    assert "iccid" not in case
    assert MSISDN not in response.get_data(as_text=True)


def test_a_case_without_a_registration_is_still_shown(api: SimsApi) -> None:
    insert_sim_state(api.store, SIM, {"imsi": SIM, "case": case_record(SIM)})

    response = api.get(SIM)

    assert response.status_code == 200
    assert response.get_json()["registration"] is None


def test_a_sim_the_workers_know_but_never_flagged_nor_registered_is_not_found(
    api: SimsApi,
) -> None:
    insert_sim_state(api.store, SIM, {"imsi": SIM, "case": None})

    assert api.get(SIM).status_code == 404


def test_another_operators_sim_is_forbidden(api: SimsApi) -> None:
    other = imsi("52001", 1)
    insert_registration(api.store, other)

    response = api.get(other)

    assert response.status_code == 403
    assert response.get_json()["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("sim", ["52003123", "5200312345678901", "52003abcdefghij"])
def test_a_path_that_is_not_an_imsi_is_refused(api: SimsApi, sim: str) -> None:
    response = api.get(sim)

    assert response.status_code == 422
    assert [error["pointer"] for error in response.get_json()["errors"]] == ["/imsi"]


def test_reading_a_sim_needs_a_key(api: SimsApi) -> None:
    insert_registration(api.store, SIM)

    response = api.client.get(f"/v1/sims/{SIM}")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("with_case", [False, True], ids=["registration only", "with case"])
def test_the_answer_matches_the_documented_schema(api: SimsApi, with_case: bool) -> None:
    insert_registration(api.store, SIM)
    if with_case:
        insert_sim_state(api.store, SIM, {"imsi": SIM, "case": case_record(SIM)})
    components = api.client.get("/openapi.json").get_json()["components"]
    schema = {"$ref": "#/components/schemas/SimStatus", "components": components}

    body = api.get(SIM).get_json()

    OAS31Validator(schema).validate(body)


def over_limit_case(sim: str) -> dict[str, Any]:
    evidence = {
        "holder_ref": HOLDER_REF,
        "active_registrations": 7,
        "limit": 5,
        "position": 6,
        "registered_to_holder_since": "2026-11-02T03:00:00Z",
    }
    reason = {"code": "IDENTITY_OVER_LIMIT", "since": "2026-11-02T03:00:00Z", "evidence": evidence}
    return case_record(sim) | {"reasons": [reason]}


def test_an_operator_sees_only_the_allowed_evidence_never_the_holder_or_cross_operator_counts(
    api: SimsApi,
) -> None:
    insert_sim_state(api.store, SIM, {"imsi": SIM, "case": over_limit_case(SIM)})

    response = api.get(SIM)

    (reason,) = response.get_json()["case"]["reasons"]
    assert reason["evidence"] == {"limit": 5, "registered_to_holder_since": "2026-11-02T03:00:00Z"}
    assert HOLDER_REF not in response.get_data(as_text=True)


def test_a_regulator_reads_any_operators_sim_with_the_evidence_in_full(api: SimsApi) -> None:
    other = imsi("52001", 1)
    insert_sim_state(api.store, other, {"imsi": other, "case": over_limit_case(other)})
    _, regulator = issue_regulator_key(api.store, "nbtc")

    response = api.get(other, key=regulator)

    assert response.status_code == 200
    (reason,) = response.get_json()["case"]["reasons"]
    assert reason["evidence"]["holder_ref"] == HOLDER_REF
    assert reason["evidence"]["active_registrations"] == 7


def test_a_regulators_key_sends_no_events(api: SimsApi) -> None:
    _, regulator = issue_regulator_key(api.store, "nbtc")

    response = api.client.post(
        "/v1/activations", json={"events": []}, headers={"Authorization": f"Bearer {regulator}"}
    )

    assert response.status_code == 403
    assert response.get_json()["code"] == "PERMISSION_DENIED"
