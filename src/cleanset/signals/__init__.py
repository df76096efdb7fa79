"""Signal registry: every hash kind cleanset knows, by name, and the tables derived from what each declares.

Each signal class declares its input, metric, default threshold, quality gating, the bank signal it matches, its
results column and whether it is computed by default (``cleanset.signals.base.Signal``). The functions below turn
those declarations into the tables other layers use (the results schema's hash columns, the bank signals, the
policy's exact signals, the matcher's gated signals, the engine's defaults), so a new signal is its own file plus
its registration. They are recomputed whenever the registry changes and cached otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cleanset.errors import UserError
from cleanset.registry import Registry
from cleanset.signals.base import DEFAULT_QUALITY_GATE, Input, Signal

__all__ = [
    "DEFAULT_QUALITY_GATE",
    "SIGNALS",
    "Input",
    "bank_signal_of",
    "bank_signals",
    "column_probes",
    "default_signals",
    "exact_signals",
    "get_signal",
    "given_signals",
    "hash_columns",
    "image_signals",
    "quality_gated_signals",
    "signal_names",
]

# Built-ins register on import, as a plugin's classes do through the ``cleanset.signals`` entry point group.
SIGNALS: Registry[type[Signal]] = Registry("signal", group="cleanset.signals")

_loaded = False


def _load_builtin() -> None:
    """Import the built-in signal modules once; each registers its classes on import."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for mod in ("crypto", "url", "pdq", "phash"):
        importlib.import_module(f"cleanset.signals.{mod}")


def get_signal(name: str) -> type[Signal]:
    _load_builtin()
    return SIGNALS.get(name)


def signal_names() -> list[str]:
    _load_builtin()
    return SIGNALS.names()


T = TypeVar("T")
_cache: dict[str, tuple[int, object]] = {}


def _derived(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` computed once per state of the registry (the matcher and the policy ask per probe and per match)."""
    key = fn.__name__

    def wrapper() -> T:
        _load_builtin()
        version = SIGNALS.version
        hit = _cache.get(key)
        if hit is None or hit[0] != version:
            hit = (version, fn())
            _cache[key] = hit
        return hit[1]  # type: ignore[return-value]

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _ranked() -> list[type[Signal]]:
    """Every registered signal by declared rank, then name."""
    return sorted((cls for _, cls in SIGNALS.items()), key=lambda c: (c.rank, c.name))


def bank_signal_of(name: str) -> str:
    """The bank signal a signal's values are matched against (``pdq512`` -> ``pdq``; most signals: their own)."""
    return get_signal(name).matches()


@_derived
def bank_signals() -> tuple[str, ...]:
    """Signals a bank may hold, sorted: what every registered signal matches."""
    return tuple(sorted({cls.matches() for cls in _ranked()}))


@_derived
def exact_signals() -> frozenset[str]:
    """Bank signals matched by equality (a match's ``signal`` is a bank signal)."""
    return frozenset(cls.matches() for cls in _ranked() if cls.is_exact())


@_derived
def quality_gated_signals() -> frozenset[str]:
    """Probe signals whose probes below the quality gate are matched at distance 0 only (``pdq``: pdq512's probes
    are ``pdq`` probes too)."""
    return frozenset(cls.matches() for cls in _ranked() if cls.quality_gated)


@_derived
def hash_columns() -> tuple[str, ...]:
    """The results schema's hash columns, by rank (md5, sha1, sha256, pdq, pdq512, phash, url_md5, url_sha1)."""
    return tuple(cls.column for cls in _ranked() if cls.column is not None)


# The order existing results files put column probes back in: file digests, URL digests, then pixel signals.
_PROBE_ORDER = {Input.BYTES: 0, Input.URL: 1, Input.PIXELS: 2}


@_derived
def column_probes() -> tuple[str, ...]:
    """Signals whose one probe is exactly their hash column (name == signal == column, no quality), so the probe
    is not stored twice; in the order readers put them back (``runs.schema.with_full_probes``)."""
    cols = [
        cls
        for cls in _ranked()
        if cls.column == cls.name and not cls.dihedral and not cls.quality_gated and cls.bank_signal is None
    ]
    return tuple(cls.name for cls in sorted(cols, key=lambda c: (_PROBE_ORDER[c.input], c.rank, c.name)))


def default_signals(kind: Input | None = None) -> tuple[str, ...]:
    """Signals computed when none are named, by rank; of one input kind, or of any."""
    return tuple(c.name for c in _default_signals() if kind is None or c.input is kind)


@_derived
def _default_signals() -> tuple[type[Signal], ...]:
    return tuple(cls for cls in _ranked() if cls.by_default)


def is_url_signal(name: str) -> bool:
    """Whether ``name`` hashes a URL (so a match on it means the item's URL *is* a list value). A signal not
    registered here counts as one: a report then withholds a URL it need not, never one it should."""
    try:
        return get_signal(name).input is Input.URL
    except UserError:  # not registered
        return True


def image_signals() -> tuple[str, ...]:
    """Default signals an image file gives (bytes and pixels), by rank."""
    return tuple(c.name for c in _default_signals() if c.input is not Input.URL)


def given_signals() -> tuple[str, ...]:
    """File digests a source's metadata may give for an item (signals of the stored bytes with a column)."""
    return tuple(c.name for c in _ranked_with_columns() if c.input is Input.BYTES)


@_derived
def _ranked_with_columns() -> tuple[type[Signal], ...]:
    return tuple(cls for cls in _ranked() if cls.column is not None)
