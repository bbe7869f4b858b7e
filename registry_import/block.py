"""A block of registry CSV records checked column by column.

`RowChecker` costs ≈ 25 µs a row in Python, most of the import's CPU. Here the
checks run over a whole block at once as polars expressions (Rust), each one
a condition that implies the predicate `RowChecker` applies; what is left in
Python per row is the two hashes (event id, holder reference). A record that
fails any condition, or that the conditions do not cover (quotes in the block,
a holder number to normalise, an MSISDN of a calling code shared by several
countries, ...), is handed to `RowChecker`, which gives the verdict, the
reason and the stored values as before. So the result is `RowChecker`'s, row
for row; tests/test_registry_block.py holds the two together on generated
blocks, valid and broken.

polars runs its own thread pool, which a forked process does not get back:
the import's processes are spawned, and each limits polars to one thread
(two processes already keep both cores busy).
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Sequence

import polars as pl

from registry_import.rows import (
    COLUMNS,
    PLAIN_ID_NUMBER_PATTERN,
    PLAIN_UTC_SECOND_PATTERN,
    Row,
    RowChecker,
    canonical_event_id,
    import_event_id,
)
from schemas import identifiers as ids
from schemas.contract import FieldContract
from schemas.events import ID_TYPES, REGISTRATION_STATUSES, VERIFICATIONS
from schemas.pseudonym import keyed_by

BlockVerdicts = tuple[int, list[Row], list[tuple[int, str]]]
"""(records, the rows to store in file order, (record index, reason) refused)."""

_STORED_FRACTION = ".000000Z"


class BlockChecker:
    """Checks blocks of records laid out as the CSV header says."""

    def __init__(self, secret: str, header: Sequence[str]) -> None:
        self._rows = RowChecker(secret, header)
        self._keyed = keyed_by(secret)
        self._width = len(header)
        # csv.DictReader keeps the last of repeated column names.
        position = {name: index for index, name in enumerate(header)}
        self._fields = [f"f{index}" for index in range(self._width)]
        self._named = [pl.col(f"f{position[name]}").alias(name) for name in COLUMNS]
        event_column = position.get("event_id")
        if event_column is not None:
            self._named.append(pl.col(f"f{event_column}").alias("event_id"))

    def check(self, text: str) -> BlockVerdicts:
        """The verdicts for the records of `text`, a block of whole lines."""
        if '"' in text or "\r" in text or "\0" in text:
            # Quoted fields: csv's reading, record by record.
            return self._one_by_one(csv.reader(io.StringIO(text, newline="")))
        lines = [line for line in text.split("\n") if line]
        if not lines:
            return 0, [], []
        frame = self._frame(lines)
        # Lazily: the optimiser computes an expression shared by conditions once.
        passed = frame.lazy().filter(self._conditions(frame)).collect()
        fast_rows, fast_indices = self._rows_of(passed)
        if len(fast_rows) == len(lines):
            return len(lines), fast_rows, []
        return self._merged(lines, fast_rows, fast_indices)

    def _frame(self, lines: list[str]) -> pl.DataFrame:
        line = pl.Series("line", lines).to_frame()
        return (
            line.select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("index"),
                pl.col("line").str.count_matches(",", literal=True).alias("commas"),
                pl.col("line")
                .str.split_exact(",", self._width - 1)
                .struct.rename_fields(self._fields)
                .alias("fields"),
            )
            .unnest("fields")
            .select("index", "commas", *self._named)
        )

    def _conditions(self, frame: pl.DataFrame) -> pl.Expr:
        imsi, operator, msisdn = pl.col("imsi"), pl.col("operator"), pl.col("msisdn")
        id_type, id_number, nationality = (
            pl.col("id_type"),
            pl.col("id_number"),
            pl.col("nationality"),
        )
        at = pl.col("registered_at")
        operators = _valid_operators(frame.get_column("operator").unique().to_list())
        imsi_prefixes = [
            prefix
            for prefix in frame.get_column("imsi").str.slice(0, 6).unique().to_list()
            if prefix is not None and ids.IMSI.accepts(prefix.ljust(15, "0"))
        ]
        conditions = [
            # A record with more or fewer fields than the header: csv's reading.
            pl.col("commas") == self._width - 1,
            operator.is_in(_strings(operators)),
            _shape(ids.IMSI, imsi) & imsi.str.slice(0, 6).is_in(_strings(imsi_prefixes)),
            imsi.str.starts_with(operator),
            _iccid_valid(pl.col("iccid")),
            _shape(ids.MSISDN, msisdn) & _msisdn_in_operator_country(operators),
            id_type.is_in(_ID_TYPES),
            # Already in normal form: normalising would change nothing.
            id_number.str.contains(PLAIN_ID_NUMBER_PATTERN),
            nationality.is_in(_COUNTRIES),
            (id_type != "national_id") | (nationality != "TH") | _thai_pin_valid(id_number),
            pl.col("verification").is_in(_VERIFICATIONS),
            pl.col("status").is_in(_STATUSES),
            at.str.contains(PLAIN_UTC_SECOND_PATTERN)
            & at.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).is_not_null()
            & (at.str.slice(11, 2) <= "23")
            & (at.str.slice(14, 2) <= "59")
            & (at.str.slice(17, 2) <= "59")
            & (_stored_at(at) <= self._rows.future_limit),
        ]
        return pl.all_horizontal(conditions).fill_null(False)

    def _rows_of(self, passed: pl.DataFrame) -> tuple[list[Row], list[int]]:
        """The stored rows of records that passed, and their indices."""
        columns = passed.select(
            "index", *COLUMNS,
            pl.concat_str("id_type", "nationality", "id_number", separator=":").alias("holder"),
            pl.concat_str("imsi", "registered_at", "status", separator="|").alias("event_name"),
            _stored_at(pl.col("registered_at")).alias("stored_at"),
            *(["event_id"] if "event_id" in passed.columns else []),
        )  # fmt: skip
        get = columns.get_column
        indices: list[int] = get("index").to_list()
        keyed = self._keyed.hexdigest
        holder_refs = [keyed(holder.encode()) for holder in get("holder").to_list()]
        names = get("event_name").to_list()
        event_ids: list[str | None]
        if "event_id" in columns.columns:
            # A given event id is stored in canonical form (None: not a UUID).
            event_ids = [
                canonical_event_id(given) if given else import_event_id(name)
                for given, name in zip(get("event_id").to_list(), names, strict=True)
            ]
        else:
            event_ids = [import_event_id(name) for name in names]
        stored_at = get("stored_at").to_list()
        rows = zip(
            get("imsi").to_list(), event_ids, get("operator").to_list(),
            get("iccid").to_list(), get("msisdn").to_list(), holder_refs,
            get("nationality").to_list(), get("verification").to_list(),
            get("status").to_list(), stored_at, stored_at, strict=True,
        )  # fmt: skip
        if None not in event_ids:
            return list(rows), indices
        # A record whose given event id is not a UUID is left to RowChecker,
        # which refuses it.
        kept = [
            (row, index) for row, index in zip(rows, indices, strict=True) if row[1] is not None
        ]
        return [row for row, _ in kept], [index for _, index in kept]

    def _merged(
        self, lines: list[str], fast_rows: list[Row], fast_indices: list[int]
    ) -> BlockVerdicts:
        good: list[Row] = []
        refused: list[tuple[int, str]] = []
        check = self._rows.check
        next_fast = 0
        for index, line in enumerate(lines):
            if next_fast < len(fast_indices) and fast_indices[next_fast] == index:
                good.append(fast_rows[next_fast])
                next_fast += 1
                continue
            verdict = check(line.split(","))
            if isinstance(verdict, str):
                refused.append((index, verdict))
            else:
                good.append(verdict)
        return len(lines), good, refused

    def _one_by_one(self, records: Iterable[list[str]]) -> BlockVerdicts:
        good: list[Row] = []
        refused: list[tuple[int, str]] = []
        count = 0
        check = self._rows.check
        for values in records:
            if not values:
                continue  # csv.DictReader skips empty records and does not count them
            verdict = check(values)
            if isinstance(verdict, str):
                refused.append((count, verdict))
            else:
                good.append(verdict)
            count += 1
        return count, good, refused


def _strings(values: Iterable[str]) -> pl.Series:
    """A set of strings for is_in: one list value, typed even when empty."""
    return pl.Series(list(values), dtype=pl.String).implode()


_COUNTRIES = _strings(sorted(ids.COUNTRIES))
_ID_TYPES = _strings(ID_TYPES)
_VERIFICATIONS = _strings(VERIFICATIONS)
_STATUSES = _strings(REGISTRATION_STATUSES)


def _shape(contract: FieldContract, column: pl.Expr) -> pl.Expr:
    """The contract's pattern over a column: implied by the contract's verdict."""
    assert contract.pattern is not None
    return column.str.contains(contract.pattern)


def _stored_at(at: pl.Expr) -> pl.Expr:
    """The text stored for a `registered_at` of the plain form (whole seconds, Z)."""
    return pl.concat_str(at.str.slice(0, 19), pl.lit(_STORED_FRACTION))


def _valid_operators(candidates: list[str | None]) -> dict[str, str]:
    """The valid home operators among `candidates`, with their countries."""
    valid: dict[str, str] = {}
    for operator in candidates:
        if operator is not None and ids.OPERATOR.accepts(operator):
            country = ids.plmn_country(operator)
            assert country is not None
            valid[operator] = country
    return valid


def _digit_bytes(number: pl.Expr, count: int) -> list[pl.Expr]:
    """The first `count` characters' bytes (48 for "0"), as integers: a byte
    read is a fraction of the cost of a string slice or a division."""
    raw = number.cast(pl.Binary)
    return [raw.bin.get(position, null_on_oob=True).cast(pl.Int32) for position in range(count)]


_ZERO = ord("0")
_ICCID_DIGITS = 20


def _iccid_valid(iccid: pl.Expr) -> pl.Expr:
    """The ICCID's shape and the Luhn sum.

    Padded to 20 digits (leading zeros add nothing), the doubled digits are
    those at even positions from the left; doubling d gives 2d, less 9 when d
    is 5 or more. Summed over bytes instead of digits, the 30 extra "0"s add
    30 * 48, a multiple of 10.
    """
    digits = _digit_bytes(iccid.str.zfill(_ICCID_DIGITS), _ICCID_DIGITS)
    doubled = digits[0::2]
    over_four = pl.sum_horizontal([byte > _ZERO + 4 for byte in doubled]).cast(pl.Int32)
    total = pl.sum_horizontal(digits) + pl.sum_horizontal(doubled) - 9 * over_four
    return _shape(ids.ICCID, iccid) & (total % 10 == 0)


_THAI_PIN_WEIGHTS = range(13, 1, -1)


def _thai_pin_valid(number: pl.Expr) -> pl.Expr:
    """13 digits, the last one (11 - sum of digit * weight 13..2, mod 11) mod 10."""
    digits = _digit_bytes(number, 13)
    weighted = pl.sum_horizontal(
        [byte * weight for byte, weight in zip(digits, _THAI_PIN_WEIGHTS, strict=False)]
    ) - _ZERO * sum(_THAI_PIN_WEIGHTS)
    check = digits[12] - _ZERO
    return number.str.contains(ids.THAI_PIN_PATTERN) & ((11 - weighted % 11) % 10 == check)


def _msisdn_in_operator_country(operators: dict[str, str]) -> pl.Expr:
    """For each operator's country with a plan of its own: the number is one
    of that country's, in canonical E.164 (other countries: false)."""
    condition = pl.lit(False)
    for country in sorted(set(operators.values())):
        numbers = ids.country_numbers(country)
        if numbers is None:
            continue
        own = [operator for operator, of in operators.items() if of == country]
        condition = condition | (pl.col("operator").is_in(_strings(own)) & _number_of(country))
    return condition


@functools.cache
def _number_of(country: str) -> pl.Expr:
    numbers = ids.country_numbers(country)
    assert numbers is not None
    msisdn = pl.col("msisdn")
    prefix = "+" + numbers.country_code
    national = msisdn.str.slice(len(prefix))
    length = national.str.len_chars()
    condition = msisdn.str.starts_with(prefix)
    if numbers.national_prefix is not None:
        # parse() might strip it: msisdn_verdicts asks phonenumbers then.
        condition = condition & ~national.str.contains(f"^(?:{numbers.national_prefix})")
    by_length = pl.lit(False)
    for digits, (general, types) in numbers.by_length.items():
        any_type = pl.any_horizontal([national.str.contains(f"^(?:{kind})$") for kind in types])
        by_length = by_length | (
            (length == digits) & national.str.contains(f"^(?:{general})$") & any_type
        )
    return condition & by_length
