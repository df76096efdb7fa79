"""The folder source: keys, sidecars, chunked shards, broken files as failed items, and a clean copy."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from gates import gate_for
from source_samples import items

from cleanset.errors import UserError
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
    want = {f"d{i % 2:02d}/{it.key}.{image_ext(it.data)}": it for i, it in enumerate(its)}
    assert set(got) == set(want)
    for k, it in want.items():
        assert got[k].data == it.data  # type: ignore[attr-defined]
        assert got[k].meta["caption"] == it.caption  # type: ignore[attr-defined]
        assert got[k].error is None  # type: ignore[attr-defined]


def test_chunks_are_stable_and_cover_every_file(tmp_path: Path) -> None:
    write_folder(tmp_path / "ds", items()[:13], captions=False)
    a = FolderSource([tmp_path / "ds"], chunk=5)
    b = FolderSource([tmp_path / "ds"], chunk=5)
    assert [s.id for s in a.shards()] == ["%root__00000", "%root__00001", "%root__00002"]
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
    assert set(got) == {"empty.jpg", "dangling.png", "no_extension", "twin.jpg", "twin.png"}
    assert "empty file" in got["empty.jpg"].error  # type: ignore[attr-defined]
    assert got["dangling.png"].error.startswith("read:")  # type: ignore[attr-defined]
    assert got["no_extension"].data == its[0].data  # type: ignore[attr-defined]
    assert src.ignored_files == ["README.md"]


def test_write_clean_copies_kept_files_and_their_sidecars(tmp_path: Path) -> None:
    its = items()[:8]
    write_folder(tmp_path / "ds", its, subdirs=2)
    src = FolderSource([tmp_path / "ds"])
    keep = {f"d{i % 2:02d}/{it.key}.{image_ext(it.data)}" for i, it in enumerate(its) if i % 3}
    out = tmp_path / "out"
    written = sum(src.write_clean(sh, gate_for(src, sh, keep), out) for sh in src.shards())
    assert written == len(keep)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    want = sorted(
        f"{stem}.{ext}"
        for i, it in enumerate(its)
        for stem in [f"d{i % 2:02d}/{it.key}"]
        if f"{stem}.{image_ext(it.data)}" in keep
        for ext in (image_ext(it.data), "txt")
    )
    assert files == want
    again = _all(FolderSource([out]))
    assert set(again) == keep
    by_key = {f"d{i % 2:02d}/{it.key}.{image_ext(it.data)}": it for i, it in enumerate(its)}
    assert all(again[k].data == by_key[k].data for k in keep)  # type: ignore[attr-defined]


def test_image_files_named_one_by_one(tmp_path: Path) -> None:
    its = items()[:6]
    write_folder(tmp_path / "ds", its, subdirs=2)
    chosen = sorted((tmp_path / "ds").rglob("*.jpg"))[:3]
    src = open_source(chosen)
    assert isinstance(src, FolderSource) and src.root == (tmp_path / "ds").resolve()
    got = _all(src)
    assert set(got) == {p.relative_to(tmp_path / "ds").as_posix() for p in chosen}
    assert all(got[k].meta.get("caption") for k in got)  # type: ignore[attr-defined]
    out = tmp_path / "out"
    for sh in src.shards():
        src.write_clean(sh, gate_for(src, sh, set(got)), out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == sorted(
        p.relative_to(tmp_path / "ds").as_posix() for p in chosen
    )


def test_shard_ids_of_distinct_directories_never_collide(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    jpg = items()[0].data
    for rel in ("a/b/1.jpg", "a__b/2.jpg", "_root/3.jpg", "4.jpg", "a%2Fb/5.jpg", "a%b/6.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(jpg)
    src = FolderSource([root])
    ids = [s.id for s in src.shards()]
    assert len(ids) == len(set(ids)) == 6
    assert "%root__00000" in ids
    assert set(_all(src)) == {"a/b/1.jpg", "a__b/2.jpg", "_root/3.jpg", "4.jpg", "a%2Fb/5.jpg", "a%b/6.jpg"}


def test_keys_stay_unique_when_a_stem_holds_an_extension(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    its = items()
    (root / "a.jpg").write_bytes(its[0].data)
    (root / "a.png").write_bytes(its[1].data)
    (root / "a.jpg.png").write_bytes(its[2].data)
    (root / "b.jpg").write_bytes(its[3].data)
    src = FolderSource([root])
    keys = [it.key for sh in src.shards() for it in src.read(sh)]
    assert sorted(keys) == ["a.jpg", "a.jpg.png", "a.png", "b.jpg"]
    got = _all(src)
    assert got["a.jpg"].data == its[0].data and got["a.jpg.png"].data == its[2].data  # type: ignore[attr-defined]
    out = tmp_path / "out"
    assert src.write_clean(src.shards()[0], gate_for(src, src.shards()[0], set(keys), keys), out) == 4
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.jpg.png", "a.png", "b.jpg"]
    # a kept a.jpg keeps its key in the cleaned copy when the listed a.png beside it is removed
    kept = {"a.jpg", "a.jpg.png", "b.jpg"}
    out2 = tmp_path / "out2"
    assert src.write_clean(src.shards()[0], gate_for(src, src.shards()[0], kept), out2) == 3
    assert set(_all(FolderSource([out2]))) == kept


def test_undecodable_file_names_become_printable_keys(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    sub = root / os.fsdecode(b"d\xff")
    sub.mkdir(parents=True)
    jpg = items()[0].data
    (sub / os.fsdecode(b"caf\xe9.jpg")).write_bytes(jpg)
    src = FolderSource([root])
    got = list(_all(src).values())
    assert [it.key for it in got] == ["d\\xff/caf\\xe9.jpg"]  # type: ignore[attr-defined]
    assert got[0].data == jpg and got[0].error is None  # type: ignore[attr-defined]
    pa.array([it.key for it in got] + [it.meta["path"] for it in got])  # type: ignore[attr-defined]
    pa.array([s.id for s in src.shards()])
    out = tmp_path / "out"
    assert src.write_clean(src.shards()[0], gate_for(src, src.shards()[0], {got[0].key}), out) == 1  # type: ignore[attr-defined]
    assert (out / os.fsdecode(b"d\xff") / os.fsdecode(b"caf\xe9.jpg")).read_bytes() == jpg


def test_unlistable_subdirectory_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ds"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "x.jpg").write_bytes(items()[0].data)
    (root / "y.jpg").write_bytes(items()[1].data)
    real = os.scandir

    def scandir(path: str = ".") -> object:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(UserError, match="locked"):
        FolderSource([root])


def _unblock_readers(fifos: list[Path], stop: threading.Event) -> None:
    """Lets a reader stuck on a fifo go (end of file), so a regression fails the test instead of hanging it."""
    while not stop.wait(0.5):
        for f in fifos:
            with contextlib.suppress(OSError):  # nobody is reading it: as it should be
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "ok.jpg").write_bytes(items()[0].data)
    os.mkfifo(root / "pipe")  # no image name: sniffing must not open it (that would block)
    os.mkfifo(root / "pipe.jpg")  # an image name: a failed item, never read
    stop = threading.Event()
    guard = threading.Thread(target=_unblock_readers, args=([root / "pipe", root / "pipe.jpg"], stop), daemon=True)
    guard.start()
    try:
        src = FolderSource([root])
        got = _all(src)
    finally:
        stop.set()
    assert set(got) == {"ok.jpg", "pipe.jpg"}
    assert "not a regular file" in got["pipe.jpg"].error  # type: ignore[attr-defined]
    assert src.ignored_files == ["pipe"]


def test_write_clean_counts_only_images_written(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.jpg").write_bytes(items()[0].data)
    (root / "a.txt").write_text("caption")
    (root / "b.jpg").write_bytes(items()[1].data)
    src = FolderSource([root])
    (root / "a.jpg").unlink()  # gone since the scan (kept with --keep-failed)
    assert src.write_clean(src.shards()[0], gate_for(src, src.shards()[0], {"a.jpg", "b.jpg"}), tmp_path / "out") == 1
