"""How fast a 10-million-line hotline CSV becomes a bank.

Writes a CSV (``signal_type,signal_value,id,source``: random PDQ values plus one MD5 in ten) to a temporary
directory, imports it into a temporary bank store with ``BankStore.import_file`` (Arrow CSV reader, vectorised
validation, canonical sort, digest, owner-only write), and, as the baseline in the same run, reads the same file
with Python's csv module doing only the least any importer must (split the line, decode the hex), and the first
million lines with cleanset's own row-by-row reader (per-line checks, the reader that words errors). Prints the
times, rows/s and ratios.

    .venv/bin/python bench/bank_import.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
CHUNK = 200_000


def _hex_matrix(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    out = np.empty((n, nbytes * 2), dtype=np.uint8)
    out[:, 0::2] = HEX[raw >> 4]
    out[:, 1::2] = HEX[raw & 15]
    return out


def _lines(prefix: bytes, values: np.ndarray, first_id: int, source: bytes) -> bytes:
    """Fixed-width lines ``prefix,value,e<9 digits>,source\\n`` built as one byte matrix."""
    n = values.shape[0]
    ids = np.char.zfill(np.arange(first_id, first_id + n).astype("U9"), 9).astype("S9")
    ids_m = np.frombuffer(ids.tobytes(), dtype=np.uint8).reshape(n, 9)
    parts = [
        np.tile(np.frombuffer(prefix + b",", dtype=np.uint8), (n, 1)),
        values,
        np.tile(np.frombuffer(b",e", dtype=np.uint8), (n, 1)),
        ids_m,
        np.tile(np.frombuffer(b"," + source + b"\n", dtype=np.uint8), (n, 1)),
    ]
    return np.hstack(parts).tobytes()


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        f.write(b"signal_type,signal_value,id,source\n")
        done = 0
        while done < rows:
            n = min(CHUNK, rows - done)
            n_md5 = n // 10
            f.write(_lines(b"pdq", _hex_matrix(rng, n - n_md5, 32), done, b"hotline-a"))
            f.write(_lines(b"md5", _hex_matrix(rng, n_md5, 16), done + n - n_md5, b"hotline-b"))
            done += n


def baseline(path: Path) -> int:
    """Python's csv module: read every record and decode its hex value, nothing more."""
    count = 0
    with path.open("r", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for record in reader:
            bytes.fromhex(record[1])
            count += 1
    return count


def reference_importer(path: Path) -> int:
    """cleanset's own line-by-line reader (csv module + per-row checks), as an importer without the bulk path
    would run; it is the reader that words every error."""
    from cleanset.banks.base import BankFormat
    from cleanset.banks.formats.csv_list import CsvList

    return BankFormat.read_columns(CsvList(), path).entry_count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reference-rows", type=int, default=1_000_000, help="prefix read by the row-by-row reader")
    args = ap.parse_args()

    from cleanset.banks.store import BankStore

    with tempfile.TemporaryDirectory(prefix="cleanset-bench-") as tmp:
        src = Path(tmp) / "list.csv"
        t = time.perf_counter()
        write_csv(src, args.rows)
        size = src.stat().st_size
        print(f"wrote {args.rows:,} lines ({size / 1e6:,.0f} MB) in {time.perf_counter() - t:.1f} s")
        store = BankStore(Path(tmp) / "home")

        t = time.perf_counter()
        report = store.import_file("bench", src, note="bench")
        t_import = time.perf_counter() - t
        assert report.entry_count == args.rows, report

        t = time.perf_counter()
        n = baseline(src)
        t_base = time.perf_counter() - t
        assert n == args.rows

        prefix = Path(tmp) / "prefix.csv"
        with src.open("rb") as f, prefix.open("wb") as out:
            for _ in range(args.reference_rows + 1):
                out.write(f.readline())
        t = time.perf_counter()
        assert reference_importer(prefix) == args.reference_rows
        t_ref = time.perf_counter() - t

        t = time.perf_counter()
        snap = store.open("bench")
        vals = snap.values("pdq")
        _ = int(vals[-1, 0]) + len(snap.entry_ids("pdq"))
        t_open = time.perf_counter() - t

        cpus = len(os.sched_getaffinity(0))
        print(
            f"cleanset bank import : {t_import:7.2f} s  {args.rows / t_import:>12,.0f} rows/s  "
            f"(counts {report.counts}, {cpus} CPUs)"
        )
        print(
            f"baseline python csv  : {t_base:7.2f} s  {args.rows / t_base:>12,.0f} rows/s  "
            "(csv.reader + bytes.fromhex only, no validation/storage)"
        )
        print(f"ratio                : {t_base / t_import:7.2f}x (import time vs csv-module baseline)")
        ref_rate = args.reference_rows / t_ref
        print(
            f"row-by-row importer  : {t_ref:7.2f} s  {ref_rate:>12,.0f} rows/s  "
            f"(first {args.reference_rows:,} lines; csv module + per-row checks)"
        )
        print(f"ratio                : {args.rows / t_import / ref_rate:7.2f}x rows/s vs row-by-row importer")
        print(f"open stored bank     : {t_open * 1000:7.1f} ms (values memory-mapped)")


if __name__ == "__main__":
    main()
