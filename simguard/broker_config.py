"""What a local Kafka KRaft node is made of: its jars, its command lines and
its files (server.properties, a log4j2 config, the pid file). Nothing here
starts or stops a process; `simguard.broker` does."""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simguard.broker_security import CLIENT_LISTENER, BrokerSecurity, security_of

KAFKA_LIBS_ENV = "SIMGUARD_KAFKA_LIBS"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KAFKA_LIBS = REPO_ROOT / ".cache" / "kafka-libs"
_HAS_PROC = Path("/proc/self/cmdline").exists()

# The broker runs for tests, the demo and a laptop benchmark, next to other JVMs.
BROKER_JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    # Kafka's own launch script defaults: short GC pauses keep produce latency flat.
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
# The storage tool runs for a few seconds: skipping the optimising compiler and
# using the serial collector starts it faster.
TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

# WARN for everything, INFO for "Kafka Server started": enough to debug a
# failed start without megabytes per test session.
LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = console
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


class BrokerError(RuntimeError):
    """A local Kafka node could not be set up, started or reached."""


@dataclass(frozen=True)
class NodeSpec:
    """One broker+controller node of a local cluster of `len(voters)` nodes."""

    node_id: int
    data_dir: Path
    port: int
    controller_port: int
    # (node id, controller port) of every controller in the static quorum.
    voters: tuple[tuple[int, int], ...]
    cluster_id: str = ""
    overrides: Mapping[str, str] = field(default_factory=dict)
    # None: PLAINTEXT listeners and no authorizer (the test session's broker).
    security: BrokerSecurity | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_config(self) -> dict[str, Any]:
        """kafka-python settings for the launcher's own clients (as the admin)."""
        return self.security.admin_client_config() if self.security else {}

    @property
    def replication_factor(self) -> int:
        return min(3, len(self.voters))

    @property
    def min_insync_replicas(self) -> int:
        return min(2, self.replication_factor)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.data_dir / "log4j2.properties"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "pid"

    def is_formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()


def server_properties(spec: NodeSpec) -> dict[str, str]:
    replicas = str(spec.replication_factor)
    min_isr = str(spec.min_insync_replicas)
    voters = ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in spec.voters)
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(spec.node_id),
        "listeners": f"PLAINTEXT://127.0.0.1:{spec.port},CONTROLLER://127.0.0.1:{spec.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{spec.port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        # A static quorum: formatting needs no --standalone/--initial-controllers,
        # and a single node may come back on another controller port.
        "controller.quorum.voters": voters,
        "log.dirs": str(spec.log_dir),
        "auto.create.topics.enable": "false",
        "num.partitions": "3",
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        # These internal topics are created on first use; 50 partitions each
        # (the default) costs about a second and 50 directories per node.
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.num.partitions": "10",
        "group.initial.rebalance.delay.ms": "0",
        # A dead node is fenced and loses its leaderships after 3 s, not 9 s,
        # so fault tests wait less for leader election.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
        # Small segments and a day of retention bound a laptop's disk during
        # benchmarks; the regulator topic is compacted, so it keeps every key.
        # (Kafka 4 refuses segments under 1 MiB, even per topic.)
        "log.segment.bytes": str(8 * 1024 * 1024),
        "log.retention.hours": "24",
        # The cleaner allocates this buffer on the heap; the default 128 MiB is a
        # quarter of a local node's heap.
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
    }
    if spec.security is not None:
        properties.update(spec.security.server_properties(spec.port, spec.controller_port))
    properties.update(spec.overrides)
    return properties


def write_node_files(spec: NodeSpec) -> None:
    """(Re)write server.properties and the log4j2 config; the data stays.
    Owner-only: a secured node's file holds the admin's SCRAM password."""
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={value}" for key, value in server_properties(spec).items()]
    spec.properties_path.touch(mode=0o600)
    spec.properties_path.chmod(0o600)
    spec.properties_path.write_text("\n".join(lines) + "\n")
    spec.log4j_path.write_text(LOG4J2_PROPERTIES)


def read_properties(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def spec_from_data_dir(data_dir: Path) -> NodeSpec:
    """The node as last configured in `data_dir` (extra config not recovered),
    for commands run from another process than the one that started it."""
    path = data_dir / "server.properties"
    if not path.is_file():
        raise BrokerError(f"no node was ever started from {data_dir}")
    values = read_properties(path)
    ports = {
        name: int(address.rpartition(":")[2])
        for name, _, address in (
            listener.partition("://") for listener in values["listeners"].split(",")
        )
    }
    voters = tuple(
        (int(node_id), int(address.rpartition(":")[2]))
        for node_id, _, address in (
            voter.partition("@") for voter in values["controller.quorum.voters"].split(",")
        )
    )
    security = security_of(values)
    client_listener = CLIENT_LISTENER if security else "PLAINTEXT"
    return NodeSpec(
        int(values["node.id"]),
        data_dir,
        ports[client_listener],
        ports["CONTROLLER"],
        voters,
        security=security,
    )


def new_cluster_id() -> str:
    """Kafka's Uuid text form: URL-safe base64 of 16 random bytes, unpadded."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def kafka_classpath() -> str:
    libs = Path(os.environ.get(KAFKA_LIBS_ENV) or DEFAULT_KAFKA_LIBS)
    jars = sorted(libs.glob("*.jar"))
    if not any(jar.name.startswith("kafka_2.13-") for jar in jars):
        raise BrokerError(
            f"no Kafka jars in {libs}: run `make kafka-jars` (or point {KAFKA_LIBS_ENV} at them)"
        )
    return os.pathsep.join(str(jar) for jar in jars)


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise BrokerError("no `java` on PATH (Kafka 4.x needs Java 17 or later)")
    return found


def format_command(spec: NodeSpec) -> list[str]:
    return [
        java_executable(),
        *TOOL_JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={spec.log4j_path}",
        "-cp",
        kafka_classpath(),
        "kafka.tools.StorageTool",
        "format",
        # One argument: a base64 cluster id may begin with "-".
        f"--cluster-id={spec.cluster_id or new_cluster_id()}",
        "--config",
        str(spec.properties_path),
        *(spec.security.format_arguments() if spec.security else []),
    ]


def server_command(spec: NodeSpec) -> list[str]:
    return [
        java_executable(),
        *BROKER_JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={spec.log4j_path}",
        "-cp",
        kafka_classpath(),
        "kafka.Kafka",
        str(spec.properties_path),
    ]


def read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def is_node_process(pid: int, data_dir: Path) -> bool:
    """The pid is alive and is the Kafka JVM of `data_dir` (pids get reused)."""
    if not _HAS_PROC:  # macOS: trust the pid file
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # A zombie (killed, not yet reaped) has an empty command line.
    return b"kafka.Kafka" in cmdline and str(data_dir / "server.properties").encode() in cmdline
