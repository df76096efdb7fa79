"""Reading a text list line by line with real line numbers (BOM, CRLF, blank lines and ``#`` comments)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cleanset.errors import InputFormatError


def content_lines(path: Path, *, comments: bool = True) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of every line that carries content."""
    try:
        with path.open("r", encoding="utf-8-sig", newline=None) as f:
            for number, raw in enumerate(f, start=1):
                text = raw.strip()
                if not text or (comments and text.startswith("#")):
                    continue
                yield number, text
    except UnicodeDecodeError as e:
        raise InputFormatError(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})") from None
