"""A fast path to the verdict and the values of the event schemas' `load`.

marshmallow's per-field machinery costs ≈ 200 µs per event, most of the API's
CPU on a batch. A valid event needs none of its error bookkeeping: the loaders
here apply the same rules (the predicates of schemas/identifiers.py, the same
timestamp parser) straight to the parsed JSON and build the same dict.

They only ever say "valid, here is what `load` returns" or "not sure": on any
rule broken, or any input shape they do not expect, they answer None and the
caller runs the marshmallow schema, which stays the one source of the verdict
and of the error pointers. Which fields exist, which are required, their
order and which time fields refuse the future are read from the schemas
themselves; a schema field or hook without a fast equivalent here is an error
at construction, so the two cannot drift apart silently.
tests/test_schemas_fast_path.py holds them to the same verdicts and values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from marshmallow import Schema, fields

from schemas import identifiers as ids
from schemas.events import (
    CHANNELS,
    ID_TYPES,
    REGISTRATION_STATUSES,
    UUID_FORM,
    VERIFICATIONS,
    ActivationSchema,
    Clock,
    HolderSchema,
    LocationSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    TimestampError,
    UtcDateTime,
    has_id_characters,
    parse_timestamp,
    utc_now,
)


class _Invalid:
    """What a field loader returns for a value the schema would refuse."""


INVALID: Final = _Invalid()

# A field's loader: the loaded value, or INVALID.
FieldLoader = Callable[[Any], Any]
# A rule over an object's loaded fields, as a schema's @validates_schema hook.
ObjectRule = Callable[[dict[str, Any]], bool]


def _string(predicate: Callable[[str], bool]) -> FieldLoader:
    def load(value: Any) -> Any:
        return value if isinstance(value, str) and predicate(value) else INVALID

    return load


def _one_of(choices: tuple[str, ...]) -> FieldLoader:
    allowed = frozenset(choices)
    return _string(lambda value: value in allowed)


def _length_1_to_64(value: str) -> bool:
    return 1 <= len(value) <= 64


def _uuid(value: Any) -> Any:
    if isinstance(value, str) and UUID_FORM.fullmatch(value) is not None:
        # What str(uuid.UUID(value)) gives for the 8-4-4-4-12 form.
        return value.lower()
    return INVALID


def _timestamp(value: Any) -> Any:
    try:
        return parse_timestamp(value)
    except TimestampError:
        return INVALID


def _id_number(value: str) -> bool:
    return _length_1_to_64(value) and has_id_characters(value)


# --- the schemas' @validates_schema and @post_load hooks, by hook name ----------


def _imsi_belongs_to_operator(data: dict[str, Any]) -> bool:
    return bool(data["imsi"].startswith(data["operator"]))


def _msisdn_in_operator_country(data: dict[str, Any]) -> bool:
    country = ids.plmn_country(data["operator"])
    return country is None or ids.is_valid_msisdn_for_country(data["msisdn"], country)


def _thai_national_id_check_digit(data: dict[str, Any]) -> bool:
    return not (
        data["id_type"] == "national_id"
        and data["nationality"] == "TH"
        and not ids.is_valid_thai_national_id(ids.normalise_id_number(data["id_number"]))
    )


def _normalise_id_number(data: dict[str, Any]) -> dict[str, Any]:
    data["id_number"] = ids.normalise_id_number(data["id_number"])
    return data


_RULES: Final[dict[str, ObjectRule]] = {
    "_imsi_belongs_to_operator": _imsi_belongs_to_operator,
    "_msisdn_in_operator_country": _msisdn_in_operator_country,
    "_thai_national_id_check_digit": _thai_national_id_check_digit,
}
_POST_LOADS: Final[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "_normalise_id_number": _normalise_id_number,
}

# --- the fields, by name ---------------------------------------------------------

_FIELDS: Final[dict[str, FieldLoader]] = {
    "event_id": _uuid,
    "operator": _string(ids.is_valid_operator),
    "imsi": _string(ids.is_valid_imsi),
    "iccid": _string(ids.is_valid_iccid),
    "msisdn": _string(ids.is_valid_msisdn),
    "imei": _string(ids.is_valid_imei),
    "visited_plmn": _string(ids.is_valid_plmn),
    "country": _string(ids.is_valid_country),
    "nationality": _string(ids.is_valid_country),
    "activated_at": _timestamp,
    "registered_at": _timestamp,
    "observed_at": _timestamp,
    "channel": _one_of(CHANNELS),
    "verification": _one_of(VERIFICATIONS),
    "status": _one_of(REGISTRATION_STATUSES),
    "id_type": _one_of(ID_TYPES),
    "id_number": _string(_id_number),
    "dealer_id": _string(_length_1_to_64),
    "cell_id": _string(_length_1_to_64),
}
_FAST_HOOK_KINDS: Final = frozenset({"validates_schema", "post_load"})
_NESTED_SCHEMAS: Final = frozenset({LocationSchema, HolderSchema})
FAST_SCHEMAS: Final = (ActivationSchema, RegistrationRequestSchema, NetworkEventSchema)


@dataclass(frozen=True)
class _ObjectLoader:
    """One schema's `load` for the inputs it accepts; INVALID for any other."""

    schema_name: str
    # In the schema's load order, so the loaded dict (and its JSON) is
    # ordered as marshmallow orders it.
    loaders: tuple[tuple[str, FieldLoader], ...]
    names: frozenset[str]
    required: frozenset[str]
    # (field name, how far ahead of the clock it may be)
    future_limits: tuple[tuple[str, timedelta], ...]
    rules: tuple[ObjectRule, ...]
    post_loads: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...]

    def load(self, data: Any, now: datetime) -> Any:
        if not isinstance(data, dict):
            return INVALID
        keys = data.keys()
        if not (keys <= self.names and self.required <= keys):
            return INVALID
        loaded: dict[str, Any] = {}
        for name, loader in self.loaders:
            if name in data:
                value = loader(data[name])
                if value is INVALID:
                    return INVALID
                loaded[name] = value
        for name, limit in self.future_limits:
            if name in loaded and loaded[name] - now > limit:
                return INVALID
        for rule in self.rules:
            if not rule(loaded):
                return INVALID
        for post_load in self.post_loads:
            loaded = post_load(loaded)
        return loaded


