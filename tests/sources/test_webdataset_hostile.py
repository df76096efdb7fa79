"""Hostile tar shards: compressed shards are read (never skipped), and headers that promise gigabytes cost none."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

from gates import gate_for
from source_samples import items

from cleanset.sources import WebDatasetSource, open_source


def _members(n: int = 3) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for it in items()[:n]:
        out += [(f"{it.key}.jpg", it.data), (f"{it.key}.txt", b"caption")]
    return out


def _write(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> None:
    with tarfile.open(path, mode) as tf:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_gzipped_shards_are_read_and_written_back_compressed(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    _write(tmp_path / "ds" / "00000.tar.gz", _members(), "w:gz")
    _write(tmp_path / "ds" / "00001.tgz", _members(), "w:gz")
    src = open_source([tmp_path / "ds"])
    assert src.name == "webdataset"
    assert [s.id for s in src.shards()] == ["00000", "00001"]
    keys = [it.key for sh in src.shards() for it in src.read(sh)]
    assert len(keys) == 6 and all(it.error is None for sh in src.shards() for it in src.read(sh))
    out = tmp_path / "out"
    keep = {items()[0].key}
    for sh in src.shards():
        src.write_clean(sh, gate_for(src, sh, keep), out)
    with tarfile.open(out / "00000.tar.gz", "r:gz") as tf:
        assert tf.getnames() == [f"{items()[0].key}.jpg", f"{items()[0].key}.txt"]


def test_member_over_the_size_cap_is_failed_unread(tmp_path: Path) -> None:
    """A 16 KB tar whose header claims 8 GB: refused from the header, then the tar is reported truncated."""
    big = tarfile.TarInfo("huge.jpg")
    big.size = 8 << 30
    header = big.tobuf(tarfile.GNU_FORMAT)
    (tmp_path / "x.tar").write_bytes(header + b"\xff\xd8\xff" + b"\0" * (16 * 1024 - len(header) - 3))
    got = list(WebDatasetSource([tmp_path / "x.tar"]).read(WebDatasetSource([tmp_path / "x.tar"]).shards()[0]))
    assert got[0].key == "huge" and got[0].data is None and got[0].error  # failed, its 8 GB never read
    assert got[-1].key.endswith("#truncated")


def test_sparse_member_stays_under_a_gigabyte(tmp_path: Path) -> None:
    """A sparse member that expands to 8 GB is failed, never expanded: peak memory stays far below 1 GB."""
    sparse = tarfile.TarInfo("zeros.jpg")
    sparse.size = 512
    pax = {
        "GNU.sparse.size": str(8 << 30),
        "GNU.sparse.numblocks": "1",
        "GNU.sparse.offset": "0",
        "GNU.sparse.numbytes": "512",
    }
    with tarfile.open(tmp_path / "s.tar", "w", format=tarfile.PAX_FORMAT) as tf:
        sparse.pax_headers = pax
        tf.addfile(sparse, io.BytesIO(b"\xff\xd8\xff" + b"\0" * 509))
        info = tarfile.TarInfo("ok.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    assert (tmp_path / "s.tar").stat().st_size <= 16 * 1024
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from cleanset.sources import WebDatasetSource
        src = WebDatasetSource([Path({str(tmp_path / "s.tar")!r})])
        got = list(src.read(src.shards()[0]))
        assert got[0].data is None and "sparse" in got[0].error, got[0]
        with open("/proc/self/status") as f:  # VmHWM: this process's own peak, afresh at exec
            print(next(line for line in f if line.startswith("VmHWM")).split()[1])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert int(out.stdout.strip().splitlines()[-1]) < 1024 * 1024  # KiB on Linux


def test_a_member_named_like_a_marker_never_poses_as_one(tmp_path: Path) -> None:
    """``00000#unread.jpg`` is an item like any other: its key is not the shard's marker key."""
    jpg = items()[0].data
    _write(tmp_path / "00000.tar", [("00000#unread.jpg", jpg), ("00000#truncated.jpg", jpg)])
    src = WebDatasetSource([tmp_path / "00000.tar"])
    keys = [it.key for it in src.read(src.shards()[0])]
    assert keys == ["00000#unread#2", "00000#truncated#2"]


def test_bytes_after_the_end_of_archive_are_damage(tmp_path: Path) -> None:
    """A picture appended after the end-of-archive marker is read by no tar reader: it is reported, not kept."""
    jpg = items()[0].data
    for name, mode in (("a.tar", "w"), ("b.tar.gz", "w:gz")):
        _write(tmp_path / name, _members(2), mode)
        if mode == "w":
            with open(tmp_path / name, "ab") as f:
                f.write(b"\0" * 1024 + jpg)
        else:
            import gzip

            raw = gzip.decompress((tmp_path / name).read_bytes())
            (tmp_path / name).write_bytes(gzip.compress(raw + b"\0" * 1024 + jpg))
        src = WebDatasetSource([tmp_path / name])
        got = list(src.read(src.shards()[0]))
        assert got[-1].key.endswith("#truncated") and "after the tar's end-of-archive" in (got[-1].error or "")


def test_a_large_member_that_is_no_image_is_never_read_whole(tmp_path: Path) -> None:
    """A 64 MB zero-filled ``.bin``: refused after its first kilobyte, a failed item of its own."""
    big = tarfile.TarInfo("k.bin")
    big.size = 64 << 20
    with tarfile.open(tmp_path / "x.tar", "w") as tf:
        info = tarfile.TarInfo("k.jpg")
        info.size = len(items()[0].data)
        tf.addfile(info, io.BytesIO(items()[0].data))
        tf.addfile(big, io.BytesIO(bytes(big.size)))
    src = WebDatasetSource([tmp_path / "x.tar"])
    got = {it.key: it for it in src.read(src.shards()[0])}
    assert got["k"].data == items()[0].data
    assert got["k.bin"].data is None and "neither an image nor a text sidecar" in (got["k.bin"].error or "")
