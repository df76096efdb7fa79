"""What a user can tell a format about a file on the command line, and what a format has to tell back.

Exports from hotlines and exchanges rarely agree on header names or on how a value is written. Rather than one
format per provider, a format takes a column map (``--columns md5=MD5,pdq=PDQ``) and a value encoding
(``--value-encoding base64``). Values a format reads but cannot use (PhotoDNA, video signals) are not errors,
since the rest of the list still protects; they are counted, and the counts come back as notes the import
report prints. A note never holds a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from cleanset.banks import names
from cleanset.banks.base import BankFormat
from cleanset.errors import UserError
from cleanset.signals import bank_signals

ENCODINGS = ("hex", "base64")

#: Roles a column map may name besides the bank's signals.
ID, CATEGORY = "id", "category"


@dataclass(frozen=True)
class ReadOptions:
    #: role -> the column (or JSON key) holding it, as written in the file's header; roles are bank signals,
    #: ``id``, ``category`` or an unsupported signal (``photodna`` ...), which is then counted, never read.
    columns: Mapping[str, str] = field(default_factory=dict)
    encoding: str = "hex"


DEFAULT = ReadOptions()

#: Signals lists carry that cleanset does not compute: name -> (shown name, why).
UNSUPPORTED: dict[str, tuple[str, str]] = {
    "photodna": ("PhotoDNA", "PhotoDNA is proprietary and not computed by cleanset"),
    "tmk": ("TMK+PDQF", "video signals are not computed by cleanset"),
    "videntifier": ("Videntifier", "Videntifier is proprietary and not computed by cleanset"),
    "sha512": ("SHA-512", "cleanset does not compute SHA-512"),
    "saferhash": ("SaferHash", "SaferHash is proprietary and not computed by cleanset"),
}


_UNSUPPORTED_SPELLINGS = {
    "photodna": "photodna",
    "pdna": "photodna",
    "photodnahash": "photodna",
    "tmk": "tmk",
    "tmkpdqf": "tmk",
    "videotmkpdqf": "tmk",
    "videntifier": "videntifier",
    "sha512": "sha512",
    "saferhash": "saferhash",
}


def key(text: str) -> str:
    """A header, key or type name reduced to lower-case letters and digits (``SHA-1`` -> ``sha1``)."""
    return "".join(c for c in text.lower() if c.isalnum())


def unsupported_signal(text: str) -> str | None:
    """The ``UNSUPPORTED`` entry a header or type name spells (python-threatexchange's ``photodna`` and
    ``video_tmk_pdqf``, NCMEC's ``pdna`` ...), or None."""
    return _UNSUPPORTED_SPELLINGS.get(key(text))


def unsupported_note(signal: str, count: int) -> str:
    shown, why = UNSUPPORTED.get(signal, ("other-signal", "cleanset does not read that signal type"))
    return f"{count:,} {shown} value{'s' if count != 1 else ''} skipped: {why}"


def parse_columns(text: str | None) -> dict[str, str]:
    """``"md5=MD5,pdq=PDQ"`` -> ``{"md5": "MD5", "pdq": "PDQ"}`` (the CLI's ``--columns``)."""
    if not text:
        return {}
    known = sorted({*bank_signals(), ID, CATEGORY, *UNSUPPORTED})
    out: dict[str, str] = {}
    for item in text.split(","):
        role, sep, column = item.partition("=")
        role, column = role.strip().lower(), column.strip()
        if not sep or not role or not column:
            raise UserError(f"--columns {item.strip()!r}: expected ROLE=COLUMN, e.g. md5=MD5,pdq=PDQ")
        role = names.ALIASES.get(role, role)
        if role not in known:
            raise UserError(f"--columns: unknown role {role!r} (known: {', '.join(known)})")
        if role in out:
            raise UserError(f"--columns names {role!r} twice")
        out[role] = column
    return out


class Format(BankFormat):
    """A list format that takes ``ReadOptions`` and reports notes."""

    #: Whether a column map means anything to this format (columns of a table, keys of JSON objects).
    takes_columns: ClassVar[bool] = False
    #: Whether values may be written in base64 (formats whose values are all hashes).
    takes_encoding: ClassVar[bool] = True

    def __init__(self) -> None:
        self.options = DEFAULT
        self.skipped = 0
        self.unsupported: Counter[str] = Counter()
        self.extra_notes: list[str] = []

    def configure(self, options: ReadOptions) -> None:
        if options.columns and not self.takes_columns:
            raise UserError(f"--columns does not apply to the {self.name} format (it has no named columns)")
        if options.encoding not in ENCODINGS:
            raise UserError(f"unknown value encoding {options.encoding!r} (known: {', '.join(ENCODINGS)})")
        if options.encoding != "hex" and not self.takes_encoding:
            raise UserError(f"--value-encoding does not apply to the {self.name} format")
        self.options = options

    def reset(self) -> None:
        self.skipped = 0
        self.unsupported = Counter()
        self.extra_notes = []

    @property
    def notes(self) -> list[str]:
        """What the last read left out on purpose, in words (never a value)."""
        return [unsupported_note(s, n) for s, n in sorted(self.unsupported.items())] + list(self.extra_notes)


def notes_of(fmt: BankFormat) -> list[str]:
    return fmt.notes if isinstance(fmt, Format) else []
