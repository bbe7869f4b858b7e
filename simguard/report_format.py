"""The regulator's reports as CSV or as an aligned table, from lines of one dataclass."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any


def as_csv(columns: Sequence[str], lines: Iterable[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for line in lines:
        writer.writerow([cell(getattr(line, name)) for name in columns])
    return out.getvalue()


def as_table(columns: Sequence[str], lines: Iterable[Any]) -> str:
    """Left-aligned first column, the others right-aligned."""
    rows = [list(columns)] + [[cell(getattr(line, name)) for name in columns] for line in lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join(
        "  ".join(
            text.rjust(width) if i else text.ljust(width)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
