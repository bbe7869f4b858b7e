"""ACTIVATED_THEN_ABROAD and HIGH_RISK_ROAMING: a SIM carried to a high-risk country.

Pure functions over the SIM's behaviour state. This module owns three keys of
it; every time is whole microseconds since the epoch (see `sightings`):

- ``"a"``: the SIM's latest domestic activation times, sorted, at most
  `ACTIVATIONS_KEPT` of them.
- ``"f"``: the earliest high-risk sighting, ``[at, country, visited_plmn]``.
- ``"h"``: one entry per distinct UTC day with a high-risk sighting,
  ``[first_at, last_at, [countries]]``, sorted, covering at most the
  `horizon_days` up to the latest such day.

Bounds: ``"a"`` at most 8 times, ``"f"`` one sighting, ``"h"`` at most 4
roaming windows of days (28 by default), each naming at most the high-risk
countries: about 1.3 KB for a SIM seen in Cambodia every day for a month, and
a single activation time (about 20 bytes) for a SIM that never goes there.

Order independence: ``"a"`` is the top 8 of a set, ``"f"`` the minimum of one,
and ``"h"`` holds the days of a set that are not older than a cutoff that only
moves forward (an entry is dropped exactly when a later day pushes the cutoff
past it, and a sighting behind the cutoff changes nothing), so the state, and
the reasons read from it at a given `now`, depend on the set of events only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.reason_codes import ReasonCode
from simguard.settings import Rules
from simguard.timefmt import to_text
from workers.rules.sightings import (
    DAY_US,
    HOUR_US,
    Sighting,
    from_micros,
    iso_date,
    to_micros,
    utc_day,
)
from workers.state import Reason

ACTIVATED_THEN_ABROAD = ReasonCode.ACTIVATED_THEN_ABROAD.value
HIGH_RISK_ROAMING = ReasonCode.HIGH_RISK_ROAMING.value

ACTIVATIONS = "a"
FIRST_HIGH_RISK = "f"
HIGH_RISK_DAYS = "h"

# A SIM is activated once, or a few times when an operator recycles it; eight
# covers every real case while a flood of bogus activations cannot grow the state.
ACTIVATIONS_KEPT = 8
# How far back, in roaming windows, the high-risk days of a run are remembered.
# A run that qualified stays flagged while it continues (the contract), but only
# as long as it qualifies again within this horizon: a SIM that was in Cambodia
# for three days and then crosses back for one day every six days clears four
# weeks on. Mule SIMs in a scam compound are seen daily and never get there.
HORIZON_WINDOWS = 4


def horizon_days(rules: Rules) -> int:
    return HORIZON_WINDOWS * rules.high_risk_roaming_window_days


def is_domestic_activation(event: dict[str, Any], rules: Rules) -> bool:
    """Domestic unless `location.country` names another country (the contract)."""
    location = event.get("location") or {}
    country = location.get("country")
    return not country or country == rules.home_country


def apply_activation(state: dict[str, Any], event: dict[str, Any], rules: Rules) -> dict[str, Any]:
    if not is_domestic_activation(event, rules):
        return state
    activated_at = to_micros(event["activated_at"])
    held: list[int] = state.get(ACTIVATIONS, [])
    if activated_at in held:
        return state
    latest = sorted([*held, activated_at])[-ACTIVATIONS_KEPT:]
    return {**state, ACTIVATIONS: latest}


def observe(state: dict[str, Any], seen: Sighting, rules: Rules) -> dict[str, Any]:
    if seen.country not in rules.high_risk_countries:
        return state
    changed = dict(state)
    first = [seen.at_us, seen.country, seen.visited_plmn]
    held = state.get(FIRST_HIGH_RISK)
    # Ties on the time are broken by country and network, so the evidence
    # does not depend on which of two simultaneous sightings came first.
    if held is None or first < held:
        changed[FIRST_HIGH_RISK] = first
    changed[HIGH_RISK_DAYS] = _with_day(
        state.get(HIGH_RISK_DAYS, []), seen.at_us, seen.country, horizon_days(rules)
    )
    return changed


def _with_day(days: list[list[Any]], at_us: int, country: str, horizon: int) -> list[list[Any]]:
    day = utc_day(at_us)
    latest_day = max(day, utc_day(days[-1][0])) if days else day
    oldest_day = latest_day - horizon + 1
    if day < oldest_day:
        return days
    kept = [entry for entry in days if utc_day(entry[0]) >= oldest_day]
    for index, (first_at, last_at, countries) in enumerate(kept):
        if utc_day(first_at) == day:
            kept[index] = [
                min(first_at, at_us),
                max(last_at, at_us),
                sorted({*countries, country}),
            ]
            return kept
    kept.append([at_us, at_us, [country]])
    kept.sort(key=lambda entry: int(entry[0]))
    return kept


def active_reasons(state: dict[str, Any], now: datetime, rules: Rules) -> dict[str, Reason]:
    reasons: dict[str, Reason] = {}
    abroad = activated_then_abroad(state, rules)
    if abroad is not None:
        reasons[abroad.code] = abroad
    roaming = high_risk_roaming(state, now, rules)
    if roaming is not None:
        reasons[roaming.code] = roaming
    return reasons


def activated_then_abroad(state: dict[str, Any], rules: Rules) -> Reason | None:
    """The first high-risk sighting lies 0 to 72 h (inclusive) after a domestic activation.

    The activation that counts is the latest one at or before that sighting.
    History: no clock clears it. A backfilled sighting that moves the first
    high-risk sighting earlier (out of the window) does take it away, since
    the SIM's history then never had the pattern.
    """
    first = state.get(FIRST_HIGH_RISK)
    activations: list[int] = state.get(ACTIVATIONS, [])
    if first is None:
        return None
    first_at, country, visited_plmn = first
    before = [at for at in activations if at <= first_at]
    if not before:
        return None
    activated_at = before[-1]
    if first_at - activated_at > rules.activated_then_abroad_window_hours * HOUR_US:
        return None
    evidence = {
        "activated_at": to_text(from_micros(activated_at)),
        "first_high_risk_at": to_text(from_micros(first_at)),
        "country": country,
        "visited_plmn": visited_plmn,
        "hours_after_activation": round((first_at - activated_at) / HOUR_US, 2),
    }
    return Reason(ACTIVATED_THEN_ABROAD, from_micros(first_at), evidence)


def high_risk_roaming(state: dict[str, Any], now: datetime, rules: Rules) -> Reason | None:
    """Seen in high-risk countries on `min_days` distinct UTC days within
    `window_days` consecutive UTC days, and last seen there less than
    `window_days` days before `now`.

    The days must belong to the current run: the sightings leading up to the
    last one without a gap of `window_days` days. A gap that long cleared an
    earlier pattern, so a single day trip after it raises nothing, and an old
    backfilled pattern is not raised (it would already have cleared).
    `since` is the first sighting on the day that completed the pattern.
    """
    days: list[list[Any]] = state.get(HIGH_RISK_DAYS, [])
    if not days:
        return None
    quiet_us = rules.high_risk_roaming_window_days * DAY_US
    last_seen_at = int(days[-1][1])
    if to_micros(now) - last_seen_at >= quiet_us:
        return None
    start = len(days) - 1
    while start > 0 and days[start][0] - days[start - 1][1] < quiet_us:
        start -= 1
    run = days[start:]
    run_days = [utc_day(entry[0]) for entry in run]
    needed = rules.high_risk_roaming_min_days
    span = rules.high_risk_roaming_window_days
    for first in range(len(run) - needed + 1):
        completing = first + needed - 1
        if run_days[completing] - run_days[first] < span:
            window = [day for day in run_days[first:] if day - run_days[first] < span]
            countries = sorted({country for entry in run for country in entry[2]})
            evidence = {
                "countries": countries,
                "days": [iso_date(day) for day in window],
                "last_seen_at": to_text(from_micros(last_seen_at)),
            }
            return Reason(HIGH_RISK_ROAMING, from_micros(run[completing][0]), evidence)
    return None


def next_wakeup(state: dict[str, Any], now: datetime, rules: Rules) -> datetime | None:
    """HIGH_RISK_ROAMING clears `window_days` after the last high-risk sighting;
    nothing here can start without a new event."""
    if high_risk_roaming(state, now, rules) is None:
        return None
    last_seen_at = int(state[HIGH_RISK_DAYS][-1][1])
    return from_micros(last_seen_at + rules.high_risk_roaming_window_days * DAY_US)


def weights(rules: Rules) -> dict[str, int]:
    return {
        ACTIVATED_THEN_ABROAD: rules.activated_then_abroad_weight,
        HIGH_RISK_ROAMING: rules.high_risk_roaming_weight,
    }
