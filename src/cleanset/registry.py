"""A name -> class registry shared by every extension point (signals, sources, bank formats, indexes, executors).

Registration is explicit and a duplicate name is an error: two plugins silently shadowing each other is how a hash
list ends up matched with the wrong algorithm.

A registry given an entry point ``group`` also loads what installed packages declare there (``cleanset.sources``,
``cleanset.formats``, ``cleanset.executors``), lazily and once, on the first lookup: ``import cleanset`` stays cheap
and a broken plugin only costs the command that needs that seam. cleanset declares its own built-ins in the same
groups (pyproject.toml), so they come in exactly as an outside package's would; the modules that define them still
register on import, so a source checkout that was never installed (no entry points) works the same. An entry point
that names an object already registered under its name is that registration, not a duplicate; a different object
under a taken name is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from cleanset.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, group: str | None = None) -> None:
        self.what = what
        self.group = group
        self._items: dict[str, T] = {}
        self._loaded = group is None
        self._version = 0  # bumped on every change, so tables derived from a registry know when to recompute

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: loading a plugin module may look names up here again
        assert self.group is not None
        for ep in entry_points(group=self.group):
            item = ep.load()
            known = self._items.get(ep.name)
            if known is item:  # the module registered itself on import (a built-in, or a decorated plugin)
                continue
            if known is not None:
                raise ValueError(f"duplicate {self.what} name {ep.name!r} (entry point {ep.value})")
            self._items[ep.name] = item
            self._version += 1

    @property
    def version(self) -> int:
        """A counter that changes whenever an item is added or removed (entry points included)."""
        self._load_entry_points()
        return self._version

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"duplicate {self.what} name {name!r}")
        self._items[name] = item
        self._version += 1
        return item

    def remove(self, name: str) -> T:
        """Take a registration back (a test's toy plugin, cleaned up afterwards); KeyError when not registered."""
        item = self._items.pop(name)
        self._version += 1
        return item

    def register(self, name: str) -> Callable[[T], T]:
        def deco(item: T) -> T:
            return self.add(name, item)

        return deco

    def get(self, name: str) -> T:
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UserError(f"unknown {self.what} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load_entry_points()
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        self._load_entry_points()
        return sorted(self._items.items())
