"""A clean gate as `cleanset clean` builds it from a scan, for source tests that call write_clean directly."""

from __future__ import annotations

from collections.abc import Collection

from cleanset.sources.base import CleanGate, Shard, Source, content_digest


def gate_for(source: Source, shard: Shard, keep: Collection[str], recorded: Collection[str] | None = None) -> CleanGate:
    """What a scan of ``shard`` right now would record (every key, its content digest), keeping ``keep``.

    ``recorded`` limits the recorded keys (a scan that never saw the others)."""
    rows = {it.key: content_digest(it) if it.error is None else None for it in source.read(shard)}
    digest = source.shard_digest(shard)
    if recorded is not None:
        rows = {k: v for k, v in rows.items() if k in recorded}
    return CleanGate(shard, recorded=rows, keep=set(keep), shard_digest=digest)
