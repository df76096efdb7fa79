"""cleanset: keep known abuse material out of image datasets, and prove it was checked.

The Python API (``cleanset.api``) is re-exported here lazily: ``import cleanset`` loads nothing more than this file,
and ``cleanset.check_bytes`` imports the API (and through it numpy, the banks and the engine) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"


if TYPE_CHECKING:
    from cleanset.api import (
        Banks,
        Check,
        Failure,
        attest,
        banks_from_rows,
        check_bytes,
        check_hashes,
        check_many,
        check_url,
        clean,
        hash_bytes,
        hasher,
        open_banks,
        report,
        scan,
        verify,
    )

__all__ = [
    "Banks",
    "Check",
    "Failure",
    "__version__",
    "attest",
    "banks_from_rows",
    "check_bytes",
    "check_hashes",
    "check_many",
    "check_url",
    "clean",
    "hash_bytes",
    "hasher",
    "open_banks",
    "report",
    "scan",
    "verify",
]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from cleanset import api

        return getattr(api, name)
    raise AttributeError(f"module 'cleanset' has no attribute {name!r}")
