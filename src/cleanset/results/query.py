"""Ad hoc questions over a run: DuckDB views on its Parquet files, nothing copied or loaded up front.

Views: ``items`` (every shard, latest revision unless asked), ``matches`` (one row per match, unnested),
``probes`` (one row per probe) and ``ledger`` (one row per committed shard of the scan).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from cleanset.errors import UserError
from cleanset.runs.schema import COLUMN_PROBES, ITEM_SCHEMA
from cleanset.runs.store import RunStore
from cleanset.runs.summary import register_files

LEDGER_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("path", pa.string()),
        ("items", pa.int64()),
        ("kept", pa.int64()),
        ("removed", pa.int64()),
        ("review", pa.int64()),
        ("failed", pa.int64()),
        ("committed_at", pa.string()),
        ("elapsed_s", pa.float64()),
    ]
)

VIEWS = ("items", "matches", "probes", "ledger")


def connect(run: Path | str, revision: int | None = None) -> duckdb.DuckDBPyConnection:
    store = RunStore(run)
    con = duckdb.connect()
    files = store.item_files(revision)
    if files:
        register_files(con, "items", files)
    else:
        con.register("items_empty", ITEM_SCHEMA.empty_table())
        con.execute("CREATE VIEW items AS SELECT * FROM items_empty")
    con.execute(
        """CREATE VIEW matches AS
           SELECT key, shard, verdict, m.bank, m.version, m.entry_id, m.signal, m.distance, m.probe
           FROM (SELECT key, shard, verdict, unnest(matches) AS m FROM items)"""
    )
    # Probes a hash column holds are stored only there (runs.schema.COLUMN_PROBES); the view shows them all.
    from_columns = "".join(
        f" UNION ALL SELECT key, shard, '{c}', '{c}', {c}, CAST(NULL AS SMALLINT) FROM items WHERE {c} IS NOT NULL"
        for c in COLUMN_PROBES
    )
    con.execute(
        f"""CREATE VIEW probes AS
           SELECT key, shard, p.name AS probe, p.signal, p.value, p.quality
           FROM (SELECT key, shard, unnest(probes) AS p FROM items){from_columns}"""
    )
    rows = [{f.name: e.get(f.name) for f in LEDGER_SCHEMA} for e in store.ledger()]
    con.register("ledger_arrow", pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA))
    con.execute("CREATE VIEW ledger AS SELECT * FROM ledger_arrow")
    return con


def query(run: Path | str, sql: str, revision: int | None = None) -> pa.Table:
    """Run one SQL statement against the run's views; a SQL error is the user's to fix, so it is a UserError."""
    con = connect(run, revision)
    try:
        rel = con.sql(sql)
        return rel.to_arrow_table() if rel is not None else pa.table({})
    except duckdb.Error as e:
        raise UserError(f"query failed: {e}") from None
    finally:
        con.close()
