"""WebDataset tar shards as img2dataset writes them.

Layout (img2dataset ``writer.py``, ``WebDatasetSampleWriter``): ``NNNNN.tar`` holds, per downloaded sample, members
``KEY.jpg`` (or ``.png``/``.webp``, the encode format), ``KEY.json`` (the sample's metadata: url, caption, key,
status, width, height, ...) and ``KEY.txt`` (caption), written in sorted extension order by webdataset's
``TarWriter``. Beside it ``NNNNN.parquet`` holds one metadata row per *attempted* sample (also failed downloads,
which have no tar members) and ``NNNNN_stats.json`` the shard's counters.

Reading streams each tar once (``tarfile`` stream mode, ``.tar.gz``/``.tgz`` too) and groups consecutive members by
key (the basename up to its first dot, directories included, as webdataset does). Every member ends up as exactly
one of: an image item, a sidecar, or a failed item. Conventions, all fail closed:

- a member is an image when its extension says so or its bytes carry an image signature (a JPEG stored as
  ``KEY.bin`` is screened all the same);
- a group with one image member is one item keyed by the group key; with several image members (``KEY.jpg`` and
  ``KEY.seg.png``, or the same name twice) each is an item keyed ``KEY.<ext>`` (``#2`` for a repeat) so every image
  is screened;
- any other member is a sidecar only when its content is text or JSON (:func:`~cleanset.sources.base.sidecar_kind`)
  and its name is not repeated in the group; otherwise it is a failed item keyed ``KEY.<ext>`` and is left out;
- a group without an image member is a URL-only item when its ``.json`` names a ``url`` (the URL is still
  screened), else a failed item ("no image member");
- a zero-byte image member is a failed item; other undecodable bytes are passed through and fail in hashing;
- a member that is not a regular file (a link, device, fifo), is sparse, or is larger than ``MAX_MEMBER_BYTES`` is
  a failed item and is never read (a sparse member can expand to far more than the tar holds); directories are
  skipped;
- undecodable bytes in member names appear as ``\\xNN`` in keys (:func:`~cleanset.sources._files.printable_key`);
  a group key seen again later in the tar is a second group keyed ``KEY#2``, ``KEY#3``..., and every item key is
  unique within the shard (:class:`~cleanset.sources._files.UniqueKeys`);
- a truncated tar yields the items completed before the damage, the group in progress as failed items, then one
  failed marker item ``<shard>#truncated``; a tar that ends without its end-of-archive blocks (cut exactly at a
  member boundary) gets the same marker;
- a shard that vanished or cannot be opened is one failed marker item ``<shard>#missing`` / ``<shard>#unreadable``;
- a key the sibling Parquet lists with status ``success`` but that is absent from a complete tar is a failed item
  with that key ("missing from the tar").

``write_clean`` reads the tar again with the same code, passes every item through the run's gate (which recomputes
each image's digest), and writes the same relative shard names holding, in their original order, the admitted
image members (by position, never by name: a second member of the same name is its own item) and the sidecars of
groups with an admitted item, each as a plain regular-file member. Beside it: the sibling Parquet filtered to kept
keys (same schema; rows of failed downloads, which were never screened, are dropped; one with a binary column is
refused) and the ``_stats.json`` copied when it is text.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.errors import UserError
from cleanset.imaging.decode import sniff
from cleanset.sources._files import (
    UniqueKeys,
    atomic_output,
    common_root,
    expand_paths,
    listed_files,
    printable_key,
    shard_id_for,
)
from cleanset.sources._parquet import holds_bytes, text_findings, writer_schema
from cleanset.sources.base import (
    IMAGE_EXTS,
    SIDECAR_MAX_BYTES,
    SOURCES,
    CleanGate,
    Shard,
    Source,
    SourceItem,
    marker_key,
    marker_keys,
    sidecar_kind,
)

_BUFFER = 1 << 20
MAX_MEMBER_BYTES = 512 << 20  # above any image a scan decodes (100 MP); a larger member is refused unread
MAX_GROUP_BYTES = 1 << 30  # what one group may hold in memory at once
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def tar_stem(path: Path) -> str:
    """``00001.tar.gz`` -> ``00001``: the name its sibling files (``.parquet``, ``_stats.json``) share."""
    low = path.name.lower()
    for suffix in TAR_SUFFIXES:
        if low.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


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
    # (member, its bytes, why it was refused): a refused member is never read and becomes a failed item
    members: list[tuple[tarfile.TarInfo, bytes, str | None]] = field(default_factory=list)
    # members that travel with the group's kept items: text/JSON content, decided by the read that wrote them
    sidecars: list[tuple[tarfile.TarInfo, bytes]] = field(default_factory=list)
    raw_key: str = ""  # the key as stored, which img2dataset's sibling Parquet uses (``key`` may get ``#2``)


def _refusal(m: tarfile.TarInfo) -> str | None:
    """Why a member's data is not read: only regular, non-sparse files are (a sparse member can expand hugely)."""
    if m.issparse():
        return "sparse member refused"
    if m.isfile():
        if m.size > MAX_MEMBER_BYTES:
            return f"member of {m.size} bytes refused (over {MAX_MEMBER_BYTES})"
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


