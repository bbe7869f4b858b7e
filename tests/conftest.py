"""Shared fixtures: one real Kafka broker per test session, and factories that
give every test its own topics, consumer group, database and secret, so tests
never see each other's records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_helpers import MakeSettings
from worker_helpers import WorkerProcess

from simguard.broker import KafkaCluster, KafkaNode, free_port, start_cluster, start_single_node
from simguard.broker_security import BrokerSecurity
from simguard.kafka_clients import admin_client, ensure_topics
from simguard.settings import Settings, load_settings
from simguard.store import Store, open_store

# A test that needs longer says so with @pytest.mark.timeout or @pytest.mark.slow
# (slow tests keep the 300 s default from pyproject.toml). Two minutes leaves
# room for the session broker's start-up in the first test that uses it.
DEFAULT_TEST_TIMEOUT_SECONDS = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT_SECONDS))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test's report shows where its still-running workers are."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.when in ("setup", "call") and report.failed:
        for worker in WorkerProcess.started:
            if worker.running():
                report.sections.append((f"worker {worker.name}", worker.post_mortem()))
    if report.when == "teardown":
        WorkerProcess.started.clear()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNode]:
    """A real single-node KRaft broker on a free port, for the whole session."""
    node = start_single_node(tmp_path_factory.mktemp("kafka"), port=free_port(), timeout=90)
    yield node
    node.stop()


@pytest.fixture
def kafka_cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    """Three broker+controller nodes (replication 3, min.insync.replicas 2),
    secured as simguard secures the nodes it starts (TLS between every pair,
    SCRAM logins, ACLs), fresh for each test because fault tests kill nodes."""
    security = BrokerSecurity.create(tmp_path / "cluster-security")
    cluster = start_cluster(tmp_path / "cluster", nodes=3, security=security)
    yield cluster
    # The data is thrown away: a crash stops in milliseconds where a controlled
    # shutdown of three nodes at once takes seconds.
    for index in range(len(cluster.nodes)):
        cluster.kill(index)


@pytest.fixture
def make_settings(request: pytest.FixtureRequest, tmp_path: Path) -> MakeSettings:
    """`make_settings(**overrides) -> Settings`, with the topics created.

    The defaults (packaged rules, no developer environment or simguard.toml)
    with, for this test: topic names and consumer group suffixed with one
    random id, a SQLite file in tmp_path, its own HMAC secret, 3 partitions,
    and the session broker. Every call in one test shares those names, so
    settings for an API and for a worker meet on the same topics; an override
    replaces a value for that call only. Pass `kafka_bootstrap_servers` to
    create the topics elsewhere (a cluster) without starting the session broker.
    """
    suffix = uuid.uuid4().hex[:8]
    empty_config = tmp_path / "simguard-test.toml"
    empty_config.write_text("")
    defaults = load_settings(environ={"SIMGUARD_CONFIG": str(empty_config)})
    base: dict[str, Any] = defaults.topics_suffixed(suffix)
    base |= {
        "consumer_group": f"{defaults.consumer_group}-{suffix}",
        "database_url": f"sqlite:///{tmp_path}/simguard.db",
        "hmac_secret": f"test-secret-{suffix}".ljust(32, "0"),
        "attestation_secret": f"test-attestation-secret-{suffix}".ljust(32, "0"),
        "operator_signing_secret": f"test-operator-signing-secret-{suffix}".ljust(32, "0"),
        "topic_partitions": 3,
    }

    def make(**overrides: Any) -> Settings:
        values = base | overrides
        if "kafka_bootstrap_servers" not in values:
            broker: KafkaNode = request.getfixturevalue("kafka_broker")
            values["kafka_bootstrap_servers"] = broker.bootstrap
        settings = defaults.replace(**values)
        ensure_topics(settings)
        # Created is not yet usable: a new topic reaches the brokers' metadata
        # and gets partition leaders a moment after CreateTopics returns.
        admin = admin_client(settings)
        try:
            admin.wait_for_topics(list(settings.topics().values()), timeout_ms=30_000)
        finally:
            admin.close()
        return settings

    return make


# A real PostgreSQL server per session, for the tests that run both stores.
from postgres_server import postgres_database, postgres_server  # noqa: E402, F401


@pytest.fixture(params=["sqlite", "postgresql"])
def settings_on_each_backend(
    request: pytest.FixtureRequest, make_settings: MakeSettings
) -> Settings:
    """`make_settings()` on a SQLite file, then on a database of the test server."""
    if request.param == "postgresql":
        return make_settings(database_url=request.getfixturevalue("postgres_database"))
    return make_settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_on_each_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, migrated store: a SQLite file, then a database of the test server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/simguard.db"
    else:
        url = request.getfixturevalue("postgres_database")
    opened = open_store(url)
    yield opened
    opened.close()
