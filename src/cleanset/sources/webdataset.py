"""WebDataset tar shards as img2dataset writes them.

Layout (img2dataset ``writer.py``, ``WebDatasetSampleWriter``): ``NNNNN.tar`` holds, per downloaded sample, members
``KEY.jpg`` (or ``.png``/``.webp``, the encode format), ``KEY.json`` (the sample's metadata: url, caption, key,
status, width, height, ...) and ``KEY.txt`` (caption), written in sorted extension order by webdataset's
``TarWriter``. Beside it ``NNNNN.parquet`` holds one metadata row per *attempted* sample (also failed downloads,
which have no tar members) and ``NNNNN_stats.json`` the shard's counters.

Reading streams each tar once (``tarfile`` stream mode) and groups consecutive members by key (the basename up to
its first dot, directories included, as webdataset does). Conventions, all fail closed:

- a group with one image member is one item keyed by the group key; with several image members (``KEY.jpg`` and
  ``KEY.seg.png``) each is an item keyed ``KEY.<ext>`` so every image is screened;
- a group without an image member is a URL-only item when its ``.json`` names a ``url`` (the URL is still
  screened), else a failed item ("no image member");
- a zero-byte image member is a failed item; other undecodable bytes are passed through and fail in hashing;
- an image member that is not a regular file (a link, device, fifo) or is sparse is a failed item and is never
  read (a sparse member can expand to far more than the tar holds); directories and other non-file members that are
  not images are skipped;
- undecodable bytes in member names appear as ``\\xNN`` in keys (:func:`~cleanset.sources._files.printable_key`);
  a group key seen again later in the tar is a second group keyed ``KEY#2``, ``KEY#3``..., and every item key is
  unique within the shard (:class:`~cleanset.sources._files.UniqueKeys`);
- a truncated tar yields the items completed before the damage, the group in progress as failed items, then one
  failed marker item ``<shard>#truncated``; a tar that ends without its end-of-archive blocks (cut exactly at a
  member boundary) gets the same marker;
- a shard that vanished or cannot be opened is one failed marker item ``<shard>#missing`` / ``<shard>#unreadable``;
- a key the sibling Parquet lists with status ``success`` but that is absent from a complete tar is a failed item
  with that key ("missing from the tar").

``write_clean`` writes the same relative shard names with the kept groups' members in their original order and
headers, the sibling Parquet filtered to kept keys (same schema; rows of failed downloads, which were never
screened, are dropped) and the ``_stats.json`` copied unchanged.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.errors import UserError
from cleanset.sources._files import (
    UniqueKeys,
    atomic_output,
    common_root,
    expand_paths,
    listed_files,
    printable_key,
    shard_id_for,
)
from cleanset.sources.base import (
    IMAGE_EXTS,
    SOURCES,
    Shard,
    Source,
    SourceItem,
    check_expected,
    marker_key,
)

_BUFFER = 1 << 20


def split_member(name: str) -> tuple[str, str]:
    """``dir/000001.seg.png`` -> (``dir/000001``, ``seg.png``): webdataset's key/extension split."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot + 1 :]


def _is_image_ext(ext: str) -> bool:
    return ext.rsplit(".", 1)[-1].lower() in IMAGE_EXTS


@dataclass
class _Group:
    key: str
    # (member, its bytes, why it was refused): a refused image member is never read and becomes a failed item
    members: list[tuple[tarfile.TarInfo, bytes, str | None]] = field(default_factory=list)


def _refusal(m: tarfile.TarInfo) -> str | None:
    """Why a member's data is not read: only regular, non-sparse files are (a sparse member can expand hugely)."""
    if m.issparse():
        return "sparse member refused"
    if m.isfile():
        return None
    if m.issym() or m.islnk():
        kind = "link"
    elif m.ischr() or m.isblk():
        kind = "device"
    elif m.isfifo():
        kind = "fifo"
    else:
        kind = f"type {m.type!r}"
    return f"not a regular file member ({kind})"


@dataclass
class _Damage:
    reason: str


