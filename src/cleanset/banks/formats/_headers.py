"""Which column of a wide list (one column per hash type) holds what, from its header or a ``--columns`` map.

Hotline and industry exports put each hash type in its own column and spell headers their own way (``MD5``,
``md5_hash``, ``SHA-1``, ``PDQ Hash``, ``PhotoDNA``). Headers are compared with case and punctuation removed, so
each spelling needs one table entry. The same rules read the keys of JSON objects, so a JSON export and a CSV
export of one list import alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cleanset.banks import names
from cleanset.banks.base import BankRow
from cleanset.banks.formats._options import CATEGORY, ID, UNSUPPORTED, Format, ReadOptions, key, unsupported_signal
from cleanset.banks.formats.rows import RowMaker, shown_name
from cleanset.errors import UserError

_SIGNAL_SPELLINGS: dict[str, str] = {}
for _sig in ("md5", "sha1", "sha256", "pdq", "phash"):
    for _form in (_sig, f"{_sig}hash", f"hash{_sig}", f"{_sig}hex", f"{_sig}value"):
        _SIGNAL_SPELLINGS[_form] = _sig
_SIGNAL_SPELLINGS["md5sum"] = "md5"
_SIGNAL_SPELLINGS["sha1sum"] = "sha1"
_SIGNAL_SPELLINGS["sha256sum"] = "sha256"
_BASE64_SUFFIXES = ("base64", "b64")

_ID_SPELLINGS = {"id", "entryid", "hashid", "recordid", "uuid", "imageid"}
_CATEGORY_SPELLINGS = {"category", "label", "classification", "grade", "severity"}


@dataclass(frozen=True)
class Roles:
    """Column positions by role. ``signals`` are (position, signal, encoding or None for the default)."""

    signals: tuple[tuple[int, str, str | None], ...]
    unsupported: tuple[tuple[int, str], ...]
    id: int | None
    labels: tuple[tuple[int, str], ...]

    @property
    def has_hashes(self) -> bool:
        return bool(self.signals or self.unsupported)


def header_signal(header: str) -> tuple[str, str | None] | None:
    """(signal, encoding) a header names by itself, or None. ``pdq_base64`` is PDQ written in base64."""
    k = key(header)
    for suffix in _BASE64_SUFFIXES:
        if k.endswith(suffix) and k[: -len(suffix)] in _SIGNAL_SPELLINGS:
            return _SIGNAL_SPELLINGS[k[: -len(suffix)]], "base64"
    if k in _SIGNAL_SPELLINGS:
        return _SIGNAL_SPELLINGS[k], None
    sig = names.resolve(header.strip().lower())  # video_md5, url_sha1, url ...
    return (sig, None) if sig is not None else None


def names_hashes(headers: Sequence[str]) -> bool:
    """True when a header row names at least one hash column (what detection asks)."""
    return any(header_signal(h) is not None or unsupported_signal(h) is not None for h in headers)


def resolve_roles(headers: Sequence[str], options: ReadOptions) -> Roles:
    """Roles of a header row: the ``--columns`` map first, then the spellings above; every other column is a
    label named by its header. Raises UserError when a mapped column is missing or two columns claim one
    signal (their values would share an entry id)."""
    folded = [h.strip().lower() for h in headers]
    taken: dict[int, str] = {}
    for role, column in options.columns.items():
        want = column.strip().lower()
        if want not in folded:
            raise UserError(
                f"--columns {role}={column!r}: no such column (the header has: "
                f"{', '.join(shown_name(h) for h in headers)[:300]})"
            )
        taken[folded.index(want)] = role
    signals: list[tuple[int, str, str | None]] = []
    unsupported: list[tuple[int, str]] = []
    labels: list[tuple[int, str]] = []
    id_pos: int | None = None
    category_pos: int | None = None
    claimed: dict[str, int] = {}

    def claim(sig: str, pos: int) -> None:
        if sig in claimed:
            raise UserError(
                f"columns {shown_name(headers[claimed[sig]])} and {shown_name(headers[pos])} both hold {sig}: "
                f"name one with --columns {sig}=COLUMN"
            )
        claimed[sig] = pos

    if CATEGORY not in options.columns:
        # An exact "category" header wins; else the first header spelled like one (label, grade ...).
        spelled = [p for p, h in enumerate(headers) if p not in taken and key(h) in _CATEGORY_SPELLINGS]
        exact = [p for p in spelled if key(headers[p]) == CATEGORY]
        category_pos = (exact or spelled)[0] if spelled else None

    for pos, header in enumerate(headers):
        if pos == category_pos:
            continue
        mapped = taken.get(pos)
        if mapped is not None:
            role = mapped
            if role == ID:
                id_pos = pos
            elif role == CATEGORY:
                category_pos = pos
            elif role in UNSUPPORTED:
                unsupported.append((pos, role))
            else:
                claim(role, pos)
                signals.append((pos, role, None))
            continue
        k = key(header)
        found = header_signal(header)
        other = unsupported_signal(header)
        if found is not None and found[0] not in options.columns:
            claim(found[0], pos)
            signals.append((pos, found[0], found[1]))
        elif found is not None:
            labels.append((pos, folded[pos]))  # the map chose another column for this signal
        elif other is not None:
            unsupported.append((pos, other))
        elif k in _ID_SPELLINGS and id_pos is None and ID not in options.columns:
            id_pos = pos
        else:
            labels.append((pos, folded[pos]))
    if category_pos is not None:
        labels.append((category_pos, CATEGORY))
    return Roles(tuple(signals), tuple(unsupported), id_pos, tuple(sorted(labels)))


def record_rows(
    fmt: Format,
    maker: RowMaker,
    roles: Roles,
    cells: Sequence[str | None],
    line: int,
    default_id: str | None = None,
) -> list[BankRow]:
    """The bank rows of one record (one per non-empty hash cell, all under the record's id); unsupported cells
    are counted on ``fmt``. A record with no value at all is a bad line."""
    eid = cells[roles.id] if roles.id is not None else default_id
    labels: Mapping[str, str] = {name: c for pos, name in roles.labels if (c := cells[pos]) is not None and c != ""}
    rows: list[BankRow] = []
    seen = 0
    for pos, sig, encoding in roles.signals:
        text = cells[pos]
        if text is None or not text.strip():
            continue
        seen += 1
        row = maker.make(line, sig, text, eid, labels, encoding)
        if row is not None:
            rows.append(row)
    for pos, other in roles.unsupported:
        text = cells[pos]
        if text is not None and text.strip():
            fmt.unsupported[other] += 1
            seen += 1
    if not seen:
        taken = ", ".join(sorted({sig for _, sig, _ in roles.signals} | {o for _, o in roles.unsupported}))
        maker.fail(
            line,
            f"no value in any hash column (read as hash columns: {taken or 'none'}; "
            "name the right ones with --columns md5=COLUMN,pdq=COLUMN)",
        )
    return rows
