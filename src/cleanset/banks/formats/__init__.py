"""List formats, by name, and detection of a file's format from its first line.

Each format is a ``BankFormat`` class registered here; detection asks each in a fixed order (most specific first)
so a CSV header is never mistaken for a plain list.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from cleanset.banks.base import BankFormat
from cleanset.errors import InputFormatError, UserError
from cleanset.registry import Registry

FORMATS: Registry[type[BankFormat]] = Registry("list format", group="cleanset.formats")

#: Asked in this order by ``detect``: documents with a telling first line, then headers that name their columns
#: (python-threatexchange's before the wide shape before the long one, which also claims any other ``.csv``),
#: then line formats.
DETECT_ORDER = ("ncmec", "json", "txcsv", "wide", "csv", "jsonl", "te", "urls", "plain")
_MODULES = ("plain", "csv_list", "jsonl", "te_local", "url_list", "wide", "json_array", "tx_csv", "ncmec_xml")
_loaded = False

HEAD_BYTES = 64 * 1024


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _MODULES:
            importlib.import_module(f"cleanset.banks.formats.{mod}")


def notes_of(fmt: BankFormat) -> list[str]:
    """What the last read left out on purpose, in words (PhotoDNA values, deleted entries ...)."""
    from cleanset.banks.formats._options import notes_of as _notes

    return _notes(fmt)


def format_names() -> list[str]:
    _load()
    return FORMATS.names()


def get_format(name: str) -> BankFormat:
    _load()
    return FORMATS.get(name)()


def first_line(head: bytes) -> str:
    """The first line that is neither blank nor a ``#`` comment, BOM and white space stripped."""
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return s
    return ""


def resolve(
    path: Path, name: str | None, columns: Mapping[str, str] | None = None, encoding: str = "hex"
) -> BankFormat:
    """The format to read ``path`` with, told what the command line said about the file. A column map without
    ``--format`` means a table: the wide format unless the file is JSON (whose keys the map names)."""
    from cleanset.banks.formats._options import Format, ReadOptions

    _load()
    options = ReadOptions(columns=dict(columns or {}), encoding=encoding)
    if name:
        fmt = FORMATS.get(name)()
    elif options.columns:
        try:
            fmt = detect(path)
        except InputFormatError:
            fmt = FORMATS.get("wide")()
        if not (isinstance(fmt, Format) and fmt.takes_columns):
            fmt = FORMATS.get("wide")()
    else:
        fmt = detect(path)
    if options != ReadOptions():
        if not isinstance(fmt, Format):
            raise UserError(f"the {fmt.name} format takes no --columns or --value-encoding")
        fmt.configure(options)
    return fmt


def detect(path: Path) -> BankFormat:
    """The format a file is in, from its name and first bytes; UserError naming the file when none fits."""
    _load()
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if not first_line(head):
        raise InputFormatError(str(path), "the list is empty")
    for name in DETECT_ORDER:
        cls = FORMATS.get(name)
        if cls.sniff(head, path):
            return cls()
    raise InputFormatError(
        str(path),
        f"cannot tell the list format from its first line; pass --format ({', '.join(FORMATS.names())})"
        + _hint(first_line(head)),
    )


def _hint(line: str) -> str:
    """What a first line nobody recognised most likely is, so the error says which options fit."""
    from cleanset.banks.formats.rows import looks_base64

    cells = [c.strip() for c in line.replace("\t", ",").replace(";", ",").split(",")]
    if len(cells) == 1 and looks_base64(cells[0], "pdq"):
        return "; it looks like one base64 PDQ value a line: --format plain --signal pdq --value-encoding base64"
    if len(cells) > 1:
        return "; a table with a column per hash type: --format wide --columns md5=COLUMN,pdq=COLUMN,id=COLUMN"
    return ""