def _stream_groups(path: Path) -> Iterator[_Group | _Damage]:
    """Consecutive member groups; a damaged tar ends with the group in progress marked by a ``_Damage``."""
    with open(path, "rb", buffering=_BUFFER) as f:
        current: _Group | None = None
        try:
            with tarfile.open(fileobj=f, mode="r|") as tf:
                for m in tf:
                    if m.isdir():
                        continue
                    key, ext = split_member(m.name)
                    refused = _refusal(m)
                    if refused is not None and not _is_image_ext(ext):
                        continue  # a link or special file that is no image: nothing to screen
                    data = b""
                    if refused is None:
                        ex = tf.extractfile(m)
                        data = ex.read() if ex is not None else b""
                    if current is not None and current.key != key:
                        yield current
                        current = None
                    if current is None:
                        current = _Group(key)
                    current.members.append((m, data, refused))
                end = tf.offset
        except (tarfile.TarError, EOFError, OSError) as err:
            if current is not None:
                yield current
            yield _Damage(f"truncated tar: {err}")
            return
        if current is not None:
            yield current
        size = path.stat().st_size
        f.seek(end)
        tail = f.read(1024)
        if end > 0 and (size < end + 1024 or tail.strip(b"\0")):
            yield _Damage("truncated tar: no end-of-archive marker after the last member")


def _group_items(g: _Group, shard_id: str) -> list[tuple[SourceItem, tarfile.TarInfo | None]]:
    """The items of one group, each with its image member (None for URL-only or failed items)."""
    meta: dict[str, Any] = {}
    url: str | None = None
    images: list[tuple[tarfile.TarInfo, bytes, str, str | None]] = []
    for m, data, refused in g.members:
        _key, ext = split_member(m.name)
        low = ext.lower()
        if _is_image_ext(ext):
            images.append((m, data, printable_key(ext), refused))
        elif low == "txt":
            meta["caption"] = data.decode("utf-8", errors="replace")
        elif low == "json":
            try:
                obj = json.loads(data)
            except ValueError as err:
                meta["json_error"] = printable_key(f"{m.name}: {err}")
            else:
                if isinstance(obj, dict):
                    meta["json"] = obj
                    u = obj.get("url")
                    url = u if isinstance(u, str) and u else None
    meta["members"] = [printable_key(m.name) for m, _, _ in g.members]
    if not images:
        if url is not None:
            return [(SourceItem(key=g.key, url=url, meta=meta), None)]
        names = ", ".join(meta["members"])
        return [(SourceItem(key=g.key, meta=meta, error=f"no image member in tar group ({names})"), None)]
    out: list[tuple[SourceItem, tarfile.TarInfo | None]] = []
    for m, data, ext, refused in images:
        key = g.key if len(images) == 1 else f"{g.key}.{ext}"
        name = printable_key(m.name)
        if refused is not None:
            item = SourceItem(key=key, url=url, meta=meta, error=f"{refused}: {name}")
        elif not data:
            item = SourceItem(key=key, url=url, meta=meta, error=f"empty image member (0 bytes): {name}")
        else:
            item = SourceItem(key=key, data=data, url=url, meta=meta)
        out.append((item, m))
    return out


def _failed(items: list[tuple[SourceItem, tarfile.TarInfo | None]], reason: str) -> None:
    for item, _m in items:
        item.data = None
        item.error = reason


