"""Plain hex list: one value per line, the signal named on the command line (``--signal``).

An optional second white-space separated field is the entry id; otherwise the line number is, so a match can be
traced back to the line of the list it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import content_lines
from cleanset.banks.formats._options import Format
from cleanset.banks.formats.rows import RowMaker, required_signal

_HEX_HEAD = re.compile(r"^[0-9A-Fa-f]+(\s|$)")


@FORMATS.register("plain")
class PlainHexList(Format):
    name = "plain"
    description = "one hex value per line (optional id after it); needs --signal"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        return bool(_HEX_HEAD.match(first_line(head)))

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        sig = required_signal(path, signal, "plain hex")
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        for number, text in content_lines(path):
            fields = text.split(None, 1)
            eid = fields[1] if len(fields) > 1 else None
            row = maker.make(number, sig, fields[0], eid)
            self.skipped = maker.skipped
            if row is not None:
                yield row