def _read_member(tf: tarfile.TarFile, m: tarfile.TarInfo, ext: str, budget: int) -> tuple[bytes, str | None]:
    """A member's bytes, or why they were not read: memory follows what the item needs, not what a header says.

    An image (by name, or by its first bytes) is read up to ``MAX_MEMBER_BYTES``; anything else only up to
    ``SIDECAR_MAX_BYTES``, which is all a sidecar may hold; nothing beyond the group's remaining ``budget``."""
    ex = tf.extractfile(m)
    if ex is None:
        return b"", None
    if m.size > budget:
        return b"", f"member of {m.size} bytes refused (its group is over {MAX_GROUP_BYTES} bytes)"
    head = ex.read(1024)
    if m.size > SIDECAR_MAX_BYTES and not _is_image_ext(ext) and sniff(head) is None:
        return b"", f"member of {m.size} bytes is neither an image nor a text sidecar (at most {SIDECAR_MAX_BYTES})"
    return head + ex.read(), None


def _stream_groups(path: Path) -> Iterator[_Group | _Damage]:
    """Consecutive member groups; a damaged tar ends with the group in progress marked by a ``_Damage``.

    After the last member only zero padding may follow: bytes after the end-of-archive marker are read by no tar
    reader cleanset knows, so they are damage, not something to copy or vouch for."""
    with open(path, "rb", buffering=_BUFFER) as f:
        current: _Group | None = None
        used = 0
        try:
            with tarfile.open(fileobj=f, mode="r|*") as tf:
                for m in tf:
                    if m.isdir():
                        continue
                    key, ext = split_member(m.name)
                    if current is not None and current.key != key:
                        yield current
                        current = None
                    if current is None:
                        current, used = _Group(key), 0
                    refused = _refusal(m)
                    data = b""
                    if refused is None:
                        data, refused = _read_member(tf, m, ext, MAX_GROUP_BYTES - used)
                        used += len(data)
                    current.members.append((m, data, refused))
                tail, nonzero = 0, False
                while chunk := tf.fileobj.read(1 << 20):
                    tail += len(chunk)
                    if chunk.strip(b"\0"):
                        nonzero = True
                        break
                offset = tf.offset
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            if current is not None:
                yield current
            yield _Damage(f"truncated tar: {err}")
            return
        if current is not None:
            yield current
        if nonzero:
            yield _Damage("data after the tar's end-of-archive marker: not read by tar readers, not screened")
        elif offset > 0 and tail < tarfile.BLOCKSIZE:
            yield _Damage("truncated tar: no end-of-archive marker after the last member")


