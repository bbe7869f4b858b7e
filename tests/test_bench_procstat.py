"""What the benchmark reads from /proc about the broker's JVM."""

from __future__ import annotations

import subprocess
import sys

from bench.procstat import cpu_seconds, jit_compiler_seconds
from simguard.broker import KafkaNode


def test_a_running_broker_has_spent_cpu_compiling_within_its_own_total(
    kafka_broker: KafkaNode,
) -> None:
    assert kafka_broker.pid is not None
    compiling = jit_compiler_seconds(kafka_broker.pid)
    assert 0 < compiling <= cpu_seconds(kafka_broker.pid)


def test_a_process_that_is_not_a_jvm_has_no_compiler_time() -> None:
    # A child of its own: the test process is the session broker's parent.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert jit_compiler_seconds(child.pid) == 0.0
    finally:
        child.kill()
        child.wait()
