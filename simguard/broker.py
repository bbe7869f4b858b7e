"""Real Apache Kafka 4.x KRaft nodes on this machine, run with plain `java`.

`start_single_node` backs `simguard broker start` and the test session's broker;
`start_cluster` gives fault tests three broker+controller nodes (replication 3,
min.insync.replicas 2). A node is ready when it answers an admin client as an
unfenced broker and acknowledges an acks=all produce (`broker_readiness`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from simguard.broker_config import (
    BrokerError,
    NodeSpec,
    format_command,
    is_node_process,
    new_cluster_id,
    read_pid,
    server_command,
    spec_from_data_dir,
    write_node_files,
)
from simguard.broker_readiness import NotReady, check_ready, node_admin, port_open
from simguard.broker_security import BrokerSecurity

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.25


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on; all sockets stay open until every port is
    chosen, so the `count` ports are distinct."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


class KafkaNode:
    """One local node; `start()` formats its storage the first time only."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = read_pid(spec.data_dir)

    @property
    def node_id(self) -> int:
        return self.spec.node_id

    @property
    def data_dir(self) -> Path:
        return self.spec.data_dir

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def bootstrap(self) -> str:
        return self.spec.bootstrap

    @property
    def pid(self) -> int | None:
        return self._pid

    def is_running(self) -> bool:
        if self._process is not None:
            # Ours: poll() also reaps it. (Right after the fork its command
            # line is still Python's, so the /proc check would say no.)
            return self._process.poll() is None
        return self._pid is not None and is_node_process(self._pid, self.data_dir)

    def start(self, timeout: float = 60) -> KafkaNode:
        self.launch()
        try:
            self.wait_until_ready(timeout)
        except BaseException:
            self.kill()  # a half-started JVM would hold the data dir's lock
            raise
        return self

    def launch(self) -> None:
        """Start the JVM without waiting for it (a cluster starts all first)."""
        if self.is_running():
            raise BrokerError(f"node {self.node_id} already runs (pid {self._pid})")
        command = server_command(self.spec)  # fails early without java or jars
        if port_open(self.port):
            raise BrokerError(f"port {self.port} is in use (another Kafka?)")
        write_node_files(self.spec)
        if not self.spec.is_formatted():
            _run_format(self.spec)
        with self.spec.server_log.open("ab") as server_log:
            server_log.write(f"--- simguard: starting node {self.node_id}\n".encode())
            server_log.flush()
            # Its own session: Ctrl-C in the terminal that ran `simguard broker
            # start` must not reach the broker, and it outlives that command.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=server_log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        self._pid = self._process.pid
        self.spec.pid_path.write_text(f"{self._pid}\n")

    def wait_until_ready(self, timeout: float = 60) -> None:
        started = time.monotonic()
        deadline = started + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.is_running():
                raise BrokerError(f"node {self.node_id} exited during start-up:\n{self.log_tail()}")
            if port_open(self.port):
                try:
                    check_ready(self.spec)
                    log.info("node %s ready in %.1fs", self.node_id, time.monotonic() - started)
                    return
                except (NotReady, KafkaError, OSError) as exc:
                    last_error = exc
            time.sleep(_POLL_SECONDS)
        raise BrokerError(
            f"node {self.node_id} not ready after {timeout:.0f}s: {last_error!r}\n"
            + self.log_tail()
        )

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL after `timeout` seconds."""
        self._signal_and_wait(signal.SIGTERM, timeout)
        if self.is_running():
            self._signal_and_wait(signal.SIGKILL, 10)

    def kill(self) -> None:
        """SIGKILL: a crash, no controlled shutdown."""
        self._signal_and_wait(signal.SIGKILL, 10)

    def log_tail(self, lines: int = 20) -> str:
        """The end of server.log without Java stack frames, which would push
        the one line saying what went wrong out of an error message."""
        try:
            text = self.spec.server_log.read_text(errors="replace")
        except OSError:
            return "(no server.log)"
        kept = [line for line in text.splitlines() if not line.startswith("\t")]
        return "\n".join(kept[-lines:])

    def _signal_and_wait(self, signum: signal.Signals, timeout: float) -> None:
        if self._pid is None or not self.is_running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signum)
        deadline = time.monotonic() + timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.is_running():
            self.spec.pid_path.unlink(missing_ok=True)


class KafkaCluster:
    """Broker+controller nodes with ids 1..n (node id = index + 1)."""

    def __init__(self, nodes: list[KafkaNode]) -> None:
        self.nodes = nodes

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def security(self) -> BrokerSecurity | None:
        return self.nodes[0].spec.security

    def kill(self, node_index: int) -> None:
        self.nodes[node_index].kill()

    def start(self, node_index: int, timeout: float = 60) -> None:
        self.nodes[node_index].start(timeout)

    def index_of(self, node_id: int) -> int:
        return next(i for i, node in enumerate(self.nodes) if node.node_id == node_id)

    def leader_of(self, topic: str, partition: int) -> int:
        """Node id of the partition's leader as the metadata says now (-1: none)."""
        for entry in self._described_partitions(topic):
            if entry["partition_index"] == partition:
                return int(entry["leader_id"])
        raise BrokerError(f"{topic} has no partition {partition}")

    def partition_states(self, topic: str) -> str:
        """Each partition's leader and in-sync replicas, one line each: what a
        fault test prints when writes do not resume."""
        partitions = sorted(self._described_partitions(topic), key=lambda e: e["partition_index"])
        return "\n".join(
            f"{topic}[{entry['partition_index']}] leader {entry['leader_id']} "
            f"isr {sorted(entry.get('isr_nodes') or [])}"
            for entry in partitions
        )

    def in_sync(self, topic: str) -> bool:
        """Whether every replica of `topic` on a running node is in sync."""
        running = {node.node_id for node in self.nodes if node.is_running()}
        return all(
            running.intersection(entry.get("replica_nodes") or [])
            <= set(entry.get("isr_nodes") or [])
            for entry in self._described_partitions(topic)
        )

    def _described_partitions(self, topic: str) -> list[dict[str, Any]]:
        admin = node_admin(
            [node.bootstrap for node in self.nodes if node.is_running()],
            self.nodes[0].spec.client_config(),
        )
        try:
            (described,) = admin.describe_topics([topic])
        finally:
            admin.close()
        return list(described["partitions"])

    def stop_all(self, timeout: float = 30) -> None:
        # In parallel: the last node stopping alone would wait for a quorum
        # that has already gone.
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(timeout), self.nodes))


