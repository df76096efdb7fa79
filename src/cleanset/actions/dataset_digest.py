"""Reading a dataset into Merkle leaves: the one place attest and verify look at the data.

Both sides use the same reader (``cleanset.sources.open_source``), so the leaves depend only on the dataset's
contents, not on who reads it. Bytes are hashed and dropped at once: nothing is decoded, kept or shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cleanset.actions.merkle import DatasetDigest, canonical_row, item_digest


def digest_dataset(paths: Sequence[Path], format: str | None = None) -> tuple[DatasetDigest, str]:
    """Leaves of every item, per shard, and the source kind that read them.

    An item the source cannot read goes to ``unreadable`` (fail closed): a verifier must never treat a missing or
    broken item as if it were absent from the dataset.
    """
    from cleanset.sources import open_source

    source = open_source(list(paths), format)
    leaves: dict[str, list[tuple[str, str]]] = {}
    unreadable: list[tuple[str, str, str]] = []
    for shard in source.shards():
        entries = leaves.setdefault(shard.id, [])
        for item in source.read(shard):
            if item.error is not None:
                unreadable.append((shard.id, item.key, item.error))
            elif item.data is not None:
                entries.append((item.key, item_digest(item.data)))
            elif item.url is not None:
                entries.append((item.key, item_digest(canonical_row(item.url, item.meta))))
            else:
                unreadable.append((shard.id, item.key, "item has neither bytes nor a URL"))
    return DatasetDigest(leaves=leaves, unreadable=unreadable), source.name
