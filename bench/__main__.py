"""`python -m bench`: the same command as `simguard bench`."""

from bench.command import bench

bench(prog_name="python -m bench")
