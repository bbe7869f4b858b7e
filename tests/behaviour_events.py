"""Events as the worker hands them to the behaviour rules (loaded: aware datetimes),
the packaged rules, and a replay that persists the state between events the way
the worker does between batches."""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from simguard.settings import Rules, load_settings
from workers import behaviour_hooks
from workers.state import Reason

OPERATOR = "52003"
IMSI = "520031234567890"
# A Monday, 00:00 UTC: day arithmetic in the tests reads as calendar days.
START = datetime(2026, 3, 2, tzinfo=UTC)
# One network per country, by MCC (python-stdnum's table decides the country).
PLMN = {
    "TH": "52003",
    "KH": "45606",
    "MM": "41401",
    "LA": "45701",
    "MY": "50212",
    "SG": "52501",
    "VN": "45204",
    "JP": "44010",
    "US": "310260",
}
INTERNATIONAL_PLMN = "90112"  # in-flight and maritime networks: no country
BORDER_CELLS = frozenset({"TH-SAKAEO-B1", "TH-SAKAEO-B2", "TH-TAK-B1", "TH-TAK-B2", "TH-NK-B1"})


def packaged_rules(**changes: Any) -> Rules:
    """The packaged default rules (no local config), with border cells and `changes`."""
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder, "empty.toml")
        empty.write_text("")
        rules = load_settings(environ={"SIMGUARD_CONFIG": str(empty)}).rules
    return dataclasses.replace(rules, border_cells=BORDER_CELLS, **changes)


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return START + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def activation(
    when: datetime,
    country: str | None = None,
    dealer_id: str | None = None,
    imsi: str = IMSI,
    imei: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "operator": OPERATOR,
        "imsi": imsi,
        "iccid": "89660312345678901238",
        "msisdn": "+66812345678",
        "activated_at": when,
        "channel": "dealer" if dealer_id else "retail",
    }
    if dealer_id is not None:
        event["dealer_id"] = dealer_id
    if country is not None:
        event["location"] = {"country": country}
    if imei is not None:
        event["imei"] = imei
    return event


def observation(
    when: datetime,
    country: str,
    cell_id: str | None = None,
    plmn: str | None = None,
    imei: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "operator": OPERATOR,
        "imsi": IMSI,
        "observed_at": when,
        "visited_plmn": plmn or PLMN[country],
    }
    if cell_id is not None:
        event["cell_id"] = cell_id
    if imei is not None:
        event["imei"] = imei
    return event


def usage(day: int, calls: int, top_cell_share: float = 0.3, cells: int = 6) -> dict[str, Any]:
    """The SIM's usage report for the day `day` days after START."""
    return {
        "event_id": str(uuid.uuid4()),
        "operator": OPERATOR,
        "imsi": IMSI,
        "day": (START + timedelta(days=day)).date().isoformat(),
        "outgoing_calls": calls,
        "distinct_called_numbers": calls,
        "distinct_cells": cells,
        "top_cell_share": top_cell_share,
    }


def replay(
    events: Iterable[dict[str, Any]], rules: Rules, state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Apply events in the given order, through a JSON round trip after each."""
    current: dict[str, Any] = {} if state is None else state
    for event in events:
        if "activated_at" in event:
            current = behaviour_hooks.apply_activation(current, event, rules)
        elif "day" in event:
            current = behaviour_hooks.apply_usage(current, event, rules)
        else:
            current = behaviour_hooks.apply_observation(current, event, rules)
        current = orjson.loads(orjson.dumps(current))
    return current


def reasons_after(
    events: Iterable[dict[str, Any]], now: datetime, rules: Rules
) -> dict[str, Reason]:
    return behaviour_hooks.active_reasons(replay(events, rules), now, rules)
