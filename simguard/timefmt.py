"""Timestamps as fixed-width RFC 3339 UTC text, so that the store can compare
and sort them as strings on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime


def to_text(moment: datetime) -> str:
    # The worker writes a few of these per event: %-formatting the fields costs
    # a third of strftime (and pads years before 1000, which strftime does not).
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)
