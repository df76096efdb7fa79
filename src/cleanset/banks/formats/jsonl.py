"""JSON lines: one object per line with ``signal_type``, ``signal_value`` and optional ``id``; any other key is
kept as a label (non-string values as their JSON text)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from cleanset.banks.base import BankFormat, BankRow
from cleanset.banks.formats import FORMATS, first_line
from cleanset.banks.formats._lines import content_lines
from cleanset.banks.formats.rows import RowMaker

FIELDS = ("signal_type", "signal_value", "id")


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@FORMATS.register("jsonl")
class JsonLines(BankFormat):
    name = "jsonl"
    description = "JSON object per line: signal_type, signal_value, id, other keys as labels"

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        return first_line(head).startswith("{") or path.suffix.lower() in (".jsonl", ".ndjson")

    def parse(self, path: Path, *, signal: str | None = None, skip_invalid: bool = False) -> Iterator[BankRow]:
        maker = RowMaker(path, skip_invalid=skip_invalid)
        self.skipped = 0
        for number, text in content_lines(path, comments=False):
            row = self._row(maker, number, text, signal)
            self.skipped = maker.skipped
            if row is not None:
                yield row

    @staticmethod
    def _row(maker: RowMaker, number: int, text: str, signal: str | None) -> BankRow | None:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            maker.fail(number, f"invalid JSON ({e.msg} at column {e.colno})")
            return None
        if not isinstance(obj, dict):
            maker.fail(number, f"expected a JSON object, got {type(obj).__name__}")
            return None
        sig = obj.get("signal_type", signal)
        value = obj.get("signal_value")
        if sig is not None and not isinstance(sig, str):
            maker.fail(number, "signal_type must be a string")
            return None
        if value is not None and not isinstance(value, str):
            maker.fail(number, "signal_value must be a string")
            return None
        if "signal_value" not in obj:
            maker.fail(number, "missing field 'signal_value'")
            return None
        eid = obj.get("id")
        labels = {k: _text(v) for k, v in obj.items() if k not in FIELDS and v is not None}
        return maker.make(number, sig, value, None if eid is None else _text(eid), labels)
