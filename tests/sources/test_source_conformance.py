"""What every source promises the pipeline, checked for each registered format: stable shards, deterministic
reads (resume depends on it), unique keys, and a clean that keeps everything re-reads the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gates import gate_for
from source_samples import items

from cleanset.sources import SOURCES, open_source
from cleanset.sources.synth import write_folder, write_laion_rows, write_parquet_bytes, write_webdataset

MAKERS: dict[str, Callable[[Path], object]] = {
    "folder": lambda d: write_folder(d, items(), subdirs=2),
    "webdataset": lambda d: write_webdataset(d, items(), per_shard=7),
    "parquet": lambda d: write_parquet_bytes(d, items(), per_file=9, row_group_size=4),
    "laion": lambda d: write_laion_rows(d / "meta.parquet", items()),
}


def test_every_registered_source_is_covered() -> None:
    assert set(MAKERS) == set(SOURCES.names())


def _snapshot(src: object) -> list[tuple[str, str, bytes | None, str | None, str | None]]:
    return [
        (sh.id, it.key, it.data, it.url, it.error)
        for sh in src.shards()  # type: ignore[attr-defined]
        for it in src.read(sh)  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_source_contract(tmp_path: Path, name: str) -> None:
    MAKERS[name](tmp_path / "data")
    a, b = open_source([tmp_path / "data"]), open_source([tmp_path / "data"], name)
    assert a.name == name and a.shards() == b.shards()
    snap = _snapshot(a)
    assert snap == _snapshot(b) == _snapshot(a)
    keys = [(s, k) for s, k, *_ in snap]
    assert len(keys) == len(set(keys))
    assert all(err is None for *_, err in snap) and len(snap) == len(items())
    assert all(s.id.replace("_", "").replace("-", "").isalnum() for s in a.shards())  # safe as a file name
    out = tmp_path / "out"
    for sh in a.shards():
        ks = {k for s, k, *_ in snap if s == sh.id}
        assert a.write_clean(sh, gate_for(a, sh, ks, ks), out) == len(ks)
    again = _snapshot(open_source([out], name))
    assert [(d, u) for *_, d, u, _e in again] == [(d, u) for *_, d, u, _e in snap]
