"""What a soak run is asked to do, and what it records as it goes."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

SIMGUARD: Final = str(Path(sys.executable).with_name("simguard"))
RESULTS_BEGIN: Final = "<!-- soak:begin -->"
RESULTS_END: Final = "<!-- soak:end -->"
SAMPLE_SECONDS: Final = 5.0
# A chunk is one simulated population; ~9 events per SIM, so ~4,500 events.
CHUNK_SIMS: Final = 500
SENDER_THREADS: Final = 4
# Behind schedule by more than this, the senders do not try to catch up: a
# stall must not turn into a burst that measures something else.
MAX_CATCH_UP_SECONDS: Final = 1.0
PATHS: Final = {
    "registrations": "/v1/registrations",
    "activations": "/v1/activations",
    "network_events": "/v1/network-events",
}


@dataclass(frozen=True)
class SoakPlan:
    minutes: float
    rate_per_second: float
    restart_every_seconds: float
    batch_events: int
    grace_seconds: int
    drain_timeout_seconds: float


@dataclass
class Sample:
    elapsed_seconds: float
    worker_rss_mib: float
    api_rss_mib: float
    lag: int
    sent: int
    acked: int


@dataclass
class Restart:
    drain_seconds: float
    exit_code: int | None
    ready_seconds: float


@dataclass
class Tally:
    """What the senders did; updated under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked_ids: set[str] = field(default_factory=set)
    sent: int = 0
    acked: int = 0
    requests: int = 0
    refused_503: int = 0
    connection_errors: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    acked: int
    applied: int
    missing: int
    case_records: int
    sims_with_cases: int
    conflicting_versions: int
    repeated_records: int
    gapped_sims: int

    @property
    def sound(self) -> bool:
        return not (
            self.missing or self.conflicting_versions or self.repeated_records or self.gapped_sims
        )


@dataclass
class SoakResult:
    plan: SoakPlan
    command: str
    started_at: datetime
    load_seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)
    worker_peaks_mib: list[float] = field(default_factory=list)
    drain_seconds: float | None = None
    final_lag: int = -1
    input_records: int = 0
    dead_letters: int = 0
    sent: int = 0
    requests: int = 0
    refused_503: int = 0
    connection_errors: int = 0
    failures: list[str] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def acked_rate(self) -> float:
        acked = self.verdict.acked if self.verdict else 0
        return acked / self.load_seconds if self.load_seconds else 0.0

    @property
    def passed(self) -> bool:
        return (
            self.verdict is not None
            and self.verdict.sound
            and self.final_lag == 0
            and not self.failures
            and self.dead_letters == 0
            and all(r.exit_code == 0 for r in self.restarts)
        )
