"""`simguard bench --quick` runs every benchmark end to end and writes its
results. Smoke only: the figures depend on the machine, so no timing is
asserted, only that every row got a number."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from postgres_server import PostgresServer

from bench import events

REPO_ROOT = Path(__file__).resolve().parents[1]


def _figure_rows(results: str) -> list[list[str]]:
    table = results.split("## Figures", 1)[1].split("\n\n", 2)[1]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| ")
    ]
    return rows[1:]  # after the header


def _quick_bench(tmp_path: Path, *options: str, timeout: float) -> str:
    """`python -m bench --quick OPTIONS`: the RESULTS.md it wrote."""
    out = tmp_path / "RESULTS.md"
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *options, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return out.read_text()


@pytest.mark.timeout(900)
def test_quick_bench_gives_every_figure_a_number_and_writes_results(tmp_path: Path) -> None:
    results = _quick_bench(tmp_path, timeout=850)
    for section in ("## Machine", "## Figures", "## How each figure was measured"):
        assert section in results
    rows = _figure_rows(results)
    labels = [row[0] for row in rows]
    for expected in (
        "API ingest, single-event requests",
        "API ingest, batches of 500",
        "worker throughput, activations + registrations",
        "worker throughput, network observations",
        "worker throughput, network observations with IMEI",
        "worker throughput, daily usage reports",
        "event accepted → case record published",
        "registry import",
        "registry lookups",
        "worker memory per 1 M active SIMs",
        "worker throughput as the store grows",
        "Kafka produce, SASL_SSL",
        "store bytes per event kept for idempotency",
        "store bytes per SIM (state + registration)",
        "ledger bytes after the retention is reached (last day ÷ first pruned day)",
    ):
        assert any(label.startswith(expected) for label in labels), (expected, labels)
    for label, measured, *_, verdict in rows:
        assert re.search(r"\d", measured), f"{label}: no number ({measured!r})"
        assert verdict != "not measured", label


@pytest.mark.parametrize("first", [0, 1_999, 9_999_500, 10**8 - 700])
def test_registry_csv_rows_carry_each_sims_own_identifiers(first: int) -> None:
    lines = events.csv_block(first, 700).decode().splitlines()
    assert len(lines) == 700
    for n, line in zip(range(first, first + 700), lines, strict=True):
        imsi, iccid, msisdn, operator, _, national_id, _, _, _, status = line.split(",")
        assert (imsi, iccid, msisdn, operator) == (
            events.imsi(n),
            events.iccid(n),
            events.msisdn(n),
            events.operator_of(n),
        )
        assert national_id == events.thai_national_id(events.holder_of(n))
        assert status == ("suspended" if n % 50 == 0 else "active")


@pytest.mark.parametrize("first", [0, 12_345, 10**8 - 700, 10**13 - 300])
def test_fast_iccid_is_iccid(first: int) -> None:
    for n in range(first, first + 700):
        assert events.fast_iccid(n) == events.iccid(n)


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_quick_worker_bench_runs_on_a_postgresql_server_when_given_one(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    server = f"postgresql://postgres@127.0.0.1:{postgres_server.port}"
    results = _quick_bench(
        tmp_path, "--only", "worker", "--no-profile", "--worker-store", server, timeout=550
    )
    rows = {row[0]: row for row in _figure_rows(results)}
    for label in (
        "worker throughput, activations + registrations",
        "worker throughput, network observations",
    ):
        assert re.search(r"\d", rows[label][1]), rows[label]
    # Without the hand-written analysis, which may speak of either store.
    before, _, rest = results.partition("## Analysis and proposals")
    generated = before + rest.partition("## Command lines")[2]
    assert "PostgreSQL store" in generated
    assert "SQLite store" not in generated
    assert f"on PostgreSQL {postgres_server.version()}" in generated


def test_without_kafka_jars_the_bench_says_so_and_leaves_no_work_dir(tmp_path: Path) -> None:
    no_jars = tmp_path / "no-jars"
    no_jars.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    environment = os.environ | {"SIMGUARD_KAFKA_LIBS": str(no_jars), "TMPDIR": str(scratch)}

    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path / "RESULTS.md")],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 1
    assert f"Error: no Kafka jars in {no_jars}" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "RESULTS.md").exists()