@SOURCES.register("webdataset")
class WebDatasetSource(Source):
    name = "webdataset"

    def __init__(self, paths: Sequence[Path]) -> None:
        expanded = expand_paths(paths)
        tars = listed_files(expanded, ".tar")
        others = [p for p in expanded if p.is_file() and not p.name.lower().endswith(".tar")]
        if others:
            raise UserError(f"not a tar shard: {others[0]}")
        if not tars:
            raise UserError(f"no .tar shards in {', '.join(map(str, expanded))}")
        self.root = common_root(tars)
        self._shards: dict[str, Path] = {}
        for t in tars:
            sid = shard_id_for(t, self.root)
            if sid in self._shards:
                raise UserError(f"tar shard {t} is listed twice")
            self._shards[sid] = t.resolve()

    @classmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        return bool(listed_files(paths, ".tar"))

    def shards(self) -> list[Shard]:
        return [Shard(id=sid, path=str(p)) for sid, p in self._shards.items()]

    def _path(self, shard: Shard) -> Path:
        return Path(shard.path)

    def _iter(self, shard: Shard) -> Iterator[tuple[SourceItem, _Group | None, tarfile.TarInfo | None]]:
        path = self._path(shard)
        try:
            path.stat()
        except FileNotFoundError as err:
            yield SourceItem(key=marker_key(shard.id, "missing"), error=f"shard vanished: {err}"), None, None
            return
        except OSError as err:
            yield SourceItem(key=marker_key(shard.id, "unreadable"), error=f"shard unreadable: {err}"), None, None
            return
        seen: set[str] = set()  # group keys as stored, for the sibling Parquet's check
        groups = UniqueKeys()  # a repeated group key (webdataset keys must be consecutive) is a second group
        keys = UniqueKeys()  # item keys, unique within the shard whatever the member names
        pending: list[tuple[SourceItem, tarfile.TarInfo | None]] = []
        pending_group: _Group | None = None
        complete = True
        try:
            for g in _stream_groups(path):
                if isinstance(g, _Damage):
                    _failed(pending, g.reason)
                    for item, m in pending:
                        yield item, pending_group, m
                    pending = []
                    yield SourceItem(key=marker_key(shard.id, "truncated"), error=g.reason), None, None
                    complete = False
                    break
                for item, m in pending:
                    yield item, pending_group, m
                seen.add(g.key)
                g.key = groups(printable_key(g.key))
                pending, pending_group = _group_items(g, shard.id), g
                for item, _m in pending:
                    item.key = keys(item.key)
        except OSError as err:  # opening failed after stat (permissions, vanished in between)
            yield SourceItem(key=marker_key(shard.id, "unreadable"), error=f"shard unreadable: {err}"), None, None
            return
        for item, m in pending:
            yield item, pending_group, m
        if complete:
            for key in self._listed_missing(path, seen):
                yield (
                    SourceItem(
                        key=keys(key), error=f"listed as downloaded in {path.stem}.parquet but missing from the tar"
                    ),
                    None,
                    None,
                )

    def _listed_missing(self, tar: Path, present: set[str]) -> list[str]:
        side = tar.with_suffix(".parquet")
        if not side.is_file():
            return []
        try:
            pf = pq.ParquetFile(side)
            if not {"key", "status"} <= set(pf.schema_arrow.names):
                return []
            t = pf.read(columns=["key", "status"])
        except (OSError, pa.ArrowException):
            return []
        keys = t.filter(pc.equal(t["status"], "success"))["key"].to_pylist()
        return [str(k) for k in keys if k is not None and str(k) not in present]

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        for item, _g, _m in self._iter(shard):
            yield item

    def write_clean(self, shard: Shard, keep: set[str], out_dir: Path, expect: Collection[str] | None = None) -> int:
        src = self._path(shard)
        rel = src.relative_to(self.root)
        final = out_dir / rel
        written = 0
        kept_groups: list[str] = []
        with atomic_output(final) as tmp, tarfile.open(tmp, mode="w") as out:
            last_group: _Group | None = None
            group_kept: set[str] = set()  # member names of kept images in the current group
            group_any = False

            def flush(g: _Group | None) -> None:
                if g is None or not group_any:
                    return
                kept_groups.append(g.key)
                for m, data, refused in g.members:
                    _k, ext = split_member(m.name)
                    if refused is not None or (_is_image_ext(ext) and m.name not in group_kept):
                        continue
                    out.addfile(m, _Reader(data))

            for item, g, m in self._iter(shard):
                check_expected(shard, item.key, expect)
                if g is not last_group:
                    flush(last_group)
                    last_group, group_kept, group_any = g, set(), False
                if item.key in keep and g is not None:
                    if m is not None and any(r is not None for x, _d, r in g.members if x is m):
                        continue  # a refused member (kept with --keep-failed) has no bytes to write
                    written += 1
                    group_any = True
                    if m is not None:
                        group_kept.add(m.name)
            flush(last_group)
        self._write_sidecars(src, final, kept_groups)
        return written

    def _write_sidecars(self, src: Path, final: Path, kept_groups: list[str]) -> None:
        side = src.with_suffix(".parquet")
        if side.is_file():
            try:
                table = pq.read_table(side)
            except (OSError, pa.ArrowException) as err:
                raise UserError(f"{side}: the shard's metadata Parquet cannot be read ({err})") from err
            if "key" not in table.column_names:  # it could not be filtered: removed items' URLs would stay in it
                raise UserError(f"{side}: the shard's metadata Parquet has no 'key' column, so it cannot be cleaned")
            mask = pc.is_in(table["key"].cast(pa.string()), value_set=pa.array(kept_groups, pa.string()))
            table = table.filter(pc.fill_null(mask, False))
            with atomic_output(final.with_suffix(".parquet")) as tmp:
                pq.write_table(table, tmp)
        stats = src.with_name(f"{src.stem}_stats.json")
        if stats.is_file():
            with atomic_output(final.with_name(stats.name)) as tmp:
                shutil.copyfile(stats, tmp)


class _Reader:
    """A minimal file object over bytes already read, for ``TarFile.addfile``."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        chunk = self._data[self._pos : end].tobytes()
        self._pos = end
        return chunk
