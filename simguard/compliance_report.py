"""The regulator's compliance report: per operator, what became of the
notices issued in a period (`simguard report compliance --since 7d`).

A notice counts once, as its latest version says: actioned on time, actioned
late, overdue (still waiting past its deadline), open (still within it), or
withdrawn (the case cleared, or was dismissed, before anything was needed).
The on-time rate is over the notices whose outcome is known: actioned, or
overdue; a notice still open or withdrawn says nothing yet about the operator.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from simguard import report_format
from simguard.store import Store
from simguard.store import notices as notice_rows
from simguard.timefmt import from_text, to_text


@dataclass(frozen=True)
class OperatorCompliance:
    operator: str
    issued: int
    actioned_on_time: int
    actioned_late: int
    overdue: int
    open: int
    withdrawn: int
    # Of the notices actioned or overdue, the share actioned by the deadline.
    on_time_rate: float | None
    median_hours_to_action: float | None


def summarise(notices: Iterable[Mapping[str, Any]]) -> list[OperatorCompliance]:
    """One line per operator, in PLMN id order, from each notice's latest version."""
    by_operator: dict[str, list[Mapping[str, Any]]] = {}
    for notice in notices:
        by_operator.setdefault(notice["operator"], []).append(notice)
    return [_line(operator, by_operator[operator]) for operator in sorted(by_operator)]


def _line(operator: str, notices: list[Mapping[str, Any]]) -> OperatorCompliance:
    actioned = [n for n in notices if n["status"] == "actioned"]
    on_time = sum(1 for n in actioned if n.get("on_time"))
    overdue = sum(1 for n in notices if n["status"] == "overdue")
    judged = len(actioned) + overdue
    hours = [
        (from_text(n["actioned_at"]) - from_text(n["issued_at"])).total_seconds() / 3600
        for n in actioned
        if n.get("actioned_at")
    ]
    return OperatorCompliance(
        operator=operator,
        issued=len(notices),
        actioned_on_time=on_time,
        actioned_late=len(actioned) - on_time,
        overdue=overdue,
        open=sum(1 for n in notices if n["status"] == "open"),
        withdrawn=sum(1 for n in notices if n["status"] == "withdrawn"),
        on_time_rate=on_time / judged if judged else None,
        median_hours_to_action=statistics.median(hours) if hours else None,
    )


def compliance(store: Store, since: datetime) -> list[OperatorCompliance]:
    with store.reading() as tx:
        return summarise(notice_rows.issued_since(tx, to_text(since)))


COLUMNS = tuple(f.name for f in fields(OperatorCompliance))


def as_csv(lines: Iterable[OperatorCompliance]) -> str:
    return report_format.as_csv(COLUMNS, lines)


def as_table(lines: list[OperatorCompliance]) -> str:
    return report_format.as_table(COLUMNS, lines)
