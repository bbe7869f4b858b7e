"""A wire field's contract, declared once: its rules, its pattern, its documentation.

Every check of a field is derived from its `FieldContract`: the marshmallow
field and so the OpenAPI document (`field`), the fast event loader's and the
registry row checker's verdict (`accepts`), and the polars block's shape
condition (`pattern`, which the block applies as a column regex). A contract
change is then one edit, and the paths cannot disagree about which rule a
field has.

An object rule (a check over several fields of one object, such as "the IMSI
starts with the operator's PLMN id") is declared once with `object_rule`: it
is the schema's `@validates_schema` hook and, through `object_rule_of`, the
fast loader's check; a `@post_load` transformation likewise (`loaded_as`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError, fields, post_load, validates_schema

Predicate = Callable[[str], bool]
Rule = tuple[Predicate, str]


def check(*rules: Rule) -> Callable[[str], None]:
    """A marshmallow validator raising the message of the first rule `value` breaks."""

    def validator(value: str) -> None:
        for predicate, message in rules:
            if not predicate(value):
                raise ValidationError(message)

    return validator


@dataclass(frozen=True)
class FieldContract:
    """What a string field accepts, and what it says about what it refuses.

    `rules` are cumulative: each predicate implies the ones before it (they
    are the stages of one verdict, "15 digits", then "15 digits with a known
    MCC"), so the last one alone is the field's verdict, and a refused value
    gets the message of the first stage it fails. With a `shape_message`, the
    first stage is `pattern` itself. `pattern` is a JSON Schema pattern (the
    OpenAPI document states it) and an implication of the verdict that column
    engines can apply as a regular expression.
    """

    rules: tuple[Rule, ...]
    pattern: str | None = None
    shape_message: str | None = None
    # OpenAPI keywords besides the pattern (example, minLength, ...).
    documented: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shape_message is not None and self.pattern is None:
            raise ValueError("a shape message needs a pattern")
        if not self.stages:
            raise ValueError("a contract needs a rule or a shape message")

    @functools.cached_property
    def stages(self) -> tuple[Rule, ...]:
        """Every rule in the order it is applied, the shape first when it has a message."""
        if self.shape_message is None or self.pattern is None:
            return self.rules
        shape = re.compile(self.pattern)
        return ((lambda value: shape.fullmatch(value) is not None, self.shape_message), *self.rules)

    @functools.cached_property
    def accepts(self) -> Predicate:
        """The whole verdict, for values known to be strings."""
        return self.stages[-1][0]

    def extended(self, rule: Rule, **documented: Any) -> FieldContract:
        """This contract with one more (stricter) stage."""
        return FieldContract(
            rules=(*self.rules, rule),
            pattern=self.pattern,
            shape_message=self.shape_message,
            documented={**self.documented, **documented},
        )

    def field(self, **kwargs: Any) -> ContractString:
        return ContractString(self, **kwargs)


class ContractString(fields.String):
    """A marshmallow string field that applies a `FieldContract` and documents it."""

    def __init__(self, contract: FieldContract, **kwargs: Any) -> None:
        pattern = {} if contract.pattern is None else {"pattern": contract.pattern}
        super().__init__(
            validate=check(*contract.stages),
            metadata={**pattern, **contract.documented},
            **kwargs,
        )
        self.contract = contract


# --- rules over several fields of one object -------------------------------------

ObjectPredicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class ObjectRule:
    """`holds` over an object's loaded fields; when it does not, `message` for `field`.

    The rule is only applied when every field in `reads` loaded: a field that
    did not has its own error already.
    """

    reads: tuple[str, ...]
    field: str
    holds: ObjectPredicate
    message: str | Callable[[Mapping[str, Any]], str]

    def validate(self, data: Mapping[str, Any]) -> None:
        if all(name in data for name in self.reads) and not self.holds(data):
            message = self.message if isinstance(self.message, str) else self.message(data)
            raise ValidationError(message, self.field)


_OBJECT_RULE = "_object_rule"


def object_rule(rule: ObjectRule) -> Any:
    """A schema's `@validates_schema` hook applying `rule`.

    skip_on_field_errors=False so that a bad channel does not hide a bad IMSI
    prefix: the sender sees every problem of an event at once.
    """

    def hook(schema: Any, data: dict[str, Any], **kwargs: Any) -> None:
        rule.validate(data)

    setattr(hook, _OBJECT_RULE, rule)
    return validates_schema(skip_on_field_errors=False)(hook)


def object_rule_of(hook: Any) -> ObjectRule | None:
    """The rule a hook made by `object_rule` applies; None for any other hook."""
    rule = getattr(hook, _OBJECT_RULE, None)
    return rule if isinstance(rule, ObjectRule) else None


_TRANSFORM = "_transform"
Transform = Callable[[dict[str, Any]], dict[str, Any]]


def loaded_as(transform: Transform) -> Any:
    """A schema's `@post_load` hook applying `transform` to the loaded dict."""

    def hook(schema: Any, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return transform(data)

    setattr(hook, _TRANSFORM, transform)
    return post_load(hook)


def transform_of(hook: Any) -> Transform | None:
    """The transformation a hook made by `loaded_as` applies; None for any other hook."""
    transform = getattr(hook, _TRANSFORM, None)
    return transform if callable(transform) else None
