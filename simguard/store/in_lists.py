"""`WHERE column IN (?, ?, ...)` over many values, in chunks.

Every backend bounds the parameters of one statement (SQLite 32,766 by
default, PostgreSQL 65,535 with psycopg) and a long IN list plans slowly, so
a batch's lookups go 500 values at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

IN_LIST_CHUNK = 500
T = TypeVar("T")


def in_chunks(values: Sequence[T], size: int = IN_LIST_CHUNK) -> Iterator[tuple[Sequence[T], str]]:
    """(chunk, "?,?,...") for consecutive chunks of at most `size` values."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield chunk, ",".join("?" * len(chunk))
