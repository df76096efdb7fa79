"""Counting a run's items: the figures of ``RUN/summary.json`` and the scan's closing screen.

One function serves the scan and ``rematch`` alike, so a revision's summary is computed exactly as the original
one. DuckDB does the grouping over Arrow tables or Parquet files, so a ten-million-row run is summarised without
loading it into Python objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow.fs import LocalFileSystem

from cleanset.records import failure_code


def register_files(con: duckdb.DuckDBPyConnection, view: str, files: Sequence[Path]) -> None:
    """A view over exactly these Parquet files. A path is data: DuckDB's ``read_parquet`` would expand ``*``,
    ``?`` and ``[`` in it as a glob (and read a sibling run), so the files go in as an Arrow dataset over these
    paths, still scanned lazily."""
    con.register(f"{view}_files", ds.dataset([str(f) for f in files], format="parquet", filesystem=LocalFileSystem()))
    con.execute(f"CREATE VIEW {view} AS SELECT * FROM {view}_files")


def summarize(items: pa.Table | Sequence[Path]) -> dict[str, Any]:
    """items, kept, removed, review, failed, failures_by_reason, failures_by_code, matches_by_bank and
    matches_by_probe (each counting items, not matches: an item hit by three probes of one bank counts once for that
    bank). ``failures_by_code`` regroups the free-text reasons by their stable code (``records.failure_code``), so a
    thousand "decode: <file>: ..." lines read as one figure a script can rely on."""
    con = duckdb.connect()
    try:
        if isinstance(items, pa.Table):
            con.register("items_arrow", items)
            con.execute("CREATE VIEW items AS SELECT * FROM items_arrow")
        elif not items:
            return _empty()
        else:
            register_files(con, "items", items)
        row = con.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE verdict = 'keep'),
                      count(*) FILTER (WHERE verdict = 'remove'),
                      count(*) FILTER (WHERE verdict = 'review'),
                      count(*) FILTER (WHERE status = 'failed')
               FROM items"""
        ).fetchone()
        assert row is not None
        out: dict[str, Any] = dict(zip(("items", "kept", "removed", "review", "failed"), map(int, row), strict=True))
        out["failures_by_reason"] = _pairs(
            con,
            "SELECT coalesce(reason, '(none)'), count(*) AS n FROM items WHERE status = 'failed' "
            "GROUP BY 1 ORDER BY n DESC, 1",
        )
        out["failures_by_code"] = by_code(out["failures_by_reason"])
        matched = "SELECT DISTINCT key, shard, m.{col} AS v FROM (SELECT key, shard, unnest(matches) AS m FROM items)"
        out["matches_by_bank"] = _pairs(
            con, f"SELECT v, count(*) AS n FROM ({matched.format(col='bank')}) GROUP BY v ORDER BY n DESC, v"
        )
        out["matches_by_probe"] = _pairs(
            con, f"SELECT v, count(*) AS n FROM ({matched.format(col='probe')}) GROUP BY v ORDER BY n DESC, v"
        )
        return out
    finally:
        con.close()


def _empty() -> dict[str, Any]:
    return {
        "items": 0,
        "kept": 0,
        "removed": 0,
        "review": 0,
        "failed": 0,
        "failures_by_reason": {},
        "failures_by_code": {},
        "matches_by_bank": {},
        "matches_by_probe": {},
    }


def _pairs(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, int]:
    return {str(k): int(n) for k, n in con.execute(sql).fetchall()}


def by_code(by_reason: Mapping[str, int]) -> dict[str, int]:
    """Items per failure code, most first; ``(none)`` (a failed row without a reason) counts as ``other``."""
    counts: dict[str, int] = {}
    for reason, n in by_reason.items():
        code = failure_code(None if reason == "(none)" else reason)
        counts[code] = counts.get(code, 0) + int(n)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
