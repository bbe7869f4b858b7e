"""The figures of a run, the console table and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.profiling import ProfileSummary

ANALYSIS_PATH = Path(__file__).with_name("ANALYSIS.md")


@dataclass
class Figure:
    """One row: simguard's number beside the baseline measured in the same run.

    `value` is the number the target is about (None: not measured); `text`
    and `baseline_text` are how the row shows it (p50/p99 for a latency)."""

    key: str
    label: str
    unit: str
    value: float | None = None
    text: str = ""
    baseline: float | None = None
    baseline_text: str = "—"
    baseline_label: str = ""
    target: str = "report"
    met: bool | None = None
    method: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> str:
        if self.value is None or not self.baseline:
            return "—"
        if self.unit == "ms":  # a latency: how many times the baseline's
            return f"{self.value / self.baseline:.1f} times"
        return f"{self.value / self.baseline:.0%}"

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.met is None:
            return "reported"
        return "met" if self.met else "MISSED"


@dataclass
class RunReport:
    mode: str
    command: str
    started_at: datetime
    figures: list[Figure] = field(default_factory=list)
    profiles: list[ProfileSummary] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)
    elapsed_seconds: float = 0.0


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def console_table(figures: list[Figure]) -> str:
    headers = ("figure", "simguard", "baseline", "ratio", "target", "")
    rows = [
        (f.label, f.text or "—", f.baseline_text, f.ratio, f.target, f.verdict) for f in figures
    ]
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(headers))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(r)) for r in rows]
    return "\n".join(lines)


def machine_facts(kafka_version: str) -> dict[str, str]:
    import sqlite3

    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "CPU": f"{cpu_model}, nproc {_command_output(['nproc']) or os.cpu_count()}",
        "memory": memory,
        "load average at start (1/5/15 min)": load,
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
        "Kafka": f"{kafka_version} (one local KRaft node started by the bench)",
        "kafka-python": _version("kafka-python"),
        "crc32c": _version("crc32c"),
        "SQLite": f"{sqlite3.sqlite_version} (Python's module); CLI "
        + (_command_output(["sqlite3", "--version"]).split(" ")[0] or "absent"),
        "gunicorn": _version("gunicorn"),
        "py-spy": _command_output(
            [str(Path(sys.executable).with_name("py-spy")), "--version"]
        ).removeprefix("py-spy ")
        or "absent",
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _command_output(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return result.stdout.strip()


def markdown(report: RunReport) -> str:
    out = [
        "# simguard benchmark results",
        "",
        "Written by `simguard bench`; every figure sits beside a baseline measured in the",
        "same run, on the same machine and the same broker.",
        "",
        f"- run: {report.started_at.strftime('%Y-%m-%d %H:%M UTC')}, mode **{report.mode}**, "
        f"{report.elapsed_seconds / 60:.1f} min in all",
        f"- command: `{report.command}`",
        "",
        "## Machine",
        "",
    ]
    out += [f"- {name}: {value}" for name, value in report.machine.items()]
    out += [
        "",
        "## Figures",
        "",
        "| figure | simguard | baseline (same run) | simguard / baseline | target (2 cores) | |",
        "|---|---|---|---|---|---|",
    ]
    for f in report.figures:
        baseline = f.baseline_text + (f" ({f.baseline_label})" if f.baseline_label else "")
        out.append(
            f"| {f.label} | {f.text or '—'} | {baseline} | {f.ratio} | {f.target} | {f.verdict} |"
        )
    if report.notes:
        out += ["", *[f"- {note}" for note in report.notes]]
    out += ["", "## How each figure was measured", ""]
    for f in report.figures:
        out += [f"### {f.label}", "", f.method or "(not measured in this run)", ""]
        out += [f"- {detail}" for detail in f.details]
        out.append("")
    out += ["## Where the time goes (py-spy)", ""]
    if not report.profiles:
        out += ["No profile in this run (py-spy absent, or `--no-profile`).", ""]
    for profile in report.profiles:
        out += profile.markdown()
    if ANALYSIS_PATH.exists():
        out += ["## Analysis and proposals", "", ANALYSIS_PATH.read_text().strip(), ""]
    out += ["## Command lines", "", "```"]
    out += report.commands
    out += ["```", ""]
    return "\n".join(out)


def command_line(argv: list[str], repo_root: Path) -> str:
    shown = []
    for arg in argv:
        path = Path(arg)
        if path.is_absolute() and path.is_relative_to(repo_root):
            arg = str(path.relative_to(repo_root))
        shown.append(arg)
    return shlex.join(shown)


def now() -> datetime:
    return datetime.now(UTC)