def start_single_node(
    data_dir: Path,
    port: int = 9092,
    controller_port: int | None = None,
    extra_config: dict[str, str] | None = None,
    timeout: float = 60,
    security: BrokerSecurity | None = None,
) -> KafkaNode:
    """Start (formatting once) a one-node cluster in `data_dir`; a node already
    running there on `port` is waited for and returned. With `security`, its
    listeners are TLS, clients authenticate with SCRAM and ACLs apply."""
    data_dir = data_dir.resolve()
    cport = controller_port or free_port()
    spec = NodeSpec(
        1,
        data_dir,
        port,
        cport,
        voters=((1, cport),),
        overrides=extra_config or {},
        security=security,
    )
    node = KafkaNode(spec)
    if not node.is_running():
        return node.start(timeout)
    running_on = spec_from_data_dir(data_dir).bootstrap
    if running_on != node.bootstrap:
        raise BrokerError(f"a node already runs from {data_dir} on {running_on} (pid {node.pid})")
    node.wait_until_ready(timeout)
    return node


def start_cluster(
    base_dir: Path,
    nodes: int = 3,
    base_port: int | None = None,
    timeout: float = 90,
    extra_config: dict[str, str] | None = None,
    security: BrokerSecurity | None = None,
) -> KafkaCluster:
    """`nodes` broker+controller nodes in base_dir/node-<id>; ports are
    base_port + 2*index (broker) and + 1 (controller), or free ones."""
    ports = list(range(base_port, base_port + 2 * nodes)) if base_port else free_ports(2 * nodes)
    voters = tuple((index + 1, ports[2 * index + 1]) for index in range(nodes))
    cluster_id = new_cluster_id()
    overrides = extra_config or {}

    def make_node(node_id: int, cport: int) -> KafkaNode:
        data_dir = (base_dir / f"node-{node_id}").resolve()
        port = ports[2 * node_id - 2]
        return KafkaNode(
            NodeSpec(node_id, data_dir, port, cport, voters, cluster_id, overrides, security)
        )

    cluster = KafkaCluster([make_node(node_id, cport) for node_id, cport in voters])
    deadline = time.monotonic() + timeout
    try:
        # Formatting is a JVM start each; doing it side by side saves seconds.
        with ThreadPoolExecutor(max_workers=nodes) as pool:
            list(pool.map(KafkaNode.launch, cluster.nodes))
        for node in cluster.nodes:
            node.wait_until_ready(max(1.0, deadline - time.monotonic()))
    except BaseException:
        cluster.stop_all(timeout=5)
        raise
    return cluster


def stop_node(data_dir: Path, timeout: float = 30) -> bool:
    """Stop the node started from `data_dir` (by any process); False if none ran."""
    data_dir = data_dir.resolve()
    if _running_pid(data_dir) is None:
        (data_dir / "pid").unlink(missing_ok=True)
        return False
    KafkaNode(spec_from_data_dir(data_dir)).stop(timeout)
    return True


def node_status(data_dir: Path) -> str:
    """'running on host:port (pid N)' when the node answers; otherwise why not."""
    data_dir = data_dir.resolve()
    pid = _running_pid(data_dir)
    if pid is None:
        return f"stopped (no node running from {data_dir})"
    spec = spec_from_data_dir(data_dir)
    bootstrap = spec.bootstrap
    try:
        admin = node_admin([bootstrap], spec.client_config())
        try:
            topics = admin.list_topics()
        finally:
            admin.close()
    except KafkaError as exc:
        return f"not answering: pid {pid} runs but {bootstrap} does not respond ({exc!r})"
    return f"running on {bootstrap} (pid {pid}, {len(topics)} topics)"


def _running_pid(data_dir: Path) -> int | None:
    pid = read_pid(data_dir)
    return pid if pid is not None and is_node_process(pid, data_dir) else None


def _run_format(spec: NodeSpec) -> None:
    result = subprocess.run(format_command(spec), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(
            f"formatting {spec.log_dir} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
