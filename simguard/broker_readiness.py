"""When a local Kafka node counts as ready, asked over the wire.

Ready means: the node answers an admin client as an unfenced broker and
acknowledges an acks=all produce to `READINESS_TOPIC`. A listening port alone
is not enough: a KRaft broker accepts connections before it has caught up
with the controller's metadata and while it is still fenced.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import TopicAlreadyExistsError

from simguard.broker_config import NodeSpec

# Created by the launcher on first start; one partition, min.insync.replicas 1
# so a restarted node can prove itself while a peer is down.
READINESS_TOPIC = "__simguard_readiness"


class NotReady(Exception):
    """The node runs but cannot serve clients yet."""


def check_ready(spec: NodeSpec) -> None:
    """Return when the node serves clients; raise NotReady, KafkaError or
    OSError while it does not."""
    admin = node_admin([spec.bootstrap], spec.client_config())
    try:
        brokers = admin.describe_cluster()["brokers"]
        if not any(b["broker_id"] == spec.node_id and not b["is_fenced"] for b in brokers):
            raise NotReady(f"node {spec.node_id} not yet an unfenced broker")
        if READINESS_TOPIC not in admin.list_topics():
            # Creation needs `replication_factor` live brokers: in a cluster
            # start-up this keeps failing (and we keep polling) until all are up.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    {
                        READINESS_TOPIC: {
                            "num_partitions": 1,
                            "replication_factor": spec.replication_factor,
                            "configs": {"min.insync.replicas": "1"},
                        }
                    },
                    wait_for_metadata=True,
                )
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=[spec.bootstrap],
        **spec.client_config(),
        acks="all",
        max_block_ms=5_000,
        request_timeout_ms=5_000,
        delivery_timeout_ms=10_000,
    )
    try:
        producer.send(READINESS_TOPIC, value=b"ready").get(timeout=10)
    finally:
        producer.close(timeout=5)


def node_admin(bootstrap: list[str], client_config: dict[str, Any] | None = None) -> Any:
    """An admin client that gives up within seconds, not kafka-python's minutes."""
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=5_000,
        bootstrap_timeout_ms=5_000,
        **(client_config or {}),
    )


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
