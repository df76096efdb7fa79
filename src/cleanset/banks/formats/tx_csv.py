"""python-threatexchange's CSV export: what ``tx dataset -P --csv`` prints (header ``signal_type,signal_str,
collab,category,tags``; older releases put ``collab`` first). One line per signal and collaboration; the line
number is the entry id, ``collab``, ``category`` and ``tags`` are kept as labels.

``category`` is the exchange's aggregate opinion of the signal. ``FALSE_POSITIVE`` (``NEGATIVE_CLASS`` in newer
releases) means members reported that it matches content outside the category: such lines are left out and
counted, since putting them in a block bank would remove what the exchange says is fine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import ERRORS, csv_records
from cleanset.banks.formats._options import Format, key, unsupported_signal
from cleanset.banks.formats.rows import RowMaker, shown_name
from cleanset.errors import InputFormatError

TYPE, VALUE = "signal_type", "signal_str"
NOT_POSITIVE = {"FALSE_POSITIVE", "NEGATIVE_CLASS"}
COMMAND = "tx dataset -P --csv"


@FORMATS.register("txcsv")
class ThreatExchangeCsv(Format):
    name = "txcsv"
    description = f"python-threatexchange's `{COMMAND}` output (signal_type,signal_str,collab,category,tags)"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        cells = {key(c) for c in first_line(head).split(",")}
        return key(VALUE) in cells and key(TYPE) in cells

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        left_out = 0
        header: list[str] | None = None
        with path.open("r", encoding="utf-8-sig", errors=ERRORS, newline="") as f:
            for start, record in csv_records(path, f, maker.fail):
                if header is None:
                    header = [c.strip().lower() for c in record]
                    if TYPE not in header or VALUE not in header:
                        raise InputFormatError(
                            str(path),
                            f"header must name {TYPE} and {VALUE}, as `{COMMAND}` writes them (it has: "
                            f"{', '.join(shown_name(c) for c in record)[:200]})",
                            start,
                        )
                    continue
                if len(record) != len(header):
                    maker.fail(start, f"expected {len(header)} columns, got {len(record)}")
                    self.skipped = maker.skipped
                    continue
                fields = dict(zip(header, record, strict=True))
                if fields.get("category", "").strip().upper() in NOT_POSITIVE:
                    left_out += 1
                    continue
                sig = fields[TYPE]
                other = unsupported_signal(sig)
                if other is not None:
                    self.unsupported[other] += 1
                    continue
                labels = {k: v for k, v in fields.items() if k not in (TYPE, VALUE) and v != ""}
                row = maker.make(start, sig, fields[VALUE], None, labels)
                self.skipped = maker.skipped
                if row is not None:
                    yield row
        self.skipped = maker.skipped  # a malformed last record counts too
        if header is None:
            raise InputFormatError(str(path), "the list is empty")
        if left_out:
            self.extra_notes.append(
                f"{left_out:,} line{'s' if left_out != 1 else ''} the exchange marks as false positives "
                "(category FALSE_POSITIVE / NEGATIVE_CLASS) left out"
            )
