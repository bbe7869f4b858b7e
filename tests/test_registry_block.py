"""A block checked column by column gives RowChecker's verdicts, record by record.

The reference is the import's reading before blocks were checked as columns:
csv.reader over the block, empty records skipped and not counted, each record
through `RowChecker`. Rows come from tests/test_registry_rows.py's generator
(valid, and broken in up to three columns); lines of the wrong width, empty
lines and quoted fields are added here.
"""

from __future__ import annotations

import csv
import io
import random

import phonenumbers
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_registry_rows import HEADER, SECRET, as_record, rows, valid_row
from test_schemas_msisdn_fast_path import numbers_after_country_codes, numbers_near_examples

from registry_import import block as registry_block
from registry_import.block import BlockChecker, BlockVerdicts
from registry_import.rows import COLUMNS, RowChecker
from schemas import identifiers as ids


def reference(text: str, header: list[str]) -> BlockVerdicts:
    checker = RowChecker(SECRET, header)
    good, refused, count = [], [], 0
    for values in csv.reader(io.StringIO(text, newline="")):
        if not values:
            continue
        verdict = checker.check(values)
        if isinstance(verdict, str):
            refused.append((count, verdict))
        else:
            good.append(verdict)
        count += 1
    return count, good, refused


@st.composite
def blocks(draw: st.DrawFn) -> str:
    lines = [",".join(as_record(row)) for row in draw(st.lists(rows(), max_size=30))]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(["", ",", ",,,,,,,,,,,,", "x"])))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks())
def test_block_verdicts_are_the_row_checkers_record_by_record(text: str) -> None:
    assert BlockChecker(SECRET, HEADER).check(text) == reference(text, HEADER)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks())
def test_block_verdicts_hold_without_an_event_id_column(text: str) -> None:
    # The generated records' last field is the (usually empty) event id: a
    # header without that column sees one field too many on those lines.
    header = list(COLUMNS)
    assert BlockChecker(SECRET, header).check(text) == reference(text, header)


def test_a_block_of_valid_rows_is_accepted_whole() -> None:
    text = "\n".join(",".join(as_record(valid_row(seed))) for seed in range(1, 501)) + "\n"
    records, good, refused = BlockChecker(SECRET, HEADER).check(text)
    assert (records, len(good), refused) == (500, 500, [])
    assert (records, good, refused) == reference(text, HEADER)


def test_columns_are_read_by_header_name_in_any_order() -> None:
    header = list(reversed(HEADER))
    text = "\n".join(
        ",".join(row[name] or "" for name in header) for row in map(valid_row, range(1, 51))
    )
    assert BlockChecker(SECRET, header).check(text) == reference(text, HEADER[::-1])


def test_a_block_with_quoted_fields_is_read_as_csv() -> None:
    row = valid_row(3)
    quoted = ",".join(f'"{value}"' for value in as_record(row))
    text = f"{quoted}\n" + ",".join(as_record(valid_row(4))) + '\n"a,b",c\n'
    verdicts = BlockChecker(SECRET, HEADER).check(text)
    assert verdicts == reference(text, HEADER)
    assert len(verdicts[1]) == 2


def _fast_msisdn(numbers: list[str], country: str) -> list[bool]:
    frame = pl.DataFrame({"msisdn": numbers}, schema={"msisdn": pl.String})
    msisdn = pl.col("msisdn")
    condition = registry_block._shape(ids.MSISDN, msisdn) & registry_block._number_of(country)
    return frame.select(condition.fill_null(False)).to_series().to_list()


COUNTRIES_WITH_PLANS = [c for c in sorted(phonenumbers.SUPPORTED_REGIONS) if ids.country_numbers(c)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(numbers_near_examples(), numbers_after_country_codes()), max_size=20),
    st.sampled_from(["TH", "KH", "MM", "LA", *COUNTRIES_WITH_PLANS]),
)
def test_an_msisdn_passes_the_column_check_only_when_valid_in_the_country(
    numbers: list[str], country: str
) -> None:
    for number, fast in zip(numbers, _fast_msisdn(numbers, country), strict=True):
        if fast:
            assert ids.msisdn_verdicts(number, country) == (True, True), (number, country)


def test_valid_numbers_without_a_trunk_prefix_pass_the_column_check() -> None:
    # Every country's example numbers that are its own and valid pass, unless
    # the national part starts with what parse() might strip.
    for country in COUNTRIES_WITH_PLANS:
        plan = ids.country_numbers(country)
        assert plan is not None
        examples = []
        for number_type in range(12):
            example = phonenumbers.example_number_for_type(country, number_type)
            if example is None:
                continue
            number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            national = number[1 + len(plan.country_code) :]
            prefix = plan.national_prefix
            trunk = (
                prefix is not None
                and pl.select(pl.lit(national).str.contains(f"^(?:{prefix})")).item()
            )
            if ids.msisdn_verdicts(number, country) == (True, True) and not trunk:
                examples.append(number)
        assert all(_fast_msisdn(examples, country)), country


def test_iccid_and_thai_pin_column_checks_agree_with_the_predicates() -> None:
    generator = random.Random(7)
    iccids = [
        "89" + "".join(generator.choice("0123456789") for _ in range(generator.choice([17, 18])))
        for _ in range(3000)
    ]
    pins = [
        str(generator.randint(1, 8)) + "".join(generator.choice("0123456789") for _ in range(12))
        for _ in range(3000)
    ]
    frame = pl.DataFrame({"iccid": iccids, "pin": pins})
    checked = frame.select(
        registry_block._iccid_valid(pl.col("iccid")).alias("iccid"),
        registry_block._thai_pin_valid(pl.col("pin")).alias("pin"),
    )
    assert checked["iccid"].to_list() == [ids.is_valid_iccid(value) for value in iccids]
    assert checked["pin"].to_list() == [ids.is_valid_thai_national_id(value) for value in pins]
    assert 200 < sum(checked["iccid"]) < 400  # about one in ten passes Luhn
