"""The API's signature that a record value passed validation."""

from __future__ import annotations

from schemas import attestation


def test_signature_verifies_under_the_same_secret_only() -> None:
    value = b'{"imsi":"520030000000001"}'
    signature = attestation.sign("secret-a", value)
    assert attestation.verify("secret-a", value, signature)
    assert not attestation.verify("secret-b", value, signature)


def test_signature_does_not_verify_for_a_changed_value() -> None:
    signature = attestation.sign("secret-a", b'{"iccid":"8966"}')
    assert not attestation.verify("secret-a", b'{"iccid":"8967"}', signature)


def test_no_secret_verifies_nothing() -> None:
    assert not attestation.verify("", b"x", attestation.sign("", b"x"))
