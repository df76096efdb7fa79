"""A directory tree of image files, as people keep photos or scraped images.

Items are files whose extension is an image extension (``IMAGE_EXTS``) *or* whose first bytes are an image
signature: a JPEG saved as ``photo.dat`` or without extension is still screened (fail closed). Files that share an
item's stem in the same directory (``a.txt``, ``a.json`` beside ``a.jpg``) are its sidecars: they travel with it into
the cleaned output and are dropped with it, but only when their content is text or JSON
(:func:`~cleanset.sources.base.sidecar_kind`); any other sidecar is a failed item of its own (keyed by its path) and
is left out. Any other file is not an item and is not copied; ``ignored_files`` lists them so a caller can report
them.

Key: the image's path relative to the root, extension included (``cats/001.jpg``). It names the file whatever else
lies beside it, so a kept ``a.jpg`` keeps its key in the cleaned copy when a listed ``a.png`` beside it is removed.
Undecodable bytes in names appear as ``\\xNN`` in keys, metadata and messages (the file is still opened by its real
name); should that make two keys equal, the later gets ``#2``.

The source is one directory, or image files named one by one (``photos/*.jpg`` expanded by a shell): then the
root is their deepest common folder and only the named images are items (their sidecars still travel with them).

Shards: each directory's images, sorted, in chunks of ``chunk`` files; id ``<dir>__<n>`` with ``%`` in ``dir``
written ``%25``, ``/`` written ``%2F``, ``\\`` written ``%5C`` and undecodable bytes ``\\xNN``, and the root called
``%root`` (an escaped name never holds ``%r``), so distinct directories never share an id; stable while the tree
does not change.

A subdirectory that cannot be listed is an error when the source is opened (its images would be missed silently).
Only regular files are sniffed for an image signature; an image name that is not a regular file (a fifo) is a failed
item and is never opened.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cleanset.errors import UserError
from cleanset.imaging.decode import sniff
from cleanset.sources._files import (
    RESERVED_NAMES,
    UniqueKeys,
    atomic_output,
    common_root,
    expand_paths,
    printable_key,
)
from cleanset.sources.base import (
    IMAGE_EXTS,
    SIDECAR_MAX_BYTES,
    SOURCES,
    CleanGate,
    Shard,
    Source,
    SourceItem,
    sidecar_kind,
)

CHUNK = 1000

# Leading bytes of image formats the decoder does not read, for files whose extension does not say so: they are
# still items (and fail), never silently ignored.
_OTHER_SIGNATURES: tuple[bytes, ...] = (
    b"\x00\x00\x00\x0cJXL ",
    b"\xff\x0a",  # JPEG XL codestream
)


def _sniff_image(path: Path) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a fifo or device is never opened: it could block forever
            return False
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    if head[4:8] == b"ftyp":  # AVIF / HEIF family
        return True
    return sniff(head) is not None or head.startswith(_OTHER_SIGNATURES)


MAX_FILE_BYTES = 512 << 20  # above any image a scan decodes (100 MP); a larger file is refused unread


def _read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why not. Opened without blocking and checked on the open file, so a fifo or
    device (even one swapped in after the listing) is never waited on, and nothing over ``limit`` is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        return None, printable_key(f"read: {err.strerror or err}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "not a regular file"
        if st.st_size > limit:
            return None, f"file of {st.st_size} bytes refused (over {limit})"
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # it grew after the check
            return None, f"file grew past {limit} bytes while read"
        return data, ""
    except OSError as err:
        return None, printable_key(f"read: {err.strerror or err}")
    finally:
        os.close(fd)


@dataclass(frozen=True)
class FolderEntry:
    key: str
    rel: str  # image path relative to the root (posix)
    sidecars: tuple[str, ...]  # relative paths of files sharing the stem


def _is_image_name(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in IMAGE_EXTS if "." in name else False


def _is_image_file(path: Path) -> bool:
    return _is_image_name(path.name) or _sniff_image(path)


def _owner_stem(name: str, stems: Collection[str]) -> str | None:
    """The image stem a sidecar belongs to: ``a.b.txt`` and ``a.b.meta.json`` both belong to ``a.b.jpg``."""
    parts = name.split(".")
    for n in range(len(parts) - 1, 0, -1):
        stem = ".".join(parts[:n])
        if stem in stems:
            return stem
    return None


def _dir_entries(
    root: Path, rel_dir: str, filenames: Sequence[str], only: set[str] | None, ignored: list[str]
) -> list[FolderEntry]:
    """One directory's items (all its images, or those named in ``only``) with their sidecars, sorted by name."""
    here = root / rel_dir if rel_dir else root
    images: list[str] = []
    others: list[str] = []
    for name in sorted(filenames):
        if name.startswith(".cleanset") or (not rel_dir and name in RESERVED_NAMES):
            continue  # what `cleanset clean` writes beside a cleaned folder is never an item or a sidecar
        is_image = _is_image_name(name) or _sniff_image(here / name)
        if is_image and (only is None or name in only):
            images.append(name)
        elif not is_image:
            others.append(name)
    stems: dict[str, list[str]] = defaultdict(list)
    for name in images:
        stems[name.rsplit(".", 1)[0] if "." in name else name].append(name)
    side: dict[str, list[str]] = defaultdict(list)
    for name in others:
        stem = _owner_stem(name, stems)
        if stem is not None:
            side[stem].append(name)
        elif only is None:
            ignored.append(printable_key(f"{rel_dir}/{name}" if rel_dir else name))
    unique = UniqueKeys()  # paths themselves can only meet once undecodable bytes are written out
    entries: list[FolderEntry] = []
    for name in images:
        stem = name.rsplit(".", 1)[0] if "." in name else name
        rel = f"{rel_dir}/{name}" if rel_dir else name
        sidecars = tuple(f"{rel_dir}/{s}" if rel_dir else s for s in side.get(stem, ()))
        entries.append(FolderEntry(key=unique(printable_key(rel)), rel=rel, sidecars=sidecars))
    return entries


