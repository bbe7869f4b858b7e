"""UsageSchema: one SIM's outgoing calls, called numbers and cells on one UTC day."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from factories import OMIT, error_paths, imsi, valid_usage
from marshmallow import ValidationError

from schemas import UsageSchema

# 03:00 UTC on 2026-12-07: the day of the clock and the week before it are reportable.
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _load(**overrides: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = UsageSchema(clock=lambda: NOW).load(
        valid_usage(day="2026-12-06", **overrides)
    )
    return loaded


INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("day missing", {"day": OMIT}, ("day",)),
    ("day as a timestamp", {"day": "2026-12-06T00:00:00Z"}, ("day",)),
    ("day of month 13", {"day": "2026-13-01"}, ("day",)),
    ("day without dashes", {"day": "20261206"}, ("day",)),
    ("day not begun", {"day": "2026-12-08"}, ("day",)),
    ("day ended seven days and three hours ago", {"day": "2026-11-29"}, ("day",)),
    ("calls as a string", {"outgoing_calls": "12"}, ("outgoing_calls",)),
    ("calls as a fraction", {"outgoing_calls": 1.5}, ("outgoing_calls",)),
    ("calls as true", {"outgoing_calls": True}, ("outgoing_calls",)),
    ("negative calls", {"outgoing_calls": -1}, ("outgoing_calls",)),
    ("calls beyond one every two seconds", {"outgoing_calls": 50_001}, ("outgoing_calls",)),
    ("negative cells", {"distinct_cells": -1}, ("distinct_cells",)),
    (
        "more called numbers than calls",
        {"outgoing_calls": 3, "distinct_called_numbers": 4},
        ("distinct_called_numbers",),
    ),
    ("share above one", {"top_cell_share": 1.01}, ("top_cell_share",)),
    ("share below zero", {"top_cell_share": -0.1}, ("top_cell_share",)),
    ("share as a string", {"top_cell_share": "0.5"}, ("top_cell_share",)),
    ("share as true", {"top_cell_share": True}, ("top_cell_share",)),
    ("share missing", {"top_cell_share": OMIT}, ("top_cell_share",)),
    ("imsi of another operator", {"imsi": imsi("52004", 9)}, ("imsi",)),
    ("a field outside the contract", {"incoming_calls": 3}, ("incoming_calls",)),
]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [pytest.param(overrides, path, id=name) for name, overrides, path in INVALID_FIELDS],
)
def test_invalid_field_is_reported_at_its_path_only(
    overrides: dict[str, Any], path: tuple[str, ...]
) -> None:
    event = valid_usage(day="2026-12-06")
    event.update(overrides)
    event = {k: v for k, v in event.items() if v is not OMIT}
    with pytest.raises(ValidationError) as raised:
        UsageSchema(clock=lambda: NOW).load(event)
    assert error_paths(raised.value) == {path}


def test_a_valid_day_loads_as_sent() -> None:
    loaded = _load(outgoing_calls=140, distinct_called_numbers=140, top_cell_share=1)
    assert loaded["day"] == "2026-12-06"
    assert loaded["outgoing_calls"] == 140
    assert loaded["top_cell_share"] == 1.0


@pytest.mark.parametrize("day", ["2026-12-07", "2026-11-30"])
def test_today_and_a_day_that_ended_less_than_seven_days_ago_are_accepted(day: str) -> None:
    event = valid_usage(day=day)
    assert UsageSchema(clock=lambda: NOW).load(event)["day"] == day


def test_a_day_without_calls_has_no_called_numbers_and_any_share() -> None:
    loaded = _load(outgoing_calls=0, distinct_called_numbers=0, distinct_cells=0, top_cell_share=0)
    assert loaded["outgoing_calls"] == 0
