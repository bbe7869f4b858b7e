"""Timestamps as fixed-width RFC 3339 UTC text, so that the store can compare
and sort them as strings on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime


def to_text(moment: datetime) -> str:
    # isoformat is several times cheaper than strftime, and the worker writes
    # a few of these per event; the output is the same fixed-width text.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)
