"""List formats, by name, and detection of a file's format from its first line.

Each format is a ``BankFormat`` class registered here; detection asks each in a fixed order (most specific first)
so a CSV header is never mistaken for a plain list.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from cleanset.banks.base import BankFormat
from cleanset.errors import InputFormatError, UserError
from cleanset.registry import Registry

FORMATS: Registry[type[BankFormat]] = Registry("list format")

#: Asked in this order by ``detect``.
DETECT_ORDER = ("csv", "jsonl", "te", "urls", "plain")
_MODULES = ("plain", "csv_list", "jsonl", "te_local", "url_list")
_loaded = False

HEAD_BYTES = 64 * 1024


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _MODULES:
            importlib.import_module(f"cleanset.banks.formats.{mod}")


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
        str(path), f"cannot tell the list format from its first line; pass --format ({', '.join(FORMATS.names())})"
    )
