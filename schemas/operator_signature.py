"""Operators' signatures on records they produce straight to Kafka.

The API checks that an operator's key may send for an event's PLMN; a record
produced straight to the input topics has no API key, so it carries a
signature instead: HMAC-SHA256, under the operator's record-signing key, of
the record's key and value. The operator's key is derived from the
deployment's `operator_signing_secret` and the PLMN id, so simguard keeps one
secret and `simguard keys kafka-signing-key --plmn P` hands each operator its
own. A worker accepts a signed record only for the PLMN whose key signed it
(README, "Contract additions").
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct

from schemas.keyed_hash import HmacSha256

HEADER = "simguard-operator-signature"
_DERIVATION = "operator-record-signing:"
_KEY_LENGTH = struct.Struct(">I")


def operator_key(operator_signing_secret: str, plmn: str) -> bytes:
    """The 32-byte record-signing key of the operator with PLMN id `plmn`."""
    return hmac.digest(
        operator_signing_secret.encode(), (_DERIVATION + plmn).encode(), hashlib.sha256
    )


def sign(key_of_operator: bytes, record_key: bytes | None, value: bytes) -> bytes:
    """The header value: hex HMAC-SHA256 over the key's length (4 bytes, big
    endian), the key and the value, so no other split of the bytes verifies."""
    return _keyed(key_of_operator).hexdigest(_message(record_key, value)).encode()


def sign_for(
    operator_signing_secret: str, plmn: str, record_key: bytes | None, value: bytes
) -> bytes:
    return sign(operator_key(operator_signing_secret, plmn), record_key, value)


def verify(
    operator_signing_secret: str,
    plmn: str,
    record_key: bytes | None,
    value: bytes,
    signature: bytes,
) -> bool:
    if not operator_signing_secret or not plmn:
        return False
    expected = sign(_derived(operator_signing_secret, plmn), record_key, value)
    return hmac.compare_digest(expected, signature)


def _message(record_key: bytes | None, value: bytes) -> bytes:
    key = record_key or b""
    return _KEY_LENGTH.pack(len(key)) + key + value


@functools.lru_cache(maxsize=256)
def _derived(operator_signing_secret: str, plmn: str) -> bytes:
    # A worker checks every direct record: one derivation per operator.
    return operator_key(operator_signing_secret, plmn)


@functools.lru_cache(maxsize=256)
def _keyed(key_of_operator: bytes) -> HmacSha256:
    return HmacSha256(key_of_operator)
