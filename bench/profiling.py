"""Sampling profiles of the processes under load, with py-spy.

`py-spy record --nonblocking` samples the target from outside (it never
pauses it), only while a thread is busy (idle threads waiting on a socket or
a lock are left out), and writes collapsed stacks: `frame;frame;... count`.
This module starts and stops it around a workload and boils the stacks down
to where the busy time went: by leaf function ("self"), by function on the
stack ("inclusive", simguard's own code), and by package of the leaf.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("service", "workers", "schemas", "simguard", "bench")
# 100 Hz gives thousands of samples in a ten-second run; --nonblocking keeps
# py-spy from stopping the target while it reads the stacks.
SAMPLE_RATE_HZ = 100
TOP_FRAMES = 15
TOP_INCLUSIVE_FRAMES = 25
# Entry points (the CLI, the run loop) are on nearly every stack and say nothing.
_ENTRY_POINT_SHARE = 0.95
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# Innermost frames that are a thread waiting, not working. py-spy's own idle
# detection misses some of them in --nonblocking mode (a thread that wakes up
# often, like kafka-python's network thread, is mostly seen as running), so
# stacks ending here are dropped and counted as waiting.
_WAITING_FRAMES = (
    ("select", "selectors.py"),
    ("wait", "threading.py"),
    ("_wait_for_tstate_lock", "threading.py"),
    ("_worker", "concurrent/futures/thread.py"),
    ("get", "queue.py"),
    ("accept", "socket.py"),
    ("_recv", "multiprocessing/connection.py"),
    ("_poll", "multiprocessing/connection.py"),
    ("wait", "multiprocessing/connection.py"),
)


def py_spy_path() -> Path | None:
    path = Path(sys.executable).with_name("py-spy")
    return path if path.exists() else None


@dataclass
class ProfileSummary:
    name: str
    description: str
    samples: int = 0
    waiting: int = 0
    self_top: list[tuple[str, float]] = field(default_factory=list)
    inclusive_top: list[tuple[str, float]] = field(default_factory=list)
    by_package: list[tuple[str, float]] = field(default_factory=list)
    raw_path: str = ""

    def markdown(self) -> list[str]:
        lines = [f"### {self.name}", "", self.description, ""]
        if not self.samples:
            return [*lines, "(no busy samples)", ""]
        lines += [
            f"{self.samples:,} busy samples at {SAMPLE_RATE_HZ} Hz (another {self.waiting:,} "
            "ended in a wait: a selector, a condition, an idle pool thread, and are left "
            "out). Shares are of busy samples.",
            "",
            "Self time by package of the innermost Python frame (C code such as sqlite3,",
            "orjson or socket calls counts for the Python function that called it):",
            "",
            "| package | share |",
            "|---|---|",
            *[f"| {name} | {share:.1%} |" for name, share in self.by_package],
            "",
            "Top functions by self time:",
            "",
            "| function | self |",
            "|---|---|",
            *[f"| `{name}` | {share:.1%} |" for name, share in self.self_top],
            "",
            "simguard's functions by inclusive time (on the stack; entry points on nearly "
            "every stack left out):",
            "",
            "| function | inclusive |",
            "|---|---|",
            *[f"| `{name}` | {share:.1%} |" for name, share in self.inclusive_top],
            "",
        ]
        return lines


# py-spy reads a process's memory without stopping it, so now and then a frame
# is read while the interpreter rewrites it and its names come out as bytes.
UNREADABLE_FRAME = ("(a frame py-spy read mid-update)", "<unreadable>")


def _frame_parts(frame: str) -> tuple[str, str]:
    """(function, file) with the file relative to the repository when it is ours."""
    if not frame.isprintable():
        return UNREADABLE_FRAME
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    file = match["file"]
    path = Path(file)
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            file = str(path.relative_to(REPO_ROOT))
        if "site-packages/" in file:
            file = file.split("site-packages/", 1)[1]
    return match["function"], file


def _is_waiting(function: str, file: str) -> bool:
    """`function` may carry its class: `EpollSelector.select`, `Condition.wait`."""
    return any(
        file.endswith(waiting_file) and function.rpartition(".")[2] == name
        for name, waiting_file in _WAITING_FRAMES
    )


def _package(file: str) -> str:
    if file == UNREADABLE_FRAME[1]:
        return "frames py-spy could not read"
    if not file or file.startswith("<"):
        return "python internals"
    first = file.split("/", 1)[0]
    if first in PROJECT_PACKAGES:
        return f"simguard: {first}/"
    if "/" not in file:
        return f"{file.removesuffix('.py')} (stdlib)" if file.endswith(".py") else file
    if file.startswith(("/", "lib/python", "python3")):
        return "stdlib"
    return first


def summarise(raw: str, name: str, description: str, raw_path: str = "") -> ProfileSummary:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        parts = [_frame_parts(frame) for frame in frames]
        function, file = parts[-1]
        if _is_waiting(function, file):
            waiting += count
            continue
        total += count
        self_counts[f"{function} ({file})"] += count
        packages[_package(file)] += count
        ours = {f"{fn} ({fl})" for fn, fl in parts if fl.split("/", 1)[0] in PROJECT_PACKAGES}
        for key in ours:
            inclusive[key] += count
    summary = ProfileSummary(name, description, total, waiting, raw_path=raw_path)
    if total:
        summary.self_top = [(k, v / total) for k, v in self_counts.most_common(TOP_FRAMES)]
        summary.inclusive_top = [
            (k, v / total) for k, v in inclusive.most_common() if v / total < _ENTRY_POINT_SHARE
        ][:TOP_INCLUSIVE_FRAMES]
        summary.by_package = [(k, v / total) for k, v in packages.most_common(12)]
    return summary


class Profiler:
    """Records py-spy profiles of running processes into `out_dir`."""

    def __init__(self, enabled: bool, out_dir: Path, record_command: Callable[[list[str]], None]):
        self.executable = py_spy_path() if enabled else None
        self.out_dir = out_dir
        self.summaries: list[ProfileSummary] = []
        self._record_command = record_command

    @property
    def enabled(self) -> bool:
        return self.executable is not None

    @contextlib.contextmanager
    def record(
        self,
        name: str,
        description: str,
        pid: int,
        subprocesses: bool = False,
        gil_only: bool = False,
    ) -> Iterator[None]:
        """Profile `pid` (and its children) while the block runs.

        `gil_only` keeps only samples of threads holding the GIL: for a process
        of many threads that mostly wait (kafka-python's I/O thread, a thread pool), that is
        where its Python CPU goes; C code running without the GIL (a socket
        send, an SQLite step) is then left out."""
        if self.executable is None:
            yield
            return
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        output = self.out_dir / f"profile-{slug}.txt"
        argv = [
            str(self.executable), "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE_HZ),
            "--nonblocking", "--format", "raw", "--output", str(output),
        ]  # fmt: skip
        if subprocesses:
            argv.append("--subprocesses")
        if gil_only:
            argv.append("--gil")
            description += " Samples holding the GIL only (`py-spy --gil`)."
        self._record_command(argv)
        log = (self.out_dir / f"py-spy-{slug}.log").open("wb")
        spy = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            # py-spy writes its output when interrupted, as on Ctrl-C.
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(timeout=10)
            log.close()
        raw = output.read_text() if output.exists() else ""
        self.summaries.append(summarise(raw, name, description, str(output)))
