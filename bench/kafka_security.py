"""What TLS and SCRAM cost a producer: the API's producer configuration
sending the same records to the bench's PLAINTEXT broker (the baseline) and to
a broker secured as `simguard broker start` secures it (SASL_SSL, SCRAM-SHA-512,
ACLs), both on this machine, alternating rounds so drift hits both alike."""

from __future__ import annotations

import time

import orjson

from bench.environment import BenchEnvironment
from bench.profiling import Profiler
from bench.report import Figure, rate
from bench.sizes import Sizes
from simguard.broker import free_port, start_single_node
from simguard.broker_security import BrokerSecurity
from simguard.kafka_acls import secure_for_simguard
from simguard.kafka_clients import api_producer
from simguard.settings import Settings

ROUNDS = 2
# About an activation's size on the wire.
VALUE_BYTES = 420


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    del profiler  # the producer runs in this process; nothing to attach to
    plain = env.settings("kafka-security")
    security = BrokerSecurity.create(env.root / "kafka-secured-security")
    node = start_single_node(
        env.root / "kafka-secured", port=free_port(), security=security, timeout=120
    )
    try:
        secured = secure_for_simguard(
            plain.replace(kafka_bootstrap_servers=node.bootstrap), security
        )
        records = _records(sizes.security_records)
        plain_rates, secured_rates = [], []
        for _ in range(ROUNDS):
            plain_rates.append(_produce_rate(plain, records))
            secured_rates.append(_produce_rate(secured, records))
    finally:
        node.stop()
    best_plain, best_secured = max(plain_rates), max(secured_rates)
    figure = Figure(
        key="kafka_security_produce",
        label="Kafka produce, SASL_SSL (TLS + SCRAM-SHA-512)",
        unit="records/s",
        value=best_secured,
        text=rate(best_secured),
        baseline=best_plain,
        baseline_text=rate(best_plain),
        baseline_label="same producer and records, PLAINTEXT broker",
        target="report",
    )
    figure.method = (
        f"{len(records):,} records of {VALUE_BYTES} bytes keyed by IMSI, sent with the API's "
        "producer configuration (acks=all, idempotent, 256 KiB batches, 5 ms linger) from one "
        "thread, every acknowledgement awaited; the best of "
        f"{ROUNDS} alternating rounds per broker. Both brokers are local single nodes; the "
        "secured one checks ACLs on every request."
    )
    figure.details = [
        "rounds, PLAINTEXT: " + ", ".join(rate(r) for r in plain_rates),
        "rounds, SASL_SSL: " + ", ".join(rate(r) for r in secured_rates),
    ]
    return [figure]


def _records(count: int) -> list[tuple[bytes, bytes]]:
    records = []
    for n in range(count):
        imsi = f"52001{n:010d}"
        value = orjson.dumps({"imsi": imsi, "pad": "x" * VALUE_BYTES})[:VALUE_BYTES]
        records.append((imsi.encode(), value))
    return records


def _produce_rate(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    producer = api_producer(settings, max_block_ms=60_000, request_timeout_ms=30_000)
    topic = settings.topic_activations
    try:
        # The connection and its TLS handshake are set-up, not throughput.
        producer.send(topic, key=records[0][0], value=records[0][1]).get(timeout=30)
        started = time.monotonic()
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush(timeout=300)
        elapsed = time.monotonic() - started
        for future in futures:
            future.get(timeout=0)  # a refused record fails the benchmark, not its figure
        return len(records) / elapsed
    finally:
        producer.close(timeout=30)
