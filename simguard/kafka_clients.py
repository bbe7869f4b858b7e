"""Kafka client construction in one place, so every process talks to the
broker with the same guarantees (acks=all, idempotence, no auto-commit) and
the same credentials (TLS, SASL/SCRAM, mTLS: `kafka_security_*` settings)."""

from __future__ import annotations

import contextlib
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from simguard.settings import Settings

# kafka-python's own metrics (sensors updated on every record and request) are
# read by nothing here: simguard exports what it measures to Prometheus. They
# cost 5 % of the API's CPU under single-event requests.
CLIENT_METRICS = False
_TIMESTAMP_TYPE = "message.timestamp.type"
_BROKER_TIME = "LogAppendTime"


def bootstrap(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]


def connection_config(settings: Settings) -> dict[str, Any]:
    """Where and as whom to connect: every client simguard makes starts from this."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        # The broker's certificate must name the host dialled.
        config["ssl_check_hostname"] = True
        if settings.kafka_ssl_cafile:
            config["ssl_cafile"] = settings.kafka_ssl_cafile
        if settings.kafka_ssl_certfile:
            config["ssl_certfile"] = settings.kafka_ssl_certfile
            config["ssl_keyfile"] = settings.kafka_ssl_keyfile
    if settings.kafka_security_protocol == "SASL_SSL":
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password
    return config


def reliable_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """acks=all + idempotence: a record the broker acknowledged is on every
    in-sync replica, and a retried send never duplicates it."""
    config: dict[str, Any] = {
        **connection_config(settings),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "compression_type": None,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 100,
        "reconnect_backoff_max_ms": 1_000,
        "max_block_ms": int(settings.api_kafka_ack_timeout_seconds * 1000),
        "metrics_enabled": CLIENT_METRICS,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def close_now(producer: KafkaProducer) -> None:
    """Close without waiting for pending records; their futures fail.

    kafka-python 3.0.12's close(timeout=0) flushes first and raises when
    records are pending, before it would stop the I/O thread: a producer given
    up on as stuck would keep its thread and sockets for the process's life."""
    try:
        producer.close(timeout=0)
        return
    except KafkaError:
        pass
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(5)
    with contextlib.suppress(KafkaError):
        producer.close(timeout=0)


# The API's producer, shared with the benchmark's baseline so the two differ
# only by the API. Whole batches of 500 events fit in few produce requests.
API_PRODUCER_BATCH_BYTES = 256 * 1024
# Each single-event request would otherwise travel in a produce request of
# its own, at kafka-python's fixed CPU cost per produce request (≈ 2 ms);
# waiting 5 ms lets concurrent requests of a process share one. It adds at
# most 5 ms to a request's answer.
API_PRODUCER_LINGER_MS = 5


def api_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """The ingest API's producer: `reliable_producer` tuned for many small
    concurrent requests (see API_PRODUCER_LINGER_MS)."""
    config: dict[str, Any] = {
        "batch_size": API_PRODUCER_BATCH_BYTES,
        "linger_ms": API_PRODUCER_LINGER_MS,
    }
    config.update(overrides)
    return reliable_producer(settings, **config)


# A worker begins its next transaction while the broker still writes the last
# one's markers; the coordinator answers CONCURRENT_TRANSACTIONS until then and
# kafka-python retries after retry_backoff_ms (100 ms by default, 20 only for
# AddPartitionsToTxn). Each such wait is added to every case record's latency.
TRANSACTION_RETRY_BACKOFF_MS = 5


def transactional_producer(settings: Settings, transactional_id: str) -> KafkaProducer:
    return reliable_producer(
        settings,
        transactional_id=transactional_id,
        retry_backoff_ms=TRANSACTION_RETRY_BACKOFF_MS,
        transaction_timeout_ms=60_000,
        max_block_ms=30_000,
    )


def manual_commit_consumer(settings: Settings, **overrides: Any) -> KafkaConsumer:
    """Never auto-commit: offsets move only after the batch's effects are durable."""
    config: dict[str, Any] = {
        **connection_config(settings),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "reconnect_backoff_max_ms": 1_000,
        "metrics_enabled": CLIENT_METRICS,
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def admin_client(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(**connection_config(settings), request_timeout_ms=15_000)


def ensure_topics(settings: Settings, partitions: int | None = None) -> None:
    """Create simguard's topics if they are missing; the regulator topic is
    compacted because its latest record per IMSI is the live register, and
    on the input topics the broker stamps each record with its own clock
    (LogAppendTime): a producer's timestamp is its claim, not a fact."""
    count = partitions or settings.topic_partitions
    replication = settings.topic_replication_factor
    min_isr = str(min(2, replication))
    topics = []
    for name in settings.topics().values():
        config = {"min.insync.replicas": min_isr}
        if name == settings.topic_flagged or name in settings.foreign_indicator_topics():
            config["cleanup.policy"] = "compact"
        if name == settings.topic_decisions_audit:
            # The audit of regulators' decisions is never deleted by age.
            config["retention.ms"] = "-1"
        if name in settings.broker_time_topics():
            config[_TIMESTAMP_TYPE] = _BROKER_TIME
        topics.append(NewTopic(name, count, replication, topic_configs=config))
    admin = admin_client(settings)
    try:
        for topic in topics:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([topic])
        # Topics made before simguard stamped them, or by hand: set it now.
        stale = _topics_on_producer_time(admin, settings.broker_time_topics())
        if stale:
            admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, name, configs={_TIMESTAMP_TYPE: _BROKER_TIME}
                    )
                    for name in stale
                ],
                raise_on_unknown=False,
            )
    finally:
        admin.close()


def ensure_notice_topics(settings: Settings, names: list[str]) -> None:
    """Create operators' notice topics and partners' indicator topics if they
    are missing: compacted by key, so each SIM's latest notice is the
    operator's to-do list and its latest indicator the partner's; returns
    once the brokers' metadata has them."""
    prefixes = (settings.topic_notices_prefix, settings.topic_indicators_prefix)
    if any(not name.startswith(prefixes) for name in names):
        raise ValueError(f"not notice or indicator topics: {names}")
    replication = settings.topic_replication_factor
    config = {"cleanup.policy": "compact", "min.insync.replicas": str(min(2, replication))}
    admin = admin_client(settings)
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [NewTopic(name, settings.topic_partitions, replication, topic_configs=config)]
                )
        admin.wait_for_topics(names, timeout_ms=30_000)
    finally:
        admin.close()


def topics_on_producer_time(settings: Settings) -> list[str]:
    """The input topics whose records keep the producer's timestamp
    (CreateTime) instead of the broker's: a worker refuses to start on them."""
    admin = admin_client(settings)
    try:
        return _topics_on_producer_time(admin, settings.broker_time_topics())
    finally:
        admin.close()


def _topics_on_producer_time(admin: KafkaAdminClient, names: list[str]) -> list[str]:
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, configs={_TIMESTAMP_TYPE: None})
        for name in names
    ]
    described = admin.describe_configs(resources, config_filter="all")
    by_topic: dict[str, Any] = next(iter(described.values()), {}) if described else {}
    # A topic created a moment ago may not be described yet: it was created
    # with the broker's time, and is not reported.
    return [
        name
        for name in names
        if _config_value(by_topic.get(name, {}), _TIMESTAMP_TYPE) not in (None, _BROKER_TIME)
    ]


def _config_value(configs: Any, key: str) -> Any:
    entry = configs.get(key) if isinstance(configs, dict) else None
    return entry.get("value") if isinstance(entry, dict) else entry
