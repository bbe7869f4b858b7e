"""NBTC's weekly list of numbers with abnormal use, operator by operator
(`simguard report abnormal-usage --week 2026-W49`).

One line per SIM with at least one abnormal day in the ISO week (Monday to
Sunday, UTC days): how many of its days were over the daily call limit
(HIGH_CALL_VOLUME's condition) and how many were static heavy days
(STATIC_HIGH_VOLUME's), judged by the rules in force when the report is made,
with the week's largest counters. From the `abnormal_usage` table: days that
met neither condition when they were applied are not kept, so a threshold
lowered since then does not bring them back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any

from simguard import report_format
from simguard.settings import Rules
from simguard.store import Store, abnormal_usage

EPOCH = date(1970, 1, 1)
_ISO_WEEK = re.compile(r"(?P<year>[0-9]{4})-W(?P<week>[0-9]{2})")


@dataclass(frozen=True)
class AbnormalSim:
    operator: str
    imsi: str
    msisdn: str | None
    days_over_call_limit: int
    static_days: int
    max_outgoing_calls: int
    week_outgoing_calls: int
    max_distinct_called_numbers: int
    max_top_cell_share: float


COLUMNS = tuple(f.name for f in fields(AbnormalSim))


def week_days(week: str) -> tuple[int, int]:
    """The first and last UTC day (days since the epoch) of an ISO week "2026-W49"."""
    match = _ISO_WEEK.fullmatch(week)
    if match is None:
        raise ValueError(f"not an ISO week such as 2026-W49: {week!r}")
    try:
        monday = date.fromisocalendar(int(match["year"]), int(match["week"]), 1)
    except ValueError as exc:
        raise ValueError(f"{week}: {exc}") from exc
    first = (monday - EPOCH).days
    return first, first + 6


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def last_week(today: date) -> str:
    return week_of(today - timedelta(days=7))


def summarise(rows: Iterable[Mapping[str, Any]], rules: Rules) -> list[AbnormalSim]:
    """One line per SIM, by operator and IMSI (the rows' order: store.between)."""
    by_sim: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_sim.setdefault((str(row["operator"]), str(row["imsi"])), []).append(row)
    return [_line(operator, imsi, days, rules) for (operator, imsi), days in sorted(by_sim.items())]


def _line(operator: str, imsi: str, days: list[Mapping[str, Any]], rules: Rules) -> AbnormalSim:
    calls = [int(day["outgoing_calls"]) for day in days]
    shares = [float(day["top_cell_share"]) for day in days]
    return AbnormalSim(
        operator=operator,
        imsi=imsi,
        msisdn=next((str(d["msisdn"]) for d in reversed(days) if d["msisdn"]), None),
        days_over_call_limit=sum(1 for c in calls if c > rules.high_call_volume_max_calls),
        static_days=sum(
            1
            for c, share in zip(calls, shares, strict=True)
            if c >= rules.static_high_volume_min_calls
            and share >= rules.static_high_volume_min_share
        ),
        max_outgoing_calls=max(calls),
        week_outgoing_calls=sum(calls),
        max_distinct_called_numbers=max(int(d["distinct_called_numbers"]) for d in days),
        max_top_cell_share=max(shares),
    )


def abnormal_usage_report(store: Store, week: str, rules: Rules) -> list[AbnormalSim]:
    first, last = week_days(week)
    with store.reading() as tx:
        return summarise(abnormal_usage.between(tx, first, last), rules)


def as_csv(lines: Iterable[AbnormalSim]) -> str:
    return report_format.as_csv(COLUMNS, lines)


def as_table(lines: Iterable[AbnormalSim]) -> str:
    return report_format.as_table(COLUMNS, lines)
