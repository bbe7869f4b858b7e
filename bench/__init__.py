"""simguard's benchmarks: `simguard bench` (or `python -m bench`)."""
