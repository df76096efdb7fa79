"""Probe sets for exactness tests: hashes planted at chosen distances from bank entries.

Random flips test the common case; "spread" flips put the changed bits as evenly as possible across chunks, which
is the pigeonhole boundary where a multi-index lookup would miss an entry if its radii were one short.
"""

from __future__ import annotations

import numpy as np


def flip(value: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bit k is bit k % 8 (least significant first) of byte k // 8: the Hamming index's own numbering, so chunk
    boundaries in tests are the index's chunk boundaries."""
    bits = np.unpackbits(value, bitorder="little")
    bits[positions] ^= 1
    return np.packbits(bits, bitorder="little")


def plant(
    rng: np.random.Generator, bases: np.ndarray, distances: range, *, spread_chunks: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One probe per (base, distance): ``bases`` (k, nbytes) -> probes (k * len(distances), nbytes) and the
    distance each probe was planted at. With ``spread_chunks``, the flips go round-robin over that many equal
    chunks of the bit string."""
    nbits = bases.shape[1] * 8
    out, planted = [], []
    for base in bases:
        for d in distances:
            if spread_chunks:
                width = nbits // spread_chunks
                per_chunk = [rng.permutation(np.arange(c * width, (c + 1) * width)) for c in range(spread_chunks)]
                positions = np.array([per_chunk[i % spread_chunks][i // spread_chunks] for i in range(d)], dtype=int)
            else:
                positions = rng.choice(nbits, size=d, replace=False)
            out.append(flip(base, positions))
            planted.append(d)
    return np.array(out, dtype=np.uint8).reshape(-1, bases.shape[1]), np.array(planted)


def families(rng: np.random.Generator, centres: int, size: int, nbytes: int, max_distance: int) -> np.ndarray:
    """Clusters of near-duplicates, as real lists have: each family is a centre and members at random distances
    up to ``max_distance`` from it (so members are also near each other)."""
    nbits = nbytes * 8
    rows = []
    for centre in rng.integers(0, 256, size=(centres, nbytes), dtype=np.uint8):
        rows.append(centre)
        for _ in range(size - 1):
            d = int(rng.integers(1, max_distance + 1))
            rows.append(flip(centre, rng.choice(nbits, size=d, replace=False)))
    return np.array(rows, dtype=np.uint8)


def plant_at_boundary(
    rng: np.random.Generator, bases: np.ndarray, widths: tuple[int, ...], radii: tuple[int, ...], distances: range
) -> np.ndarray:
    """The worst case for a multi-index lookup: chunk c takes up to radii[c] + 1 flips, chunk after chunk, before
    any bit elsewhere changes. At distance t every chunk but one then sits just outside its radius; if the radii
    covered one bit less than t + 1, such a probe would be missed."""
    starts = np.cumsum((0, *widths[:-1]))
    nbits = bases.shape[1] * 8
    out = []
    for base in bases:
        for d in distances:
            chosen: list[int] = []
            for start, width, r in zip(starts, widths, radii, strict=True):
                take = min(r + 1, d - len(chosen), width)
                if take > 0:
                    chosen.extend(int(start) + rng.choice(width, size=take, replace=False))
            rest = np.setdiff1d(np.arange(nbits), chosen)
            chosen.extend(rng.choice(rest, size=d - len(chosen), replace=False))
            out.append(flip(base, np.array(chosen, dtype=int)))
    return np.array(out, dtype=np.uint8).reshape(-1, bases.shape[1])
