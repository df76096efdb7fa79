"""A byte that is not UTF-8 in a text list: named by file and line, through the format and through an import,
and never quoted (the line is list content)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bank_samples import hexes

from cleanset.banks.formats import get_format
from cleanset.banks.store import BankStore
from cleanset.errors import InputFormatError

PDQ = hexes("pdq", 4, 31)
MD5 = hexes("md5", 4, 32)
BAD = b"\xff\xfe"

# Each format's file as lines of bytes; line 3 (1-based) holds a value with a non-UTF-8 byte in its middle.
LINES: dict[str, list[bytes]] = {
    "csv": [
        b"signal_type,signal_value,id,source",
        f"pdq,{PDQ[0]},e0,hotline".encode(),
        b"pdq," + PDQ[1][:30].encode() + BAD + PDQ[1][32:].encode() + b",e1,hotline",
        f"pdq,{PDQ[2]},e2,hotline".encode(),
    ],
    "jsonl": [
        f'{{"signal_type": "md5", "signal_value": "{MD5[0]}", "id": "a"}}'.encode(),
        f'{{"signal_type": "md5", "signal_value": "{MD5[1]}", "id": "b"}}'.encode(),
        b'{"signal_type": "md5", "signal_value": "' + MD5[2][:10].encode() + BAD + MD5[2][12:].encode() + b'"}',
        f'{{"signal_type": "md5", "signal_value": "{MD5[3]}", "id": "d"}}'.encode(),
    ],
    "plain": [
        PDQ[0].encode(),
        PDQ[1].encode(),
        PDQ[2][:20].encode() + BAD + PDQ[2][22:].encode(),
        PDQ[3].encode(),
    ],
    "te": [
        f"pdq {PDQ[0]}".encode(),
        f"md5 {MD5[0]}".encode(),
        b"pdq " + PDQ[2][:20].encode() + BAD + PDQ[2][22:].encode(),
        f"md5 {MD5[1]}".encode(),
    ],
    "urls": [
        b"https://example.org/a/picture-one.jpg",
        b"https://example.org/b/picture-two.jpg",
        b"https://example.org/c/pic" + BAD + b"ture-three.jpg",
        b"https://example.org/d/picture-four.jpg",
    ],
}
SIGNAL = {"plain": "pdq"}
# Text of line 3 on either side of the bad byte: none of it may appear in the message.
SECRETS = {
    "csv": (PDQ[1][:30], PDQ[1][32:]),
    "jsonl": (MD5[2][:10], MD5[2][12:]),
    "plain": (PDQ[2][:20], PDQ[2][22:]),
    "te": (PDQ[2][:20], PDQ[2][22:]),
    "urls": ("example.org/c/pic", "ture-three"),
}


def list_file(tmp_path: Path, fmt: str, crlf: bool) -> Path:
    path = tmp_path / f"list-{fmt}.{'csv' if fmt == 'csv' else 'txt'}"
    path.write_bytes(b"".join(line + (b"\r\n" if crlf else b"\n") for line in LINES[fmt]))
    return path


def check(err: InputFormatError, path: Path, fmt: str) -> None:
    assert err.line == 3
    assert str(err).startswith(f"{path}:3: ")
    assert "UTF-8" in str(err)
    for part in SECRETS[fmt]:
        assert part.lower() not in str(err).lower()


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("fmt", sorted(LINES))
def test_parse_names_the_line(tmp_path: Path, fmt: str, crlf: bool) -> None:
    path = list_file(tmp_path, fmt, crlf)
    for skip in (False, True):  # a file that is not text is never half-read, even when skipping bad lines
        with pytest.raises(InputFormatError) as info:
            list(get_format(fmt).parse(path, signal=SIGNAL.get(fmt), skip_invalid=skip))
        check(info.value, path, fmt)


@pytest.mark.parametrize("fmt", sorted(LINES))
def test_import_names_the_line(tmp_path: Path, cleanset_home: Path, fmt: str) -> None:
    path = list_file(tmp_path, fmt, crlf=False)
    store = BankStore.default()
    with pytest.raises(InputFormatError) as info:
        store.import_file("hotline", path, format=fmt, signal=SIGNAL.get(fmt))
    check(info.value, path, fmt)
    assert not store.exists("hotline")


def test_bad_byte_in_the_csv_header(tmp_path: Path, cleanset_home: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b"signal_type,signal_va" + BAD + b"lue,id\n" + f"pdq,{PDQ[0]},a\n".encode())
    with pytest.raises(InputFormatError) as info:
        BankStore.default().import_file("hotline", path, format="csv")
    assert info.value.line == 1 and str(info.value).startswith(f"{path}:1: ")
