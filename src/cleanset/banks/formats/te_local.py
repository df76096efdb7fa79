"""python-threatexchange's local file format (its ``LocalFileSignalExchangeAPI``): ``<signal_type> <value>`` per
line, split at the first space, signal types spelled as ``SignalType.get_name()`` gives them (``pdq``,
``video_md5``, ``url_md5``, ``url`` ...). When ``--signal`` is given, each line is a bare value, as that API's
``signal_type`` collab setting does. Types cleanset cannot hold (``pdq_ocr``, ``raw_text``, ``tlsh`` ...) are line
errors, not silently dropped: a list that half-imports is a list that half-protects. The exception is a signal
no tool of ours could ever compute (``photodna``, ``video_tmk_pdqf``): those lines are counted and reported.

python-threatexchange prints this shape with ``tx dataset -P -S`` (type and value only; with ``-s pdq`` it prints
bare values, which need ``--signal``). Plain ``tx dataset -P`` appends the collaboration and the record's metadata
to each line; such a line is refused with the command that writes a readable file instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cleanset.banks import names
from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import content_lines
from cleanset.banks.formats._options import Format, unsupported_signal
from cleanset.banks.formats.rows import RowMaker, required_signal

TX_EXTRA = (
    "more than '<signal_type> <value>' on this line: `tx dataset -P` adds the collaboration and metadata; "
    "write the file with `tx dataset -P -S` (type and value only) or `tx dataset -P --csv` (format txcsv)"
)


@FORMATS.register("te")
class ThreatExchangeLocalFile(Format):
    name = "te"
    description = "python-threatexchange local file: '<signal_type> <value>' per line"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        fields = first_line(head).split(" ", 1)
        return len(fields) == 2 and names.resolve(fields[0]) is not None

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        fixed = required_signal(path, signal, "te") if signal else None
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        for number, text in content_lines(path):
            if fixed is not None:
                sig, value = fixed, text
            else:
                sig, _, value = text.partition(" ")
                if not value.strip():
                    maker.fail(number, "missing value (expected '<signal_type> <value>')")
                    self.skipped = maker.skipped
                    continue
            other = unsupported_signal(sig) if fixed is None else None
            if other is not None:
                self.unsupported[other] += 1
                continue
            if len(value.split()) > 1:
                maker.fail(number, TX_EXTRA)
                self.skipped = maker.skipped
                continue
            row = maker.make(number, sig, value)
            self.skipped = maker.skipped
            if row is not None:
                yield row
