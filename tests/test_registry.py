from __future__ import annotations

import pytest

from cleanset.errors import UserError
from cleanset.registry import Registry


def test_duplicate_name_is_an_error() -> None:
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="duplicate thing name 'a'"):
        reg.add("a", 2)
    assert reg.get("a") == 1


def test_unknown_name_lists_the_known_ones() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("b")(2)
    reg.add("a", 1)
    with pytest.raises(UserError, match=r"unknown thing 'c' \(known: a, b\)"):
        reg.get("c")
    assert reg.names() == ["a", "b"]
    assert "a" in reg and "c" not in reg
