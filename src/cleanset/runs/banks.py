"""How a run names its banks: opening ``NAME[@VERSION]`` specs and the manifest record of each bank.

Here rather than in the scan because rematch resolves and records banks exactly as the scan did, and neither may
import the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cleanset.errors import UserError


def open_banks(names: Sequence[str]) -> list[Any]:
    """Snapshots for ``NAME`` or ``NAME@VERSION``; an unknown bank is a UserError from the store."""
    from cleanset.banks.store import BankStore

    if not names:
        raise UserError("no bank given: pass --bank NAME (see `cleanset bank list`)")
    store = BankStore.default()
    snaps = []
    for spec in names:
        name, _, ver = spec.partition("@")
        if ver and not ver.isdigit():
            raise UserError(f"--bank {spec!r}: version must be a number (NAME@VERSION)")
        snaps.append(store.open(name, int(ver) if ver else None))
    if len({s.name for s in snaps}) != len(snaps):
        raise UserError("the same bank is given twice")
    return snaps


def bank_record(s: Any) -> dict[str, Any]:
    """How the manifest names a bank: identity and digest, never a value."""
    return {
        "name": s.name,
        "version": int(s.version),
        "allow": bool(s.allow),
        "entry_count": int(s.entry_count),
        "digest": s.digest,
        "thresholds": {sig: int(s.threshold(sig)) for sig in s.signals()},
    }
