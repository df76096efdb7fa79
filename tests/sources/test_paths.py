"""Brace patterns and path validation, the way img2dataset/webdataset users write shard lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleanset.errors import UserError
from cleanset.sources._files import UniqueKeys, expand_braces, expand_paths, printable_key, shard_id_for


def test_brace_range_keeps_zero_padding() -> None:
    out = expand_braces("/d/{00000..00003}.tar")
    assert out == ["/d/00000.tar", "/d/00001.tar", "/d/00002.tar", "/d/00003.tar"]
    assert len(expand_braces("{00000..00127}.tar")) == 128
    assert expand_braces("{8..11}") == ["8", "9", "10", "11"]


def test_brace_list_and_two_groups() -> None:
    assert expand_braces("{a,b}/{0..1}.tar") == ["a/0.tar", "a/1.tar", "b/0.tar", "b/1.tar"]


def test_descending_range_is_an_error() -> None:
    with pytest.raises(UserError, match="counts down"):
        expand_braces("{5..1}.tar")


def test_missing_path_named(tmp_path: Path) -> None:
    (tmp_path / "00000.tar").write_bytes(b"")
    with pytest.raises(UserError, match=r"00001\.tar"):
        expand_paths([tmp_path / "{00000..00001}.tar"])
    assert expand_paths([tmp_path / "{00000..00000}.tar"]) == [tmp_path / "00000.tar"]


def test_shard_ids_keep_subfolders_apart(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "00000.tar", tmp_path / "b" / "00000.tar"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(b"")
    assert {shard_id_for(a, tmp_path), shard_id_for(b, tmp_path)} == {"a__00000", "b__00000"}


def test_unique_keys_skip_every_key_given_out() -> None:
    u = UniqueKeys()
    assert [u(k) for k in ["x", "x", "x#2", "x", "x#3", "y"]] == ["x", "x#2", "x#2#2", "x#3", "x#3#2", "y"]


def test_printable_key_writes_undecodable_bytes_out() -> None:
    name = b"caf\xe9.jpg".decode("utf-8", "surrogateescape")
    assert printable_key(name) == "caf\\xe9.jpg"
    assert printable_key(name).encode("utf-8")
    assert printable_key("café") == "café"


def test_existing_names_with_pattern_characters_are_taken_literally(tmp_path: Path) -> None:
    """Names are data: a folder called ``{a,b}[1]*?`` is read as itself, and its look-alikes are not."""
    odd = tmp_path / "{a,b}[1]*?"
    odd.mkdir()
    (tmp_path / "a[1]*?").mkdir()  # what brace expansion would produce
    assert expand_paths([odd]) == [odd]
