"""User term lists, stored like banks: named, versioned, immutable, owner-only, under ``CLEANSET_HOME``.

    $CLEANSET_HOME/terms/<name>/<version>.json   {"name", "version", "category", "terms", "sha256", "source", ...}

Why like banks: the keyword lists hotlines share with their members are confidential in the same way hash lists
are, and a result that says "matched list X version 3" must be checkable against exactly that version later. So
every import writes a new version and never rewrites one, the folder is 0700 and each file 0600 whatever the
umask, and listings show counts and digests, never terms.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cleanset.atomic import atomic_output, private_dir
from cleanset.banks.layout import check_name, home
from cleanset.errors import InputFormatError, UserError
from cleanset.screening.text import TermList, default_lists, parse_terms

__all__ = ["TermInfo", "TermStore", "resolve_lists"]


@dataclass(frozen=True, slots=True)
class TermInfo:
    """What a listing shows about one list version: no terms."""

    name: str
    version: int
    category: str
    count: int
    sha256: str
    imported: str
    source: str


class TermStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "terms"

    @classmethod
    def default(cls) -> TermStore:
        return cls(home())

    def _versions(self, name: str) -> list[int]:
        d = self.dir / check_name(name)
        if not d.is_dir():
            return []
        return sorted(int(p.stem) for p in d.glob("*.json") if p.stem.isdigit())

    def import_file(self, name: str, path: Path, category: str) -> TermInfo:
        """A new version of list ``name`` from a text file (one term per line, ``#`` comments)."""
        check_name(name)
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise InputFormatError(str(path), f"not UTF-8 text: {e.reason} at byte {e.start}") from None
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror or e}") from None
        terms = parse_terms(text.splitlines(), str(path))
        return self.create(name, terms, category, source=Path(path).name)

    def create(self, name: str, terms: list[str], category: str, source: str = "") -> TermInfo:
        if name in {tl.name for tl in default_lists()}:
            raise UserError(f"{name!r} is the name of a shipped list; choose another name")
        TermList(name, 1, category, tuple(terms))
        folder = private_dir(self.dir / check_name(name))
        private_dir(self.dir)
        body = sorted(set(terms))
        digest = hashlib.sha256("\n".join(body).encode()).hexdigest()
        # Two imports at once compute the same next version: the file is staged whole, then linked to its final
        # name, which fails if that version exists (never overwritten); the loser takes the next number.
        staged = folder / f".import-{os.getpid()}-{time.monotonic_ns()}.json"
        try:
            for _ in range(1000):
                version = (self._versions(name) or [0])[-1] + 1
                record = {
                    "name": name,
                    "version": version,
                    "category": category,
                    "terms": body,
                    "sha256": digest,
                    "source": source,
                    "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                with atomic_output(staged) as tmp:
                    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
                try:
                    os.link(staged, folder / f"{version}.json")
                except FileExistsError:
                    continue
                return self._info(record)
        finally:
            staged.unlink(missing_ok=True)
        raise UserError(f"term list {name!r}: could not take a new version number")

    @staticmethod
    def _info(record: dict[str, object]) -> TermInfo:
        terms = record["terms"]
        assert isinstance(terms, list)
        return TermInfo(
            str(record["name"]),
            int(record["version"]),  # type: ignore[call-overload]
            str(record["category"]),
            len(terms),
            str(record["sha256"]),
            str(record.get("imported", "")),
            str(record.get("source", "")),
        )

    def _read(self, name: str, version: int | None) -> dict[str, object]:
        versions = self._versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise UserError(f"no term list {name!r} (imported lists: {known})")
        v = versions[-1] if version is None else version
        path = self.dir / name / f"{v}.json"
        if not path.is_file():
            raise UserError(f"term list {name!r} has no version {v} (versions: {', '.join(map(str, versions))})")
        try:
            record: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputFormatError(str(path), f"unreadable term list: {e}") from None
        return record

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def list(self) -> list[TermInfo]:
        """The latest version of every imported list."""
        return [self._info(self._read(n, None)) for n in self.names() if self._versions(n)]

    def open(self, name: str, version: int | None = None) -> TermList:
        r = self._read(name, version)
        terms = r["terms"]
        assert isinstance(terms, list)
        return TermList(str(r["name"]), int(r["version"]), str(r["category"]), tuple(map(str, terms)))  # type: ignore[call-overload]


def resolve_lists(refs: list[str] | None, store: TermStore | None = None, defaults: bool = True) -> list[TermList]:
    """Lists by ``NAME`` or ``NAME@VERSION`` from the store, after the shipped defaults (``defaults``). An unknown
    name is a UserError before anything is screened."""
    out = default_lists() if defaults else []
    if refs:
        store = store or TermStore.default()
        for ref in refs:
            name, _, ver = ref.partition("@")
            if ver and not ver.isdigit():
                raise UserError(f"term list {ref!r}: version must be a number (NAME@VERSION)")
            out.append(store.open(name, int(ver) if ver else None))
    return out
