"""The local Kafka launcher: real KRaft nodes that keep their data, speak
transactions, and survive a leader's crash when run as a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from kafka_helpers import MakeSettings, end_offsets_total, produce_raw, read_all

from simguard.broker import KafkaCluster, KafkaNode, free_port, stop_node
from simguard.kafka_clients import admin_client, reliable_producer, transactional_producer
from simguard.settings import Settings

DESIGN_TOPICS = {
    "sim.activations.v1",
    "sim.registrations.v1",
    "sim.network-events.v1",
    "regulator.flagged-sims.v1",
    "simguard.dead-letter.v1",
}


def _cleanup_policies(settings: Settings, topics: list[str]) -> dict[str, str]:
    admin = admin_client(settings)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics],
            config_filter="all",
        )["topic"]
    finally:
        admin.close()
    return {topic: described[topic]["cleanup.policy"]["value"] for topic in topics}


def test_broker_answers_and_the_design_topics_exist_with_the_register_compacted(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    created = list(settings.topics().values())
    admin = admin_client(settings)
    try:
        described = {t["name"]: t for t in admin.describe_topics(created)}
    finally:
        admin.close()

    assert {name.rsplit(".", 1)[0] for name in created} >= DESIGN_TOPICS
    assert all(len(described[name]["partitions"]) == 3 for name in created)
    policies = _cleanup_policies(settings, created)
    assert policies.pop(settings.topic_flagged) == "compact"
    assert set(policies.values()) == {"delete"}


def test_read_committed_reader_sees_a_committed_transaction_and_not_an_aborted_one(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    topic = settings.topic_flagged
    producer = transactional_producer(settings, f"test-tx-{uuid.uuid4().hex[:8]}")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, key=b"520031234567890", value=b"committed")
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, key=b"520031234567890", value=b"aborted")
        producer.flush()
        producer.abort_transaction()
    finally:
        producer.close(timeout=5)

    records = read_all(settings, topic)

    assert [(r.key, r.value) for r in records] == [("520031234567890", b"committed")]
    # Both records reached the log (two records, two transaction markers).
    assert end_offsets_total(settings, topic) == 4


def test_broker_stopped_and_restarted_on_its_data_dir_keeps_the_records(
    kafka_broker: KafkaNode, make_settings: MakeSettings
) -> None:
    settings = make_settings()
    topic = settings.topic_activations
    for index in range(5):
        produce_raw(settings, topic, f"52003000000000{index}", f"event-{index}".encode())
    before = read_all(settings, topic, min_count=5)
    try:
        kafka_broker.stop()
        assert not kafka_broker.is_running()
        kafka_broker.start()

        after = read_all(settings, topic, min_count=5)
    finally:
        if not kafka_broker.is_running():  # the rest of the session needs it
            kafka_broker.start()
    assert len(before) == 5
    assert after == before


def _simguard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("simguard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "simguard.cli"]
    # The developer's SIMGUARD_* settings must not leak in; the jar location may.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SIMGUARD_") or k.endswith("_LIBS")
    }
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_starts_reports_and_stops_a_local_broker(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    port = free_port()
    try:
        started = _simguard(
            "broker", "start", "--data-dir", str(data_dir), "--port", str(port), cwd=tmp_path
        )
        assert started.returncode == 0, started.stderr
        assert f"127.0.0.1:{port}" in started.stdout
        assert "SASL_SSL" in started.stdout
        assert "export SIMGUARD_KAFKA_SASL_PASSWORD_FILE=" in started.stdout

        running = _simguard("broker", "status", "--data-dir", str(data_dir), cwd=tmp_path)
        assert running.returncode == 0, running.stdout + running.stderr
        assert running.stdout.startswith("running")

        stopped = _simguard("broker", "stop", "--data-dir", str(data_dir), cwd=tmp_path)
        assert stopped.stdout.strip() == "broker stopped"

        after = _simguard("broker", "status", "--data-dir", str(data_dir), cwd=tmp_path)
        assert after.returncode == 1
        assert after.stdout.startswith("stopped")
    finally:
        stop_node(data_dir)


@pytest.mark.slow
def test_cluster_accepts_acks_all_writes_after_the_partition_leader_is_killed(
    kafka_cluster: KafkaCluster, make_settings: MakeSettings
) -> None:
    assert kafka_cluster.security is not None
    settings = make_settings(
        kafka_bootstrap_servers=kafka_cluster.bootstrap,
        topic_replication_factor=3,
        **kafka_cluster.security.admin_settings(),
    )
    topic = settings.topic_activations
    admin = admin_client(settings)
    try:
        (described,) = admin.describe_topics([topic])
        min_isr = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )["topic"][topic]["min.insync.replicas"]["value"]
    finally:
        admin.close()
    assert all(len(p["replica_nodes"]) == 3 for p in described["partitions"])
    assert min_isr == "2"
    producer = reliable_producer(settings, max_block_ms=30_000, request_timeout_ms=5_000)
    try:
        producer.send(topic, key=b"before", value=b"1", partition=0).get(timeout=30)
        old_leader = kafka_cluster.leader_of(topic, 0)

        kafka_cluster.kill(kafka_cluster.index_of(old_leader))
        after_kill = producer.send(topic, key=b"after", value=b"2", partition=0).get(timeout=60)
    finally:
        producer.close(timeout=5)

    assert after_kill.offset == 1
    assert kafka_cluster.leader_of(topic, 0) not in (old_leader, -1)
    records = read_all(settings, topic, min_count=2)
    assert [(r.key, r.value) for r in records] == [("before", b"1"), ("after", b"2")]
