"""The broker configurations compose and Kubernetes ship run, on a real broker here.

There is no container engine on this machine, so the file each broker reads
(`deploy/kafka/compose-server.properties`, the `kafka-config` ConfigMap) runs
under plain `java` as one node, with only its host names, ports, paths and
node id moved to this machine, on a PKI made by `simguard tls make-pki` as
the compose `pki` service makes it. Then the `topics` service's commands run
as the admin's certificate, and simguard's user logs in with SCRAM over TLS.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, KafkaTimeoutError
from worker_helpers import settings_env

from simguard.broker import free_ports
from simguard.broker_config import (
    TOOL_JVM_OPTIONS,
    java_executable,
    kafka_classpath,
    read_properties,
)
from simguard.cli import main
from simguard.kafka_clients import admin_client, connection_config, reliable_producer
from simguard.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _shipped(source: str) -> dict[str, str]:
    if source == "compose":
        return read_properties(DEPLOY / "kafka" / "compose-server.properties")
    with (DEPLOY / "kubernetes" / "kafka-configmap.yaml").open() as handle:
        text = yaml.safe_load(handle)["data"]["server.properties"]
    pairs = (line.partition("=") for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, _, value in pairs}


pytestmark = pytest.mark.timeout(180)


@dataclass(frozen=True)
class ShippedBroker:
    pki: Path
    client_port: int
    internal_port: int
    base: Settings

    def admin(self) -> Settings:
        """As the compose `topics` service connects: mTLS on INTERNAL."""
        return self.base.replace(
            kafka_bootstrap_servers=f"localhost:{self.internal_port}",
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=str(self.pki / "ca.pem"),
            kafka_ssl_certfile=str(self.pki / "admin.pem"),
            kafka_ssl_keyfile=str(self.pki / "admin-key.pem"),
        )

    def user(self, name: str, password: str) -> Settings:
        """As the API and workers connect: SCRAM over TLS."""
        return self.base.replace(
            kafka_bootstrap_servers=f"localhost:{self.client_port}",
            kafka_security_protocol="SASL_SSL",
            kafka_ssl_cafile=str(self.pki / "ca.pem"),
            kafka_sasl_username=name,
            kafka_sasl_password=password,
        )


def _local_copy(properties: dict[str, str], ports: dict[str, int], base: Path) -> dict[str, str]:
    """The compose properties with the container's names, ports and paths
    replaced by this machine's; everything else as shipped."""
    moved = dict(properties)
    moved["listeners"] = ",".join(f"{name}://localhost:{port}" for name, port in ports.items())
    moved["advertised.listeners"] = ",".join(
        f"{name}://localhost:{port}" for name, port in ports.items() if name != "CONTROLLER"
    )
    # One node here: Kubernetes' three voters become this one, and the
    # replication its internal topics ask for becomes one.
    moved["node.id"] = "1"
    moved["controller.quorum.voters"] = f"1@localhost:{ports['CONTROLLER']}"
    for key in list(moved):
        if key.endswith("replication.factor") or key.endswith(("min.isr", "min.insync.replicas")):
            moved[key] = "1"
    for key in ("ssl.keystore.location", "ssl.truststore.location"):
        moved[key] = moved[key].replace("/etc/kafka/pki", str(base / "pki"))
    moved["log.dirs"] = str(base / "logs")
    return moved


@pytest.fixture(scope="module", params=["compose", "kubernetes"])
def shipped_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShippedBroker]:
    base = tmp_path_factory.mktemp(f"{request.param}-kafka")
    made = CliRunner().invoke(
        main, ["tls", "make-pki", "--out", str(base / "pki"), "--host", "localhost"]
    )
    assert made.exit_code == 0, made.output
    shipped = _shipped(request.param)
    names = [entry.split("://")[0] for entry in shipped["listeners"].split(",")]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    properties = base / "server.properties"
    properties.write_text(
        "".join(f"{k}={v}\n" for k, v in _local_copy(shipped, ports, base).items())
    )
    classpath = [java_executable(), *TOOL_JVM_OPTIONS, "-cp", kafka_classpath()]
    subprocess.run(
        [
            *classpath,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id=uLsrTqNOSTuuf7aiYRtmsA",
            "--config",
            str(properties),
        ],
        check=True,
        capture_output=True,
    )
    log = (base / "server.log").open("wb")
    broker = subprocess.Popen(
        [java_executable(), "-Xmx512m", "-cp", kafka_classpath(), "kafka.Kafka", str(properties)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    empty = base / "empty.toml"
    empty.write_text("")
    suffix = uuid.uuid4().hex[:8]
    defaults = load_settings(environ={"SIMGUARD_CONFIG": str(empty)})
    settings = defaults.replace(
        topic_flagged=f"{defaults.topic_flagged}.{suffix}",
        topic_partitions=1,
        hmac_secret=f"compose-hmac-secret-{suffix}".ljust(32, "0"),
    )
    ready = ShippedBroker(base / "pki", ports["SASL_SSL"], ports["INTERNAL"], settings)
    try:
        _wait_until_the_admin_connects(ready, broker, base / "server.log")
        yield ready
    finally:
        broker.kill()
        broker.wait(timeout=30)
        log.close()


def _wait_until_the_admin_connects(
    broker: ShippedBroker, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the broker exited:\n{log.read_text()[-3000:]}")
        try:
            admin = admin_client(broker.admin())
            try:
                if admin.describe_cluster()["brokers"]:
                    return
            finally:
                admin.close()
        except KafkaError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the broker never answered:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def test_the_topics_service_commands_run_as_the_admin_certificate(
    shipped_broker: ShippedBroker, tmp_path: Path
) -> None:
    password = tmp_path / "kafka-password"
    password.write_text(f"simguard-{uuid.uuid4().hex}")
    env = settings_env(shipped_broker.admin())
    runner = CliRunner()
    made = runner.invoke(
        main, ["kafka-user", "set", "simguard", "--password-file", str(password)], env=env
    )
    assert made.exit_code == 0, made.output
    ensured = runner.invoke(main, ["topics", "ensure", "--acls"], env=env)
    assert ensured.exit_code == 0, ensured.output

    simguard = shipped_broker.user("simguard", password.read_text())
    producer = reliable_producer(simguard, max_block_ms=15_000)
    try:
        producer.send(simguard.topic_flagged, key=b"k", value=b"{}").get(timeout=15)
    finally:
        producer.close(timeout=5)


def test_a_client_without_a_certificate_gets_no_admin_connection(
    shipped_broker: ShippedBroker,
) -> None:
    anonymous = shipped_broker.admin().replace(kafka_ssl_certfile="", kafka_ssl_keyfile="")
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(
            **connection_config(anonymous), request_timeout_ms=3_000, bootstrap_timeout_ms=3_000
        )
