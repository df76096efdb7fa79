"""A small Parquet file can hold a huge row group: reading and cleaning it must stream, in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROWS = 100_000
CELL = 6_000  # 600 MB of cells once decoded, in one row group
LIMIT_MB = 1024

MEASURE = """
import json, sys
from pathlib import Path

def peak_mb():  # this process's own peak (VmHWM starts afresh at exec; ru_maxrss keeps the forking parent's)
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM")).split()[1]) / 1024

from cleanset.sources.base import CleanGate
from cleanset.sources.parquet import ParquetImageSource

src = ParquetImageSource([Path(sys.argv[1])])
shard = src.shards()[0]
recorded = {}
for item in src.read(shard):
    assert item.error is None and len(item.data) == int(sys.argv[3])
    recorded[item.key] = item.digest
read_mb = peak_mb()
keep = {k for i, k in enumerate(recorded) if i % 3}
written = src.write_clean(shard, CleanGate(shard, recorded=recorded, keep=keep), Path(sys.argv[2]))
print(json.dumps({"items": len(recorded), "written": written, "read_mb": read_mb, "peak_mb": peak_mb()}))
"""


def _huge_row_group(path: Path) -> None:
    """Cells drawn from 8 distinct values, dictionary-encoded on disk and stored without the Arrow schema, so the
    file stays small while a reader decodes every cell in full: the layout of a very compressible dataset."""
    rng = np.random.default_rng(0)
    values = pa.array([rng.bytes(CELL) for _ in range(8)], pa.binary())
    cells = pa.DictionaryArray.from_arrays(pa.array(np.arange(ROWS, dtype=np.int32) % 8), values)
    text = pa.array([f"row {i}" for i in range(ROWS)], pa.string())
    pq.write_table(pa.table({"jpg": cells, "txt": text}), path, row_group_size=ROWS, store_schema=False)


@pytest.mark.slow
def test_huge_row_group_is_read_and_cleaned_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "ds" / "big.parquet"
    path.parent.mkdir()
    _huge_row_group(path)
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups == 1 and path.stat().st_size < 2 << 20
    assert pq.read_schema(path).field("jpg").type == pa.binary()  # read back as plain cells, 600 MB of them
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(tmp_path / "out"), str(CELL)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["items"] == ROWS and got["written"] == ROWS - len(range(0, ROWS, 3))
    assert got["peak_mb"] < LIMIT_MB, got
    cleaned = pq.ParquetFile(tmp_path / "out" / "big.parquet")
    assert cleaned.metadata.num_rows == got["written"] and cleaned.schema_arrow == pq.read_schema(path)
    first = next(cleaned.iter_batches(batch_size=2, columns=["txt"]))
    assert first.column(0).to_pylist() == ["row 1", "row 2"]


BOMB_ROWS = 64
BOMB_CELL = 20 << 20  # one 20 MB value, named by every row through the dictionary


def _dictionary_bomb(path: Path) -> None:
    """One 20 MB run of zeros stored once in a dictionary page and named by every row: a few kilobytes on disk
    whose rows decode to 1.3 GB, while the footer's sizes count the page as written."""
    values = pa.array([bytes(BOMB_CELL)], pa.binary())
    cells = pa.DictionaryArray.from_arrays(pa.array(np.zeros(BOMB_ROWS, dtype=np.int32)), values)
    table = pa.table({"jpg": cells, "txt": [f"row {i}" for i in range(BOMB_ROWS)]})
    pq.write_table(table, path, compression="zstd", row_group_size=BOMB_ROWS, store_schema=False)


@pytest.mark.slow
def test_dictionary_bomb_is_read_and_cleaned_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "ds" / "bomb.parquet"
    path.parent.mkdir()
    _dictionary_bomb(path)
    assert path.stat().st_size < 64 << 10
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(tmp_path / "out"), str(BOMB_CELL)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["items"] == BOMB_ROWS and got["written"] == BOMB_ROWS - len(range(0, BOMB_ROWS, 3))
    assert got["peak_mb"] < LIMIT_MB, got
    cleaned = pq.read_table(tmp_path / "out" / "bomb.parquet", columns=["txt"])
    assert cleaned.column(0).to_pylist()[:2] == ["row 1", "row 2"]


def test_fixed_size_cells_bound_a_batch_whatever_the_footer_says(tmp_path: Path) -> None:
    from cleanset.sources._parquet import batch_rows

    width = 16 << 20
    cells = pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()), pa.array([bytes(width)], pa.binary(width)))
    pq.write_table(pa.table({"blob": cells}), tmp_path / "f.parquet", compression="zstd", store_schema=False)
    pf = pq.ParquetFile(tmp_path / "f.parquet")
    assert pf.schema_arrow.field("blob").type == pa.binary(width)
    assert batch_rows(pf, 0) == 4  # 64 MiB of 16 MiB rows
