"""JSON lines: one object per line, either long (``signal_type``, ``signal_value`` and optional ``id``; any other
key is kept as a label, non-string values as their JSON text) or wide (one key per hash type, as ``wide``
columns are named)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from cleanset.banks.base import BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import content_lines
from cleanset.banks.formats._objects import ObjectReader
from cleanset.banks.formats._options import Format
from cleanset.banks.formats.rows import RowMaker


@FORMATS.register("jsonl")
class JsonLines(Format):
    name = "jsonl"
    description = "JSON object per line: signal_type, signal_value, id, other keys as labels (or md5/pdq/... keys)"
    takes_columns = True

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        return first_line(head).startswith("{") or path.suffix.lower() in (".jsonl", ".ndjson")

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        maker = RowMaker(path, skip_invalid=skip_invalid, encoding=self.options.encoding)
        self.reset()
        reader = ObjectReader(self, maker, signal)
        for number, text in content_lines(path, comments=False):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                maker.fail(number, f"invalid JSON ({e.msg} at column {e.colno})")
                self.skipped = maker.skipped
                continue
            rows = reader.rows(obj, number)
            self.skipped = maker.skipped
            yield from rows
