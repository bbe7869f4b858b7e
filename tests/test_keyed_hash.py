import hashlib
import hmac

import pytest

from schemas.keyed_hash import HmacSha256


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_hexdigest_equals_the_standard_librarys_hmac_for_keys_of_every_size(
    key_length: int,
) -> None:
    key = bytes((7 * index + 3) % 256 for index in range(key_length))
    keyed = HmacSha256(key)

    for message in (b"", b"national_id:TH:1234545678781", bytes(range(256)) * 3):
        assert keyed.hexdigest(message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_prefix_is_hashed_before_each_message() -> None:
    keyed = HmacSha256(b"secret", prefix=b"context\x00")

    expected = hmac.new(b"secret", b"context\x00record", hashlib.sha256).hexdigest()
    assert keyed.hexdigest(b"record") == expected


def test_one_message_does_not_change_the_next_ones_digest() -> None:
    keyed = HmacSha256(b"secret")
    first = keyed.hexdigest(b"a")

    keyed.hexdigest(b"something else")

    assert keyed.hexdigest(b"a") == first
