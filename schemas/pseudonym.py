"""The holder reference: how a person is named everywhere after the API.

HMAC-SHA256 keyed by the deployment's secret, so that without the secret the
reference cannot be reversed by hashing every possible 13-digit national ID,
which a plain hash would allow in minutes. Shared by the API and the registry
import so both name the same person the same way.
"""

from __future__ import annotations

import functools

from schemas.identifiers import normalise_id_number
from schemas.keyed_hash import HmacSha256


def holder_ref(secret: str, id_type: str, nationality: str, id_number: str) -> str:
    """HMAC-SHA256 of `id_type:nationality:normalised number`, hex.

    The triple is the person: the same number under another nationality or
    id_type is someone else, so all three go into the hash.
    """
    message = f"{id_type}:{nationality}:{normalise_id_number(id_number)}"
    return keyed_by(secret).hexdigest(message.encode())


@functools.lru_cache(maxsize=8)
def keyed_by(secret: str) -> HmacSha256:
    """The HMAC under `secret`, its key hashed once for every holder reference."""
    return HmacSha256(secret.encode())
