"""What /proc says about the processes under test: resident memory, CPU time,
children. Linux only, like the benchmark."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int:
    """A `kB` line of /proc/PID/status, e.g. VmRSS or VmHWM, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/status has no {field}")


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/.../stat file after the command name."""
    text = stat.read_text()
    # The command name is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def _cpu_seconds_of(stat: Path) -> float:
    # After the command: state(0) ppid(1) ... utime(11) stime(12).
    fields = _stat_fields(stat)
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (its threads included)."""
    try:
        return _cpu_seconds_of(Path(f"/proc/{pid}/stat"))
    except OSError:
        return 0.0


# Thread names of HotSpot's just-in-time compilers, as /proc shows them
# (cut to 15 characters).
_JIT_THREAD_PREFIXES = ("C1 CompilerThre", "C2 CompilerThre")
# A broker's JVM compiles each request path during its first minute or so
# under a new kind of load: its compiler threads then take up to half of one
# of the two cores the processes under test share with it, which a broker in
# service has long stopped doing. Warm-ups run until they use less than this
# share of one core.
JIT_QUIET_CORES = 0.05


def jit_compiler_seconds(pid: int) -> float:
    """CPU time the JVM `pid` (or its descendants) spent compiling its own
    code; 0.0 for a process that is not a HotSpot JVM."""
    total = 0.0
    for process in tree(pid):
        try:
            tasks = list(Path(f"/proc/{process}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                if (task / "comm").read_text().startswith(_JIT_THREAD_PREFIXES):
                    total += _cpu_seconds_of(task / "stat")
            except OSError:
                continue  # the thread or process has just ended
    return total


@dataclass
class BrokerWarmUp:
    """The broker's compiler CPU over each chunk of a warm-up, and whether
    the last chunk found it quiet (`JIT_QUIET_CORES`)."""

    broker_pid: int
    chunk_seconds: float
    compiled: list[float] = field(default_factory=list)

    @contextmanager
    def chunk(self) -> Iterator[None]:
        before = jit_compiler_seconds(self.broker_pid)
        yield
        self.compiled.append(jit_compiler_seconds(self.broker_pid) - before)

    @property
    def seconds(self) -> float:
        return len(self.compiled) * self.chunk_seconds

    @property
    def quiet(self) -> bool:
        return bool(self.compiled) and self.compiled[-1] < JIT_QUIET_CORES * self.chunk_seconds

    def describe(self) -> str:
        return (
            f"{'until' if self.quiet else 'stopped at its bound before'} the broker's JIT "
            f"compiler threads used under {JIT_QUIET_CORES:.0%} of a core (their CPU per "
            f"{self.chunk_seconds:g} s: "
            + ", ".join(f"{seconds:.1f} s" for seconds in self.compiled)
            + ")"
        )


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(entry / "stat")[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants now alive."""
    pending, found = [pid], []
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children(current))
    return found


@dataclass
class CpuMeter:
    """CPU seconds used by named process trees between `start()` and `stop()`.

    Trees are re-read at `stop()` as well, so gunicorn workers forked after
    the start still count (from zero)."""

    roots: dict[str, int]

    def __post_init__(self) -> None:
        self._before: dict[int, float] = {}
        self._started = 0.0
        self.used: dict[str, float] = {}
        self.wall_seconds = 0.0

    def start(self) -> None:
        self._before = {p: cpu_seconds(p) for root in self.roots.values() for p in tree(root)}
        self._started = time.monotonic()

    def stop(self) -> None:
        self.wall_seconds = time.monotonic() - self._started
        for name, root in self.roots.items():
            self.used[name] = sum(cpu_seconds(p) - self._before.get(p, 0.0) for p in tree(root))

    def cores(self) -> dict[str, float]:
        """Average cores each tree kept busy."""
        wall = max(self.wall_seconds, 1e-9)
        return {name: seconds / wall for name, seconds in self.used.items()}


def describe_cores(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


def reaped_children_cpu_seconds() -> float:
    """CPU time of this process's children that have exited and been waited
    for, theirs included: how a finished command's CPU is read."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    """CPU time of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
