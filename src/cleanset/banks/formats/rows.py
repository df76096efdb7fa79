"""Turning one line's fields into a checked bank row: the rules every format shares.

Error messages name what is wrong but never echo the value: a malformed line of a hotline list is still list
content, and messages end up in terminals and logs.
"""

from __future__ import annotations

import base64
import binascii
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
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
BASE64_HINT = "it looks like base64: pass --value-encoding base64"


def shown_name(text: str) -> str:
    """A field quoted in an error only when it looks like a name, never like a value: a list whose columns are
    swapped or that lacks its header would otherwise put a hash value into the message."""
    t = text.strip()
    if _NAME_LIKE.fullmatch(t) and not _HEX_LIKE.fullmatch(t) and not _looks_random(t):
        return repr(t)
    return "(a field that is not a name)"


def _looks_random(t: str) -> bool:
    """Long and without a word break: unpadded base64 (an MD5 is 22 characters of it), not a column name. A
    long name without ``_`` is merely not shown; a value must never be."""
    return len(t) >= 20 and "_" not in t


def check_url(text: str) -> str:
    url = text.strip()
    if not url or any(c.isspace() for c in url) or "." not in url:
        raise LineError("not a URL")
    return url


def _b64_bytes(text: str) -> bytes | None:
    """The bytes of a base64 value (standard or URL-safe alphabet, padding optional), or None."""
    t = text.strip()
    if not t or not _BASE64.fullmatch(t):
        return None
    body = t.rstrip("=")
    try:
        return base64.b64decode(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def looks_base64(text: str, signal: str) -> bool:
    """True when a value that is not hex of ``signal`` decodes as base64 to exactly one value of it. A 64-digit
    PDQ written in base64 is 44 characters, so lengths never collide with hex."""
    raw = _b64_bytes(text)
    return raw is not None and len(raw) * 2 == names.hex_len(signal)


def from_base64(signal: str, text: str) -> str:
    raw = _b64_bytes(text)
    if raw is None:
        raise LineError(f"{signal} value is not base64")
    want = names.hex_len(signal) // 2
    if len(raw) != want:
        raise LineError(f"{signal} value must be {want} bytes of base64, got {len(raw)}")
    return raw.hex()


def value_for(signal_text: str, value_text: str, encoding: str = "hex") -> tuple[str, str]:
    """(bank signal, canonical hex) for one signal type and value as written in a list."""
    sig = names.resolve(signal_text)
    if sig is None:
        shown = shown_name(signal_text)
        raise LineError(f"unknown signal type {shown} (known: {', '.join(names.accepted_names())})")
    if not value_text.strip():
        raise LineError("empty value")
    if sig == names.RAW_URL:
        return names.URL_TARGET, names.url_hash(check_url(value_text))
    if encoding == "base64":
        return sig, from_base64(sig, value_text)
    try:
        return sig, get_signal(sig).validate(value_text)
    except ValueError as e:
        hint = f" ({BASE64_HINT})" if looks_base64(value_text, sig) else ""
        raise LineError(f"{e}{hint}") from None


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

    def __init__(self, path: Path, *, skip_invalid: bool, encoding: str = "hex") -> None:
        self.path = path
        self.skip_invalid = skip_invalid
        self.encoding = encoding
        self.skipped = 0
        #: Put before every message: where inside the line the record is (a JSON element, an XML entry).
        self.where = ""

    def fail(self, line: int, message: str) -> None:
        """A line the format itself cannot read (bad JSON, wrong column count)."""
        if not self.skip_invalid:
            raise InputFormatError(str(self.path), self.where + message, line)
        self.skipped += 1

    def make(
        self,
        line: int,
        signal_text: str | None,
        value_text: str | None,
        entry_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        encoding: str | None = None,
    ) -> BankRow | None:
        try:
            return self.build(line, signal_text, value_text, entry_id, labels, encoding)
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
        encoding: str | None = None,
    ) -> BankRow:
        if signal_text is None or not signal_text.strip():
            raise LineError("missing signal type")
        if value_text is None:
            raise LineError("missing value")
        sig, value = value_for(signal_text, value_text, encoding or self.encoding)
        if entry_id is None:
            eid = str(line)
        else:
            eid = entry_id.strip()
            if not eid:
                raise LineError("empty id")
        return BankRow(signal=sig, value=value, entry_id=eid, labels=dict(labels or {}), line=line)
