"""Rematch throughput next to scan throughput on the same data: the point of storing probes is that a new list
version costs a re-match, not a re-scan (target: rematch >= 100x scan items/s).

Steps: take N benign images (real photos as WebDataset shards, or small sample images);
 make bank v1 from some of their hashes plus random filler
entries (so the index has a realistic size); scan; make v2 (entries removed and added); rematch the run. Then, so
that per-run fixed costs (opening banks, building the index, the summary) do not hide the per-item rate, rematch a
copy of the same run whose items are repeated ``--tile`` times. Prints items/s for scan, rematch (this run) and
rematch (tiled), and the ratios.

    python bench/rematch.py [--data photos|samples] [--items 1000] [--tile 20] [--filler 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def filler(rng: np.random.Generator, n: int, signal: str, nbytes: int, prefix: str) -> list:
    from cleanset.banks.base import BankRow

    vals = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    return [BankRow(signal, v.tobytes().hex(), f"{prefix}{i}") for i, v in enumerate(vals)]


def tile_run(src: Path, dst: Path, k: int) -> int:
    """A copy of ``src`` whose every shard holds its items ``k`` times (keys suffixed), with matching summary."""
    from cleanset.runs.parquet import write_parquet_atomic
    from cleanset.runs.summary import summarize

    (dst / "items").mkdir(parents=True)
    total = 0
    for f in sorted((src / "items").glob("*.parquet")):
        t = pq.read_table(f)
        parts = []
        for j in range(k):
            keys = pc.binary_join_element_wise(t.column("key"), pa.scalar(f"~{j}"), "")
            parts.append(t.set_column(t.schema.get_field_index("key"), "key", keys))
        tiled = pa.concat_tables(parts)
        total += tiled.num_rows
        write_parquet_atomic(dst / "items" / f.name, tiled)  # as a scan writes it
    shutil.copy(src / "manifest.json", dst / "manifest.json")
    summary = json.loads((src / "summary.json").read_text())
    summary.update(summarize(sorted((dst / "items").glob("*.parquet"))))
    (dst / "summary.json").write_text(json.dumps(summary))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data",
        choices=("photos", "samples"),
        default="photos",
        help="photos: 1-2 MP JPEGs cropped from Debian wallpapers (as datasets hold them; made once, cached); "
        "samples: cleanset's 64-256 px sample images (the cheapest possible scan, so the hardest ratio)",
    )
    ap.add_argument("--cache", default="/tmp/cleanset-bench-scan", help="where --data photos keeps its shards")
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--tile", type=int, default=20)
    ap.add_argument("--filler", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="cleanset-bench-rematch-") as tmp_s:
        tmp = Path(tmp_s)
        os.environ["CLEANSET_HOME"] = str(tmp / "home")
        from cleanset import api
        from cleanset.banks.base import BankRow
        from cleanset.banks.store import BankStore
        from cleanset.results.rematch import rematch
        from cleanset.sources.synth import sample_items, write_folder

        if args.data == "photos":
            from scan_throughput import make_photo_shards

            sources, blobs = make_photo_shards(Path(args.cache), args.items)
            what = f"{len(blobs)} photos (1-2 MP JPEG) in {len(sources)} WebDataset shards"
        else:
            items = sample_items(args.items, seed=1)
            sources = [write_folder(tmp / "ds", items, subdirs=4, captions=False)]
            blobs = [it.data for it in items]
            what = f"{len(blobs)} sample images (64-256 px) in a 4-shard folder"
        eng = api.hasher()
        h = [eng.hash_bytes(b).hashes for b in blobs[:40]]
        rng = np.random.default_rng(0)
        fill = filler(rng, args.filler, "pdq", 32, "P") + filler(rng, args.filler, "md5", 16, "M")
        v1 = [BankRow("md5", h[i]["md5"], f"A{i}") for i in range(0, 20, 2)]
        v1 += [BankRow("pdq", h[i]["pdq"], f"A{i}") for i in range(1, 20, 2)]
        store = BankStore.default()
        store.create_from_rows("bench", [*v1, *fill])

        run = tmp / "run"
        s = api.scan(sources, ["bench"], run, workers=args.workers)
        scan_ips = s["items"] / s["elapsed_s"]

        # v2: the first ten entries gone, twenty new ones (md5 and pdq of other items).
        v2 = v1[10:] + [BankRow("md5", h[i]["md5"], f"B{i}") for i in range(20, 30)]
        v2 += [BankRow("pdq", h[i]["pdq"], f"B{i}") for i in range(30, 40)]
        store.create_from_rows("bench", [*v2, *fill])

        t = time.perf_counter()
        res = rematch(run, ["bench"])
        run_s = time.perf_counter() - t

        t = time.perf_counter()
        rematch(run, ["bench"], full=True)
        full_s = time.perf_counter() - t

        tiled = tmp / "tiled"
        n_tiled = tile_run(run, tiled, args.tile)
        t = time.perf_counter()
        rematch(tiled, ["bench"])
        tiled_s = time.perf_counter() - t

        print(f"data: {what}; bank: {len(v1) + len(fill)} entries; v2 imported via the store")
        print(
            f"scan      : {s['items']:>8} items in {s['elapsed_s']:8.2f} s = {scan_ips:10.1f} items/s "
            f"({args.workers} workers)"
        )
        print(
            f"rematch   : {res.items:>8} items in {run_s:8.3f} s = {res.items / run_s:10.1f} items/s "
            f"(this run, incl. opening banks and building the index); changes {dict(res.changes)}"
        )
        print(
            f"rematch --full: {res.items:>5} items in {full_s:8.3f} s = {res.items / full_s:10.1f} items/s "
            "(every probe against the whole list, as after an allow-list change)"
        )
        print(
            f"rematch x{args.tile:<3}: {n_tiled:>8} items in {tiled_s:8.3f} s = {n_tiled / tiled_s:10.1f} items/s "
            "(the same run's items repeated)"
        )
        print(
            f"ratio rematch/scan: {res.items / run_s / scan_ips:.0f}x (this run), "
            f"{n_tiled / tiled_s / scan_ips:.0f}x (steady state); required >= 100x"
        )


if __name__ == "__main__":
    main()
