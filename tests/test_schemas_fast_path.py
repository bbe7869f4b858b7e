"""The fast event loader gives the request schemas' verdict and loaded values.

For every kind, single events and batches: the fast path accepts exactly what
marshmallow accepts and loads the same dict (same members, same order, same
values), so the API may skip the schema for what the fast path accepts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import (
    OMIT,
    OPERATOR,
    iccid,
    imei,
    imsi,
    msisdn,
    thai_national_id,
    valid_activation,
    valid_holder,
    valid_network_event,
    valid_registration_request,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from schemas.events import (
    EVENT_KINDS,
    ActivationSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    RegistrationSchema,
)
from schemas.fast_events import FastEventLoader
from service.payload import batch_schema

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MAX_EVENTS = 4
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> Any:
    """Valid nineteen times in twenty, so that whole events are often valid."""
    return st.integers(0, 19).flatmap(lambda n: invalid if n == 0 else valid)


def _time(offset: timedelta) -> str:
    return (NOW + offset).isoformat().replace("+00:00", "Z")


OPERATORS = st.sampled_from(["52003", "52001", "520015"])
TIMES = _mostly(
    st.sampled_from(
        [
            "2026-11-02T03:00:00Z",
            "2026-11-02T10:00:00.123456789+07:00",
            "2026-11-01t23:59:59.5-05:00",
            "2026-11-02T03:00:00.000001z",
            _time(timedelta(minutes=4, seconds=59)),
        ]
    ),
    st.sampled_from(
        [
            "2026-11-02T03:00:00",
            "2026-13-02T03:00:00Z",
            "2026-11-02T03:00:60Z",
            "2026-11-02T03:00:00+24:00",
            "2026-11-02T03:00:00+07:60",
            "0001-01-01T00:00:00+00:01",
            "2026-11-02 03:00:00Z",
            _time(timedelta(minutes=5, seconds=1)),
            "2099-01-01T00:00:00Z",
            1_700_000_000,
            None,
            OMIT,
        ]
    )
    | ANY_JSON,
)
EVENT_IDS = _mostly(
    st.uuids().map(str),
    st.sampled_from(
        [
            str(uuid.uuid4()).upper(),
            "{" + str(uuid.uuid4()) + "}",
            str(uuid.uuid4()).replace("-", ""),
            "",
            7,
            None,
            OMIT,
        ]
    ),
)
ICCIDS = _mostly(
    st.integers(0, 10**9).map(iccid),
    st.sampled_from(["89660300000000000010", "8966030000000000001", "1234", 89, None, OMIT]),
)
MSISDNS = _mostly(
    st.integers(0, 10**8 - 1).map(msisdn),
    st.sampled_from(
        ["+660812345678", "66812345678", "+85512345678", "+12025550123", "+66212345", "", None]
    )
    | st.just(OMIT),
)
CHOICE_NOISE = st.sampled_from(["", "Retail", "BIOMETRIC", 1, None, OMIT]) | ANY_JSON
SHORT_TEXT_NOISE = st.sampled_from(["", "x" * 65, 5, None]) | ANY_JSON
EXTRA_MEMBERS = _mostly(
    st.just({}),
    st.dictionaries(st.sampled_from(["extra", "_schema", "holder_ref", "events"]), ANY_JSON),
)


def _identity(operator: str, imsi_seed: int, bad_imsi: str | None, bad_operator: Any) -> Any:
    return {
        "operator": operator if bad_operator is None else bad_operator,
        "imsi": imsi(operator, imsi_seed) if bad_imsi is None else bad_imsi,
    }


IDENTITIES = st.builds(
    _identity,
    OPERATORS,
    st.integers(0, 10**9),
    _mostly(st.none(), st.sampled_from(["52003123", "450051234567890", "99999" + "0" * 10])),
    _mostly(
        st.none(),
        st.sampled_from(["45606", "90101", "99999", "5200", "52003 ", 52003, None, OMIT]),
    ),
)
LOCATIONS = _mostly(
    st.fixed_dictionaries(
        {"country": st.sampled_from(["TH", "KH", "MM", "XK"])},
        optional={"cell_id": st.text(min_size=1, max_size=64)},
    ),
    st.sampled_from(
        [
            {},
            {"country": "th"},
            {"country": "THA"},
            {"country": "TH", "cell_id": ""},
            {"country": "TH", "extra": 1},
            "TH",
            None,
        ]
    )
    | ANY_JSON,
)
ID_NUMBERS = st.one_of(
    st.integers(0, 10**11).map(thai_national_id),
    st.integers(0, 10**11).map(
        lambda seed: f" {thai_national_id(seed)[:5]}-{thai_national_id(seed)[5:]} "
    ),
    st.sampled_from(["1234567890123", "ab 123", "- -", "\x00", "x" * 64, "x" * 65, "", 12, None]),
    st.text(max_size=70),
)
HOLDERS = _mostly(
    st.fixed_dictionaries(
        {
            "id_type": st.sampled_from(["national_id", "passport", "other"]),
            "id_number": ID_NUMBERS,
            "nationality": st.sampled_from(["TH", "MM", "KH"]),
        }
    ),
    st.sampled_from([{}, {"id_type": "passport", "id_number": "AB123"}, "AB123", None]) | ANY_JSON,
)


def _event(identity: dict[str, Any], members: dict[str, Any], extra: dict[str, Any]) -> Any:
    event = {**identity, **members, **extra}
    return {name: value for name, value in event.items() if value is not OMIT}


def _events(members: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    return st.builds(_event, IDENTITIES, st.fixed_dictionaries(members), EXTRA_MEMBERS)


def _optional(valid: st.SearchStrategy[Any], noise: st.SearchStrategy[Any]) -> Any:
    return _mostly(st.just(OMIT) | valid, noise)


IMEIS = _optional(
    st.integers(0, 10**6 - 1).map(imei),
    st.sampled_from(["353325090000001", "3533250900000000", 1, None]),
)
SUBSCRIBER = {"event_id": EVENT_IDS, "iccid": ICCIDS, "msisdn": MSISDNS}
EVENTS_BY_SCHEMA: dict[type[Schema], st.SearchStrategy[Any]] = {
    ActivationSchema: _events(
        {
            **SUBSCRIBER,
            "activated_at": TIMES,
            "channel": _mostly(
                st.sampled_from(["retail", "dealer", "online", "kiosk"]), CHOICE_NOISE
            ),
            "dealer_id": _optional(st.text(min_size=1, max_size=64), SHORT_TEXT_NOISE),
            "location": _optional(LOCATIONS, st.nothing()),
            "imei": IMEIS,
        }
    ),
    RegistrationRequestSchema: _events(
        {
            **SUBSCRIBER,
            "holder": HOLDERS,
            "verification": _mostly(
                st.sampled_from(["biometric", "in_person", "ekyc", "none"]), CHOICE_NOISE
            ),
            "registered_at": TIMES,
            "status": _mostly(
                st.sampled_from(["active", "suspended", "deregistered"]), CHOICE_NOISE
            ),
        }
    ),
    NetworkEventSchema: _events(
        {
            "event_id": EVENT_IDS,
            "observed_at": TIMES,
            "visited_plmn": _mostly(
                st.sampled_from(["52003", "45606", "41401", "310260"]),
                st.sampled_from(["999", "99999", "90101", 45606, None, OMIT]),
            ),
            "cell_id": _optional(st.text(min_size=1, max_size=64), SHORT_TEXT_NOISE),
            "imei": IMEIS,
        }
    ),
}


class ExtendedActivationSchema(ActivationSchema):
    sales_region = fields.String()


SCHEMAS = [pytest.param(schema, id=schema.__name__) for schema in EVENTS_BY_SCHEMA]


def _marshmallow_load(schema: Schema, data: Any) -> Any:
    try:
        return schema.load(data)
    except ValidationError:
        return None


def _same_load(fast: Any, slow: Any) -> None:
    assert (fast is None) == (slow is None), (fast, slow)
    assert fast == slow
    if isinstance(fast, list):
        for fast_event, slow_event in zip(fast, slow, strict=True):
            _same_load(fast_event, slow_event)
    elif isinstance(fast, dict):
        assert list(fast) == list(slow), "members in marshmallow's order"
        for name, value in fast.items():
            _same_load(value, slow[name])


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("schema_class", SCHEMAS)
@FUZZ
@given(data=st.data())
def test_a_single_event_gets_the_schemas_verdict_and_value(
    schema_class: type[Schema], data: st.DataObject
) -> None:
    event = data.draw(EVENTS_BY_SCHEMA[schema_class] | ANY_JSON)
    fast = FastEventLoader(schema_class, clock=lambda: NOW).load(event)
    _same_load(fast, _marshmallow_load(schema_class(clock=lambda: NOW), event))


@pytest.mark.parametrize("schema_class", SCHEMAS)
@FUZZ
@given(data=st.data())
def test_a_batch_gets_the_batch_schemas_verdict_and_value(
    schema_class: type[Schema], data: st.DataObject
) -> None:
    events = data.draw(st.lists(EVENTS_BY_SCHEMA[schema_class], max_size=MAX_EVENTS + 1))
    body = data.draw(
        _mostly(
            st.just({"events": events}),
            st.sampled_from([{"events": events, "extra": 1}, {"events": None}, {}, events]),
        )
    )
    kind = next(kind for kind in EVENT_KINDS.values() if kind.request_schema is schema_class)
    fast = FastEventLoader(schema_class).load_batch(body, MAX_EVENTS)
    slow = _marshmallow_load(batch_schema(kind, MAX_EVENTS)(), body)
    _same_load(fast, None if slow is None else slow["events"])


VALID_SAMPLES = [
    *(valid_activation(imsi=imsi(OPERATOR, seed), iccid=iccid(seed)) for seed in range(20)),
    valid_activation(
        channel="dealer", dealer_id="D-0042", location={"country": "KH", "cell_id": "PP-17"}
    ),
    *(valid_registration_request(holder=valid_holder(id_number=thai_national_id(seed)))
      for seed in range(20)),
    valid_registration_request(
        holder=valid_holder(id_type="passport", id_number="ab 12-3", nationality="MM")
    ),
    *(valid_network_event(visited_plmn=plmn) for plmn in ("52003", "45606", "41401")),
]  # fmt: skip


@pytest.mark.parametrize("event", VALID_SAMPLES)
def test_valid_events_take_the_fast_path(event: dict[str, Any]) -> None:
    """The property tests above would also pass if the fast path refused everything."""
    schema_class = next(schema for schema in EVENTS_BY_SCHEMA if schema().validate(event) == {})
    loaded = FastEventLoader(schema_class).load(event)
    assert loaded is not None
    _same_load(loaded, schema_class().load(event))


@pytest.mark.parametrize("schema_class", [RegistrationSchema, ExtendedActivationSchema])
def test_a_schema_the_fast_path_does_not_cover_is_refused(schema_class: type[Schema]) -> None:
    with pytest.raises(TypeError):
        FastEventLoader(schema_class)
