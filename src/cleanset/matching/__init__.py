"""Matching: exact indexes over bank values and the matcher that turns probes into named matches."""

from __future__ import annotations

from cleanset.matching.base import INDEXES, Index


def get_index(name: str) -> type[Index]:
    """An index class by registered name ("exact", "brute", "hamming"); importing the modules registers them."""
    from cleanset.matching import brute, exact, hamming  # noqa: F401

    return INDEXES.get(name)
