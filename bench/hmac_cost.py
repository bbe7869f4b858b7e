"""What the holder-reference HMAC costs the registry import's checking:
schemas.keyed_hash.HmacSha256 against the standard library's `hmac`, in one
process, alternating rounds (`python -m bench.hmac_cost [ROWS] [ROUNDS]`).

Times BlockChecker.check (what each import process runs per block) and
RowChecker.check over the same generated rows; only the HMAC differs between
the variants, and each gives the same references.
"""

from __future__ import annotations

import hmac
import os
import statistics
import sys
import time

# As each import process runs polars: on one thread.
os.environ.setdefault("POLARS_MAX_THREADS", "1")

from bench import events
from registry_import.block import BlockChecker
from registry_import.rows import COLUMNS, RowChecker
from schemas.keyed_hash import HmacSha256

SECRET = "bench-secret"
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
BLOCK_ROWS = 40_000  # about 4 MiB of CSV, the import's block


class HmacNew:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def hexdigest(self, message: bytes) -> str:
        return hmac.new(self._key, message, "sha256").hexdigest()


class HmacDigest:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def hexdigest(self, message: bytes) -> str:
        return hmac.digest(self._key, message, "sha256").hex()


VARIANTS: dict[str, type[HmacSha256 | HmacNew | HmacDigest]] = {
    "HmacSha256": HmacSha256,
    "hmac.new": HmacNew,
    "hmac.digest": HmacDigest,
}


def main() -> None:
    text = events.csv_block(0, ROWS).decode()
    lines = text.splitlines(keepends=True)
    blocks = ["".join(lines[i : i + BLOCK_ROWS]) for i in range(0, len(lines), BLOCK_ROWS)]
    rows = [line.rstrip("\n").split(",") for line in lines]
    header = list(COLUMNS)
    key = SECRET.encode()
    results: dict[str, dict[str, list[float]]] = {v: {"block": [], "row": []} for v in VARIANTS}
    reference = None
    for _round in range(ROUNDS):
        for name, variant in VARIANTS.items():
            block_checker = BlockChecker(SECRET, header)
            block_checker._keyed = variant(key)  # type: ignore[assignment]
            block_checker._rows._keyed = variant(key)  # type: ignore[assignment]
            row_checker = RowChecker(SECRET, header)
            row_checker._keyed = variant(key)  # type: ignore[assignment]
            started = time.process_time()
            good = []
            for block in blocks:
                _records, stored, refused = block_checker.check(block)
                assert not refused
                good.extend(stored)
            results[name]["block"].append(time.process_time() - started)
            started = time.process_time()
            checked = [row_checker.check(row) for row in rows]
            results[name]["row"].append(time.process_time() - started)
            refs = [row[5] for row in good]
            assert refs == [row[5] for row in checked]
            if reference is None:
                reference = refs
            assert refs == reference, name
    print(f"{ROWS:,} rows, {ROUNDS} alternating rounds, CPU seconds (median)")
    base = {kind: statistics.median(results["HmacSha256"][kind]) for kind in ("block", "row")}
    for name in VARIANTS:
        for kind in ("block", "row"):
            median = statistics.median(results[name][kind])
            print(
                f"  {kind:5} {name:11} {median:7.3f} s  {median / ROWS * 1e6:6.2f} us/row  "
                f"{(median / base[kind] - 1) * 100:+5.1f} %"
            )
    message = b"national_id:TH:1234545678781"
    for name, variant in VARIANTS.items():
        hasher = variant(key)
        started = time.perf_counter()
        for _ in range(ROWS):
            hasher.hexdigest(message)
        print(f"  alone {name:11} {(time.perf_counter() - started) / ROWS * 1e6:6.2f} us/hash")


if __name__ == "__main__":
    main()