def _shard_base(rel_dir: str) -> str:
    """Injective, file-name-safe form of a directory relative to the root (see the module docstring)."""
    if not rel_dir:
        return "%root"
    escaped = rel_dir.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    return printable_key(escaped)  # the only backslashes left come from undecodable bytes


def scan_tree(root: Path) -> tuple[dict[str, list[FolderEntry]], list[str]]:
    """Walk ``root`` once: image entries grouped by directory (sorted) and the files that are neither."""
    by_dir: dict[str, list[FolderEntry]] = {}
    ignored: list[str] = []
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        entries = _dir_entries(root, rel_dir, filenames, None, ignored)
        if entries:
            by_dir[rel_dir] = entries
    if errors:
        where = "; ".join(printable_key(f"{e.filename}: {e.strerror or e}") for e in errors)
        raise UserError(f"cannot list every directory of folder source {printable_key(str(root))}: {where}")
    return by_dir, ignored


def scan_files(files: Sequence[Path]) -> tuple[Path, dict[str, list[FolderEntry]]]:
    """Image files named one by one (``photos/*.jpg`` expanded by the shell): keys relative to their common folder."""
    resolved = [f.resolve() for f in files]
    root = common_root(resolved)
    wanted: dict[str, set[str]] = defaultdict(set)
    for f in resolved:
        rel_dir = f.parent.relative_to(root).as_posix()
        wanted["" if rel_dir == "." else rel_dir].add(f.name)
    by_dir: dict[str, list[FolderEntry]] = {}
    for rel_dir, names in sorted(wanted.items()):
        here = root / rel_dir if rel_dir else root
        entries = _dir_entries(root, rel_dir, [p.name for p in here.iterdir() if p.is_file()], names, [])
        if entries:
            by_dir[rel_dir] = entries
    return root, by_dir


