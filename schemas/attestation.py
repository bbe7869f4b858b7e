"""The API's attestation that a record was validated by these schemas.

Validation is most of a worker's CPU per event, and every event that came
through the API was already validated there with the same schemas. The API
signs each record value with an HMAC under the deployment's secret; a worker
that verifies the signature (a few microseconds) only converts the event's
time field instead of validating it again. A record without a valid
signature, e.g. produced straight to Kafka by an operator, is validated in full,
so a forged header buys nothing.
"""

from __future__ import annotations

import functools
import hmac

from schemas.keyed_hash import HmacSha256

HEADER = "simguard-validated"
# Domain separation: this HMAC can never be confused with a holder reference.
_CONTEXT = b"simguard-validated-record\x00"


def sign(secret: str, value: bytes) -> bytes:
    return _keyed(secret).hexdigest(value).encode()


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> HmacSha256:
    # The API signs every record it publishes: the key and the context are
    # hashed once, not per record.
    return HmacSha256(secret.encode(), prefix=_CONTEXT)


def verify(secret: str, value: bytes, signature: bytes) -> bool:
    return bool(secret) and hmac.compare_digest(sign(secret, value), signature)
