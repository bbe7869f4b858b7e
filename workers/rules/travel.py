"""IMPOSSIBLE_TRAVEL: seen in two countries without a land border between them
less than `impossible_travel_max_minutes` apart (a cloned SIM, or a SIM box
relaying calls).

Pure functions over the SIM's behaviour state; this module owns two keys:

- ``"t"``: recent observations ``[at, visited_plmn]`` or ``[at, visited_plmn,
  cell_id]`` (time in microseconds since the epoch), sorted. Per country and
  per bucket of `max_minutes` only the earliest and the latest are kept, and
  only buckets from `max_minutes` + `LATENESS_ALLOWANCE_US` before the latest
  observation on.
- ``"x"``: the first pair found, kept forever once found: the reason is history,
  and its observations leave ``"t"`` within hours.

Why thinning loses no pair: if a point p and some observation of country C lie
less than `max_minutes` apart, then so do p and one of the two kept points of
C's bucket (p outside the bucket's span: the kept end on p's side is nearer;
p inside it: an end is at most half a bucket, under `max_minutes`, away).
Applied to both sides of a pair, a pair among the observations is a pair among
the kept points, so a pair is found whatever order the observations come in.

Bounds: at most 2 points per country per bucket over about three buckets:
an ordinary domestic SIM keeps 2 to 4 points, about 150 bytes.

Order independence: the kept points are the ends of every bucket not older
than the cutoff, a function of the set of observations, and the pair the
evidence names is the earliest-completed pair among them. An observation in a
bucket behind the cutoff is ignored: comparing it only with what happens to be
remembered would make the answer depend on arrival order, and keeping
everything would not be bounded. So a SIM's answer is the same in any arrival
order as long as none of its observations arrives more than
`LATENESS_ALLOWANCE_US` behind its latest one; backfills sent in time order
lose nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.reason_codes import ReasonCode
from simguard.settings import Rules
from simguard.timefmt import to_text
from workers.rules.sightings import (
    HOUR_US,
    MINUTE_US,
    Sighting,
    country_of,
    from_micros,
)
from workers.state import Reason

IMPOSSIBLE_TRAVEL = ReasonCode.IMPOSSIBLE_TRAVEL.value

RECENT_POINTS = "t"
FOUND_PAIR = "x"

# How far behind the SIM's latest observation another observation may arrive
# and still be compared with everything it could pair with. Operators' feeds
# run minutes behind, retries an hour at worst; old backfills come in order.
LATENESS_ALLOWANCE_US = HOUR_US

Point = list[Any]


def observe(state: dict[str, Any], seen: Sighting, rules: Rules) -> dict[str, Any]:
    limit_us = rules.impossible_travel_max_minutes * MINUTE_US
    points: list[Point] = state.get(RECENT_POINTS, [])
    latest_at = max(seen.at_us, points[-1][0]) if points else seen.at_us
    oldest_bucket = (latest_at - limit_us - LATENESS_ALLOWANCE_US) // limit_us
    bucket = seen.at_us // limit_us
    if bucket < oldest_bucket:
        return state
    point: Point = [seen.at_us, seen.visited_plmn]
    if seen.cell_id is not None:
        point.append(seen.cell_id)
    others: list[Point] = []
    same_bucket = [point]
    pairs_with_new = False
    for held in points:
        held_bucket = held[0] // limit_us
        if held_bucket < oldest_bucket:
            continue
        held_country = country_of(held[1])
        if held_bucket == bucket and held_country == seen.country:
            same_bucket.append(held)
        else:
            others.append(held)
        if abs(held[0] - seen.at_us) < limit_us and held_country is not None:
            pairs_with_new = pairs_with_new or not rules.adjacent(held_country, seen.country)
    earliest, latest = min(same_bucket), max(same_bucket)
    ends = [earliest] if earliest == latest else [earliest, latest]
    kept = sorted([*others, *ends])
    changed = {**state, RECENT_POINTS: kept}
    if pairs_with_new and FOUND_PAIR not in state:
        # The new point may itself be thinned away; the argument above says a
        # pair then remains among the kept points, and the earliest is recorded.
        found = earliest_pair(kept, limit_us, rules)
        if found is not None:
            changed[FOUND_PAIR] = list(found)
    return changed


def _impossible(first: Point, second: Point, limit_us: int, rules: Rules) -> bool:
    if abs(first[0] - second[0]) >= limit_us:
        return False
    first_country = country_of(first[1])
    second_country = country_of(second[1])
    if first_country is None or second_country is None:
        return False
    return not rules.adjacent(first_country, second_country)


def earliest_pair(points: list[Point], limit_us: int, rules: Rules) -> tuple[Point, Point] | None:
    """The pair completed first (then the closest), among time-sorted points."""
    for later_index, later in enumerate(points):
        for earlier in reversed(points[:later_index]):
            if later[0] - earlier[0] >= limit_us:
                break
            if _impossible(earlier, later, limit_us, rules):
                return earlier, later
    return None


def active_reasons(state: dict[str, Any], now: datetime, rules: Rules) -> dict[str, Reason]:
    reason = impossible_travel(state, rules)
    return {reason.code: reason} if reason is not None else {}


def impossible_travel(state: dict[str, Any], rules: Rules) -> Reason | None:
    """History: once found, never cleared.

    The pair named is the earliest among the remembered observations while
    they are remembered (a function of the events), and the recorded pair after.
    """
    limit_us = rules.impossible_travel_max_minutes * MINUTE_US
    pair = earliest_pair(state.get(RECENT_POINTS, []), limit_us, rules)
    if pair is None:
        recorded = state.get(FOUND_PAIR)
        if recorded is None:
            return None
        pair = (recorded[0], recorded[1])
    earlier, later = pair
    evidence = {
        "first": _describe(earlier),
        "second": _describe(later),
        "minutes_apart": round((later[0] - earlier[0]) / MINUTE_US, 2),
    }
    return Reason(IMPOSSIBLE_TRAVEL, from_micros(later[0]), evidence)


def _describe(point: Point) -> dict[str, Any]:
    return {
        "country": country_of(point[1]),
        "visited_plmn": point[1],
        "observed_at": to_text(from_micros(point[0])),
        "cell_id": point[2] if len(point) > 2 else None,
    }


def next_wakeup(state: dict[str, Any], now: datetime, rules: Rules) -> datetime | None:
    """Never: the reason neither starts nor ends on the clock."""
    return None


def weights(rules: Rules) -> dict[str, int]:
    return {IMPOSSIBLE_TRAVEL: rules.impossible_travel_weight}
