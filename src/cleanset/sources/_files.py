"""Path handling shared by the sources: brace patterns, shard ids, atomic output files.

Brace patterns are expanded here rather than by the shell because people copy them from img2dataset/webdataset
docs (``/data/{00000..00127}.tar``) and many shells or job launchers pass them through unexpanded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cleanset.atomic import atomic_output
from cleanset.errors import UserError
from cleanset.storage import expand_braces

__all__ = ["atomic_output", "expand_braces"]


def expand_paths(paths: Sequence[Path | str]) -> list[Path]:
    """The user's paths with brace patterns expanded; every one must exist (fail fast, naming the first missing).

    A path that exists as written is taken literally, so a folder named ``{a,b}`` is read, not expanded. Nothing
    here is a glob: ``*``, ``?`` and ``[`` in names are plain characters."""
    if not paths:
        raise UserError("no source path given")
    out: list[Path] = []
    for p in paths:
        if Path(p).exists():  # a real name holding braces is a name, not a pattern
            out.append(Path(p))
            continue
        for s in expand_braces(str(p)):
            path = Path(s)
            if not path.exists():
                raise UserError(f"source path does not exist: {path}")
            out.append(path)
    return out


# Files ``cleanset clean`` writes beside a cleaned dataset; a directory listing never takes them for shards.
RESERVED_NAMES = frozenset({"removed.parquet", ".cleanset-clean.json"})


def listed_files(paths: Sequence[Path], suffix: str | tuple[str, ...]) -> list[Path]:
    """Files ending in ``suffix`` (or one of several) named directly or lying directly in a named directory (not
    recursive), sorted.

    Inside a directory, hidden files and :data:`RESERVED_NAMES` are skipped (a cleaned dataset's
    ``removed.parquet`` is not one of its shards); a file named explicitly is always taken.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(
                    c
                    for c in p.iterdir()
                    if c.is_file()
                    and c.name.lower().endswith(suffix)
                    and c.name not in RESERVED_NAMES
                    and not c.name.startswith(".")
                )
            )
        elif p.name.lower().endswith(suffix):
            out.append(p)
    return out


def common_root(files: Sequence[Path]) -> Path:
    """The deepest directory holding all files: output keeps each file's path relative to it."""
    parents = [str(f.resolve().parent) for f in files]
    return Path(os.path.commonpath(parents)) if parents else Path(".")


def shard_id_for(path: Path, root: Path) -> str:
    """``root/a/00001.tar`` -> ``a__00001``: unique for distinct files under one root, safe as a file name."""
    rel = path.resolve().relative_to(root)
    stem = rel.with_suffix("").as_posix()
    return stem.replace("/", "__")


def printable_key(s: str) -> str:
    """A name that always encodes as UTF-8: undecodable bytes (lone surrogates from ``os`` / ``tarfile``) as ``\\xNN``.

    ``caf\\udce9`` (a Latin-1 ``café`` on disk) -> ``caf\\\\xe9``. Use it for keys, metadata and messages; keep the
    real name for opening the file. Not injective (a real backslash sequence reads the same), so a source still
    makes keys unique after it (:class:`UniqueKeys`).
    """
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class UniqueKeys:
    """Hands out keys unique within one shard: ``key`` itself, else ``key#2``, ``key#3``... never one given out before.

    A renamed key never equals a key handed out earlier, whether that was an original (``x``, ``x``, ``x#2`` ->
    ``x``, ``x#2``, ``x#2#2``) or a renamed one.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._given: set[str] = set(reserved)  # e.g. the shard's marker keys: a member named so must not pose as one
        self._next: dict[str, int] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._given

    def __call__(self, key: str) -> str:
        if key not in self._given:
            self._given.add(key)
            return key
        n = self._next.get(key, 2)
        while f"{key}#{n}" in self._given:
            n += 1
        self._next[key] = n + 1
        out = f"{key}#{n}"
        self._given.add(out)
        return out
