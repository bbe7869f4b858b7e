"""A fast path to the verdict and the values of the event schemas' `load`.

marshmallow's per-field machinery costs ≈ 200 µs per event, most of the API's
CPU on a batch. A valid event needs none of its error bookkeeping: the loaders
here apply the same rules straight to the parsed JSON and build the same dict.

They only ever say "valid, here is what `load` returns" or "not sure": on any
rule broken, or any input shape they do not expect, they answer None and the
caller runs the marshmallow schema, which stays the one source of the verdict
and of the error pointers. Everything is read from the schemas themselves:
which fields exist, which are required, their order, which time fields refuse
the future, each field's verdict (its contract, schemas/contract.py, or its
OneOf and Length validators) and the object rules and transformations of its
hooks. A field or hook of another kind is an error at construction, so the
two cannot drift apart silently.
tests/test_schemas_fast_path.py holds them to the same verdicts and values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from marshmallow import Schema, fields, validate

from schemas.contract import (
    ContractString,
    ObjectPredicate,
    Transform,
    object_rule_of,
    transform_of,
)
from schemas.events import (
    ActivationSchema,
    Clock,
    HolderSchema,
    LocationSchema,
    NetworkEventSchema,
    RegistrationRequestSchema,
    TimestampError,
    UtcDateTime,
    UuidString,
    canonical_uuid,
    parse_timestamp,
    utc_now,
)


class _Invalid:
    """What a field loader returns for a value the schema would refuse."""


INVALID: Final = _Invalid()

# A field's loader: the loaded value, or INVALID.
FieldLoader = Callable[[Any], Any]


def _string(predicate: Callable[[str], bool]) -> FieldLoader:
    def load(value: Any) -> Any:
        return value if isinstance(value, str) and predicate(value) else INVALID

    return load


def _uuid(value: Any) -> Any:
    canonical = canonical_uuid(value)
    return INVALID if canonical is None else canonical


def _timestamp(value: Any) -> Any:
    try:
        return parse_timestamp(value)
    except TimestampError:
        return INVALID


def _plain_string_check(field: fields.Field[Any]) -> Callable[[str], bool] | None:
    """A plain fields.String's validators as one predicate; None for any other
    field, or validators without a fast equivalent."""
    if type(field) is not fields.String:
        return None
    checks: list[Callable[[str], bool]] = []
    for validator in field.validators:
        # Exact types, as for fields: a subclass may check differently.
        if type(validator) is validate.OneOf:
            allowed = frozenset(validator.choices)
            checks.append(allowed.__contains__)
        elif type(validator) is validate.Length and validator.equal is None:
            checks.append(_length_between(validator.min, validator.max))
        else:
            return None
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


def _length_between(low: int | None, high: int | None) -> Callable[[str], bool]:
    return lambda value: (low is None or low <= len(value)) and (high is None or len(value) <= high)


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
    rules: tuple[ObjectPredicate, ...]
    post_loads: tuple[Transform, ...]

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
    schema_class = type(schema)
    return _ObjectLoader(
        schema_name=schema_class.__name__,
        loaders=tuple(loaders),
        names=frozenset(schema.load_fields),
        required=frozenset(name for name, field in schema.load_fields.items() if field.required),
        future_limits=tuple(future_limits),
        rules=tuple(
            _hook(schema_class, name, object_rule_of).holds
            for name, *_ in hooks.get("validates_schema", [])
        ),
        post_loads=tuple(
            _hook(schema_class, name, transform_of) for name, *_ in hooks.get("post_load", [])
        ),
    )


_Declared = TypeVar("_Declared")


def _hook(
    schema_class: type[Schema], name: str, declared: Callable[[Any], _Declared | None]
) -> _Declared:
    """What a hook made by schemas.contract declares; only those have a fast equivalent."""
    found = declared(getattr(schema_class, name))
    if found is None:
        raise TypeError(f"{schema_class.__name__}.{name}: no fast equivalent")
    return found


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
    # Exact types: a subclass may load or check differently.
    if type(field) is ContractString and len(field.validators) == 1:
        return _string(field.contract.accepts)
    if type(field) is UuidString and not field.validators:
        return _uuid
    if type(field) is UtcDateTime and not field.validators:
        return _timestamp
    plain = _plain_string_check(field)
    if plain is None:
        raise TypeError(f"{schema_name}.{name}: no fast equivalent")
    return _string(plain)


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
