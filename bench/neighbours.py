"""Neighbours of hits at LAION scale: one million synthetic clustered embeddings with planted neighbours.

The embeddings: ``--items`` vectors of ``--dim`` dimensions in ``--clusters`` clusters (a random centre per
cluster plus Gaussian noise, so members of a cluster are alike but below the threshold), stored as float16 like
LAION's ``img_emb`` files. ``--hits`` random items are the "matched" ones; each gets ``--planted`` neighbours written
over random other items at an exact cosine similarity drawn from [threshold + 0.01, 0.99] (the hit rotated by a
random orthogonal direction). ``cleanset.screening.neighbours.find_neighbours`` (faiss, exact inner product over
normalised vectors, k = 32) then looks for every hit's neighbours at or above the threshold (0.9, the policy's
default).

Printed: the recall of the planted neighbours, the non-planted items above the threshold (from the synthetic
background), the time, and the peak memory (resident set) beside the embeddings' own size; the time as a ratio
against a NumPy baseline (the same exact search as blocked matrix products and a running top-k) on the same hits,
run in the same process, on one thread each.

    .venv/bin/python bench/neighbours.py [--items 1000000] [--dim 128] [--hits 1000]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from cleanset.screening.neighbours import DEFAULT_K, DEFAULT_MIN_SIMILARITY, find_neighbours  # noqa: E402

BLOCK = 1 << 16


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make(items: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Clustered float16 embeddings, made a block at a time (no float32 copy of the whole)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    out = np.empty((items, dim), np.float16)
    for s in range(0, items, BLOCK):
        e = min(items, s + BLOCK)
        labels = rng.integers(0, clusters, e - s)
        out[s:e] = centres[labels] + rng.normal(scale=1.0, size=(e - s, dim)).astype(np.float32)
    return out


def plant(emb: np.ndarray, hits: np.ndarray, per_hit: int, lo: float, seed: int) -> dict[int, int]:
    """Write ``per_hit`` neighbours of every hit over other random items; returns planted row -> hit."""
    rng = np.random.default_rng(seed + 1)
    taken = set(hits.tolist())
    planted: dict[int, int] = {}
    for h in hits.tolist():
        x = emb[h].astype(np.float32)
        x /= np.linalg.norm(x)
        for _ in range(per_hit):
            while True:
                r = int(rng.integers(0, len(emb)))
                if r not in taken:
                    break
            taken.add(r)
            cos = rng.uniform(lo, 0.99)
            u = rng.normal(size=x.shape).astype(np.float32)
            u -= (u @ x) * x
            u /= np.linalg.norm(u)
            emb[r] = (cos * x + np.sqrt(1 - cos * cos) * u).astype(np.float16)
            planted[r] = h
    return planted


def numpy_baseline(emb: np.ndarray, hits: np.ndarray, k: int, threshold: float) -> set[int]:
    """The same exact search in NumPy: blocked products of the normalised hits with the normalised items."""
    q = emb[hits].astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    best_s = np.full((len(hits), k + 1), -np.inf, np.float32)
    best_i = np.full((len(hits), k + 1), -1, np.int64)
    for s in range(0, len(emb), BLOCK):
        x = emb[s : s + BLOCK].astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        sims = q @ x.T
        cat_s = np.concatenate([best_s, sims], axis=1)
        cat_i = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + len(x)), sims.shape)], axis=1)
        top = np.argpartition(-cat_s, k, axis=1)[:, : k + 1]
        best_s = np.take_along_axis(cat_s, top, axis=1)
        best_i = np.take_along_axis(cat_i, top, axis=1)
    hit_set = set(hits.tolist())
    pairs = zip(best_i.ravel(), best_s.ravel(), strict=True)
    return {int(i) for i, sv in pairs if sv >= threshold and i not in hit_set}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--clusters", type=int, default=20_000)
    ap.add_argument("--hits", type=int, default=1000)
    ap.add_argument("--planted", type=int, default=5, help="planted neighbours per hit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline-hits", type=int, default=None, help="hits the NumPy baseline searches (default all)")
    args = ap.parse_args()
    threshold = DEFAULT_MIN_SIMILARITY

    t = time.perf_counter()
    emb = make(args.items, args.dim, args.clusters, args.seed)
    rng = np.random.default_rng(args.seed + 2)
    hits = np.sort(rng.choice(args.items, size=args.hits, replace=False))
    planted = plant(emb, hits, args.planted, threshold + 0.01, args.seed)
    made_s = time.perf_counter() - t
    size_mb = emb.nbytes / 2**20
    print(
        f"embeddings: {args.items:,} x {args.dim} float16 ({size_mb:,.0f} MiB), {args.clusters:,} clusters, "
        f"{args.hits:,} hits, {len(planted):,} planted neighbours at cosine [{threshold + 0.01:.2f}, 0.99] "
        f"(made in {made_s:.1f} s)"
    )
    before = peak_mb()

    t0, c0 = time.perf_counter(), time.process_time()
    found = find_neighbours(emb, hits, k=DEFAULT_K, min_similarity=threshold)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    got = set(found.rows.tolist())
    recall = len(got & planted.keys()) / len(planted)
    right_hit = sum(1 for r, h in planted.items() if found.as_dict().get(r, (0, -1))[1] == h) / len(planted)
    extra = len(got - planted.keys())
    print(f"\ncleanset find_neighbours (faiss.knn over streamed blocks, exact), k = {DEFAULT_K}, threshold {threshold}")
    print(f"  recall of planted neighbours   {recall:.4f}  ({len(got & planted.keys()):,} of {len(planted):,})")
    print(f"  attributed to their own hit    {right_hit:.4f}")
    print(f"  other items above threshold    {extra:,}  (background items that close to a hit)")
    print(f"  time                           {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"  peak memory                    {peak_mb():,.0f} MiB resident ({before:,.0f} before the search)")

    if args.baseline_hits != 0:
        few = hits if args.baseline_hits is None else hits[: args.baseline_hits]
        c1 = time.process_time()
        base = numpy_baseline(emb, few, DEFAULT_K, threshold)
        base_cpu = time.process_time() - c1
        c2 = time.process_time()
        mine = set(find_neighbours(emb, few, k=DEFAULT_K, min_similarity=threshold).rows.tolist())
        few_cpu = time.process_time() - c2
        print(f"\nbaseline: NumPy exact search (blocked products, running top-k), the first {len(few):,} hits")
        print(f"  NumPy {base_cpu:.2f} s CPU, cleanset {few_cpu:.2f} s CPU; same neighbours: {base == mine}")
        print(f"  cleanset / NumPy time ratio: {few_cpu / base_cpu:.2f}")


if __name__ == "__main__":
    main()
