"""Signal registry: every hash kind cleanset knows, by name."""

from __future__ import annotations

from cleanset.registry import Registry
from cleanset.signals.base import Signal

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
