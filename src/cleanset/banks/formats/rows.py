"""Turning one line's fields into a checked bank row: the rules every format shares.

Error messages name what is wrong but never echo the value: a malformed line of a hotline list is still list
content, and messages end up in terminals and logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from cleanset.banks import names
from cleanset.banks.base import BankRow
from cleanset.errors import InputFormatError, UserError
from cleanset.signals import get_signal


class LineError(ValueError):
    """What is wrong with one line (the caller adds file and line)."""


_NAME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_HEX_LIKE = re.compile(r"[0-9A-Fa-f]{8,}")


def shown_name(text: str) -> str:
    """A field quoted in an error only when it looks like a name, never like a value: a list whose columns are
    swapped or that lacks its header would otherwise put a hash value into the message."""
    t = text.strip()
    if _NAME_LIKE.fullmatch(t) and not _HEX_LIKE.fullmatch(t):
        return repr(t)
    return "(a field that is not a name)"


def check_url(text: str) -> str:
    url = text.strip()
    if not url or any(c.isspace() for c in url) or "." not in url:
        raise LineError("not a URL")
    return url


def value_for(signal_text: str, value_text: str) -> tuple[str, str]:
    """(bank signal, canonical hex) for one signal type and value as written in a list."""
    sig = names.resolve(signal_text)
    if sig is None:
        shown = shown_name(signal_text)
        raise LineError(f"unknown signal type {shown} (known: {', '.join(names.accepted_names())})")
    if not value_text.strip():
        raise LineError("empty value")
    if sig == names.RAW_URL:
        return names.URL_TARGET, names.url_hash(check_url(value_text))
    try:
        return sig, get_signal(sig).validate(value_text)
    except ValueError as e:
        raise LineError(str(e)) from None


def required_signal(path: Path, signal: str | None, fmt: str) -> str:
    """The ``--signal`` a format without a signal column needs, checked before the first line is read."""
    if not signal:
        raise InputFormatError(
            str(path), f"a {fmt} list does not name its signal: pass --signal ({', '.join(names.accepted_names())})"
        )
    if names.resolve(signal) is None:
        raise UserError(f"unknown signal {signal!r} (known: {', '.join(names.accepted_names())})")
    return signal


class RowMaker:
    """Builds rows for one file and either raises ``file:line: what is wrong`` or counts the skip."""

    def __init__(self, path: Path, *, skip_invalid: bool) -> None:
        self.path = path
        self.skip_invalid = skip_invalid
        self.skipped = 0

    def fail(self, line: int, message: str) -> None:
        """A line the format itself cannot read (bad JSON, wrong column count)."""
        if not self.skip_invalid:
            raise InputFormatError(str(self.path), message, line)
        self.skipped += 1

    def make(
        self,
        line: int,
        signal_text: str | None,
        value_text: str | None,
        entry_id: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> BankRow | None:
        try:
            return self.build(line, signal_text, value_text, entry_id, labels)
        except LineError as e:
            self.fail(line, str(e))
            return None

    def build(
        self,
        line: int,
        signal_text: str | None,
        value_text: str | None,
        entry_id: str | None,
        labels: Mapping[str, str] | None,
    ) -> BankRow:
        if signal_text is None or not signal_text.strip():
            raise LineError("missing signal type")
        if value_text is None:
            raise LineError("missing value")
        sig, value = value_for(signal_text, value_text)
        if entry_id is None:
            eid = str(line)
        else:
            eid = entry_id.strip()
            if not eid:
                raise LineError("empty id")
        return BankRow(signal=sig, value=value, entry_id=eid, labels=dict(labels or {}), line=line)
