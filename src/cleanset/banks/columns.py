"""A parsed list held column-wise, and the one canonical order every bank version is stored in.

Formats hand the store per-signal value matrices plus row numbers into the file's id and label columns, instead
of millions of row objects; ids and labels are gathered once, at the end, in canonical order. Canonical order
(value bytes, then id) makes the stored arrays, the content digest and version diffs independent of the order
lines had in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanset.banks.base import BankRow
from cleanset.banks.strhash import first_repeat
from cleanset.errors import InputFormatError

LABEL_PREFIX = "label."


@dataclass
class SignalColumns:
    """Entries of one signal: ``values[i]`` came from record ``rows[i]`` of the file (an index into the
    ``ParsedBank``'s id and label columns)."""

    values: np.ndarray  # (n, bits/8) uint8
    rows: np.ndarray  # (n,) int64
    ids: pa.Array | None = None  # the entries' ids, once gathered (canonicalize does)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def take(self, idx: np.ndarray) -> SignalColumns:
        ids = None if self.ids is None else self.ids.take(pa.array(idx, type=pa.int64()))
        return SignalColumns(values=np.take(self.values, idx, axis=0), rows=self.rows[idx], ids=ids)


@dataclass
class ParsedBank:
    """Everything one import read. ``ids`` and ``labels`` have one row per record of the file; ``line_of`` maps
    record numbers to line numbers, lazily, because finding them can cost a second pass over a bulk file and is
    only needed to name a bad line."""

    signals: dict[str, SignalColumns]
    ids: pa.Array
    labels: pa.Table | None = None
    skipped: int = 0
    line_of: Callable[[np.ndarray], np.ndarray] = field(default=lambda r: np.asarray(r) + 1)
    duplicates: int = 0

    @property
    def entry_count(self) -> int:
        return sum(len(c) for c in self.signals.values())

    def counts(self) -> dict[str, int]:
        return {s: len(c) for s, c in sorted(self.signals.items())}

    def ids_of(self, signal: str) -> pa.Array:
        cols = self.signals[signal]
        if cols.ids is not None:
            return cols.ids
        return self.ids.take(pa.array(cols.rows, type=pa.int64()))

    def labels_of(self, signal: str) -> pa.Table | None:
        if self.labels is None:
            return None
        return self.labels.take(pa.array(self.signals[signal].rows, type=pa.int64()))


def labels_table(rows: Sequence[dict[str, str]]) -> pa.Table | None:
    """Label dicts as one nullable string column per label name (None when no row has a label)."""
    names = sorted({k for r in rows for k in r})
    if not names:
        return None
    return pa.table({n: pa.array([r.get(n) for r in rows], type=pa.string()) for n in names})


def from_rows(rows: Iterable[BankRow], *, skipped: int = 0) -> ParsedBank:
    """Collect validated rows (values already canonical hex of their signal) into columns."""
    by_sig: dict[str, tuple[list[bytes], list[int]]] = {}
    ids: list[str] = []
    labels: list[dict[str, str]] = []
    lines: list[int] = []
    for k, row in enumerate(rows):
        vals, idx = by_sig.setdefault(row.signal, ([], []))
        vals.append(bytes.fromhex(row.value))
        idx.append(k)
        ids.append(row.entry_id)
        labels.append(dict(row.labels))
        lines.append(row.line)
    signals = {
        sig: SignalColumns(
            values=np.frombuffer(b"".join(vals), dtype=np.uint8).reshape(len(vals), len(vals[0])).copy(),
            rows=np.asarray(idx, dtype=np.int64),
        )
        for sig, (vals, idx) in by_sig.items()
    }
    line_arr = np.asarray(lines, dtype=np.int64)
    return ParsedBank(
        signals=signals,
        ids=pa.array(ids, type=pa.string()),
        labels=labels_table(labels),
        skipped=skipped,
        line_of=lambda r: line_arr[np.asarray(r, dtype=np.int64)],
    )


def sort_words(values: np.ndarray) -> list[np.ndarray]:
    """Value bytes as native uint64 words of the big-endian byte order (zero-padded), so integer order is byte
    order."""
    n, width = values.shape
    padded_width = -(-width // 8) * 8
    padded = np.zeros((n, padded_width), dtype=np.uint8)
    padded[:, :width] = values
    words = padded.view(">u8")
    return [words[:, i].astype(np.uint64) for i in range(words.shape[1])]


def _leading_words(values: np.ndarray) -> np.ndarray:
    """The first 8 value bytes of each entry as one big-endian uint64 (zero-padded when shorter)."""
    n, width = values.shape
    head = np.zeros((n, 8), dtype=np.uint8)
    head[:, : min(8, width)] = values[:, : min(8, width)]
    return head.view(">u8").ravel().astype(np.uint64)


def canonical_order(values: np.ndarray, ids: pa.Array, rows: np.ndarray) -> np.ndarray:
    """Indices that sort entries by (value bytes, id); entry i has id ``ids[rows[i]]``.

    Hash values are near-uniform, so their leading bits order almost every entry: each entry's leading 64 bits,
    with the low bits replaced by its index, are sorted as plain integers (a SIMD sort, many times faster than an
    argsort). Only runs that share those leading bits are sorted again on the full value and id.
    """
    n = values.shape[0]
    if n < 2:
        return np.arange(n, dtype=np.int64)
    bits = max(1, int(n - 1).bit_length())
    mask = np.uint64((1 << bits) - 1)
    packed = (_leading_words(values) & ~mask) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & mask).astype(np.int64)
    high = packed >> np.uint64(bits)
    tie = high[1:] == high[:-1]
    if not tie.any():
        return order
    in_run = np.zeros(n, dtype=bool)
    in_run[1:] |= tie
    in_run[:-1] |= tie
    pos = np.flatnonzero(in_run)
    sub = order[pos]
    words = sort_words(values[sub])
    table = pa.table({**{f"k{i}": w for i, w in enumerate(words)}, "id": ids.take(pa.array(rows[sub]))})
    sub_order = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in table.column_names]).to_numpy()
    order[pos] = sub[sub_order]
    return order


