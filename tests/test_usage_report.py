"""`simguard report abnormal-usage`: per operator, the SIMs with abnormal use in
an ISO week, from the abnormal days the worker keeps in a real store."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from factories import imsi

from simguard.cli import main
from simguard.store import abnormal_usage, open_store
from simguard.usage_report import EPOCH, last_week, week_days

# 2026-W49 runs from Monday 2026-11-30 to Sunday 2026-12-06.
MONDAY = (date(2026, 11, 30) - EPOCH).days


def day_row(operator: str, seed: int, calls: int, share: float) -> dict[str, Any]:
    return {
        "imsi": imsi(operator, seed),
        "operator": operator,
        "outgoing_calls": calls,
        "distinct_called_numbers": calls // 2,
        "distinct_cells": 1,
        "top_cell_share": share,
    }


def run_report(tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "simguard.toml"
    config.write_text("")
    return CliRunner().invoke(
        main,
        ["report", "abnormal-usage", *args],
        env={
            "SIMGUARD_CONFIG": str(config),
            "SIMGUARD_DATABASE_URL": f"sqlite:///{tmp_path}/simguard.db",
        },
    )


@pytest.fixture
def week_in_store(tmp_path: Path) -> Path:
    store = open_store(f"sqlite:///{tmp_path}/simguard.db")
    with store.transaction() as tx:
        # SIM 1 of AIS: over the limit on two days of the week, from many cells.
        abnormal_usage.add(tx, MONDAY, day_row("52003", 1, 150, 0.3), "+66812345001")
        abnormal_usage.add(tx, MONDAY + 6, day_row("52003", 1, 101, 0.2), "+66812345001")
        # The Monday after: another week.
        abnormal_usage.add(tx, MONDAY + 7, day_row("52003", 1, 400, 0.2), "+66812345001")
        # SIM 2 of True: three static days under the limit, no number known.
        for offset in (1, 2, 4):
            abnormal_usage.add(tx, MONDAY + offset, day_row("52004", 2, 40, 0.95), None)
    store.close()
    return tmp_path


def test_the_week_lists_each_sim_by_operator_with_its_abnormal_days(week_in_store: Path) -> None:
    result = run_report(week_in_store, "--week", "2026-W49", "--format", "csv")

    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(io.StringIO(result.output)))
    assert [(line["operator"], line["imsi"]) for line in lines] == [
        ("52003", imsi("52003", 1)),
        ("52004", imsi("52004", 2)),
    ]
    ais, true = lines
    assert (ais["msisdn"], ais["days_over_call_limit"], ais["static_days"]) == (
        "+66812345001",
        "2",
        "0",
    )
    assert (ais["max_outgoing_calls"], ais["week_outgoing_calls"]) == ("150", "251")
    assert (true["msisdn"], true["days_over_call_limit"], true["static_days"]) == ("-", "0", "3")


def test_a_week_without_abnormal_days_is_a_header_only(week_in_store: Path) -> None:
    result = run_report(week_in_store, "--week", "2026-W47", "--format", "csv")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "operator,imsi,msisdn,days_over_call_limit,static_days,max_outgoing_calls,"
        "week_outgoing_calls,max_distinct_called_numbers,max_top_cell_share"
    ]


def test_the_table_aligns_one_line_per_sim(week_in_store: Path) -> None:
    result = run_report(week_in_store, "--week", "2026-W49")

    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split()[:3] == ["operator", "imsi", "msisdn"]
    assert [row.split()[1] for row in rows] == [imsi("52003", 1), imsi("52004", 2)]


@pytest.mark.parametrize("week", ["2026-49", "2025-W53", "2026-W00", "last"])
def test_a_week_that_is_not_an_iso_week_is_a_usage_error(week_in_store: Path, week: str) -> None:
    result = run_report(week_in_store, "--week", week)

    assert result.exit_code == 2
    assert "--week" in result.output


def test_iso_week_53_of_2026_ends_on_sunday_3_january_2027() -> None:
    first, last = week_days("2026-W53")
    assert (date(1970, 1, 1).toordinal() + last) == date(2027, 1, 3).toordinal()
    assert last - first == 6


def test_the_default_week_is_the_one_before_the_current() -> None:
    assert last_week(date(2026, 12, 7)) == "2026-W49"
