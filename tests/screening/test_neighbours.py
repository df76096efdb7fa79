"""Neighbours of hits: planted neighbours are found and nothing else; embeddings load aligned with the items; the
neighbour pass writes a revision whose neighbour items go to review with the rule named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cleanset.api as api
from cleanset.errors import InputFormatError, UserError
from cleanset.screening.neighbours import find_neighbours, load_embeddings, load_npy_dir
from cleanset.screening.stage import ScreenConfig


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 50), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(scale=0.8, size=(n, dim)).astype(np.float32)
    return x


def test_planted_neighbours_are_found_and_nothing_else() -> None:
    rng = np.random.default_rng(1)
    emb = clustered(5000, 32)
    hits = [10, 500, 4000]
    planted = {}
    for h, rows in zip(hits, ([11, 12], [501], [4001, 4002, 4003]), strict=True):
        for r in rows:
            emb[r] = emb[h] + rng.normal(scale=0.05, size=32)
            planted[r] = h
    found = find_neighbours(emb, hits, k=8, min_similarity=0.95)
    assert found.as_dict().keys() == planted.keys()
    assert all(found.as_dict()[r][1] == h for r, h in planted.items())
    assert np.all(found.similarity >= 0.95) and not set(found.rows.tolist()) & set(hits)
    assert len(find_neighbours(emb, [], k=8).rows) == 0
    with pytest.raises(UserError, match="do not align"):
        find_neighbours(emb, [5000], k=2)


def test_npy_folder_in_natural_order_and_float16(tmp_path: Path) -> None:
    d = tmp_path / "img_emb"
    d.mkdir()
    parts = [np.full((2, 4), i, np.float16) for i in range(12)]
    for i, a in enumerate(parts):
        np.save(d / f"img_emb_{i}.npy", a)
    emb = load_npy_dir(d)
    assert emb.shape == (24, 4) and [int(v) for v in emb[::2, 0]] == list(range(12))
    np.save(d / "img_emb_99.npy", np.zeros((2, 5), np.float16))
    with pytest.raises(InputFormatError, match="5 dimensions"):
        load_npy_dir(d)


def test_parquet_column(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"emb": [[1.0, 0.0], [0.0, 1.0]], "bad": [[1.0], [1.0, 2.0]]}), path)
    np.testing.assert_array_equal(load_embeddings("column:emb", [path]), [[1, 0], [0, 1]])
    with pytest.raises(InputFormatError, match="different lengths"):
        load_embeddings("column:bad", [path])


def test_neighbour_pass_on_laion_metadata(tmp_path: Path, cleanset_home: Path) -> None:
    n = 40
    md5 = [f"{i:032x}" for i in range(n)]
    path = tmp_path / "laion" / "part-00000.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table(
            {
                "URL": [f"https://images.example.org/{i}.jpg" for i in range(n)],
                "TEXT": ["a benign stock photo"] * n,
                "md5": md5,
            }
        ),
        path,
    )
    banks = api.banks_from_rows(cleanset_home, "standin", [("md5", md5[7], "E7")])
    run = tmp_path / "run"
    config = ScreenConfig(classifiers=(), default_terms=False)
    api.scan([path], banks, run, screen=config, executor="inline", format="laion")
    emb = clustered(n, 16, seed=3)
    emb[20] = emb[7] * 1.01  # a near copy of the hit
    np.save(tmp_path / "img_emb_0.npy", emb.astype(np.float16))
    found = api.neighbours(run, tmp_path / "img_emb_0.npy")
    assert (found.revision, found.hits, found.neighbours, found.changed) == (1, 1, 1, 1)
    rows = {r["key"].rsplit("/", 1)[-1]: r for r in pq.read_table(found.path / "items").to_pylist()}
    assert rows["20"]["verdict"] == "review" and rows["20"]["rules"] == ["neighbour-of-hit"]
    assert dict(rows["20"]["scores"])["neighbour"] > 0.99
    assert any("neighbour of matched item" in note for note in rows["20"]["notes"])
    assert rows["7"]["verdict"] == "remove"
    summary = json.loads((found.path / "summary.json").read_text())
    assert (summary["items"], summary["removed"], summary["review"], summary["kept"]) == (n, 1, 1, n - 2)
    _, data = api.report(run)
    why = {f["key"].rsplit("/", 1)[-1]: f["why"] for f in data["flagged"]}
    assert any(w.startswith("rule neighbour-of-hit") for w in why["20"])
    with pytest.raises(UserError, match="do not align"):
        api.neighbours(run, emb[:10])
