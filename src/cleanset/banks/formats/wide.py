"""Wide CSV or TSV lists: one row per listed item, one column per hash type, and often a category column, the
shape hotlines and industry programmes hand out (``ID,MD5,SHA1,PDQ,PhotoDNA,Category``).

Each non-empty hash cell becomes one entry; all entries of a row share the row's id (the id column, else the
line number), so a match names the listed item whichever of its hashes matched. Columns are found by header
(``_headers``) or named with ``--columns md5=MD5,pdq=PDQ``. Cells of signals cleanset cannot compute (PhotoDNA,
video signals) are counted and reported, never stored: they are hash values that nothing here could use.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._headers import Roles, names_hashes, record_rows, resolve_roles
from cleanset.banks.formats._lines import ERRORS, csv_records
from cleanset.banks.formats._options import Format, key
from cleanset.banks.formats.rows import RowMaker, shown_name
from cleanset.errors import InputFormatError

#: Headers that make a file the long ``csv`` shape (or python-threatexchange's ``txcsv``) instead.
LONG_HEADERS = {"signaltype", "signalvalue", "signalstr"}


def delimiter(line: str, path: Path) -> str:
    """Tab for a TSV, semicolon for a spreadsheet export in a comma-decimal locale, else comma."""
    if "\t" in line or path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    if ";" in line and "," not in line:
        return ";"
    return ","


def _header_cells(line: str, path: Path) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter(line, path)))
    except (csv.Error, StopIteration):
        return []


@FORMATS.register("wide")
class WideList(Format):
    name = "wide"
    description = (
        "CSV/TSV with one column per hash type (MD5, SHA1, SHA256, PDQ, PhotoDNA ...), id and category columns; "
        "--columns md5=COL,pdq=COL names them"
    )
    takes_columns = True

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        cells = _header_cells(first_line(head), path)
        return names_hashes(cells) and not any(key(c) in LONG_HEADERS for c in cells)

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        with path.open("r", encoding="utf-8-sig", errors=ERRORS, newline="") as f:
            head = f.readline()
            f.seek(0)
            roles: Roles | None = None
            width = 0
            for start, record in csv_records(path, f, maker.fail, delimiter=delimiter(head, path)):
                if roles is None:
                    roles, width = self._roles(path, record, start), len(record)
                    continue
                if len(record) != width:
                    maker.fail(start, f"expected {width} columns, got {len(record)}")
                    self.skipped = maker.skipped
                    continue
                rows = record_rows(self, maker, roles, record, start)
                self.skipped = maker.skipped
                yield from rows
        self.skipped = maker.skipped  # a malformed last record counts too
        if roles is None:
            raise InputFormatError(str(path), "the list is empty")

    def _roles(self, path: Path, record: list[str], line: int) -> Roles:
        roles = resolve_roles(record, self.options)
        if not roles.has_hashes:
            raise InputFormatError(
                str(path),
                f"the header names no hash column (it has {len(record)} columns: "
                f"{', '.join(shown_name(c) for c in record)[:200]}); name them with --columns md5=COLUMN,pdq=COLUMN",
                line,
            )
        return roles
