"""Reading a text list line by line with real line numbers (BOM, CRLF, blank lines and ``#`` comments)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

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
