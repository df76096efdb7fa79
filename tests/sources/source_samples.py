"""Sample items shared by the source tests (made once per session: image encoding is the slow part)."""

from __future__ import annotations

from functools import cache

from cleanset.sources.synth import SampleItem, sample_items


@cache
def items(n: int = 24) -> tuple[SampleItem, ...]:
    return tuple(sample_items(n, seed=7, per_shard=10))
