"""The Kafka side under TLS, SASL/SCRAM and ACLs, on a real secured broker.

One broker for the module, secured as `simguard broker start` secures it,
with the ACL layout `simguard topics ensure --acls` creates for one simguard
principal, one operator and one regulator. Each forbidden action is tried for
real and must be refused by the broker; each allowed one must work, so a
refusal is the ACL's doing and not a broken connection.
"""

from __future__ import annotations

import dataclasses
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_process import ApiProcess
from click.testing import CliRunner
from factories import valid_activation
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
)
from worker_helpers import WorkerProcess, operator_signed, register, settings_env, wait_for

from simguard.api_keys import issue_key
from simguard.broker import KafkaNode, free_port, start_single_node
from simguard.broker_security import BrokerSecurity
from simguard.cli import main
from simguard.kafka_clients import (
    admin_client,
    connection_config,
    ensure_notice_topics,
    manual_commit_consumer,
    reliable_producer,
    transactional_producer,
)
from simguard.settings import Settings, load_settings
from simguard.store import open_store

SERVICE, OPERATOR, REGULATOR = "simguard", "operator-52001", "nbtc"
PASSWORDS = {name: f"{name}-password-{uuid.uuid4().hex}" for name in (SERVICE, OPERATOR, REGULATOR)}

pytestmark = pytest.mark.timeout(180)


@dataclasses.dataclass(frozen=True)
class SecuredStack:
    node: KafkaNode
    security: BrokerSecurity
    admin: Settings
    service: Settings
    operator: Settings
    regulator: Settings

    def as_user(self, name: str, password: str) -> Settings:
        return self.service.replace(kafka_sasl_username=name, kafka_sasl_password=password)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredStack]:
    base_dir = tmp_path_factory.mktemp("secured-kafka")
    security = BrokerSecurity.create(base_dir / "security")
    node = start_single_node(base_dir / "node", port=free_port(), security=security, timeout=90)
    try:
        empty = base_dir / "empty.toml"
        empty.write_text("")
        suffix = uuid.uuid4().hex[:8]
        defaults = load_settings(environ={"SIMGUARD_CONFIG": str(empty)})
        topics = defaults.topics_suffixed(suffix)
        admin = defaults.replace(
            **topics,
            **security.admin_settings(),
            kafka_bootstrap_servers=node.bootstrap,
            consumer_group=f"simguard-worker-{suffix}",
            topic_partitions=3,
            database_url=f"sqlite:///{base_dir}/simguard.db",
            hmac_secret=f"secured-hmac-secret-{suffix}".ljust(32, "0"),
            attestation_secret=f"secured-attestation-secret-{suffix}".ljust(32, "0"),
            operator_signing_secret=f"secured-signing-secret-{suffix}".ljust(32, "0"),
        )
        for name, password in PASSWORDS.items():
            password_file = base_dir / f"{name}-password"
            password_file.write_text(password)
            made = CliRunner().invoke(
                main,
                ["kafka-user", "set", name, "--password-file", str(password_file)],
                env=settings_env(admin),
            )
            assert made.exit_code == 0, made.output
        ensure = CliRunner().invoke(
            main,
            [
                "topics",
                "ensure",
                "--acls",
                f"--service-principal={SERVICE}",
                f"--operator-principal={OPERATOR}=52001",
                f"--regulator-principal={REGULATOR}",
            ],
            env=settings_env(admin),
        )
        assert ensure.exit_code == 0, ensure.output
        users = {
            name: admin.replace(kafka_sasl_username=name, kafka_sasl_password=password)
            for name, password in PASSWORDS.items()
        }
        yield SecuredStack(node, security, admin, users[SERVICE], users[OPERATOR], users[REGULATOR])
    finally:
        node.stop()


def _send(
    settings: Settings, topic: str, key: bytes, value: bytes, *, idempotent: bool = True
) -> None:
    # A principal that may write no topic at all is refused an idempotent
    # producer id (cluster authorization) before any topic is asked about.
    producer = reliable_producer(settings, max_block_ms=10_000, enable_idempotence=idempotent)
    try:
        headers = operator_signed(settings, key, value)
        producer.send(topic, key=key, value=value, headers=headers).get(timeout=15)
    finally:
        producer.close(timeout=5)


