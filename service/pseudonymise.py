"""Holder pseudonymisation: the raw identity number stops here.

A registration arrives over HTTP with `holder: {id_type, id_number,
nationality}`; what leaves this module carries only `holder_ref` (a keyed
hash) and `holder_nationality`. Without the secret the reference cannot be
reversed by hashing every possible 13-digit national ID, which a plain hash
would allow in minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.pseudonym import holder_ref


def pseudonymise_registration(registration: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """The wire form of a validated HTTP registration: `holder` replaced."""
    wire = {name: value for name, value in registration.items() if name != "holder"}
    holder = registration["holder"]
    wire["holder_ref"] = holder_ref(
        secret, holder["id_type"], holder["nationality"], holder["id_number"]
    )
    wire["holder_nationality"] = holder["nationality"]
    return wire