def _object_loader(schema: Schema) -> _ObjectLoader:
    loaders: list[tuple[str, FieldLoader]] = []
    future_limits: list[tuple[str, timedelta]] = []
    for name, field in schema.load_fields.items():
        if field.data_key not in (None, name) or field.allow_none:
            raise TypeError(f"{type(schema).__name__}.{name}: no fast equivalent")
        loaders.append((name, _field_loader(type(schema).__name__, name, field)))
        if isinstance(field, UtcDateTime) and field.max_future is not None:
            future_limits.append((name, field.max_future))
    # marshmallow keeps the decorated hooks of a schema class here, by kind.
    hooks = type(schema)._hooks
    unknown = {kind for kind, hooked in hooks.items() if hooked and kind not in _FAST_HOOK_KINDS}
    if unknown:
        raise TypeError(f"{type(schema).__name__}: no fast equivalent of {sorted(unknown)}")
    return _ObjectLoader(
        schema_name=type(schema).__name__,
        loaders=tuple(loaders),
        names=frozenset(schema.load_fields),
        required=frozenset(name for name, field in schema.load_fields.items() if field.required),
        future_limits=tuple(future_limits),
        rules=tuple(_hook(_RULES, name) for name, *_ in hooks.get("validates_schema", [])),
        post_loads=tuple(_hook(_POST_LOADS, name) for name, *_ in hooks.get("post_load", [])),
    )


_Hook = TypeVar("_Hook")


def _hook(table: Mapping[str, _Hook], name: str) -> _Hook:
    if name not in table:
        raise TypeError(f"schema hook {name}: no fast equivalent")
    return table[name]


def _field_loader(schema_name: str, name: str, field: fields.Field[Any]) -> FieldLoader:
    if isinstance(field, fields.Nested):
        nested_class = field.nested
        if not (isinstance(nested_class, type) and nested_class in _NESTED_SCHEMAS):
            raise TypeError(f"{schema_name}.{name}: no fast equivalent of its nested schema")
        nested = _object_loader(nested_class())

        def load_nested(value: Any) -> Any:
            # Nested objects carry no time fields, so no clock is needed.
            return nested.load(value, datetime.min)

        return load_nested
    if name not in _FIELDS:
        raise TypeError(f"{schema_name}.{name}: no fast equivalent")
    return _FIELDS[name]


class FastEventLoader:
    """One event kind's request schema, fast for what it accepts.

    `load` and `load_batch` return exactly what the schema's `load` would
    (for a batch, the list of events) when it would accept the input, and
    None otherwise: then run the schema for the verdict and its messages.
    """

    def __init__(self, schema_class: type[Schema], *, clock: Clock = utc_now) -> None:
        if schema_class not in FAST_SCHEMAS:
            raise TypeError(f"{schema_class.__name__}: no fast equivalent")
        self._object = _object_loader(schema_class())
        self._clock = clock

    def load(self, event: Any) -> dict[str, Any] | None:
        loaded = self._object.load(event, self._clock())
        return None if loaded is INVALID else loaded

    def load_batch(self, body: Any, max_events: int) -> list[dict[str, Any]] | None:
        """`{"events": [...]}` with 1 to `max_events` valid events."""
        if not isinstance(body, dict) or body.keys() != {"events"}:
            return None
        events = body["events"]
        if not isinstance(events, list) or not 1 <= len(events) <= max_events:
            return None
        now = self._clock()
        load = self._object.load
        loaded = []
        for event in events:
            value = load(event, now)
            if value is INVALID:
                return None
            loaded.append(value)
        return loaded
