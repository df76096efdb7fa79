"""Review fixes of the neighbour pass: embeddings from a column pair with the right item whatever the file names'
order, hits never crowd neighbours out, hits come from the matches (not a stale ``rules`` column), a run written
before screening still reports and neighbour-passes, and the pass run twice writes one revision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cleanset.api as api
from cleanset.errors import UserError
from cleanset.runs.store import RunStore
from cleanset.screening.neighbours import find_neighbours
from cleanset.screening.stage import ScreenConfig

DIM = 8


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _two_parts(tmp_path: Path, home: Path) -> tuple[Path, Path, dict[int, np.ndarray]]:
    """LAION files part-2 and part-10 (10 rows each, an embedding column); row part-2/3 is a hash hit and
    part-2/5 a near copy of it."""
    src = tmp_path / "laion"
    src.mkdir()
    emb = {2: _vectors(10, 2), 10: _vectors(10, 10)}
    emb[2][5] = emb[2][3] * 1.01
    for part in (2, 10):
        pq.write_table(
            pa.table(
                {
                    "URL": [f"https://images.example.org/{part}/{i}.jpg" for i in range(10)],
                    "TEXT": ["a benign stock photo"] * 10,
                    "md5": [f"{part:04x}{i:028x}" for i in range(10)],
                    "emb": [list(map(float, v)) for v in emb[part]],
                }
            ),
            src / f"part-{part}.parquet",
        )
    banks = api.banks_from_rows(home, "standin", [("md5", f"{2:04x}{3:028x}", "E3")])
    run = tmp_path / "run"
    config = ScreenConfig(classifiers=(), default_terms=False)
    api.scan([src], banks, run, screen=config, executor="inline", format="laion")
    return src, run, emb


def test_column_embeddings_follow_the_runs_shards(tmp_path: Path, cleanset_home: Path) -> None:
    src, run, _ = _two_parts(tmp_path, cleanset_home)
    found = api.neighbours(run, "column:emb", sources=[src])
    assert (found.hits, found.neighbours, found.changed) == (1, 1, 1)
    rows = {r["key"]: r for r in pq.read_table(found.path / "items").to_pylist()}
    assert rows["part-2/5"]["verdict"] == "review"
    assert sum(r["verdict"] == "review" for r in rows.values()) == 1


def test_a_shard_whose_rows_differ_is_refused_even_when_totals_match(tmp_path: Path, cleanset_home: Path) -> None:
    _, run, emb = _two_parts(tmp_path, cleanset_home)
    with pytest.raises(UserError, match=r"shard part-2 .* 10 items, its embeddings 11 rows"):
        _pass(run, {"part-2": np.vstack([emb[2], emb[10][:1]]), "part-10": emb[10][1:]})


def _pass(run: Path, per_shard: dict[str, np.ndarray]) -> object:
    from cleanset.pipeline.neighbours import neighbour_pass

    return neighbour_pass(run, per_shard, 32, 0.9, source="test")


def test_hits_do_not_crowd_out_a_neighbour() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(size=DIM).astype(np.float32)
    emb = np.vstack([_vectors(200, 6), [base + rng.normal(scale=0.01, size=DIM) for _ in range(41)]]).astype(np.float32)
    lonely = 240
    emb[lonely] = base + rng.normal(scale=0.2, size=DIM)  # close, but less close than the hits are to each other
    hits = list(range(200, 240))
    found = find_neighbours(emb, hits, k=32, min_similarity=0.9).as_dict()
    assert lonely in found and not set(found) & set(hits)


def test_hits_come_from_matches_not_the_rules_column(tmp_path: Path, cleanset_home: Path) -> None:
    _, run, emb = _two_parts(tmp_path, cleanset_home)
    # Stale rules, as a rematch may leave them: none on the hit, ``bank-match`` on an item with no match.
    for f, stale in zip(RunStore(run).item_files(), ([["bank-match"]] + [[]] * 9, [[]] * 10), strict=True):
        t = pq.read_table(f)
        rules = pa.array(stale, t.schema.field("rules").type)
        pq.write_table(t.set_column(t.schema.get_field_index("rules"), "rules", rules), f)
    found = _pass(run, {"part-2": emb[2], "part-10": emb[10]})
    assert (found.hits, found.neighbours) == (1, 1)  # type: ignore[attr-defined]


def test_a_run_from_before_screening_reports_and_neighbour_passes(tmp_path: Path, cleanset_home: Path) -> None:
    _, run, emb = _two_parts(tmp_path, cleanset_home)
    for f in RunStore(run).item_files():
        t = pq.read_table(f)
        old = [c for c in t.column_names if c not in ("rules", "text_lists", "open_nsfw")]
        pq.write_table(t.select(old), f)
    _, data = api.report(run)
    assert data["counts"]["removed"] == 1 and len(data["flagged"]) == 1
    found = _pass(run, {"part-2": emb[2], "part-10": emb[10]})
    assert (found.hits, found.neighbours, found.changed) == (1, 1, 1)  # type: ignore[attr-defined]
    rewritten = found.path / "items" / "part-2.parquet"  # type: ignore[attr-defined]
    rows = {r["key"]: r for r in pq.read_table(rewritten).to_pylist()}
    assert rows["part-2/5"]["rules"] == ["neighbour-of-hit"] and rows["part-2/4"]["rules"] == []


def test_the_pass_run_again_writes_no_second_revision(tmp_path: Path, cleanset_home: Path) -> None:
    src, run, _ = _two_parts(tmp_path, cleanset_home)
    first = api.neighbours(run, "column:emb", sources=[src])
    again = api.neighbours(run, "column:emb", sources=[src])
    assert (again.revision, again.hits, again.neighbours) == (first.revision, 1, 1)
    assert RunStore(run).revisions() == [first.revision]
    other = api.neighbours(run, "column:emb", sources=[src], k=16)  # other settings: a new revision over the last
    assert other.revision == first.revision + 1
    rows = pq.read_table(other.path / "items" / "part-2.parquet").to_pylist()
    notes = next(r["notes"] for r in rows if r["key"] == "part-2/5")
    assert sum(n.startswith("neighbour of matched item") for n in notes) == 1  # not one per pass


def test_streamed_parts_give_the_brute_force_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import cleanset.screening.neighbours as nb

    monkeypatch.setattr(nb, "BLOCK_CELLS", 1)  # the smallest blocks: every part in several of them
    rng = np.random.default_rng(9)
    emb = rng.normal(size=(1500, DIM)).astype(np.float32)
    hits = [3, 700, 1499]
    for h in hits:
        emb[h + 1 if h < 1499 else h - 1] = emb[h] + rng.normal(scale=0.05, size=DIM)
    parts = [emb[:400].astype(np.float16), emb[400:401], emb[401:]]
    got = find_neighbours(parts, hits, k=5, min_similarity=0.5).as_dict()
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    want: dict[int, tuple[float, int]] = {}
    for h in hits:
        sims = x @ x[h]
        sims[hits] = -np.inf
        for i in np.argsort(-sims)[:5]:
            if sims[i] >= 0.5 and (i not in want or sims[i] > want[int(i)][0]):
                want[int(i)] = (float(sims[i]), h)
    assert got.keys() == want.keys()
    assert all(got[r][1] == want[r][1] and abs(got[r][0] - want[r][0]) < 1e-2 for r in want)


def test_a_neighbour_whose_hit_moved_away_is_cleared(tmp_path: Path, cleanset_home: Path) -> None:
    """A later pass where an item is no longer near any hit (new embeddings, or its hit delisted) takes its
    neighbour score, rule and note away and judges it again, instead of leaving it in review."""
    _, run, emb = _two_parts(tmp_path, cleanset_home)
    first = _pass(run, {"part-2": emb[2], "part-10": emb[10]})
    assert first.neighbours == 1  # type: ignore[attr-defined]
    moved = {2: emb[2].copy(), 10: emb[10]}
    moved[2][5] = -moved[2][3]  # the near copy is now as far from the hit as it can be
    from cleanset.pipeline.neighbours import neighbour_pass

    again = neighbour_pass(run, {"part-2": moved[2], "part-10": moved[10]}, 32, 0.9, source="new embeddings")
    assert (again.neighbours, again.changed) == (0, 1)  # type: ignore[attr-defined]
    rows = {r["key"]: r for r in RunStore(run).items_table().to_pylist()}
    item = rows["part-2/5"]
    assert item["verdict"] == "keep" and item["rules"] == []
    assert not any(name == "neighbour" for name, _ in item["scores"] or [])
    assert not any(n.startswith("neighbour of matched item") for n in item["notes"] or [])
