"""The partition Kafka's default partitioner gives a key, computed once here.

Java's and kafka-python's default partitioners both map a key to
`murmur2(key) & 0x7fffffff` modulo the topic's partition count; every simguard
producer keys by IMSI, so a SIM's events meet in one partition and so in one
worker. Naming the partition in `send` skips kafka-python's partitioner, whose
pure-Python murmur2 and per-record metadata lookups were about 12 us of the
API's per-event cost; this murmur2 reads the key in 32-bit words instead of
byte by byte and gives the same value (tests/test_partitioning.py holds it to
kafka-python's).
"""

from __future__ import annotations

import struct
from typing import Final

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF
_little_endian_words = struct.Struct("<I").iter_unpack


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit MurmurHash2 of `data`, unsigned."""
    length = len(data)
    h = _SEED ^ length
    whole = length & ~3
    for (k,) in _little_endian_words(data[:whole]):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail:
        h = ((h ^ data[whole]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition, of `partitions`, that Kafka's default partitioner picks for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
