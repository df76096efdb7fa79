"""Reading a dataset into Merkle leaves: the one place attest and verify look at the data.

Both sides use the same reader (``cleanset.sources.open_source``), so the item leaves depend only on the dataset's
contents, not on who reads it; and the same walk of the folder for the file leaves. Bytes are hashed and dropped at
once: nothing is decoded, kept or shown.

The walk never follows a link and never opens anything but a regular file: a symbolic link could point outside the
dataset (or change what it points at after signing), and opening a fifo or device could block or read unbounded
data. Such entries are returned as ``bad_files`` for the caller to refuse (attest) or report (verify).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from cleanset.actions.merkle import DatasetDigest, canonical_row, files_root, item_digest
from cleanset.errors import UserError

_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def expand(paths: Sequence[Path]) -> list[Path]:
    """The user's paths as the sources see them (brace patterns expanded), made absolute without following links:
    a named file that is a link must still be seen as one."""
    from cleanset.sources._files import expand_paths

    return [Path(os.path.abspath(p)) for p in expand_paths(paths)]


def dataset_folder(paths: Sequence[Path]) -> Path:
    """The folder file paths are relative to (see ``cleanset.actions.merkle``): the one folder given, else the
    deepest folder holding every named file and folder."""
    return _folder(expand(paths))


def _folder(expanded: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(p) if p.is_dir() else str(p.parent) for p in expanded]))


def display_path(path: bytes) -> str:
    """A file's relative path for messages: undecodable name bytes as ``\\xNN``."""
    from cleanset.sources._files import printable_key

    return printable_key(os.fsdecode(path))


# Why an entry has no leaf when it is not a regular file; any other reason means it could not be read.
IRREGULAR = frozenset({"symbolic link", "fifo", "socket", "device", "not a regular file"})


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "not a regular file"


def _hash_file(path: bytes) -> tuple[str | None, str]:
    """(hex digest, "") of a regular file, or (None, why not). Opened without following a link and without
    blocking, then checked with fstat, so a file swapped for a link or fifo after listing is never read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "symbolic link"
        return None, f"cannot be read: {e.strerror or e}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, _kind(st.st_mode)
        h = hashlib.sha256()
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
        return h.hexdigest(), ""
    except OSError as e:
        return None, f"cannot be read: {e.strerror or e}"
    finally:
        os.close(fd)


def _walk(top: bytes, rel: bytes, files: dict[bytes, str], bad: dict[bytes, str]) -> None:
    """Every entry under ``top`` (iteratively: a crafted dataset may nest deeper than Python recurses)."""
    stack = [(top, rel)]
    while stack:
        here, prefix = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = list(it)
        except OSError as err:
            bad[prefix or b"."] = f"folder cannot be listed: {err.strerror or err}"
            continue
        for entry in entries:
            name = prefix + b"/" + entry.name if prefix else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, name))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    bad[name] = _kind(entry.stat(follow_symlinks=False).st_mode)
                    continue
            except OSError as err:
                bad[name] = f"cannot be read: {err.strerror or err}"
                continue
            digest, why = _hash_file(entry.path)
            if digest is None:
                bad[name] = why
            else:
                files[name] = digest


def digest_files(paths: Sequence[Path]) -> tuple[dict[bytes, str], list[tuple[bytes, str]]]:
    """File leaves (relative path -> digest) of every regular file the paths cover, and the entries that have no
    leaf (relative path, why). A folder named on the command line may itself be a link (the user chose it);
    nothing found inside is followed."""
    expanded = expand(paths)
    root = _folder(expanded)
    files: dict[bytes, str] = {}
    bad: dict[bytes, str] = {}
    for p in expanded:
        rel = os.fsencode(os.path.relpath(p, root)) if p != root else b""
        rel = b"" if rel == b"." else rel.replace(os.fsencode(os.sep), b"/")
        if p.is_dir():
            _walk(os.fsencode(p), rel, files, bad)
            continue
        try:
            mode = os.lstat(p).st_mode
        except OSError as e:
            bad[rel] = f"cannot be read: {e.strerror or e}"
            continue
        if not stat.S_ISREG(mode):
            bad[rel] = _kind(mode)
            continue
        digest, why = _hash_file(os.fsencode(p))
        if digest is None:
            bad[rel] = why
        else:
            files[rel] = digest
    for path in bad:
        files.pop(path, None)
    return files, sorted(bad.items())


def output_files_root(folder: Path, exclude: Collection[str] = ()) -> str:
    """Files root (``cleanset-merkle-v2``) of a folder less the named top-level files, for ``clean`` to record in
    its completion marker (less the marker itself) so ``attest`` can tell the copy is byte for byte what was
    written. A folder holding anything but regular files and folders has no such root."""
    files, bad = digest_files([folder])
    if bad:
        p, why = bad[0]
        raise UserError(f"{folder}: {display_path(p)!r} is not a regular file ({why})")
    skip = {os.fsencode(name) for name in exclude}
    return files_root({p: d for p, d in files.items() if p not in skip})


def source_options(recorded: Any) -> dict[str, str]:
    """The reading options (column names) a copy was scanned with, from a marker or a signed statement: only the
    known ones, only strings, so neither can steer the reader anywhere else."""
    from cleanset.pipeline.scan import REOPEN_OPTIONS

    if not isinstance(recorded, Mapping):
        return {}
    return {k: v for k, v in recorded.items() if k in REOPEN_OPTIONS and isinstance(v, str)}


def digest_dataset(
    paths: Sequence[Path], format: str | None = None, options: Mapping[str, str] | None = None
) -> tuple[DatasetDigest, str]:
    """Item leaves per shard, file leaves, and the source kind that read the items.

    An item the source cannot read goes to ``unreadable`` (fail closed): a verifier must never treat a missing or
    broken item as if it were absent from the dataset. An item's digest is the content digest the scan recorded
    for it, so attest can compare the two.
    """
    from cleanset.sources import open_source
    from cleanset.sources.base import content_digest

    files, bad_files = digest_files(paths)
    source = open_source(list(paths), format, **(options or {}))
    digest = DatasetDigest(leaves={}, unreadable=[], files=files, bad_files=bad_files)
    for shard in source.shards():
        entries = digest.leaves.setdefault(shard.id, [])
        for item in source.read(shard):
            if item.error is not None:
                digest.unreadable.append((shard.id, item.key, item.error))
                continue
            content = content_digest(item)
            if content is not None:
                entries.append((item.key, content))
            elif item.url is not None:
                entries.append((item.key, item_digest(canonical_row(item.url, item.meta))))
                digest.urls[(shard.id, item.key)] = item.url
            else:
                digest.unreadable.append((shard.id, item.key, "item has neither bytes nor a URL"))
    return digest, source.name
