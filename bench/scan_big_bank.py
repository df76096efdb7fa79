"""Scanning against a large PDQ bank: what matching costs at 10 million entries, next to a 1,000-entry bank.

The same ~500 photos (``scan_throughput.py``'s generated 1-2 MP JPEGs, as WebDataset shards) are scanned with
every probe on (all default signals, eight rotations/flips, regions) against a bank of ``--big`` random PDQ
entries and against one of ``--small`` entries, each with the same planted photo hashes, ``--repeat`` times each
(alternating) in one run. Printed for each scan: the workers' CPU by stage from the ledger (``timings``), the
matching share of scan CPU (``match_s / (read_s + hash_s + match_s + decide_s + write_s)``), the fixed set-up
(``prepare``: opening the bank and building its index, warm-up, all before the workers fork) and wall time; at the
end, peak RSS of the parent and of the largest worker, and the medians the verdicts use. Shares use CPU seconds,
which a busy shared machine inflates less than wall time.

Targets (issue 12): matching share at 10 M entries at most 15 % of scan time; set-up under 5 s, done once in the
parent and shared copy-on-write by the forked workers. The bank values are random, so the planted hashes are the
only expected matches.

    .venv/bin/python bench/scan_big_bank.py [--photos 500] [--big 10000000] [--small 1000] [--workers N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cleanset.banks.base import MemoryBank
from cleanset.banks.snapshot import ArrowStrings
from cleanset.pipeline.executors import default_workers
from scan_throughput import make_photo_shards, random_rows, run_scan

STAGES = ("read_s", "hash_s", "match_s", "decide_s", "write_s")


def peak_rss_mb() -> tuple[float, float]:
    """(this process, the largest finished child) peak resident set, MB (Linux reports KiB)."""
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


def bank_of(n: int, planted: list[np.ndarray], rng: np.random.Generator) -> MemoryBank:
    """Random entries, the planted ones first. Entry ids are held as a stored bank version holds them, in an Arrow
    string column (``ArrowStrings``): as 10 million Python strings they filled the parent's heap, and each forked
    worker then copied that heap's pages as it allocated into them, which showed as slower hashing at 10 M."""
    vals = random_rows(rng, n, 32)
    for j, v in enumerate(planted):
        vals[j] = v
    ids = pc.binary_join_element_wise("e", pc.cast(pa.array(np.arange(n)), pa.string()), "")
    return MemoryBank(f"pdq-{n}", 1, {"pdq": (vals, cast(list[str], ArrowStrings(ids)))})


def report(label: str, r: dict[str, Any], planted: int) -> None:
    st, s = r["stages"], r["summary"]
    total = sum(st.get(k, 0.0) for k in STAGES)
    share = st.get("match_s", 0.0) / total if total else float("nan")
    print(f"  {label}")
    print(
        f"    set-up (open bank, build index, warm up; before fork): {r['prepare']:.2f} s wall, "
        f"{r['prepare_cpu']:.2f} s CPU"
    )
    print(f"    scan: {s['items']} items, {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU")
    print("    worker CPU by stage (s): " + ", ".join(f"{k[:-2]} {st.get(k, 0.0):.2f}" for k in STAGES))
    print(f"    matching share of scan CPU: {share:.1%}")
    print(f"    removed {s['removed']} (planted {planted}), failed {s['failed']}")


def main() -> None:
    from cleanset.signals.engine import HashConfig, HashEngine
    from cleanset.threads import limit_blas_threads

    limit_blas_threads()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=500)
    ap.add_argument("--big", type=int, default=10_000_000)
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--repeat", type=int, default=3, help="scans per bank, alternating; verdicts use the median")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "cleanset-bench-scan"))
    args = ap.parse_args()
    if args.repeat < 1 or args.big == args.small:
        ap.error("--repeat must be at least 1, and --big and --small must differ")
    print(f"cores {os.cpu_count()}, workers {args.workers}, load average {os.getloadavg()[0]:.1f}")

    shards, photos = make_photo_shards(Path(args.cache), args.photos)
    engine = HashEngine(HashConfig())
    idx = list(range(0, len(photos), max(1, len(photos) // 10)))
    planted = [np.frombuffer(bytes.fromhex(engine.hash_bytes(photos[i]).hashes["pdq"]), np.uint8) for i in idx]
    print(f"{len(photos)} photos in {len(shards)} shards, all probes on (dihedral, regions), {len(planted)} planted")

    banks = {}
    for n in (args.big, args.small):
        t0 = time.perf_counter()
        banks[n] = bank_of(n, planted, np.random.default_rng(n))
        print(f"bank of {n:,} entries generated in memory in {time.perf_counter() - t0:.1f} s (not counted)")
    # Big and small alternate, so a change in the machine's load over the run weighs on both alike; the verdicts use
    # the median of the repeats (other tenants of a shared machine move single runs by more than the margins here).
    match_cpu: dict[int, list[float]] = {args.big: [], args.small: []}
    stage_cpu: dict[int, list[float]] = {args.big: [], args.small: []}
    prepares: list[float] = []
    with tempfile.TemporaryDirectory() as t:
        for rep in range(args.repeat):
            for label, n in (
                (f"big bank, {args.big:,} PDQ entries", args.big),
                (f"small bank, {args.small:,}", args.small),
            ):
                r = run_scan(shards, Path(t) / f"run-{n}-{rep}", [banks[n]], args.workers)
                report(f"{label}, run {rep + 1} of {args.repeat}", r, len(planted))
                match_cpu[n].append(r["stages"].get("match_s", 0.0))
                stage_cpu[n].append(sum(r["stages"].get(k, 0.0) for k in STAGES))
                if n == args.big:
                    prepares.append(r["prepare"])
                del r
    parent, child = peak_rss_mb()
    print(f"peak RSS: parent {parent:,.0f} MB, largest worker {child:,.0f} MB (shared pages count in both)")

    share_big, share_small = (
        statistics.median(m / total for m, total in zip(match_cpu[n], stage_cpu[n], strict=True))
        for n in (args.big, args.small)
    )
    setup = prepares[0]  # the first: later runs find modules imported and files cached, as a scan's own set-up won't
    ok_share = share_big <= 0.15
    ok_setup = setup < 5.0
    print(
        f"matching share at {args.big:,} (median of {args.repeat}): {share_big:.1%} "
        f"(target <= 15 %: {'PASS' if ok_share else 'FAIL'}); at {args.small:,}: {share_small:.1%}; "
        f"set-up {setup:.2f} s in the first run (target < 5 s: {'PASS' if ok_setup else 'FAIL'}; "
        f"median {statistics.median(prepares):.2f} s)"
    )
    # The other reading of the target: matching at 10 M as a share of the whole scan at 1,000 entries.
    big_match, small_total = statistics.median(match_cpu[args.big]), statistics.median(stage_cpu[args.small])
    hash_up = statistics.median(stage_cpu[args.big]) - big_match
    hash_down = small_total - statistics.median(match_cpu[args.small])
    print(
        f"matching CPU at {args.big:,} / all stage CPU of the scan at {args.small:,} (medians): "
        f"{big_match / small_total:.1%} ({big_match:.2f} s / {small_total:.2f} s)"
    )
    print(
        f"the other stages' CPU (medians): {hash_up:.2f} s at {args.big:,}, {hash_down:.2f} s at {args.small:,} "
        f"({hash_up / max(hash_down, 1e-9):.2f}x)"
    )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    sys.exit(0 if ok_share and ok_setup else 1)


if __name__ == "__main__":
    main()