@SOURCES.register("folder")
class FolderSource(Source):
    name = "folder"

    def __init__(self, paths: Sequence[Path], chunk: int = CHUNK) -> None:
        expanded = expand_paths(paths)
        self.chunk = chunk
        self.ignored_files: list[str] = []
        if len(expanded) == 1 and expanded[0].is_dir():
            self.root = expanded[0].resolve()
            by_dir, self.ignored_files = scan_tree(self.root)
        elif all(p.is_file() and _is_image_file(p) for p in expanded):
            self.root, by_dir = scan_files(expanded)
        else:
            raise UserError(
                f"a folder source is one directory or a list of image files, got: {', '.join(map(str, expanded))}"
            )
        self._entries: dict[str, list[FolderEntry]] = {}
        for rel_dir, entries in sorted(by_dir.items()):
            base = _shard_base(rel_dir)
            for n, start in enumerate(range(0, len(entries), chunk)):
                self._entries[f"{base}__{n:05d}"] = entries[start : start + chunk]

    @classmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        if paths and all(p.is_file() and _is_image_file(p) for p in paths):
            return True
        if len(paths) != 1 or not paths[0].is_dir():
            return False
        return any(any(_is_image_name(n) for n in filenames) for _dirpath, _dirnames, filenames in os.walk(paths[0]))

    def shards(self) -> list[Shard]:
        return [Shard(id=sid, path=str(self.root)) for sid in self._entries]

    def item_counts(self) -> dict[str, int]:
        """Images per shard, known from the listing before anything is read: the progress bar's ETA from the
        first second (a sidecar that fails adds an item, so this is a floor)."""
        return {sid: len(entries) for sid, entries in self._entries.items()}

    def _shard_entries(self, shard: Shard) -> list[FolderEntry]:
        try:
            return self._entries[shard.id]
        except KeyError:
            raise UserError(f"no shard {shard.id!r} in folder source {self.root}") from None

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        for item, _entry, _sidecars in self._iter(shard):
            yield item

    def _iter(self, shard: Shard) -> Iterator[tuple[SourceItem, FolderEntry, list[tuple[str, bytes]]]]:
        """Per entry: its image item with the sidecars that may travel with it (path, bytes), then one failed item
        per sidecar that may not. The bytes are those the caller hashes or writes: read once, checked once."""
        entries = self._shard_entries(shard)
        taken = {e.key for e in entries}
        for e in entries:
            name = printable_key(e.rel)
            meta: dict[str, object] = {"path": name}
            good: list[tuple[str, bytes]] = []
            bad: list[SourceItem] = []
            for rel in e.sidecars:
                data, why = _read_regular(self.root / rel, SIDECAR_MAX_BYTES)
                kind = None
                if data is not None:
                    kind, why = sidecar_kind(data)
                if data is None or kind is None:
                    key = printable_key(rel)
                    while key in taken:
                        key += "#sidecar"
                    taken.add(key)
                    bad.append(SourceItem(key=key, error=f"sidecar {printable_key(rel)} of {name}: {why}; left out"))
                    continue
                good.append((rel, data))
                if rel.endswith(".txt"):
                    meta["caption"] = data.decode("utf-8-sig", errors="replace")
            data, why = _read_regular(self.root / e.rel)
            if data is None:
                item = SourceItem(key=e.key, meta=meta, error=f"{why}: {name}")
            elif not data:
                item = SourceItem(key=e.key, meta=meta, error=f"empty file (0 bytes): {name}")
            else:
                item = SourceItem(key=e.key, data=data, meta=meta, extras=[(printable_key(r), b) for r, b in good])
            yield item, e, good
            for b in bad:
                yield b, e, []

    def write_clean(self, shard: Shard, gate: CleanGate, out_dir: Path) -> int:
        """Write admitted images and their text sidecars to the same relative paths, as new regular files holding
        the very bytes that were checked (never links: a link would follow later changes to the source)."""
        written = 0
        for item, e, sidecars in self._iter(shard):
            data = item.data
            if not gate.admit(item) or data is None:
                continue
            for rel, payload in [(e.rel, data), *sidecars]:
                with atomic_output(out_dir / rel) as tmp:
                    tmp.write_bytes(payload)
            written += 1
        return written
