"""WebDataset shards in img2dataset's layout: reading, every kind of damage as failed items, and clean output."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gates import gate_for
from source_samples import items

from cleanset.sources import UnaccountedItem, WebDatasetSource, open_source
from cleanset.sources.synth import image_ext, write_webdataset


@pytest.fixture()
def wds(tmp_path: Path) -> Path:
    write_webdataset(tmp_path / "wds", items(), per_shard=10, failed_per_shard=2)
    return tmp_path / "wds"


def _read_all(src: WebDatasetSource) -> list:
    return [it for sh in src.shards() for it in src.read(sh)]


def test_reads_img2dataset_layout(wds: Path) -> None:
    src = open_source([wds])
    assert isinstance(src, WebDatasetSource)
    assert [s.id for s in src.shards()] == ["00000", "00001", "00002"]
    got = {it.key: it for it in _read_all(src)}
    assert set(got) == {it.key for it in items()}  # failed downloads (parquet rows only) are not items
    for it in items():
        g = got[it.key]
        assert (g.data, g.url, g.meta["caption"], g.error) == (it.data, it.url, it.caption, None)
        assert g.meta["json"]["key"] == it.key
        assert g.meta["members"] == sorted(f"{it.key}.{e}" for e in (image_ext(it.data), "json", "txt"))


def test_brace_pattern_selects_shards(wds: Path) -> None:
    src = open_source([str(wds / "{00001..00002}.tar")])
    assert [s.id for s in src.shards()] == ["00001", "00002"]
    assert len(_read_all(src)) == 14


def _cut(path: Path, size: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:size])


def _member_offsets(path: Path) -> list[tuple[str, int, int]]:
    with tarfile.open(path) as tf:
        return [(m.name, m.offset, m.offset_data + m.size) for m in tf]


def test_truncated_tar_yields_items_before_damage_then_failed(wds: Path) -> None:
    tar = wds / "00000.tar"
    members = _member_offsets(tar)
    name, _start, end = members[13]  # inside the fifth sample (3 members each)
    _cut(tar, end - 7)
    src = WebDatasetSource([wds])
    got = list(src.read(src.shards()[0]))
    ok = [it for it in got if it.error is None]
    assert [it.key for it in ok] == [it.key for it in items()[:4]]
    bad = [it for it in got if it.error is not None]
    assert bad[-1].key == "00000#truncated" and bad[-1].error.startswith("truncated tar")
    assert bad[0].key == name.split(".")[0] and bad[0].data is None


def test_tar_cut_at_a_member_boundary_is_still_noticed(wds: Path) -> None:
    tar = wds / "00000.tar"
    _name, start, _end = _member_offsets(tar)[6]
    _cut(tar, start)
    src = WebDatasetSource([wds])
    got = list(src.read(src.shards()[0]))
    # the group read last may have lost members to the cut, so it fails too (fail closed)
    assert [it.key for it in got if it.error is None] == [items()[0].key]
    assert [it.key for it in got if it.error is not None] == [items()[1].key, "00000#truncated"]
    assert "end-of-archive" in got[-1].error


def test_vanished_shard_is_one_failed_item(wds: Path) -> None:
    src = WebDatasetSource([wds])
    (wds / "00001.tar").unlink()
    got = list(src.read(src.shards()[1]))
    assert len(got) == 1 and got[0].key == "00001#missing" and "vanished" in got[0].error


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


def test_odd_groups(tmp_path: Path) -> None:
    jpg = items()[0].data
    _write_tar(
        tmp_path / "x.tar",
        [
            ("a.jpg", jpg),
            ("a.txt", b"cap"),
            ("b.json", json.dumps({"url": "https://example.org/b.jpg"}).encode()),
            ("c.txt", b"only a caption"),
            ("d.jpg", b""),
            ("e.jpg", b"not an image"),
            ("f.jpg", jpg),
            ("f.seg.png", items()[4].data),
        ],
    )
    got = {it.key: it for it in WebDatasetSource([tmp_path / "x.tar"]).read(WebDatasetSource([tmp_path]).shards()[0])}
    assert set(got) == {"a", "b", "c", "d", "e", "f.jpg", "f.seg.png"}
    assert got["a"].data == jpg and got["a"].meta["caption"] == "cap"
    assert got["b"].data is None and got["b"].url == "https://example.org/b.jpg" and got["b"].error is None
    assert "no image member" in got["c"].error
    assert "empty image member" in got["d"].error
    assert got["e"].data == b"not an image" and got["e"].error is None  # decode failure is the hasher's to find
    assert got["f.seg.png"].data == items()[4].data


def test_success_row_missing_from_tar_is_failed(wds: Path) -> None:
    tar = wds / "00002.tar"
    with tarfile.open(tar) as tf:
        members = [(m.name, tf.extractfile(m).read()) for m in tf]  # type: ignore[union-attr]
    dropped = items()[21].key
    _write_tar(tar, [(n, d) for n, d in members if not n.startswith(dropped)])
    src = WebDatasetSource([wds])
    got = {it.key: it for it in src.read(src.shards()[2])}
    assert "missing from the tar" in got[dropped].error


def test_write_clean_keeps_layout_and_sidecars(wds: Path, tmp_path: Path) -> None:
    src = WebDatasetSource([wds])
    all_keys = [it.key for it in items()]
    keep = {k for i, k in enumerate(all_keys) if i % 4}
    out = tmp_path / "out"
    written = sum(src.write_clean(sh, gate_for(src, sh, keep, set(all_keys)), out) for sh in src.shards())
    assert written == len(keep)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in wds.iterdir())
    for sh in src.shards():
        with tarfile.open(sh.path) as a, tarfile.open(out / f"{sh.id}.tar") as b:
            orig = [(m.name, a.extractfile(m).read(), m.mtime, True) for m in a]  # type: ignore[union-attr]
            # every output member is a plain regular file, whatever the source header said
            new = [(m.name, b.extractfile(m).read(), m.mtime, m.type == tarfile.REGTYPE) for m in b]  # type: ignore[union-attr]
        assert new == [m for m in orig if m[0].split(".")[0] in keep]
        t_orig = pq.read_table(wds / f"{sh.id}.parquet")
        t_new = pq.read_table(out / f"{sh.id}.parquet")
        assert t_new.schema == t_orig.schema
        assert t_new.to_pylist() == [r for r in t_orig.to_pylist() if r["key"] in keep]
        assert (out / f"{sh.id}_stats.json").read_bytes() == (wds / f"{sh.id}_stats.json").read_bytes()
    again = {it.key: it.data for it in _read_all(WebDatasetSource([out]))}
    assert again == {it.key: it.data for it in items() if it.key in keep}


def test_write_clean_refuses_unrecorded_items(wds: Path, tmp_path: Path) -> None:
    src = WebDatasetSource([wds])
    shard = src.shards()[0]
    expect = {it.key for it in items()[1:10]}
    with pytest.raises(UnaccountedItem, match=items()[0].key):
        src.write_clean(shard, gate_for(src, shard, expect, expect), tmp_path / "out")
    assert not (tmp_path / "out" / "00000.tar").exists()
    assert not list((tmp_path / "out").iterdir())


def _only_shard(path: Path) -> list:
    src = WebDatasetSource([path])
    return list(src.read(src.shards()[0]))


def test_repeated_group_never_takes_an_existing_key(tmp_path: Path) -> None:
    jpg = items()[0].data
    _write_tar(tmp_path / "x.tar", [("x.jpg", jpg), ("y.jpg", jpg), ("x.jpg", jpg), ("x#2.jpg", jpg)])
    keys = [it.key for it in _only_shard(tmp_path / "x.tar")]
    assert keys == ["x", "y", "x#2", "x#2#2"]


def test_link_members_with_image_names_are_failed_not_dropped(tmp_path: Path) -> None:
    jpg = items()[0].data
    with tarfile.open(tmp_path / "x.tar", "w") as tf:
        ti = tarfile.TarInfo("a.jpg")
        ti.size = len(jpg)
        tf.addfile(ti, io.BytesIO(jpg))
        for name, kind in (("b.jpg", tarfile.SYMTYPE), ("c.png", tarfile.LNKTYPE), ("d.txt", tarfile.SYMTYPE)):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, "a.jpg"
            tf.addfile(link)
        sub = tarfile.TarInfo("sub.jpg")  # a directory is no item, whatever its name
        sub.type = tarfile.DIRTYPE
        tf.addfile(sub)
    got = {it.key: it for it in _only_shard(tmp_path / "x.tar")}
    assert set(got) == {"a", "b", "c", "d.txt"}  # the link d.txt is accounted for as failed, never followed
    assert got["a"].data == jpg and got["a"].error is None
    for k in ("b", "c", "d.txt"):
        assert got[k].data is None and "not a regular file member (link)" in got[k].error
    out = tmp_path / "out"
    src = WebDatasetSource([tmp_path / "x.tar"])
    assert src.write_clean(src.shards()[0], gate_for(src, src.shards()[0], {"a", "b", "c"}), out) == 1
    with tarfile.open(out / "x.tar") as tf:
        assert tf.getnames() == ["a.jpg"]


def _sparse_member(name: str, stored: bytes, real_size: int) -> bytes:
    """A GNU sparse header (type 'S') whose one stored chunk expands to ``real_size`` bytes, then its data."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.type = len(stored), tarfile.GNUTYPE_SPARSE
    buf = bytearray(ti.tobuf(tarfile.GNU_FORMAT))
    buf[386:398] = b"%011o\0" % (real_size - len(stored))  # chunk offset
    buf[398:410] = b"%011o\0" % len(stored)  # chunk size
    buf[483:495] = b"%011o\0" % real_size  # size once expanded
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % (sum(buf[:512]))
    pad = (-len(stored)) % 512
    return bytes(buf) + stored + b"\0" * pad


