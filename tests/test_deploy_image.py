"""deploy/Dockerfile builds from what the build context holds and runs
simguard as a non-root user. There is no Docker engine here, so these read the
Dockerfile and .dockerignore rather than build the image."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    translated = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(translated.get(part, re.escape(part)) for part in parts))


def excluded_by_dockerignore(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent
    directories decides; `!` patterns re-include."""
    candidates = [path]
    parts = path.split("/")
    candidates += ["/".join(parts[:i]) for i in range(1, len(parts))]
    excluded = False
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def copied_sources() -> list[str]:
    """Sources of COPY instructions that read the build context (not a stage)."""
    sources: list[str] = []
    for keyword, arguments in instructions():
        if keyword != "COPY" or "--from=" in arguments:
            continue
        words = [w for w in arguments.split() if not w.startswith("--")]
        sources += words[:-1]
    return sources


def test_image_is_built_on_python_3_11_slim() -> None:
    bases = [arguments.split()[0] for keyword, arguments in instructions() if keyword == "FROM"]

    assert set(bases) == {"python:3.11-slim"}


def test_every_copied_path_exists_in_the_repository() -> None:
    missing = [s for s in copied_sources() if not (REPO_ROOT / s).exists()]

    assert copied_sources()
    assert missing == []


def test_no_copied_path_is_excluded_by_dockerignore() -> None:
    assert [s for s in copied_sources() if excluded_by_dockerignore(s)] == []


def test_dockerignore_keeps_the_virtualenv_and_caches_out_of_the_context() -> None:
    local_only = (".venv", ".cache", ".git", "var/simguard.db")

    assert [p for p in local_only if not excluded_by_dockerignore(p)] == []


def test_dockerignore_keeps_bytecode_out_of_copied_packages() -> None:
    assert excluded_by_dockerignore("simguard/__pycache__/cli.cpython-311.pyc")


def test_image_runs_as_a_numeric_non_root_user() -> None:
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]

    assert users, "the final stage sets no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_image_entrypoint_is_the_simguard_command() -> None:
    entrypoints = [arguments for keyword, arguments in final_stage() if keyword == "ENTRYPOINT"]

    assert entrypoints == ['["simguard"]']


def test_image_exposes_the_api_and_worker_metrics_ports() -> None:
    exposed = {
        port
        for keyword, arguments in final_stage()
        if keyword == "EXPOSE"
        for port in arguments.split()
    }

    assert exposed == {"8080", "9464"}
