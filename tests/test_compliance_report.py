"""`simguard report compliance`: per operator, what became of the notices
issued in the period, from the notices the worker wrote to a real store."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from factories import imsi

from simguard.cli import main
from simguard.compliance_report import summarise
from simguard.store import notices as notice_rows
from simguard.store import open_store
from simguard.timefmt import to_text
from workers.notices import notice_id_for

NOW = datetime.now(UTC).replace(microsecond=0)


def notice(operator: str, seed: int, status: str, **changes: Any) -> dict[str, Any]:
    issued = NOW - timedelta(days=2)
    sim = imsi(operator, seed)
    return {
        "notice_id": notice_id_for(sim, 1),
        "imsi": sim,
        "operator": operator,
        "action": "reverify",
        "reasons": ["UNREGISTERED"],
        "case_version": 1,
        "issued_at": to_text(issued),
        "deadline": to_text(issued + timedelta(hours=24)),
        "status": status,
        "notice_version": 2,
        "updated_at": to_text(NOW),
        "actioned_at": None,
        "closed_by": None,
        "on_time": None,
    } | changes


def actioned(operator: str, seed: int, hours: float) -> dict[str, Any]:
    issued = NOW - timedelta(days=2)
    return notice(
        operator,
        seed,
        "actioned",
        actioned_at=to_text(issued + timedelta(hours=hours)),
        closed_by="reverification",
        on_time=hours <= 24,
    )


def test_an_operators_on_time_rate_counts_actioned_and_overdue_notices_only() -> None:
    notices = [
        actioned("52003", 1, 2),
        actioned("52003", 2, 30),
        notice("52003", 3, "overdue"),
        notice("52003", 4, "open"),
        notice("52003", 5, "withdrawn"),
        actioned("52001", 6, 10),
    ]

    lines = {line.operator: line for line in summarise(notices)}

    late_operator = lines["52003"]
    assert (late_operator.issued, late_operator.actioned_on_time, late_operator.actioned_late) == (
        5,
        1,
        1,
    )
    assert (late_operator.overdue, late_operator.open, late_operator.withdrawn) == (1, 1, 1)
    assert late_operator.on_time_rate == pytest.approx(1 / 3)
    assert late_operator.median_hours_to_action == pytest.approx(16)
    assert lines["52001"].on_time_rate == 1.0


def test_the_report_reads_the_latest_version_of_each_notice_issued_in_the_period(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/simguard.db"
    store = open_store(url)
    recent_open = notice("52003", 1, "open", notice_version=1)
    recent_done = actioned("52003", 1, 3) | {"notice_version": 2}
    old = notice("52003", 2, "overdue", issued_at=to_text(NOW - timedelta(days=9)))
    with store.transaction() as tx:
        notice_rows.record(
            tx,
            [],
            [
                (
                    n["notice_id"],
                    n["notice_version"],
                    n["imsi"],
                    n["operator"],
                    n["status"],
                    n["issued_at"],
                    orjson.dumps(n).decode(),
                )
                for n in (recent_open, recent_done, old)
            ],
        )
    store.close()
    config = tmp_path / "simguard.toml"
    config.write_text("")

    result = CliRunner().invoke(
        main,
        ["report", "compliance", "--since", "7d", "--format", "csv"],
        env={"SIMGUARD_CONFIG": str(config), "SIMGUARD_DATABASE_URL": url},
    )

    assert result.exit_code == 0, result.output
    (line,) = csv.DictReader(io.StringIO(result.output))
    assert (line["operator"], line["issued"], line["actioned_on_time"], line["overdue"]) == (
        "52003",
        "1",
        "1",
        "0",
    )
