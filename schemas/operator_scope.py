"""Which events a sender may send: the one rule the API applies to an API
key's PLMN ids and a worker to the PLMN whose key signed a direct record."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def within_plmns(event: Mapping[str, Any], plmns: Collection[str]) -> bool:
    """The event names one of `plmns` as its operator, and its IMSI is that
    operator's (starts with its PLMN id)."""
    operator = event.get("operator")
    imsi = event.get("imsi")
    return (
        isinstance(operator, str)
        and isinstance(imsi, str)
        and operator in plmns
        and imsi.startswith(operator)
    )
