"""Apache Kafka's MirrorMaker 2 between simguard's cluster and a partner
regulator's, run with plain `java` from the jars `deploy/kafka/pom.xml`
resolves (connect-mirror beside the broker's).

One dedicated MirrorMaker 2 process per link, configured here from the two
clusters and what flows each way: our indicators for the partner out
(`ew.indicators.v1.<partner>`), the partner's sightings of our SIMs in
(`ew.sightings.v1`). The default replication policy prefixes each replicated
topic with its source cluster's alias (`TH.ew.indicators.v1.KH` on the
partner's cluster, `KH.ew.sightings.v1` on ours), so a record's origin is in
its topic name and no topic is mirrored back.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simguard.broker_config import LOG4J2_PROPERTIES as BROKER_LOG4J2_PROPERTIES
from simguard.broker_config import BrokerError, java_executable, kafka_classpath

MIRROR_MAKER_MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"
JVM_OPTIONS = ("-Xms128m", "-Xmx384m", "-XX:+UseG1GC", "-Djava.awt.headless=true")
# The broker's console logging, with MirrorMaker's own start-up at INFO.
LOG4J2_PROPERTIES = (
    BROKER_LOG4J2_PROPERTIES.partition("logger.server.name")[0]
    + "logger.mm2.name = org.apache.kafka.connect.mirror.MirrorMaker\nlogger.mm2.level = INFO\n"
)
STARTED_LINE = "Kafka MirrorMaker started"
NOT_SYNCED_CONFIGS = (
    r"message\.timestamp\..*",
    r"follower\.replication\.throttled\.replicas",
    r"leader\.replication\.throttled\.replicas",
    r"unclean\.leader\.election\.enable",
    r"min\.insync\.replicas",
)


@dataclass(frozen=True)
class Cluster:
    """One side of a link: its alias (the replicated topics' prefix) and how to reach it."""

    alias: str
    bootstrap: str
    # Client settings for this cluster (security.protocol, sasl.*, ssl.*).
    client: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Flow:
    """Topics (a Java regular expression) copied from `source` to `target`."""

    source: str
    target: str
    topics: str


def properties(
    clusters: Sequence[Cluster],
    flows: Sequence[Flow],
    replication_factor: int = 1,
    heartbeat_seconds: int = 1,
) -> str:
    """mm2.properties for a dedicated MirrorMaker 2 of these clusters and flows."""
    lines = [f"clusters = {', '.join(c.alias for c in clusters)}"]
    for cluster in clusters:
        lines.append(f"{cluster.alias}.bootstrap.servers = {cluster.bootstrap}")
        for key, value in sorted(cluster.client.items()):
            lines.append(f"{cluster.alias}.{key} = {value}")
        # Indicators are written in Kafka transactions: an aborted one is
        # never copied to a partner.
        lines.append(f"{cluster.alias}.consumer.isolation.level = read_committed")
    for flow in flows:
        lines += [f"{flow.source}->{flow.target}.enabled = true"]
        lines += [f"{flow.source}->{flow.target}.topics = {_escaped(flow.topics)}"]
    factor = str(replication_factor)
    lines += [
        f"replication.factor = {factor}",
        *(
            f"{name}.replication.factor = {factor}"
            for name in (
                "checkpoints.topic",
                "heartbeats.topic",
                "offset-syncs.topic",
                "offset.storage",
                "status.storage",
                "config.storage",
            )
        ),
        # A partner's cluster has its own principals: ours are not copied.
        "sync.topic.acls.enabled = false",
        # Each side stamps its input topics with its own brokers' time
        # (LogAppendTime) and keeps its own replication settings: those are
        # not copied from the other's topic (compaction is). Seen here, 4.3
        # still resets the timestamp type of a replica of a compacted topic,
        # so a partner's indicators are not held to it (Settings.broker_time_topics).
        "config.properties.exclude = " + _escaped(", ".join(NOT_SYNCED_CONFIGS)),
        "sync.topic.configs.interval.seconds = 30",
        f"emit.heartbeats.interval.seconds = {heartbeat_seconds}",
        "refresh.topics.interval.seconds = 5",
    ]
    return "\n".join(lines) + "\n"


def _escaped(value: str) -> str:
    """A value as a Java properties file must spell it: a backslash doubled
    (a single one escapes the next character and vanishes)."""
    return value.replace("\\", "\\\\")


class MirrorMaker:
    """A MirrorMaker 2 process of its own, in `data_dir` (config and log)."""

    def __init__(self, data_dir: Path, config: str) -> None:
        self.data_dir = data_dir
        self.config = config
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mirror-maker.log"

    def start(self, timeout: float = 90) -> MirrorMaker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.data_dir / "mm2.properties"
        config_path.write_text(self.config)
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(LOG4J2_PROPERTIES)
        command = [
            java_executable(),
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            kafka_classpath(),
            MIRROR_MAKER_MAIN,
            str(config_path),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        self._wait_started(timeout)
        return self

    def _wait_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(f"MirrorMaker 2 exited: {self.log_tail()}")
            if STARTED_LINE in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.5)
        self.kill()
        raise BrokerError(f"MirrorMaker 2 did not start in {timeout:g} s: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
