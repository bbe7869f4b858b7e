"""A scenario on disk: one JSON Lines file per event kind (the events exactly
as an operator would POST them), truth.json, and the border-cell CSV that the
worker's `border_cells_csv` must name for BORDER_CELL_DWELL to hold."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import orjson

from tooling.simulator.population import EVENT_KINDS, Scenario
from tooling.simulator.truth import dump_truth
from tooling.simulator.world import rfc3339

TRUTH_FILE = "truth.json"
BORDER_CELLS_FILE = "border_cells.csv"


def write(scenario: Scenario, directory: Path) -> dict[str, Path]:
    """Write the scenario into `directory` (created if missing); returns the paths by name."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for kind in EVENT_KINDS:
        path = directory / f"{kind}.jsonl"
        with path.open("wb") as handle:
            for event in scenario.events[kind]:
                handle.write(orjson.dumps(event) + b"\n")
        written[kind] = path
    written["truth"] = directory / TRUTH_FILE
    dump_truth(
        written["truth"],
        scenario.truth,
        scenario.imsis,
        {
            "seed": scenario.seed,
            "now": rfc3339(scenario.now),
            "rules_version": scenario.rules_version,
            "actors": {kind: len(imsis) for kind, imsis in scenario.actors.items()},
            "events": scenario.counts(),
        },
    )
    written["border_cells"] = write_border_cells(
        scenario.border_cells, directory / BORDER_CELLS_FILE
    )
    return written


def write_border_cells(cells: Iterable[str], path: Path) -> Path:
    """The CSV the settings' `border_cells_csv` reads: a `cell_id` header, one cell a row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cell_id"])
        writer.writerows([cell] for cell in sorted(cells))
    return path