def _read(settings: Settings, topic: str, group_id: str | None = None) -> list[bytes]:
    consumer = KafkaConsumer(
        **connection_config(settings),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        if group_id is None:
            partitions = [TopicPartition(topic, p) for p in range(3)]
            consumer.assign(partitions)
            # Needs DESCRIBE on the topic: raises for a principal without it.
            consumer.end_offsets(partitions)
            consumer.seek_to_beginning(*partitions)
        else:
            consumer.subscribe([topic])
        values: list[bytes] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                values.extend(message.value for message in batch)
            if values:
                break
        return values
    finally:
        consumer.close()


def _cleared_record(imsi: str) -> bytes:
    return orjson.dumps({"imsi": imsi, "status": "cleared", "reasons": []})


# --- who gets in -----------------------------------------------------------------


def _connect(config: dict[str, Any]) -> None:
    """Bootstrap an admin client with `config`, giving up after 3 s."""
    admin = KafkaAdminClient(**config, request_timeout_ms=3_000, bootstrap_timeout_ms=3_000)
    admin.close()


def test_each_principal_connects_with_its_own_password(stack: SecuredStack) -> None:
    for settings in (stack.service, stack.operator, stack.regulator):
        admin = admin_client(settings)
        try:
            assert admin.describe_cluster()["brokers"]
        finally:
            admin.close()


def test_a_plaintext_client_gets_no_answer_from_the_tls_listener(stack: SecuredStack) -> None:
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect({"bootstrap_servers": [stack.node.bootstrap]})


def test_a_client_that_does_not_trust_the_ca_is_refused(
    stack: SecuredStack, caplog: pytest.LogCaptureFixture
) -> None:
    untrusting = connection_config(stack.operator)
    del untrusting["ssl_cafile"]
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect(untrusting)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_a_wrong_password_is_refused(stack: SecuredStack) -> None:
    impostor = connection_config(stack.as_user(OPERATOR, "not-the-operators-password"))
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect(impostor)


def test_a_user_the_broker_does_not_know_is_refused(stack: SecuredStack) -> None:
    stranger = connection_config(stack.as_user("operator-99999", PASSWORDS[OPERATOR]))
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect(stranger)


# --- what operators may do ---------------------------------------------------------


def test_an_operator_writes_its_input_topics(stack: SecuredStack) -> None:
    for topic in (
        stack.admin.topic_activations,
        stack.admin.topic_registrations,
        stack.admin.topic_network_events,
    ):
        _send(stack.operator, topic, b"520010000000002", b'{"operator": "52001"}')


def test_an_operator_cannot_write_a_cleared_record_to_the_regulator_topic(
    stack: SecuredStack,
) -> None:
    imsi = "520010000000003"
    with pytest.raises(TopicAuthorizationFailedError):
        _send(stack.operator, stack.admin.topic_flagged, imsi.encode(), _cleared_record(imsi))


def test_an_operator_cannot_write_a_recheck(stack: SecuredStack) -> None:
    recheck = orjson.dumps({"imsi": "520010000000004", "check": "holder"})
    with pytest.raises(TopicAuthorizationFailedError):
        _send(stack.operator, stack.admin.topic_rechecks, b"520010000000004", recheck)


def test_an_operator_cannot_write_the_dead_letter_topic(stack: SecuredStack) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        _send(stack.operator, stack.admin.topic_dead_letter, b"x", b'{"code": "forged"}')


def test_an_operator_cannot_read_the_registrations(stack: SecuredStack) -> None:
    _send(stack.operator, stack.admin.topic_registrations, b"520010000000005", b"{}")
    with pytest.raises(TopicAuthorizationFailedError):
        _read(stack.operator, stack.admin.topic_registrations)


def test_an_operator_cannot_read_the_regulator_topic(stack: SecuredStack) -> None:
    imsi = "520010000000008"
    _send(stack.service, stack.admin.topic_flagged, imsi.encode(), _cleared_record(imsi))
    with pytest.raises(TopicAuthorizationFailedError):
        _read(stack.operator, stack.admin.topic_flagged)


def test_an_operator_cannot_take_a_workers_transactional_id(stack: SecuredStack) -> None:
    transactional_id = f"simguard-{stack.admin.consumer_group}-worker-1"
    producer = transactional_producer(stack.operator, transactional_id)
    try:
        with pytest.raises(TransactionalIdAuthorizationFailedError):
            producer.init_transactions()
    finally:
        producer.close(timeout=5)


# --- what regulators may do ---------------------------------------------------------


def test_a_regulator_reads_the_regulator_topic_in_a_group_of_its_own(stack: SecuredStack) -> None:
    imsi = "520010000000006"
    _send(stack.service, stack.admin.topic_flagged, imsi.encode(), _cleared_record(imsi))
    assert _read(stack.regulator, stack.admin.topic_flagged, group_id=f"{REGULATOR}.register")


def test_a_regulator_cannot_use_a_group_outside_its_name(stack: SecuredStack) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        _read(stack.regulator, stack.admin.topic_flagged, group_id=stack.admin.consumer_group)


def test_a_regulator_cannot_write_the_regulator_topic(stack: SecuredStack) -> None:
    imsi = "520010000000007"
    with pytest.raises(TopicAuthorizationFailedError):
        _send(
            stack.regulator,
            stack.admin.topic_flagged,
            imsi.encode(),
            _cleared_record(imsi),
            idempotent=False,
        )


def test_a_regulator_reads_the_audit_of_decisions_but_cannot_write_a_decision(
    stack: SecuredStack,
) -> None:
    imsi = "520010000000010"
    _send(stack.service, stack.admin.topic_decisions_audit, imsi.encode(), b"{}")
    assert _read(stack.regulator, stack.admin.topic_decisions_audit, group_id=f"{REGULATOR}.a")
    with pytest.raises(TopicAuthorizationFailedError):
        _send(stack.regulator, stack.admin.topic_decisions, imsi.encode(), b"{}", idempotent=False)


def test_a_regulator_cannot_read_the_input_topics(stack: SecuredStack) -> None:
    _send(stack.operator, stack.admin.topic_activations, b"520010000000009", b"{}")
    with pytest.raises(TopicAuthorizationFailedError):
        _read(stack.regulator, stack.admin.topic_activations)


def test_a_regulator_cannot_join_the_workers_group(stack: SecuredStack) -> None:
    consumer = manual_commit_consumer(stack.regulator, group_id=stack.admin.consumer_group)
    try:
        consumer.subscribe([stack.admin.topic_flagged])
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=5_000)
    finally:
        consumer.close()


