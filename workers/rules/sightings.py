"""What the behaviour rules read from a network observation, and their clock arithmetic.

Times inside behaviour state are whole microseconds since the Unix epoch (UTC):
exact for every `datetime` the wire schema produces (so "less than 60 minutes"
means exactly that), 16 digits in JSON instead of 27 characters of RFC 3339
text, and cheap to compare at tens of thousands of observations a second.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from schemas.identifiers import plmn_country

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def utc_day(micros: int) -> int:
    """Days since 1970-01-01 (UTC): the unit of "distinct UTC days"."""
    return micros // DAY_US


def iso_date(day: int) -> str:
    return (EPOCH + timedelta(days=day)).date().isoformat()


class Sighting(NamedTuple):
    """One network observation as the behaviour rules see it (read once per event,
    shared by every rule: observations are the hot path)."""

    at_us: int
    country: str
    visited_plmn: str
    cell_id: str | None
    # The handset the SIM was in, when the operator's network reported it.
    imei: str | None = None


@functools.lru_cache(maxsize=4096)
def country_of(plmn: str) -> str | None:
    """`plmn_country`, memoised per PLMN id: the travel rule asks it for every
    remembered observation on every new one, and the world has a few thousand
    networks (4096 covers them; the bound keeps junk ids from growing it)."""
    return plmn_country(plmn)


def sighting(event: dict[str, Any]) -> Sighting | None:
    """The observation's time, country and cell; None when its MCC names no country.

    International networks (MCC 901: aircraft, ships, satellites) belong to no
    country, so no rule can say whether the SIM was at home, in a high-risk
    country or far away: every behaviour rule ignores such observations.
    """
    plmn = str(event["visited_plmn"])
    country = country_of(plmn)
    if country is None:
        return None
    cell = event.get("cell_id")
    imei = event.get("imei")
    return Sighting(
        to_micros(event["observed_at"]),
        country,
        plmn,
        str(cell) if cell else None,
        str(imei) if imei else None,
    )
