"""Field contracts and object rules: what every path derived from them relies on.

The marshmallow fields, the fast event loader, the registry row checker and
the registry block all take a field's verdict from its contract's last stage
and its shape from its pattern; these tests hold the contracts to what that
needs (cumulative stages, a pattern the verdict implies) and the derivations
to the contract (the field's messages and OpenAPI metadata, the fast loader's
refusal of anything not declared this way).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from factories import iccid, imei, imsi, msisdn, thai_national_id
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from schemas import events
from schemas import identifiers as ids
from schemas.contract import (
    ContractString,
    FieldContract,
    ObjectRule,
    object_rule,
    object_rule_of,
)
from schemas.events import ActivationSchema
from schemas.fast_events import INVALID, _object_loader

CONTRACTS = {
    name: contract
    for module in (ids, events)
    for name, contract in vars(module).items()
    if isinstance(contract, FieldContract)
}
# Valid and broken values of every field, and of the other fields (a value
# of one field is noise for the others).
SAMPLES = [
    "", " ", "TH", "th", "THA", "XK", "AQ", "52003", "45606", "90101", "00001", "5200", "520031",
    imsi("52003", 7), imsi("45606", 7), "999991234567890", "52003123456789x",
    iccid(7), iccid(7)[:-1] + "0", "19" + iccid(7)[2:], imei(7), imei(7)[:-1] + "0",
    msisdn(7), "+660812345678", "+66 812345678", "66812345678", "+12025550123", "+0123",
    thai_national_id(7), "1-2345-45678-78-1", "ab 12-3", "- -", "\x00", "x" * 64, "x" * 65,
    "a" * 64, "0" * 64, "A" * 64, "๑๒๓",
]  # fmt: skip


def test_every_field_contract_is_found() -> None:
    assert set(CONTRACTS) >= {
        "COUNTRY", "PLMN", "OPERATOR", "IMSI", "ICCID", "MSISDN", "IMEI", "ID_NUMBER",
        "HOLDER_REF",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_each_stage_implies_the_stages_before_it(name: str) -> None:
    """So the last stage alone is the verdict the fast paths apply."""
    stages = CONTRACTS[name].stages
    for value in SAMPLES:
        passed = [predicate(value) for predicate, _ in stages]
        first_failure = passed.index(False) if False in passed else len(passed)
        assert not any(passed[first_failure:]), (value, passed)


@pytest.mark.parametrize(
    "name", sorted(name for name, contract in CONTRACTS.items() if contract.pattern)
)
def test_the_verdict_implies_the_pattern(name: str) -> None:
    """The registry block's column regex refuses nothing the contract accepts."""
    contract = CONTRACTS[name]
    assert contract.pattern is not None
    for value in SAMPLES:
        if contract.accepts(value):
            assert re.fullmatch(contract.pattern, value), value


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_the_field_reports_the_first_stage_a_value_breaks(name: str) -> None:
    contract = CONTRACTS[name]
    field = contract.field(required=True)
    for value in SAMPLES:
        broken = [message for predicate, message in contract.stages if not predicate(value)]
        if not broken:
            assert field.deserialize(value) == value
            continue
        with pytest.raises(ValidationError) as refused:
            field.deserialize(value)
        assert refused.value.messages == [broken[0]]


def test_the_field_documents_the_pattern_and_the_declared_keywords() -> None:
    assert ids.IMSI.field().metadata == {"pattern": ids.IMSI_PATTERN, "example": "520031234567890"}
    assert events.ID_NUMBER.field().metadata == {"minLength": 1, "maxLength": 64}


def test_an_extended_contract_keeps_the_stages_and_adds_one() -> None:
    def messages(contract: FieldContract) -> list[str]:
        return [message for _, message in contract.stages]

    assert messages(ids.OPERATOR)[:-1] == messages(ids.PLMN)
    assert ids.PLMN.accepts("90101") and not ids.OPERATOR.accepts("90101")


def test_a_shape_message_without_a_pattern_is_refused() -> None:
    with pytest.raises(ValueError):
        FieldContract(rules=(), shape_message="must be digits")


RULE = ObjectRule(
    reads=("a", "b"),
    field="b",
    holds=lambda data: data["a"] == data["b"],
    message=lambda data: f"b must be {data['a']}.",
)


class _Pair(Schema):
    a = fields.String()
    b = fields.String()
    _same = object_rule(RULE)


def test_an_object_rule_reports_its_message_on_its_field() -> None:
    with pytest.raises(ValidationError) as refused:
        _Pair().load({"a": "x", "b": "y"})
    assert refused.value.messages == {"b": ["b must be x."]}


def test_an_object_rule_is_skipped_when_a_field_it_reads_did_not_load() -> None:
    assert _Pair().load({"b": "y"}) == {"b": "y"}


def test_the_rule_of_a_hook_is_found_and_only_for_declared_hooks() -> None:
    assert object_rule_of(_Pair._same) is RULE
    assert object_rule_of(events.EventSchema._imsi_belongs_to_operator) is events.IMSI_OF_OPERATOR
    assert object_rule_of(lambda: None) is None


class _HandWrittenHook(ActivationSchema):
    @validates_schema
    def _no_dealer(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "dealer_id" in data:
            raise ValidationError("no dealers", "dealer_id")


class _RegexpField(ActivationSchema):
    dealer_id = fields.String(validate=validate.Regexp("^D-[0-9]+$"))


class _ContractSubclass(ContractString):
    pass


class _SubclassedContractField(ActivationSchema):
    imsi = _ContractSubclass(ids.IMSI, required=True)


@pytest.mark.parametrize("schema_class", [_HandWrittenHook, _RegexpField, _SubclassedContractField])
def test_the_fast_loader_refuses_what_it_cannot_derive(schema_class: type[Schema]) -> None:
    with pytest.raises(TypeError):
        _object_loader(schema_class())


class _LongerDealerIds(ActivationSchema):
    dealer_id = fields.String(validate=validate.Length(1, 8))
    imsi = FieldContract(rules=((lambda value: value.startswith("52003"), "must be AIS's"),)).field(
        required=True
    )


def test_the_fast_loader_takes_each_fields_verdict_from_the_schema() -> None:
    """A changed contract or validator changes the fast path with it."""
    loader = dict(_object_loader(_LongerDealerIds()).loaders)
    assert loader["dealer_id"]("D-1") == "D-1"
    assert loader["dealer_id"]("D-123456789") is INVALID
    assert loader["imsi"]("52003x") == "52003x"
    assert loader["imsi"]("45606" + "0" * 10) is INVALID
