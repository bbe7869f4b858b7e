"""BORDER_CELL_DWELL: a SIM that lives on the border cells of its home country.

Mule SIMs are often used from the home side of the border, on cells that reach
into Cambodia or Myanmar, rather than roaming. Pure functions over the SIM's
behaviour state; this module owns its key ``"b"``, per-UTC-day counts of the
domestic observations that carry a `cell_id`::

    [latest_day, [observations...], [border_observations...], [cells], [cell_masks...]]

Entry i of the per-day lists belongs to day ``latest_day - i`` (days since the
epoch); bit j of a day's mask says that ``cells[j]`` is among the border cells
kept for that day, so a cell seen every day is written once. Trailing zeros are
dropped and the last three lists are left out while there are no border
observations: an ordinary SIM that never touches a border cell costs about 45
bytes, one that dwells on five border cells about 150.

Day resolution: the window is the last `border_dwell_window_days` UTC days,
today included, so observations age out at UTC midnight, and `since` is the
start of the first day in the window with border observations. A per-day
count needs 8 numbers a week where per-observation times would need hundreds.

Bounds: `window_days` + 1 days (one more than the window, for a worker clock a
few minutes behind the latest observation across midnight), each with two
counts and at most `BORDER_CELLS_KEPT_PER_DAY` cell ids.

Order independence: counts are sums, each day keeps the smallest few border
cell ids of a set, and days are dropped only behind a cutoff that moves with
the latest day, so the state depends on the set of observations only.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

from schemas.reason_codes import ReasonCode
from simguard.settings import Rules
from workers.rules.sightings import (
    DAY_US,
    Sighting,
    from_micros,
    iso_date,
    to_micros,
    utc_day,
)
from workers.state import Reason

BORDER_CELL_DWELL = ReasonCode.BORDER_CELL_DWELL.value

BORDER_DAYS = "b"

# Evidence names a sample of the border cells: the smallest ids seen in the
# window, a choice that depends on the observations and not on their order.
# Each day keeps as many as the evidence shows, which makes the sample exact.
BORDER_CELLS_IN_EVIDENCE = 5
BORDER_CELLS_KEPT_PER_DAY = BORDER_CELLS_IN_EVIDENCE

# observations, border observations, smallest border cell ids of the day
DayCounts = tuple[int, int, tuple[str, ...]]


def observe(state: dict[str, Any], seen: Sighting, rules: Rules) -> dict[str, Any]:
    """Count a domestic observation with a cell; any other counts for no border rule."""
    if seen.country != rules.home_country or seen.cell_id is None:
        return state
    packed: list[Any] = state.get(BORDER_DAYS, [])
    day = utc_day(seen.at_us)
    is_border = seen.cell_id in rules.border_cells
    if not is_border and len(packed) == 2:
        counts = _counted_inland(packed, day, rules.border_dwell_window_days + 1)
        return state if counts is None else {**state, BORDER_DAYS: counts}
    days = unpack(packed)
    oldest_day = max([day, *days]) - rules.border_dwell_window_days
    if day < oldest_day:
        return state
    kept = {kept_day: counts for kept_day, counts in days.items() if kept_day >= oldest_day}
    observations, border_observations, cells = kept.get(day, (0, 0, ()))
    if is_border:
        border_observations += 1
        cells = tuple(sorted({*cells, seen.cell_id})[:BORDER_CELLS_KEPT_PER_DAY])
    kept[day] = (observations + 1, border_observations, cells)
    return {**state, BORDER_DAYS: pack(kept)}


def _counted_inland(packed: list[Any], day: int, days_kept: int) -> list[Any] | None:
    """`packed` (no border observations yet) with one more inland observation on
    `day`: the same result as unpack/pack, without them, for the common case."""
    latest_day, observations = packed
    if day > latest_day:
        shifted = [1, *[0] * (day - latest_day - 1), *observations][:days_kept]
        return [day, _without_trailing(shifted)]
    age = latest_day - day
    if age >= days_kept:
        return None
    counts = [*observations, *[0] * (age + 1 - len(observations))]
    counts[age] += 1
    return [latest_day, counts]


def unpack(packed: list[Any]) -> dict[int, DayCounts]:
    if not packed:
        return {}
    latest_day, observations, *rest = packed
    borders: list[int] = rest[0] if rest else []
    cells: list[str] = rest[1] if len(rest) > 1 else []
    masks: list[int] = rest[2] if len(rest) > 2 else []
    days: dict[int, DayCounts] = {}
    for age, count in enumerate(observations):
        if count:
            mask = masks[age] if age < len(masks) else 0
            days[latest_day - age] = (
                count,
                borders[age] if age < len(borders) else 0,
                tuple(cell for bit, cell in enumerate(cells) if mask >> bit & 1),
            )
    return days


def pack(days: dict[int, DayCounts]) -> list[Any]:
    if not days:
        return []
    latest_day = max(days)
    ordered = [days.get(latest_day - age, (0, 0, ())) for age in range(latest_day - min(days) + 1)]
    packed: list[Any] = [latest_day, _without_trailing([counts[0] for counts in ordered])]
    borders = _without_trailing([counts[1] for counts in ordered])
    if borders:
        cells = sorted({cell for counts in ordered for cell in counts[2]})
        bits = {cell: 1 << index for index, cell in enumerate(cells)}
        masks = [sum(bits[cell] for cell in counts[2]) for counts in ordered]
        packed += [borders, cells, _without_trailing(masks)]
    return packed


def _without_trailing(values: list[Any]) -> list[Any]:
    end = len(values)
    while end and not values[end - 1]:
        end -= 1
    return values[:end]


def active_reasons(state: dict[str, Any], now: datetime, rules: Rules) -> dict[str, Reason]:
    packed: list[Any] = state.get(BORDER_DAYS, [])
    if len(packed) <= 2:
        return {}  # no border observation kept: no share to reach
    reason = border_cell_dwell(unpack(packed), utc_day(to_micros(now)), rules)
    return {reason.code: reason} if reason is not None else {}


def border_cell_dwell(days: dict[int, DayCounts], today: int, rules: Rules) -> Reason | None:
    """At least `min_observations` in the window, at least `min_share` of them on
    border cells (both bounds inclusive: 20 observations, 80 %)."""
    first_day = today - rules.border_dwell_window_days + 1
    window = {day: counts for day, counts in days.items() if day >= first_day}
    observations = sum(counts[0] for counts in window.values())
    border_observations = sum(counts[1] for counts in window.values())
    if observations < rules.border_dwell_min_observations or observations == 0:
        return None
    # Compared as fractions: whether 16 of 20 reaches 0.8 must not hang on float rounding.
    share = Fraction(border_observations, observations)
    if share < Fraction(str(rules.border_dwell_min_share)):
        return None
    cells = sorted({cell for counts in window.values() for cell in counts[2]})
    dwelling_since = min(day for day, counts in window.items() if counts[1])
    evidence = {
        "observations": observations,
        "border_observations": border_observations,
        "share": round(float(share), 4),
        "border_cells": cells[:BORDER_CELLS_IN_EVIDENCE],
        "window_start": iso_date(first_day),
    }
    return Reason(BORDER_CELL_DWELL, from_micros(dwelling_since * DAY_US), evidence)


def next_wakeup(state: dict[str, Any], now: datetime, rules: Rules) -> datetime | None:
    """The next UTC midnight at which ageing alone raises or clears the reason.

    Ageing can do either: old border days leaving the window clear it, old
    ordinary days leaving it can lift the share over the line. A SIM with no
    border observation can do neither, which keeps wake-ups to the few SIMs
    near a border.
    """
    packed: list[Any] = state.get(BORDER_DAYS, [])
    if len(packed) <= 2:
        return None
    days = unpack(packed)
    today = utc_day(to_micros(now))
    active = border_cell_dwell(days, today, rules) is not None
    for ahead in range(1, rules.border_dwell_window_days + 2):
        if (border_cell_dwell(days, today + ahead, rules) is not None) != active:
            return from_micros((today + ahead) * DAY_US)
    return None


def weights(rules: Rules) -> dict[str, int]:
    return {BORDER_CELL_DWELL: rules.border_dwell_weight}
