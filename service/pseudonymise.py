"""Holder pseudonymisation: the raw identity number stops here.

A registration arrives over HTTP with `holder: {id_type, id_number,
nationality}`; what leaves this module carries only `holder_ref` (a keyed
hash) and `holder_nationality`. Without the secret the reference cannot be
reversed by hashing every possible 13-digit national ID, which a plain hash
would allow in minutes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from schemas.identifiers import normalise_id_number


def holder_ref(secret: str, id_type: str, nationality: str, id_number: str) -> str:
    """HMAC-SHA256 of `id_type:nationality:normalised number`, hex.

    The triple is the person: the same number under another nationality or
    id_type is someone else, so all three go into the hash.
    """
    message = f"{id_type}:{nationality}:{normalise_id_number(id_number)}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def pseudonymise_registration(registration: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """The wire form of a validated HTTP registration: `holder` replaced."""
    wire = {name: value for name, value in registration.items() if name != "holder"}
    holder = registration["holder"]
    wire["holder_ref"] = holder_ref(
        secret, holder["id_type"], holder["nationality"], holder["id_number"]
    )
    wire["holder_nationality"] = holder["nationality"]
    return wire