def test_sparse_member_is_refused_unread(tmp_path: Path) -> None:
    jpg = items()[0].data
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("a.jpg")
        ti.size = len(jpg)
        tf.addfile(ti, io.BytesIO(jpg))
    body = plain.getvalue()
    end = body.index(b"\0" * 1024, 512 + len(jpg))  # where the end-of-archive blocks start
    end += (-end) % 512
    data = body[:end] + _sparse_member("s.jpg", b"x" * 10, 50 << 20) + b"\0" * 10240
    (tmp_path / "x.tar").write_bytes(data)
    got = {it.key: it for it in _only_shard(tmp_path / "x.tar")}
    assert set(got) == {"a", "s"}
    assert got["a"].data == jpg
    assert got["s"].data is None and "sparse member refused" in got["s"].error


def test_undecodable_member_names_become_printable_keys(tmp_path: Path) -> None:
    jpg = items()[0].data
    name = os.fsdecode(b"caf\xe9.jpg")
    with tarfile.open(tmp_path / "x.tar", "w", format=tarfile.GNU_FORMAT) as tf:
        for n in (name, os.fsdecode(b"caf\xe9.txt"), "caf\\xe9.jpg"):
            data = b"a caption" if n.endswith(".txt") else jpg
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    got = _only_shard(tmp_path / "x.tar")
    assert [it.key for it in got] == ["caf\\xe9", "caf\\xe9#2"]
    pa.array([it.key for it in got] + [m for it in got for m in it.meta["members"]])
    src = WebDatasetSource([tmp_path / "x.tar"])
    out = tmp_path / "out"
    assert src.write_clean(src.shards()[0], gate_for(src, src.shards()[0], {"caf\\xe9"}), out) == 1
    with tarfile.open(out / "x.tar") as tf:
        assert tf.getnames() == [name, os.fsdecode(b"caf\xe9.txt")]


def test_item_counts_come_from_the_sibling_parquet(wds: Path) -> None:
    """The progress bar's total, known before a tar is opened: img2dataset's successful downloads per shard."""
    src = WebDatasetSource([wds])
    counts = src.item_counts()
    assert counts is not None
    assert counts == {sh.id: sum(1 for it in src.read(sh) if it.data is not None) for sh in src.shards()}
