"""The bank store: named, versioned, owner-only hash lists under ``CLEANSET_HOME``.

Every import writes a new immutable version; nothing is updated in place, so a scan that recorded "bank X version
3, digest D" can always be re-checked against exactly that list. Values never leave through this API except as
the arrays ``open`` hands to the matcher; reports, listings and errors carry counts and digests only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cleanset.atomic import fsync_dir
from cleanset.banks import formats
from cleanset.banks.base import BankFormat, BankRow
from cleanset.banks.columns import LABEL_PREFIX, ParsedBank, canonicalize, from_rows
from cleanset.banks.digest import content_digest, file_sha256
from cleanset.banks.formats.rows import LineError, value_for
from cleanset.banks.layout import Layout, check_name, home
from cleanset.banks.scratch import Scratch
from cleanset.banks.secure import fsync_tree, lock_down, open_private, private_dir, write_json
from cleanset.banks.snapshot import StoredBank
from cleanset.banks.versions import SourceInfo, VersionManifest, diff_counts
from cleanset.errors import InputFormatError, UserError
from cleanset.signals import bank_signals, get_signal
from cleanset.signals.base import Metric

_List = list  # ``BankStore.list`` shadows the builtin inside the class body


@dataclass(frozen=True)
class ImportReport:
    """What an import did. Safe to print: it holds no value."""

    name: str
    version: int
    format: str
    allow: bool
    counts: dict[str, int]
    entry_count: int
    added: int
    removed: int
    skipped: int
    duplicates: int
    digest: str
    source_sha256: str | None
    thresholds: dict[str, int]
    elapsed_s: float
    #: What the format read but left out on purpose (PhotoDNA values, false positives ...), in words.
    notes: list[str] = field(default_factory=list)
    #: True when the list was identical to the latest version: no version was written, ``version`` is that one.
    unchanged: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_thresholds(items: Iterable[str]) -> dict[str, int]:
    """``["pdq=24", "phash=6"]`` -> ``{"pdq": 24, "phash": 6}`` (the CLI's ``--threshold`` values)."""
    out: dict[str, int] = {}
    for item in items:
        sig, sep, num = item.partition("=")
        if not sep or not num.strip().lstrip("-").isdigit():
            raise UserError(f"--threshold {item!r}: expected SIGNAL=N, e.g. pdq=24")
        out[sig.strip()] = int(num)
    return out


def check_thresholds(thresholds: Mapping[str, int]) -> dict[str, int]:
    out = {}
    for sig, t in thresholds.items():
        if sig not in bank_signals():
            raise UserError(f"threshold for unknown signal {sig!r} (known: {', '.join(bank_signals())})")
        s = get_signal(sig)
        if s.metric is Metric.EXACT and t != 0:
            raise UserError(f"{sig} is matched exactly; its threshold can only be 0")
        if not 0 <= t <= s.bits:
            raise UserError(f"threshold {sig}={t} is outside 0..{s.bits}")
        out[sig] = int(t)
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class BankStore:
    def __init__(self, root: Path, prepare: Callable[[Path], object] | None = None) -> None:
        """``prepare``: called on each new version's directory once it is complete but before it is renamed into
        place, to add what a higher layer derives from it (the matcher's stored indexes:
        ``matching.stored.write_indexes``); this layer knows nothing of what it writes."""
        self.root = Path(root)
        self.prepare = prepare
        self.layout = Layout(self.root)
        self.scratch = Scratch(self.layout.banks)

    @classmethod
    def default(cls, prepare: Callable[[Path], object] | None = None) -> BankStore:
        return cls(home(), prepare)

    # -- reading --------------------------------------------------------------------------------------------------

    def list(self) -> _List[VersionManifest]:
        """The latest version's manifest of every bank, by name."""
        return [self._latest(n) for n in self.layout.bank_names() if self.layout.version_numbers(n)]

    def versions(self, name: str) -> _List[VersionManifest]:
        self._require(name)
        return [StoredBank(self.layout.version(name, v)).manifest for v in self.layout.version_numbers(name)]

    def info(self, name: str) -> dict[str, Any]:
        """Everything publishable about a bank: its latest version, effective thresholds and full history."""
        versions = self.versions(name)
        latest = StoredBank(self.layout.version(name, versions[-1].version))
        return {
            "name": name,
            "latest": latest.manifest.to_json(),
            "thresholds": latest.thresholds(),
            "size_bytes": latest.size_bytes,
            "versions": [v.to_json() for v in versions],
        }

    def open(self, name: str, version: int | None = None) -> StoredBank:
        numbers = self._require(name)
        v = numbers[-1] if version is None else version
        if v not in numbers:
            raise UserError(f"bank {name!r} has no version {v} (versions: {', '.join(map(str, numbers))})")
        return StoredBank(self.layout.version(name, v))

    def exists(self, name: str) -> bool:
        return bool(self.layout.version_numbers(check_name(name)))

    def _require(self, name: str) -> _List[int]:
        numbers = self.layout.version_numbers(check_name(name))
        if not numbers:
            known = ", ".join(self.layout.bank_names()) or "none"
            raise UserError(f"no bank named {name!r} (banks: {known})")
        return numbers

    def _latest(self, name: str) -> VersionManifest:
        return StoredBank(self.layout.version(name, self.layout.version_numbers(name)[-1])).manifest

    # -- writing --------------------------------------------------------------------------------------------------

    def import_file(
        self,
        name: str,
        path: Path | str,
        format: str | BankFormat | None = None,
        signal: str | None = None,
        allow: bool | None = None,
        skip_invalid: bool = False,
        note: str = "",
        thresholds: Mapping[str, int] | None = None,
    ) -> ImportReport:
        """Parse a list file and store it as the bank's next version. ``allow=None`` keeps the bank's kind.
        ``format`` is a format name or a format already configured (``formats.resolve``)."""
        check_name(name)
        started = time.perf_counter()
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        if isinstance(format, BankFormat):
            fmt = format
        else:
            fmt = formats.get_format(format) if format else formats.detect(path)
        # The source digest is computed while the list is parsed (hashlib releases the GIL on large reads).
        with ThreadPoolExecutor(max_workers=1) as pool:
            source_digest = pool.submit(file_sha256, path)
            parsed = fmt.read_columns(path, signal=signal, skip_invalid=skip_invalid)
            source = SourceInfo(file=path.name, sha256=source_digest.result(), bytes=path.stat().st_size)
        notes = formats.notes_of(fmt)
        if parsed.entry_count == 0 and notes:
            raise InputFormatError(str(path), f"no entries to import ({'; '.join(notes)})")
        report = self._commit(name, parsed, str(path), fmt.name, source, allow, note, thresholds, started)
        return replace(report, notes=notes)

    def create_from_rows(
        self,
        name: str,
        rows: Iterable[BankRow],
        allow: bool | None = False,
        note: str = "",
        thresholds: Mapping[str, int] | None = None,
    ) -> ImportReport:
        """Store rows built in code (demo banks, stand-in banks from benign images) as the next version."""
        check_name(name)
        started = time.perf_counter()
        checked = []
        for i, row in enumerate(rows, start=1):
            try:
                sig, value = value_for(row.signal, row.value)
            except LineError as e:
                raise InputFormatError("<rows>", str(e), i) from None
            checked.append(BankRow(sig, value, row.entry_id or str(i), row.labels, row.line or i))
        parsed = from_rows(checked)
        source = SourceInfo(file="<rows>", sha256=None, bytes=None)
        return self._commit(name, parsed, "<rows>", "rows", source, allow, note, thresholds, started)

    def remove(self, name: str) -> None:
        """Delete a bank and all its versions. The directory is renamed away first, so the bank vanishes at once
        even if deleting its files is interrupted."""
        self._require(name)
        bank = self.layout.bank(name)
        with self.scratch.tempdir(f"removed-{name}-") as graveyard:
            os.rename(bank, graveyard / name)

    def _commit(
        self,
        name: str,
        parsed: ParsedBank,
        where: str,
        fmt: str,
        source: SourceInfo,
        allow: bool | None,
        note: str,
        thresholds: Mapping[str, int] | None,
        started: float,
    ) -> ImportReport:
        parsed = canonicalize(parsed, where)
        if parsed.entry_count == 0:
            detail = f" ({parsed.skipped} invalid lines skipped)" if parsed.skipped else ""
            raise InputFormatError(where, f"no entries to import{detail}")
        numbers = self.layout.version_numbers(name)
        prev = StoredBank(self.layout.version(name, numbers[-1])) if numbers else None
        merged = dict(prev.manifest.thresholds) if prev else {}
        merged.update(check_thresholds(thresholds or {}))
        merged = {s: t for s, t in merged.items() if s in parsed.signals}
        keep_allow = prev.manifest.allow if prev else False
        new_pairs = {s: (c.values, parsed.ids_of(s)) for s, c in parsed.signals.items()}
        old_pairs = {s: (prev.values(s), prev.entry_ids(s).arrow) for s in prev.signals()} if prev else {}
        added, removed = diff_counts(new_pairs, old_pairs)
        digest = content_digest(new_pairs)
        effective_allow = keep_allow if allow is None else bool(allow)
        if prev is not None and (digest, effective_allow, merged) == (
            prev.manifest.digest,
            prev.manifest.allow,
            dict(prev.manifest.thresholds),
        ):
            # A refresh that changed nothing: a new version would only make "what changed?" harder to answer.
            return self._report(prev.manifest, parsed, fmt, source, started, unchanged=True)
        version = (numbers[-1] + 1) if numbers else 1
        from cleanset import __version__

        manifest = VersionManifest(
            name=name,
            version=version,
            created=_now(),
            allow=effective_allow,
            format=fmt,
            note=note,
            source=source,
            counts=parsed.counts(),
            entry_count=parsed.entry_count,
            added=added,
            removed=removed,
            skipped=parsed.skipped,
            duplicates=parsed.duplicates,
            digest=digest,
            thresholds=merged,
            cleanset_version=__version__,
        )
        self._write_version(manifest, parsed)
        return self._report(manifest, parsed, fmt, source, started)

    @staticmethod
    def _report(
        manifest: VersionManifest,
        parsed: ParsedBank,
        fmt: str,
        source: SourceInfo,
        started: float,
        unchanged: bool = False,
    ) -> ImportReport:
        return ImportReport(
            name=manifest.name,
            version=manifest.version,
            format=fmt,
            allow=manifest.allow,
            counts=manifest.counts,
            entry_count=manifest.entry_count,
            added=0 if unchanged else manifest.added,
            removed=0 if unchanged else manifest.removed,
            skipped=parsed.skipped,
            duplicates=parsed.duplicates,
            digest=manifest.digest,
            source_sha256=source.sha256,
            thresholds={s: manifest.thresholds.get(s, get_signal(s).default_threshold) for s in manifest.counts},
            elapsed_s=round(time.perf_counter() - started, 3),
            unchanged=unchanged,
        )

    def _write_version(self, manifest: VersionManifest, parsed: ParsedBank) -> None:
        # Assembled under banks/.tmp (see scratch: a killed import's values are swept by the next one) and renamed
        # into place, so a version directory is complete or absent.
        with self.scratch.tempdir(f"import-{manifest.name}-") as tmp:
            for sig, cols in parsed.signals.items():
                with open_private(Layout.values(tmp, sig)) as f:
                    np.save(f, np.ascontiguousarray(cols.values, dtype=np.uint8), allow_pickle=False)
                table = pa.table({"id": parsed.ids_of(sig)})
                labels = parsed.labels_of(sig)
                if labels is not None:
                    for label in labels.column_names:
                        table = table.append_column(LABEL_PREFIX + label, labels.column(label))
                with open_private(Layout.entries(tmp, sig)) as f:
                    pq.write_table(
                        table, f, compression="lz4", use_dictionary=[c for c in table.column_names if c != "id"]
                    )
            write_json(Layout.manifest(tmp), manifest.to_json())
            if self.prepare is not None:
                self.prepare(tmp)
            lock_down(tmp)
            fsync_tree(tmp)
            versions = private_dir(self.layout.versions(manifest.name))
            target = versions / str(manifest.version)
            try:
                os.rename(tmp, target)
            except OSError:
                raise UserError(
                    f"bank {manifest.name!r} version {manifest.version} was written by another import meanwhile; "
                    "run the import again"
                ) from None
            fsync_dir(versions)
