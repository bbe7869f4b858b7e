"""HIGH_CALL_VOLUME and STATIC_HIGH_VOLUME: a SIM's daily usage counters.

NBTC screens numbers with abnormal use: more than `high_call_volume_max_calls`
outgoing calls a day (100; such numbers were suspended from December 2023),
and dozens of calls a day from one place (`static_high_volume_min_calls`, 30,
with at least `static_high_volume_min_share` of them through the busiest cell)
on `static_high_volume_min_days` days (3) within
`static_high_volume_window_days` (7): a SIM box or a rack of a SIM farm,
which never moves and never stops.

Pure functions over the SIM's behaviour state; this module owns one key:

- ``"u"``: the SIM's reported days that meet either rule's daily condition,
  ``[day, outgoing_calls, top_cell_share]`` (days since the epoch, UTC),
  sorted, covering at most `horizon_days` up to the latest such day. An
  ordinary SIM never has it.

Order independence, as for HIGH_RISK_ROAMING (workers/rules/roaming.py): the
entries are the days of a set not older than a cutoff that only moves
forward, and a day is reported once (a second report of it is a duplicate or
a conflict, never applied), so the state, and the reasons read from it at a
given `now`, depend on the set of reports only.

Both reasons age out: they hold until the rule's window of days has passed
since the end of the last day that met it, as a run of days does for
HIGH_RISK_ROAMING.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.events import day_start
from schemas.reason_codes import ReasonCode
from simguard.settings import Rules
from workers.rules.sightings import DAY_US, from_micros, iso_date, to_micros, utc_day
from workers.state import Reason

HIGH_CALL_VOLUME = ReasonCode.HIGH_CALL_VOLUME.value
STATIC_HIGH_VOLUME = ReasonCode.STATIC_HIGH_VOLUME.value

ABNORMAL_DAYS = "u"
# As for roaming: a run of abnormal days stays remembered for four windows.
HORIZON_WINDOWS = 4

UsageDay = list[Any]


def horizon_days(rules: Rules) -> int:
    return HORIZON_WINDOWS * max(
        rules.high_call_volume_window_days, rules.static_high_volume_window_days
    )


def over_call_limit(calls: int, rules: Rules) -> bool:
    return calls > rules.high_call_volume_max_calls


def static_heavy(calls: int, top_cell_share: float, rules: Rules) -> bool:
    return (
        calls >= rules.static_high_volume_min_calls
        and top_cell_share >= rules.static_high_volume_min_share
    )


def is_abnormal(event: dict[str, Any], rules: Rules) -> bool:
    """Whether a day's report meets either rule's daily condition."""
    calls, share = int(event["outgoing_calls"]), float(event["top_cell_share"])
    return over_call_limit(calls, rules) or static_heavy(calls, share, rules)


def day_number(day: str) -> int:
    begins = day_start(day)
    if begins is None:
        raise ValueError(f"not a day: {day!r}")
    return utc_day(to_micros(begins))


def apply_usage(state: dict[str, Any], event: dict[str, Any], rules: Rules) -> dict[str, Any]:
    if not is_abnormal(event, rules):
        return state
    day = day_number(str(event["day"]))
    held: list[UsageDay] = state.get(ABNORMAL_DAYS, [])
    latest = max(day, held[-1][0]) if held else day
    oldest = latest - horizon_days(rules) + 1
    if day < oldest or any(entry[0] == day for entry in held):
        return state
    entry: UsageDay = [day, int(event["outgoing_calls"]), float(event["top_cell_share"])]
    kept = sorted([*(e for e in held if e[0] >= oldest), entry], key=lambda e: int(e[0]))
    return {**state, ABNORMAL_DAYS: kept}


def active_reasons(state: dict[str, Any], now: datetime, rules: Rules) -> dict[str, Reason]:
    reasons: dict[str, Reason] = {}
    for reason in (high_call_volume(state, now, rules), static_high_volume(state, now, rules)):
        if reason is not None:
            reasons[reason.code] = reason
    return reasons


def high_call_volume(state: dict[str, Any], now: datetime, rules: Rules) -> Reason | None:
    """More than the daily limit of outgoing calls on a day whose end is less
    than `high_call_volume_window_days` before `now`. `since` is the start of
    the first such day of the run (days with no gap of a window between them)."""
    days = _days_meeting(state, lambda calls, _: over_call_limit(calls, rules))
    window = rules.high_call_volume_window_days
    run = _current_run(days, now, window)
    if not run:
        return None
    evidence = {
        "days_over_limit": [iso_date(entry[0]) for entry in run],
        "max_outgoing_calls": max(int(entry[1]) for entry in run),
        "limit": rules.high_call_volume_max_calls,
    }
    return Reason(HIGH_CALL_VOLUME, _start_of(run[0][0]), evidence)


def static_high_volume(state: dict[str, Any], now: datetime, rules: Rules) -> Reason | None:
    """`min_days` static heavy days within `window_days` consecutive UTC days
    of the current run, the last of them ending less than `window_days`
    before `now`. `since` is the start of the day that completed the pattern."""
    days = _days_meeting(state, lambda calls, share: static_heavy(calls, share, rules))
    span = rules.static_high_volume_window_days
    run = _current_run(days, now, span)
    needed = rules.static_high_volume_min_days
    for first in range(len(run) - needed + 1):
        completing = run[first + needed - 1][0]
        if completing - run[first][0] < span:
            window = [entry for entry in run[first:] if entry[0] - run[first][0] < span]
            evidence = {
                "days": [iso_date(entry[0]) for entry in window],
                "min_outgoing_calls": min(int(entry[1]) for entry in window),
                "min_top_cell_share": min(float(entry[2]) for entry in window),
            }
            return Reason(STATIC_HIGH_VOLUME, _start_of(completing), evidence)
    return None


def _days_meeting(state: dict[str, Any], condition: Callable[[int, float], bool]) -> list[UsageDay]:
    return [e for e in state.get(ABNORMAL_DAYS, []) if condition(int(e[1]), float(e[2]))]


def _current_run(days: list[UsageDay], now: datetime, window: int) -> list[UsageDay]:
    """The days leading up to the last one without a gap of `window` days,
    when the last one ended less than `window` days before `now`; else none."""
    if not days or to_micros(now) >= _end_of(days[-1][0]) + window * DAY_US:
        return []
    start = len(days) - 1
    while start > 0 and days[start][0] - days[start - 1][0] <= window:
        start -= 1
    return days[start:]


def _start_of(day: int) -> datetime:
    return from_micros(day * DAY_US)


def _end_of(day: int) -> int:
    return (day + 1) * DAY_US


def next_wakeup(state: dict[str, Any], now: datetime, rules: Rules) -> datetime | None:
    """Each reason clears its window after the end of its last qualifying day;
    neither starts without a new report."""
    wakeups = []
    for reason, window, condition in (
        (
            high_call_volume(state, now, rules),
            rules.high_call_volume_window_days,
            lambda calls, _: over_call_limit(calls, rules),
        ),
        (
            static_high_volume(state, now, rules),
            rules.static_high_volume_window_days,
            lambda calls, share: static_heavy(calls, share, rules),
        ),
    ):
        if reason is not None:
            last = _days_meeting(state, condition)[-1][0]
            wakeups.append(from_micros(_end_of(last) + window * DAY_US))
    return min(wakeups, default=None)


def weights(rules: Rules) -> dict[str, int]:
    return {
        HIGH_CALL_VOLUME: rules.high_call_volume_weight,
        STATIC_HIGH_VOLUME: rules.static_high_volume_weight,
    }