def _group_items(g: _Group) -> list[tuple[SourceItem, tarfile.TarInfo | None]]:
    """The items of one group, each with its image member (None for URL-only or failed items); fills
    ``g.sidecars`` with the members that may travel with them."""
    meta: dict[str, Any] = {}
    url: str | None = None
    images: list[tuple[tarfile.TarInfo, bytes, str, str | None]] = []
    refused_members: list[tuple[tarfile.TarInfo, str]] = []
    side_names: set[str] = set()
    g.sidecars = []
    for m, data, refused in g.members:
        _key, ext = split_member(m.name)
        low = ext.lower()
        name = printable_key(m.name)
        if _is_image_ext(ext) or (refused is None and sniff(data) is not None):
            images.append((m, data, printable_key(ext), refused))
            continue
        if refused is not None:
            refused_members.append((m, f"{refused}: {name}; left out"))
            continue
        if m.name in side_names:
            refused_members.append((m, f"member name {name} repeated in its group; left out"))
            continue
        kind, why = sidecar_kind(data)
        if kind is None:
            refused_members.append((m, f"member {name} is not an image, text or JSON ({why}); left out unscreened"))
            continue
        side_names.add(m.name)
        g.sidecars.append((m, data))
        if low == "txt":
            meta["caption"] = data.decode("utf-8-sig", errors="replace")
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
    extras = [(printable_key(m.name), data) for m, data in g.sidecars]  # written with each of the group's items
    out: list[tuple[SourceItem, tarfile.TarInfo | None]] = []
    if not images:
        if url is not None:
            out.append((SourceItem(key=g.key, url=url, meta=meta, extras=extras), None))
        elif not refused_members:  # else those failed members stand for the group
            names = ", ".join(meta["members"])
            out.append((SourceItem(key=g.key, meta=meta, error=f"no image member in tar group ({names})"), None))
    for m, data, ext, refused in images:
        key = g.key if len(images) == 1 else f"{g.key}.{ext}"
        name = printable_key(m.name)
        if refused is not None:
            item = SourceItem(key=key, url=url, meta=meta, error=f"{refused}: {name}")
        elif not data:
            item = SourceItem(key=key, url=url, meta=meta, error=f"empty image member (0 bytes): {name}")
        else:
            item = SourceItem(key=key, data=data, url=url, meta=meta, extras=extras)
        out.append((item, m))
    for m, reason in refused_members:
        _key, ext = split_member(m.name)
        out.append((SourceItem(key=f"{g.key}.{printable_key(ext)}", meta=meta, error=reason), None))
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
        tars = listed_files(expanded, TAR_SUFFIXES)
        others = [p for p in expanded if p.is_file() and not p.name.lower().endswith(TAR_SUFFIXES)]
        if others:
            raise UserError(f"not a tar shard: {others[0]}")
        if not tars:
            raise UserError(f"no .tar shards in {', '.join(map(str, expanded))}")
        self.root = common_root(tars)
        self._digests: dict[str, str] = {}  # shard id -> digest of its sibling files, as the last read saw them
        self._shards: dict[str, Path] = {}
        for t in tars:
            sid = shard_id_for(t.with_name(tar_stem(t)), self.root)
            if sid in self._shards:
                raise UserError(f"tar shard {t} is listed twice")
            self._shards[sid] = t.resolve()

    @classmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        return bool(listed_files(paths, TAR_SUFFIXES))

    def shards(self) -> list[Shard]:
        return [Shard(id=sid, path=str(p)) for sid, p in self._shards.items()]

    def item_counts(self) -> dict[str, int] | None:
        """Samples per shard from img2dataset's sibling Parquet (its ``success`` rows), without opening a tar;
        None when a shard has none to tell."""
        out: dict[str, int] = {}
        for sid, tar in self._shards.items():
            side = tar.with_name(f"{tar_stem(tar)}.parquet")
            try:
                pf = pq.ParquetFile(side)
                if "status" not in pf.schema_arrow.names:
                    out[sid] = pf.metadata.num_rows
                    continue
                status = pf.read(columns=["status"]).column("status")
            except (OSError, pa.ArrowException):
                return None
            out[sid] = int(pc.sum(pc.equal(status, "success")).as_py() or 0)
        return out

    def _path(self, shard: Shard) -> Path:
        return Path(shard.path)

    def shard_digest(self, shard: Shard) -> str | None:
        return self._digests.get(shard.id)

    def _iter(self, shard: Shard) -> Iterator[tuple[SourceItem, _Group | None, tarfile.TarInfo | None]]:
        path = self._path(shard)
        self._digests[shard.id] = _side_files(path)[0]
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
        keys = UniqueKeys(marker_keys(shard.id))  # item keys: unique, never a marker's, whatever the names
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
                g.raw_key = g.key
                g.key = groups(printable_key(g.key))
                pending, pending_group = _group_items(g), g
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
                        key=keys(key),
                        error=f"listed as downloaded in {tar_stem(path)}.parquet but missing from the tar",
                    ),
                    None,
                    None,
                )

    def _listed_missing(self, tar: Path, present: set[str]) -> list[str]:
        side = tar.with_name(f"{tar_stem(tar)}.parquet")
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

    def write_clean(self, shard: Shard, gate: CleanGate, out_dir: Path) -> int:
        src = self._path(shard)
        final = out_dir / src.relative_to(self.root)
        written = 0
        groups_of: Counter[str] = Counter()  # stored key -> groups holding it
        kept_of: Counter[str] = Counter()  # stored key -> groups written
        compressed = not src.name.lower().endswith(".tar")
        with (
            atomic_output(final) as tmp,
            tarfile.open(tmp, mode="w:gz") if compressed else tarfile.open(tmp, mode="w") as out,
        ):
            last_group: _Group | None = None
            admitted: set[int] = set()  # ids of the current group's admitted image members: identity, not name
            group_any = False

            def flush(g: _Group | None) -> None:
                if g is None:
                    return
                groups_of[g.raw_key] += 1
                if not group_any:
                    return
                kept_of[g.raw_key] += 1
                sidecars = {id(m) for m, _d in g.sidecars}
                for m, data, _refused in g.members:
                    if id(m) in admitted or id(m) in sidecars:
                        out.addfile(_plain_member(m, len(data)), _Reader(data))

            for item, g, m in self._iter(shard):
                if g is not last_group:
                    flush(last_group)
                    last_group, admitted, group_any = g, set(), False
                data = item.data
                if gate.admit(item) and g is not None:
                    written += 1
                    group_any = True
                    if m is not None and data is not None:
                        admitted.add(id(m))
            flush(last_group)
        # A stored key's metadata row stays only when every group of that key was written: a key used by a kept
        # and a removed group cannot tell their rows apart, and the removed one's URL must not stay.
        kept = [k for k, n in kept_of.items() if n == groups_of[k]]
        self._write_sidecars(src, final, kept, gate)
        return written

    def _write_sidecars(self, src: Path, final: Path, kept_groups: list[str], gate: CleanGate) -> None:
        digest, files = _side_files(src)
        gate.check_shard(digest)  # the sibling files are the ones the scan saw
        side = src.with_name(f"{tar_stem(src)}.parquet")
        if side.name in files:
            try:
                table = pq.read_table(pa.BufferReader(files[side.name]))
            except (OSError, pa.ArrowException) as err:
                raise UserError(f"{side}: the shard's metadata Parquet cannot be read ({err})") from err
            if "key" not in table.column_names:  # it could not be filtered: removed items' URLs would stay in it
                raise UserError(f"{side}: the shard's metadata Parquet has no 'key' column, so it cannot be cleaned")
            binary = [f.name for f in table.schema if holds_bytes(f.type)]
            if binary:  # bytes there were never screened: copying them would pass them through unchecked
                raise UserError(
                    f"{side}: the shard's metadata Parquet has binary column(s) {', '.join(binary)} that the scan "
                    "does not screen; remove them before cleaning"
                )
            mask = pc.is_in(table["key"].cast(pa.string()), value_set=pa.array(kept_groups, pa.string()))
            table = table.filter(pc.fill_null(mask, False))
            for batch in table.to_batches():
                found = next((f for f in text_findings(batch) if f is not None), None)
                if found is not None:  # text there is never screened: it must not spell out an image
                    raise UserError(f"{side}: the shard's metadata Parquet has a kept row whose {found}")
            with atomic_output(final.with_name(side.name)) as tmp:
                pq.write_table(table.cast(writer_schema(table.schema)), tmp)
        stats = src.with_name(f"{tar_stem(src)}_stats.json")
        if stats.name in files:
            data = files[stats.name]
            kind, why = sidecar_kind(data)
            if kind is None:
                raise UserError(f"{stats}: not a text/JSON stats file ({why}); it would be copied unscreened")
            with atomic_output(final.with_name(stats.name)) as tmp:
                tmp.write_bytes(data)


def _side_files(tar: Path) -> tuple[str, dict[str, bytes]]:
    """img2dataset's files beside a shard (``NNNNN.parquet``, ``NNNNN_stats.json``) as bytes, with one digest
    over their names and contents: clean copies them, so it checks they are the ones the scan saw."""
    files: dict[str, bytes] = {}
    for name in (f"{tar_stem(tar)}.parquet", f"{tar_stem(tar)}_stats.json"):
        try:
            files[name] = (tar.parent / name).read_bytes()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise UserError(f"{tar.parent / name}: cannot be read ({err.strerror or err})") from err
    h = hashlib.sha256()
    for name, data in sorted(files.items()):
        h.update(len(name).to_bytes(8, "big") + name.encode("utf-8", "surrogateescape") + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest(), files


def _plain_member(m: tarfile.TarInfo, size: int) -> tarfile.TarInfo:
    """A fresh regular-file header with the member's name and time: whatever the source header said (type, link
    target, owner, pax records), the output member is a plain file holding exactly the bytes that were checked."""
    out = tarfile.TarInfo(m.name)
    out.size = size
    out.mtime = m.mtime
    out.mode = 0o644
    out.type = tarfile.REGTYPE
    return out


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
