"""CSV lists with a header naming ``signal_type``, ``signal_value`` and optionally ``id`` (the shape
ThreatExchange-style exchanges export); any other column is kept as a label.

Two readers, one meaning. ``parse`` walks the file with Python's csv module and knows every line number; it is the
reference, and the only reader that ever produces an error message. ``read_columns`` reads the file with Arrow's
multi-threaded CSV reader and checks every column at once; whenever it finds anything wrong it asks ``parse``'s
rules about that one record (or, for a structural problem, hands the whole file to ``parse``), so both readers
accept, reject and word things identically.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cleanset.banks import names
from cleanset.banks.base import BankFormat, BankRow
from cleanset.banks.columns import ParsedBank, SignalColumns
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._headers import names_hashes
from cleanset.banks.formats._lines import ERRORS, csv_records
from cleanset.banks.formats._options import Format
from cleanset.banks.formats.rows import LineError, RowMaker, check_url, required_signal, shown_name
from cleanset.banks.hexcodec import decode_column
from cleanset.errors import InputFormatError

SIGNAL, VALUE, ID = "signal_type", "signal_value", "id"
_BLOCK = 1 << 24


@dataclass(frozen=True)
class Header:
    columns: tuple[str, ...]
    signal: int | None
    value: int
    id: int | None

    @property
    def labels(self) -> list[tuple[int, str]]:
        used = {self.signal, self.value, self.id}
        return [(i, c) for i, c in enumerate(self.columns) if i not in used]

    @classmethod
    def parse(cls, record: list[str], path: Path, line: int, signal: str | None) -> Header:
        cols = tuple(c.strip().lower() for c in record)
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise InputFormatError(str(path), f"header repeats column {shown_name(dup[0])}", line)
        if VALUE not in cols or (SIGNAL not in cols and not signal):
            hint = ""
            if "signal_str" in cols:
                hint = "; python-threatexchange's `tx dataset -P --csv` output is read with --format txcsv"
            elif names_hashes(cols):
                hint = "; a table with one column per hash type is read with --format wide"
            raise InputFormatError(
                str(path),
                f"header must name {SIGNAL},{VALUE}[,{ID}] (the first line has {len(cols)} columns: "
                f"{', '.join(shown_name(c) for c in cols)[:200]}){hint}",
                line,
            )
        if "" in cols:
            raise InputFormatError(str(path), "header has an empty column name", line)
        return cls(
            columns=cols,
            signal=cols.index(SIGNAL) if SIGNAL in cols else None,
            value=cols.index(VALUE),
            id=cols.index(ID) if ID in cols else None,
        )


@FORMATS.register("csv")
class CsvList(Format):
    name = "csv"
    description = "CSV with header signal_type,signal_value[,id], other columns kept as labels"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        line = first_line(head).lower()
        cols = [c.strip().strip('"') for c in line.split(",")]
        return VALUE in cols or (path.suffix.lower() == ".csv" and "," in line)

    # -- the reference reader -----------------------------------------------------------------------------------

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        if signal:
            required_signal(path, signal, "csv")
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        header: Header | None = None
        with path.open("r", encoding="utf-8-sig", errors=ERRORS, newline="") as f:
            for start, record in csv_records(path, f, maker.fail):
                if header is None:
                    header = Header.parse(record, path, start, signal)
                    continue
                row = self._row(maker, header, record, start, signal)
                self.skipped = maker.skipped
                if row is not None:
                    yield row
        self.skipped = maker.skipped  # a malformed last record counts too
        if header is None:
            raise InputFormatError(str(path), "the list is empty")

    @staticmethod
    def _row(maker: RowMaker, header: Header, record: list[str], line: int, signal: str | None) -> BankRow | None:
        if len(record) != len(header.columns):
            maker.fail(line, f"expected {len(header.columns)} columns, got {len(record)}")
            return None
        sig = record[header.signal] if header.signal is not None else signal
        eid = record[header.id] if header.id is not None else None
        labels = {name: record[i] for i, name in header.labels}
        return maker.make(line, sig, record[header.value], eid, labels)

    # -- the bulk reader ----------------------------------------------------------------------------------------

    def read_columns(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> ParsedBank:
        if signal:
            required_signal(path, signal, "csv")
        self.reset()
        # The bulk reader decodes hex only; values in another encoding go through the reference reader.
        header = _first_line_header(path, signal) if self.options.encoding == "hex" else None
        table = _arrow_read(path, header) if header is not None else None
        if table is None:
            return super().read_columns(path, signal=signal, skip_invalid=skip_invalid)
        return _Bulk(self, path, header, table, signal, skip_invalid).run()  # type: ignore[arg-type]


def _first_line_header(path: Path, signal: str | None) -> Header | None:
    """The header, when it is a plain first line the bulk reader can rely on (else None: use ``parse``)."""
    with path.open("rb") as f:
        raw = f.readline()
    if raw.startswith(b"\xef\xbb\xbf") or not raw.strip() or b'"' in raw:
        return None
    try:
        record = next(csv.reader([raw.decode("utf-8")]))
        return Header.parse(record, path, 1, signal)
    except (UnicodeDecodeError, InputFormatError, StopIteration, csv.Error):
        return None


def _arrow_read(path: Path, header: Header) -> pa.Table | None:
    """The file as an all-string Arrow table, or None when Arrow saw any structural problem."""
    invalid: list[object] = []

    def on_invalid(row: object) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=_BLOCK, column_names=list(header.columns), skip_rows=1),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=_column_types(header),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return None if invalid else table.unify_dictionaries()


def _column_types(header: Header) -> dict[str, pa.DataType]:
    """Everything is text; the signal type and labels repeat, so they are read dictionary-encoded (gathering
    them later is an integer take, and Parquet stores them as dictionaries anyway)."""
    types = dict.fromkeys(header.columns, pa.string())
    repeated = [i for i, _ in header.labels] + ([header.signal] if header.signal is not None else [])
    for i in repeated:
        types[header.columns[i]] = pa.dictionary(pa.int32(), pa.string())
    return types


def _physical_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


class _Bulk:
    """One vectorised read: masks of bad records, then either the first bad record's exact error or skips."""

    def __init__(
        self, fmt: CsvList, path: Path, header: Header, table: pa.Table, signal: str | None, skip_invalid: bool
    ) -> None:
        self.fmt, self.path, self.header, self.table = fmt, path, header, table
        self.signal, self.skip_invalid = signal, skip_invalid
        self.n = table.num_rows

    @cached_property
    def record_lines(self) -> np.ndarray:
        """Line number of every data record: record i is on line i+2 unless blank lines or multi-line fields
        break the one-record-per-line shape, in which case the reference reader's line count is used."""
        if _physical_lines(self.path) == self.n + 1:
            return np.arange(2, self.n + 2, dtype=np.int64)
        lines: list[int] = []
        with self.path.open("r", encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            prev = 0
            for record in reader:
                start, prev = prev + 1, reader.line_num
                if record:
                    lines.append(start)
        return np.asarray(lines[1:], dtype=np.int64)

    def line_of(self, records: np.ndarray) -> np.ndarray:
        return self.record_lines[np.asarray(records, dtype=np.int64)]

    def _column(self, i: int) -> pa.ChunkedArray:
        return self.table.column(i)

    def run(self) -> ParsedBank:
        h = self.header
        bad = np.zeros(self.n, dtype=bool)
        codes, signals = self._signal_codes(bad)
        values = self._column(h.value)
        if h.id is not None:
            ids = pc.utf8_trim_whitespace(self._column(h.id)).combine_chunks()
            bad |= pc.equal(pc.binary_length(ids), 0).to_numpy(zero_copy_only=False)
        else:
            ids = pa.array(self.record_lines).cast(pa.string())
        # Labels repeat (a source, a category): dictionary-encoded, gathering them is an integer take.
        label_cols = h.labels
        labels = pa.table({name: self._column(i) for i, name in label_cols}) if label_cols else None

        groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for code, sig in enumerate(signals):
            if sig is None:
                continue
            idx = np.flatnonzero(codes == code)
            if not len(idx):
                continue
            target, vals, sig_bad = self._values(sig, values, idx)
            bad[idx] |= sig_bad
            prev = groups.get(target)
            if prev is not None:  # e.g. 'video_md5' and 'md5' rows fill the same signal
                idx = np.concatenate([prev[0], idx])
                vals = np.concatenate([prev[1], vals])
            groups[target] = (idx, vals)

        if bad.any():
            if not self.skip_invalid:
                self._raise_first(int(np.flatnonzero(bad)[0]))
                return BankFormat.read_columns(self.fmt, self.path, signal=self.signal, skip_invalid=False)
            self.fmt.skipped = int(bad.sum())
        else:
            self.fmt.skipped = 0

        out: dict[str, SignalColumns] = {}
        for target, (idx, vals) in groups.items():
            keep = ~bad[idx]
            if keep.all():
                out[target] = SignalColumns(values=vals, rows=idx.astype(np.int64))
            elif keep.any():
                out[target] = SignalColumns(values=vals[keep], rows=idx[keep].astype(np.int64))
        return ParsedBank(signals=out, ids=ids, labels=labels, skipped=self.fmt.skipped, line_of=self.line_of)

    def _signal_codes(self, bad: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Per record, an index into the list of resolved signals (None: unknown type -> bad)."""
        h = self.header
        if h.signal is None:
            return np.zeros(self.n, dtype=np.int32), [names.resolve(self.signal or "")]
        col = self._column(h.signal)  # dictionary-encoded, one dictionary for all chunks
        if col.num_chunks == 0:
            return np.zeros(0, dtype=np.int32), []
        resolved = [names.resolve(v) for v in col.chunk(0).dictionary.to_pylist()]
        codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in col.chunks]).astype(np.int32)
        unknown = np.asarray([r is None for r in resolved], dtype=bool)
        if unknown.any():
            bad |= unknown[codes]
        return codes, resolved

    def _values(self, sig: str, col: pa.Array, idx: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
        """(bank signal, values, bad mask) for the records ``idx``, all of one input signal type."""
        if sig != names.RAW_URL:
            vals, bad = decode_column(col, names.hex_len(sig), idx)
            return sig, vals, bad
        width = names.hex_len(names.URL_TARGET) // 2
        texts = col.take(pa.array(idx)).to_pylist()
        vals = np.zeros((len(texts), width), dtype=np.uint8)
        bad = np.zeros(len(texts), dtype=bool)
        for j, text in enumerate(texts):
            try:
                vals[j] = np.frombuffer(bytes.fromhex(names.url_hash(check_url(text))), dtype=np.uint8)
            except LineError:
                bad[j] = True
        return names.URL_TARGET, vals, bad

    def _raise_first(self, record: int) -> None:
        """Ask the reference rules about one record: they raise its ``file:line: what is wrong``."""
        h = self.header
        fields = [str(self.table.column(i)[record].as_py()) for i in range(len(h.columns))]
        line = int(self.line_of(np.asarray([record]))[0])
        maker = RowMaker(self.path, skip_invalid=False)
        CsvList._row(maker, h, fields, line, self.signal)
