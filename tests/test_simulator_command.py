"""`simguard simulate` on the command line: what it writes, and what it refuses."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from tooling.simulator.command import simulate


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The packaged rules only: no developer's simguard.toml or SIMGUARD_* variables."""
    for name in list(os.environ):
        if name.startswith("SIMGUARD_"):
            monkeypatch.delenv(name)
    config = tmp_path / "empty.toml"
    config.write_text("")
    monkeypatch.setenv("SIMGUARD_CONFIG", str(config))
    return CliRunner()


def test_out_writes_events_truth_and_border_cells(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    cells = tmp_path / "cells" / "border.csv"
    result = runner.invoke(
        simulate,
        [
            *("--sims", "500", "--seed", "3", "--now", "2026-11-20T03:00:00Z"),
            *("--out", str(out), "--border-cells-out", str(cells), "--mix", "mule=0.04"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "generated 500 SIMs" in result.output
    assert "mule 20" in result.output
    names = {path.name for path in out.iterdir()}
    assert names == {
        "activations.jsonl",
        "registrations.jsonl",
        "network_events.jsonl",
        "usage.jsonl",
        "truth.json",
        "border_cells.csv",
    }
    truth = orjson.loads((out / "truth.json").read_bytes())
    assert truth["seed"] == 3 and truth["now"] == "2026-11-20T03:00:00Z"
    assert len(truth["population"]) == 500
    with cells.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["cell_id"] for row in rows)
    assert (out / "border_cells.csv").read_text() == cells.read_text()


def test_the_same_arguments_write_the_same_files(runner: CliRunner, tmp_path: Path) -> None:
    arguments = ["--sims", "500", "--seed", "4", "--now", "2026-11-20T03:00:00Z", "--out"]
    for name in ("first", "second"):
        assert runner.invoke(simulate, [*arguments, str(tmp_path / name)]).exit_code == 0
    for name in ("activations.jsonl", "registrations.jsonl", "network_events.jsonl", "truth.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "nothing to do"),
        (["--api", "http://127.0.0.1:8080"], "--keys-file"),
        (["--out", "x", "--truth", "truth.json"], "--check"),
        (["--out", "x", "--mix", "mule"], "KIND=FRACTION"),
        (["--out", "x", "--now", "2026-11-20T03:00:00"], "time zone"),
    ],
)
def test_incomplete_or_malformed_arguments_are_refused(
    runner: CliRunner,
    arguments: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "truth.json").write_text("{}")
    result = runner.invoke(simulate, arguments)
    assert result.exit_code == 2
    assert message in result.output


def test_too_few_sims_for_the_mix_is_an_error_not_a_traceback(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(simulate, ["--sims", "50", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "too few" in result.output
