"""Reading a text list line by line with real line numbers (BOM, CRLF, blank lines and ``#`` comments)."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from cleanset.errors import InputFormatError

#: Text lists are opened with this error handler: a byte that is not UTF-8 becomes a lone surrogate instead of
#: stopping the decoder somewhere inside a block of the file, so ``check_utf8`` can name the line it is on.
ERRORS = "surrogateescape"
_ESCAPED = re.compile("[\udc80-\udcff]")


def check_utf8(path: Path, line: int, text: str) -> None:
    """Raise ``path:line:`` when the line held a byte that is not UTF-8. The message names neither the byte nor
    its neighbours: the line is list content."""
    if _ESCAPED.search(text) is not None:
        raise InputFormatError(str(path), "not UTF-8 text (an invalid byte on this line)", line)


def first_bad_byte(text: str) -> int | None:
    """Position of the first byte that was not UTF-8 in text read with ``ERRORS``, or None."""
    m = _ESCAPED.search(text)
    return None if m is None else m.start()


def content_lines(path: Path, *, comments: bool = True) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of every line that carries content."""
    with path.open("r", encoding="utf-8-sig", errors=ERRORS, newline=None) as f:
        for number, raw in enumerate(f, start=1):
            check_utf8(path, number, raw)
            text = raw.strip()
            if not text or (comments and text.startswith("#")):
                continue
            yield number, text


def csv_records(
    path: Path, f: TextIO, fail: Callable[[int, str], None], delimiter: str = ","
) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of every CSV record that holds a non-blank field, each checked for bytes that were not
    UTF-8; a malformed record goes to ``fail(line, why)`` (which raises, or counts it when invalid lines are
    skipped) and reading goes on after it."""
    reader = csv.reader(f, delimiter=delimiter, strict=True)
    prev = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            fail(prev + 1, f"malformed CSV ({e})")
            prev = reader.line_num
            continue
        start, prev = prev + 1, reader.line_num
        if not any(c.strip() for c in record):
            continue
        check_utf8(path, start, "".join(record))
        yield start, record
