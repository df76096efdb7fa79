"""The bank seams: list formats (parse a file into rows) and the loaded bank that matching consumes.

List values never leave the bank store: rows carry them from a file into the store, ``BankSnapshot`` hands them to
the matcher as arrays, and everything downstream names a match by bank, version, entry id and distance.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

import numpy as np

from cleanset.arrays import cache_aligned

if TYPE_CHECKING:
    from cleanset.banks.columns import ParsedBank


@dataclass(frozen=True)
class BankRow:
    signal: str  # a registered signal name (raw URLs are hashed on import; the row then says url_sha1)
    value: str  # canonical lower-case hex
    entry_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    line: int = 0


class BankFormat(ABC):
    """One list format. ``parse`` raises ``cleanset.errors.InputFormatError(path, msg, line)`` on a bad line
    unless ``skip_invalid`` is set, in which case it counts the line in ``skipped`` and goes on."""

    name: ClassVar[str]
    #: What ``--format`` help says about the format.
    description: ClassVar[str] = ""
    #: Lines skipped by the last ``parse``/``read_columns`` with ``skip_invalid``.
    skipped: int = 0

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """True when the file's first bytes (or its name) say it is this format."""

    @abstractmethod
    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]: ...

    def read_columns(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> ParsedBank:
        """The whole file as columns. Bulk formats override this with a vectorised reader; the default collects
        ``parse``'s rows, whose ``line`` is then the record number."""
        from cleanset.banks.columns import from_rows

        rows = list(self.parse(path, signal=signal, skip_invalid=skip_invalid))
        return from_rows(rows, skipped=self.skipped)


@runtime_checkable
class BankSnapshot(Protocol):
    """One immutable version of a bank, as the matcher needs it."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def allow(self) -> bool: ...
    @property
    def digest(self) -> str: ...  # sha256 over the bank's canonical content; safe to publish, reveals no value
    @property
    def entry_count(self) -> int: ...

    def signals(self) -> Sequence[str]: ...
    def values(self, signal: str) -> np.ndarray: ...  # (n, bits/8) uint8, row i is entry i of this signal
    def entry_ids(self, signal: str) -> Sequence[str]: ...
    def threshold(self, signal: str) -> int: ...


@dataclass
class MemoryBank:
    """A BankSnapshot held in memory: for tests, the demo, and stand-in banks made from benign images."""

    name: str
    version: int
    rows: dict[str, tuple[np.ndarray, list[str]]]
    thresholds: dict[str, int] = field(default_factory=dict)
    allow: bool = False
    digest: str = ""

    def __post_init__(self) -> None:
        # Held aligned (``cleanset.arrays``), so a Hamming index built over them reads these rows rather than an
        # aligned copy of its own for as long as it lives; an unaligned array given here is copied once, and a
        # caller that lets go of it holds a large bank once.
        self.rows = {s: (cache_aligned(v), ids) for s, (v, ids) in self.rows.items()}

    @property
    def entry_count(self) -> int:
        return sum(len(ids) for _, ids in self.rows.values())

    def signals(self) -> Sequence[str]:
        return sorted(self.rows)

    def values(self, signal: str) -> np.ndarray:
        return self.rows[signal][0]

    def entry_ids(self, signal: str) -> Sequence[str]:
        return self.rows[signal][1]

    def threshold(self, signal: str) -> int:
        from cleanset.signals import get_signal

        return self.thresholds.get(signal, get_signal(signal).default_threshold)

    @classmethod
    def from_hex(
        cls, name: str, entries: Sequence[tuple[str, str, str]], *, version: int = 1, allow: bool = False
    ) -> MemoryBank:
        """Build from ``(signal, hex value, entry id)`` triples."""
        by_sig: dict[str, tuple[list[bytes], list[str]]] = {}
        for sig, value, eid in entries:
            vals, ids = by_sig.setdefault(sig, ([], []))
            vals.append(bytes.fromhex(value))
            ids.append(eid)
        rows = {
            s: (np.frombuffer(b"".join(v), dtype=np.uint8).reshape(len(v), -1).copy(), ids)
            for s, (v, ids) in by_sig.items()
        }
        return cls(name=name, version=version, rows=rows, allow=allow)