# --- simguard itself, end to end ------------------------------------------------------


def test_the_api_and_a_worker_flag_an_unregistered_sim_over_sasl_ssl(
    stack: SecuredStack, tmp_path: Path
) -> None:
    rules = dataclasses.replace(stack.service.rules, unregistered_grace_seconds=1)
    settings = stack.service.replace(rules=rules)
    worker = WorkerProcess(settings, "secured", tmp_path).start()
    api = ApiProcess(settings, tmp_path)
    try:
        worker.wait_ready()
        api.wait_ready()
        _, key = issue_key(open_store(settings.database_url), "52001")
        activation = valid_activation(operator="52001", imsi="520010000000099")
        request = urllib.request.Request(
            f"{api.url}/v1/activations",
            data=orjson.dumps({"events": [activation]}),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=15) as answer:
            assert answer.status == 202

        def flagged() -> bool:
            case = register(stack.regulator).get(activation["imsi"])
            return bool(case and case["status"] == "flagged")

        assert wait_for(flagged, timeout=60)
        # The notice the worker made the operator's topic for, read by the operator.
        notices = _read(stack.operator, settings.notice_topic("52001"), group_id=f"{OPERATOR}.n")
        assert [orjson.loads(n)["imsi"] for n in notices] == [activation["imsi"]]
    finally:
        api.stop()
        worker.stop_quietly()


def test_an_operator_cannot_read_another_operators_notices(stack: SecuredStack) -> None:
    other = stack.admin.notice_topic("52003")
    ensure_notice_topics(stack.admin, [other])
    _send(stack.service, other, b"520030000000001", b"{}")
    with pytest.raises(TopicAuthorizationFailedError):
        _read(stack.operator, other)
