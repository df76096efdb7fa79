"""Writing a results file the way every writer of a run must: the scan's shards and rematch's revisions alike, so
the query views, the summary and clean read one encoding."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cleanset.atomic import atomic_output
from cleanset.runs.schema import HASH_COLUMNS

# Dictionary-encode only the columns with few distinct values: trying it on keys, URLs and hashes costs time
# (Arrow builds the dictionary, then gives up) and saves nothing. Statistics on hex hashes help no query either.
DICTIONARY_COLUMNS = (
    "shard",
    "status",
    "reason",
    "verdict",
    "format",
    "probes.list.element.name",
    "probes.list.element.signal",
    "matches.list.element.bank",
    "matches.list.element.signal",
    "matches.list.element.probe",
)


# Hex digests are half entropy: zstd halves them but costs ~4x the CPU of writing them plain, and on a URL
# metadata scan (billions of rows, nothing else to do per row) that is a third of the whole budget. Hash columns
# and probes are therefore stored uncompressed, everything else with zstd.
PLAIN_COLUMNS = frozenset({*HASH_COLUMNS, "probes"})


def _compression(table: pa.Table) -> dict[str, str]:
    return {c: ("none" if c in PLAIN_COLUMNS else "zstd") for c in table.column_names}


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    """A results file as the scan writes it (see PLAIN_COLUMNS), committed atomically."""
    with atomic_output(path) as tmp:
        pq.write_table(
            table,
            tmp,
            compression=_compression(table),
            use_dictionary=list(DICTIONARY_COLUMNS),
            write_statistics=["key", "shard"],
        )
