"""py-spy's collapsed stacks summarised for bench/RESULTS.md."""

from __future__ import annotations

from bench.profiling import summarise


def test_a_frame_py_spy_read_mid_update_is_named_as_such_not_printed_as_bytes() -> None:
    raw = "\n".join(
        [
            "process 1:simguard;run (workers/loop.py:10);execute (simguard/store/__init__.py:5) 3",
            "process 1:simguard;run (workers/loop.py:10);\x02\x00 (\x02\x00) 1",
        ]
    )
    summary = summarise(raw, "Worker", "a worker")
    names = [name for name, _ in summary.by_package] + [name for name, _ in summary.self_top]
    assert all(name.isprintable() for name in names), names
    assert ("frames py-spy could not read", 0.25) in summary.by_package
