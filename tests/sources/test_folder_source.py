"""The folder source: keys, sidecars, chunked shards, broken files as failed items, and a clean copy."""

from __future__ import annotations

import os
from pathlib import Path

from source_samples import items

from cleanset.sources import FolderSource, open_source
from cleanset.sources.synth import image_ext, write_folder


def _all(src: FolderSource) -> dict[str, object]:
    return {it.key: it for sh in src.shards() for it in src.read(sh)}


def test_reads_what_write_folder_wrote(tmp_path: Path) -> None:
    its = items()
    write_folder(tmp_path / "ds", its, subdirs=2)
    src = open_source([tmp_path / "ds"])
    assert isinstance(src, FolderSource)
    got = _all(src)
    want = {f"d{i % 2:02d}/{it.key}": it for i, it in enumerate(its)}
    assert set(got) == set(want)
    for k, it in want.items():
        assert got[k].data == it.data  # type: ignore[attr-defined]
        assert got[k].meta["caption"] == it.caption  # type: ignore[attr-defined]
        assert got[k].error is None  # type: ignore[attr-defined]


def test_chunks_are_stable_and_cover_every_file(tmp_path: Path) -> None:
    write_folder(tmp_path / "ds", items()[:13], captions=False)
    a = FolderSource([tmp_path / "ds"], chunk=5)
    b = FolderSource([tmp_path / "ds"], chunk=5)
    assert [s.id for s in a.shards()] == ["_root__00000", "_root__00001", "_root__00002"]
    assert a.shards() == b.shards()
    keys = [it.key for sh in a.shards() for it in a.read(sh)]
    assert len(keys) == len(set(keys)) == 13


def test_broken_files_fail_with_reasons_and_odd_names_are_screened(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    its = items()
    (root / "empty.jpg").write_bytes(b"")
    os.symlink(root / "nowhere.jpg", root / "dangling.png")
    (root / "no_extension").write_bytes(its[0].data)  # a JPEG without an extension is still an image
    (root / "README.md").write_text("about this folder")
    (root / "twin.jpg").write_bytes(its[1].data)
    (root / "twin.png").write_bytes(its[2].data)
    src = FolderSource([root])
    got = _all(src)
    assert set(got) == {"empty", "dangling", "no_extension", "twin.jpg", "twin.png"}
    assert "empty file" in got["empty"].error  # type: ignore[attr-defined]
    assert got["dangling"].error.startswith("read:")  # type: ignore[attr-defined]
    assert got["no_extension"].data == its[0].data  # type: ignore[attr-defined]
    assert src.ignored_files == ["README.md"]


def test_write_clean_copies_kept_files_and_their_sidecars(tmp_path: Path) -> None:
    its = items()[:8]
    write_folder(tmp_path / "ds", its, subdirs=2)
    src = FolderSource([tmp_path / "ds"])
    keep = {f"d{i % 2:02d}/{it.key}" for i, it in enumerate(its) if i % 3}
    out = tmp_path / "out"
    written = sum(src.write_clean(sh, keep, out) for sh in src.shards())
    assert written == len(keep)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    want = sorted(
        f"{k}.{ext}"
        for i, it in enumerate(its)
        for k in [f"d{i % 2:02d}/{it.key}"]
        if k in keep
        for ext in (image_ext(it.data), "txt")
    )
    assert files == want
    again = _all(FolderSource([out]))
    assert set(again) == keep
    by_key = {f"d{i % 2:02d}/{it.key}": it for i, it in enumerate(its)}
    assert all(again[k].data == by_key[k].data for k in keep)  # type: ignore[attr-defined]


def test_image_files_named_one_by_one(tmp_path: Path) -> None:
    its = items()[:6]
    write_folder(tmp_path / "ds", its, subdirs=2)
    chosen = sorted((tmp_path / "ds").rglob("*.jpg"))[:3]
    src = open_source(chosen)
    assert isinstance(src, FolderSource) and src.root == (tmp_path / "ds").resolve()
    got = _all(src)
    assert set(got) == {p.relative_to(tmp_path / "ds").with_suffix("").as_posix() for p in chosen}
    assert all(got[k].meta.get("caption") for k in got)  # type: ignore[attr-defined]
    out = tmp_path / "out"
    for sh in src.shards():
        src.write_clean(sh, set(got), out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == sorted(
        p.relative_to(tmp_path / "ds").as_posix() for p in chosen
    )
