"""simguard names each record's partition itself: it must be the one the Java
client's and kafka-python's default partitioners give the same key, or an
operator's own Java producer and the API would send a SIM's events to two
workers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from simguard.broker_config import java_executable, kafka_classpath
from simguard.partitioning import murmur2, partition_for_key

# Prints Utils.murmur2 of each hex-encoded line of stdin, as Kafka's Java
# client computes it for its default partitioner.
JAVA_MURMUR2 = """
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;
import org.apache.kafka.common.utils.Utils;

public class Murmur2 {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            System.out.println(Utils.toPositive(Utils.murmur2(HexFormat.of().parseHex(line))));
        }
    }
}
"""


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_murmur2_equals_kafka_pythons_for_any_bytes(data: bytes) -> None:
    assert murmur2(data) == kafka_python_murmur2(data)


def test_partitions_of_imsi_keys_equal_the_java_clients(tmp_path: Path) -> None:
    keys = [b"", b"a", b"ab", b"abc"] + [f"52001{n:010d}".encode() for n in range(0, 10**10, 10**8)]
    source = tmp_path / "Murmur2.java"
    source.write_text(JAVA_MURMUR2)

    java = subprocess.run(
        [java_executable(), "-cp", kafka_classpath(), str(source)],
        input="\n".join(key.hex() for key in keys) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    positive_hashes = [int(line) for line in java.stdout.split()]
    assert [partition_for_key(key, 12) for key in keys] == [h % 12 for h in positive_hashes]


def test_partition_for_key_is_within_the_topics_partitions() -> None:
    assert {partition_for_key(f"52001{n:010d}".encode(), 6) for n in range(1000)} == set(range(6))
