"""One JSON object of a list, in either shape exports use: long (``signal_type``, ``signal_value``, ``id``) or
wide (one key per hash type: ``{"md5": ..., "pdq": ..., "category": ...}``, keys found as CSV headers are).

Shared by JSON lines and JSON arrays so both read the same objects the same way.
"""

from __future__ import annotations

import json
from typing import Any

from cleanset.banks.base import BankRow
from cleanset.banks.formats._headers import Roles, record_rows, resolve_roles
from cleanset.banks.formats._options import Format
from cleanset.banks.formats.rows import RowMaker, shown_name
from cleanset.errors import UserError

FIELDS = ("signal_type", "signal_value", "id")


def text_of(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class ObjectReader:
    """Turns objects into rows for one file; wide objects' key sets are resolved once per distinct set."""

    def __init__(self, fmt: Format, maker: RowMaker, signal: str | None) -> None:
        self.fmt, self.maker, self.signal = fmt, maker, signal
        self._roles: dict[tuple[str, ...], Roles] = {}

    def rows(self, obj: Any, line: int, default_id: str | None = None) -> list[BankRow]:
        maker = self.maker
        if not isinstance(obj, dict):
            maker.fail(line, f"expected a JSON object, got {type(obj).__name__}")
            return []
        if "signal_value" in obj or "signal_type" in obj:
            row = self._long(obj, line, default_id)
            return [row] if row is not None else []
        return self._wide(obj, line, default_id)

    def _long(self, obj: dict[str, Any], line: int, default_id: str | None) -> BankRow | None:
        maker = self.maker
        sig = obj.get("signal_type", self.signal)
        value = obj.get("signal_value")
        if sig is not None and not isinstance(sig, str):
            maker.fail(line, "signal_type must be a string")
            return None
        if value is not None and not isinstance(value, str):
            maker.fail(line, "signal_value must be a string")
            return None
        if "signal_value" not in obj:
            maker.fail(line, "missing field 'signal_value'")
            return None
        eid = obj.get("id")
        labels = {k: text_of(v) for k, v in obj.items() if k not in FIELDS and v is not None}
        return maker.make(line, sig, value, default_id if eid is None else text_of(eid), labels)

    def _wide(self, obj: dict[str, Any], line: int, default_id: str | None) -> list[BankRow]:
        maker = self.maker
        present = {k.strip().lower() for k in obj}
        absent = [c for c in self.fmt.options.columns.values() if c.strip().lower() not in present]
        if absent:  # a key an object leaves out is an empty cell, as in a CSV row
            obj = {**obj, **dict.fromkeys(absent)}
        keys = tuple(obj)
        roles = self._roles.get(keys)
        if roles is None:
            try:
                roles = resolve_roles(keys, self.fmt.options)
            except UserError as e:
                maker.fail(line, str(e))
                return []
            self._roles[keys] = roles
        if not roles.has_hashes:
            shown = ", ".join(shown_name(k) for k in keys)[:200] or "none"
            maker.fail(
                line,
                f"no hash field (keys: {shown}); expected signal_type/signal_value or md5, sha1, sha256, pdq ... "
                "(or name them with --columns)",
            )
            return []
        hash_pos = {p for p, _, _ in roles.signals} | {p for p, _ in roles.unsupported}
        if roles.id is not None:
            hash_pos.add(roles.id)
        cells: list[str | None] = []
        for pos, value in enumerate(obj.values()):
            if value is None:
                cells.append(None)
            elif isinstance(value, str):
                cells.append(value)
            elif pos in hash_pos and not (pos == roles.id and isinstance(value, int)):
                maker.fail(line, f"field {shown_name(keys[pos])} must be a string")
                return []
            else:
                cells.append(text_of(value))
        return record_rows(self.fmt, maker, roles, cells, line, default_id)
