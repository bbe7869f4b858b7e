"""A process's resident memory read from /proc while it works.

VmRSS sampled on a thread every `interval` seconds gives the curve; VmHWM (the
kernel's own high-water mark) catches a peak between two samples. At the end,
/proc/PID/smaps_rollup splits the resident set into anonymous memory (the
Python heap, SQLite's page cache, kafka-python's buffers) and file pages
(shared libraries; the store's file when SQLite maps it)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procstat import status_kib


def rollup_kib(pid: int) -> dict[str, int]:
    """The `kB` lines of /proc/PID/smaps_rollup, e.g. Rss, Anonymous."""
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        words = rest.split()
        if len(words) == 2 and words[1] == "kB":
            found[name] = int(words[0])
    return found


@dataclass
class RssSampler:
    pid: int
    interval: float = 0.25
    # (monotonic time, VmRSS in MiB)
    samples: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), rss_mib(self.pid)))
            except (OSError, LookupError):
                return  # the process is gone
            self._stop.wait(self.interval)

    @property
    def sampled_peak_mib(self) -> float:
        return max((rss for _, rss in self.samples), default=0.0)


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def high_water_mib(pid: int) -> float:
    return status_kib(pid, "VmHWM") / 1024
