"""The SQLite store and its -wal and -shm files are readable by their owner
only, whatever the umask, and an older store's wider modes are narrowed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from simguard.store import open_store


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def written(path: Path) -> None:
    from simguard.api_keys import issue_key

    issue_key(open_store(f"sqlite:///{path}"), "52003")


@pytest.mark.usefixtures("open_umask")
def test_a_new_store_and_its_wal_and_shm_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "simguard.db"
    written(path)
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}


@pytest.mark.usefixtures("open_umask")
def test_an_existing_store_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "simguard.db"
    written(path)
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        file.chmod(0o644)
    written(path)
    assert mode(path) == 0o600
    assert mode(Path(f"{path}-wal")) == 0o600