def canonicalize(parsed: ParsedBank, path: str) -> ParsedBank:
    """Sort every signal canonically, drop exact repeats (same value and id), and refuse an id that names two
    different values of one signal: which one the hotline meant cannot be guessed."""
    out: dict[str, SignalColumns] = {}
    duplicates = 0
    for sig, cols in sorted(parsed.signals.items()):
        order = canonical_order(cols.values, parsed.ids, cols.rows)
        cols = cols.take(order)
        ids = parsed.ids.take(pa.array(cols.rows, type=pa.int64()))
        if len(cols) > 1:
            lead = _leading_words(cols.values)
            cand = np.flatnonzero(lead[1:] == lead[:-1]) + 1
            same_value = np.zeros(len(cols), dtype=bool)
            same_value[cand] = (cols.values[cand] == cols.values[cand - 1]).all(axis=1)
            if same_value.any():
                same_id = np.zeros(len(cols), dtype=bool)
                same_id[1:] = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
                repeat = same_value & same_id
                if repeat.any():
                    duplicates += int(repeat.sum())
                    keep = np.flatnonzero(~repeat)
                    cols = cols.take(keep)
                    ids = ids.take(pa.array(keep))
        pair = first_repeat(ids)
        if pair is not None:
            eid = ids[pair[0]].as_py()
            lines = sorted(int(x) for x in parsed.line_of(cols.rows[list(pair)]))
            raise InputFormatError(
                path, f"duplicate id {eid!r} for two different {sig} values (first on line {lines[0]})", lines[1]
            )
        out[sig] = SignalColumns(values=cols.values, rows=cols.rows, ids=ids)
    return ParsedBank(
        signals=out,
        ids=parsed.ids,
        labels=parsed.labels,
        skipped=parsed.skipped,
        line_of=parsed.line_of,
        duplicates=duplicates,
    )
