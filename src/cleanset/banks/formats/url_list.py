"""Raw URL list: one URL per line. Each is hashed (``url_sha1`` of the normalised URL) as it is read, so the bank
never holds a readable URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cleanset.banks import names
from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import content_lines
from cleanset.banks.formats._options import Format
from cleanset.banks.formats.rows import RowMaker

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


@FORMATS.register("urls")
class UrlList(Format):
    name = "urls"
    description = "one raw URL per line, hashed to url_sha1 on import"
    takes_encoding = False

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        return bool(_SCHEME.match(first_line(head)))

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        maker = RowMaker(path, skip_invalid=skip_invalid)
        self.reset()
        for number, text in content_lines(path):
            row = maker.make(number, names.RAW_URL, text)
            self.skipped = maker.skipped
            if row is not None:
                yield row
