"""A JSON document holding one array of objects (``[{...}, {...}]``), as APIs and web exports return lists;
objects are read as JSON lines' are (long or wide).

Errors name the element's index and the line it starts on. The default entry id is the element's index, not
its line: a whole array often sits on one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import ERRORS, first_bad_byte
from cleanset.banks.formats._objects import ObjectReader
from cleanset.banks.formats._options import Format
from cleanset.banks.formats.rows import RowMaker
from cleanset.errors import InputFormatError

_SPACE = " \t\r\n"


class _Text:
    """The document, with positions turned into line numbers as the reader moves forward."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._pos = 0
        self._line = 1

    def line_at(self, pos: int) -> int:
        if pos >= self._pos:
            self._line += self.text.count("\n", self._pos, pos)
        else:
            self._line = self.text.count("\n", 0, pos) + 1
        self._pos = pos
        return self._line

    def skip_space(self, pos: int) -> int:
        n = len(self.text)
        while pos < n and self.text[pos] in _SPACE:
            pos += 1
        return pos


@FORMATS.register("json")
class JsonArray(Format):
    name = "json"
    description = "a JSON array of objects (long signal_type/signal_value or wide md5/pdq/... keys)"
    takes_columns = True

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        return first_line(head).startswith("[")

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        with path.open("r", encoding="utf-8-sig", errors=ERRORS, newline="") as f:
            doc = _Text(f.read())
        text = doc.text
        bad = first_bad_byte(text)
        if bad is not None:
            raise InputFormatError(str(path), "not UTF-8 text (an invalid byte on this line)", doc.line_at(bad))
        decoder = json.JSONDecoder()
        pos = doc.skip_space(0)
        if pos >= len(text):
            raise InputFormatError(str(path), "the list is empty")
        if text[pos] != "[":
            raise InputFormatError(str(path), "expected a JSON array of objects", doc.line_at(pos))
        reader = ObjectReader(self, maker, signal)
        pos = doc.skip_space(pos + 1)
        index = 0
        while True:
            if pos < len(text) and text[pos] == "]" and index == 0:
                pos += 1
                break
            line = doc.line_at(pos)
            maker.where = f"element [{index}]: "
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                # The document's structure is lost from here on: no element after this one can be found.
                raise InputFormatError(
                    str(path), f"element [{index}]: invalid JSON ({e.msg} at column {e.colno})", e.lineno
                ) from None
            rows = reader.rows(obj, line, default_id=str(index))
            self.skipped = maker.skipped
            yield from rows
            index += 1
            pos = doc.skip_space(pos)
            if pos < len(text) and text[pos] == ",":
                pos = doc.skip_space(pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            maker.where = ""
            raise InputFormatError(
                str(path), f"after element [{index - 1}]: expected ',' or ']'", doc.line_at(min(pos, len(text)))
            )
        maker.where = ""
        if doc.skip_space(pos) < len(text):
            raise InputFormatError(str(path), "text after the closing ']'", doc.line_at(doc.skip_space(pos)))
        if index == 0:
            raise InputFormatError(str(path), "the list is empty (an empty array)")
