"""python-threatexchange's local file format (its ``LocalFileSignalExchangeAPI``): ``<signal_type> <value>`` per
line, split at the first space, signal types spelled as ``SignalType.get_name()`` gives them (``pdq``,
``video_md5``, ``url_md5``, ``url`` ...). When ``--signal`` is given, each line is a bare value, as that API's
``signal_type`` collab setting does. Types cleanset cannot hold (``pdq_ocr``, ``raw_text``, ``tlsh`` ...) are line
errors, not silently dropped: a list that half-imports is a list that half-protects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cleanset.banks import names
from cleanset.banks.base import BankFormat, BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import content_lines
from cleanset.banks.formats.rows import RowMaker, required_signal


@FORMATS.register("te")
class ThreatExchangeLocalFile(BankFormat):
    name = "te"
    description = "python-threatexchange local file: '<signal_type> <value>' per line"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        fields = first_line(head).split(" ", 1)
        return len(fields) == 2 and names.resolve(fields[0]) is not None

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        fixed = required_signal(path, signal, "te") if signal else None
        maker = RowMaker(path, skip_invalid=skip_invalid)
        self.skipped = 0
        for number, text in content_lines(path):
            if fixed is not None:
                sig, value = fixed, text
            else:
                sig, _, value = text.partition(" ")
                if not value.strip():
                    maker.fail(number, "missing value (expected '<signal_type> <value>')")
                    self.skipped = maker.skipped
                    continue
            row = maker.make(number, sig, value)
            self.skipped = maker.skipped
            if row is not None:
                yield row
