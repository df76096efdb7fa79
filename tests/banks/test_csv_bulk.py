"""The bulk CSV reader (Arrow + vectorised checks) must accept, reject and word everything exactly as the
reference reader (Python's csv module, line by line) does."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from bank_samples import hexes, write

from cleanset.banks.base import BankFormat
from cleanset.banks.columns import ParsedBank, canonicalize
from cleanset.banks.formats import get_format
from cleanset.banks.formats.csv_list import CsvList
from cleanset.banks.hexcodec import decode_column
from cleanset.errors import InputFormatError


def reference(path: Path, **kw: object) -> ParsedBank:
    fmt = CsvList()
    return BankFormat.read_columns(fmt, path, **kw)  # type: ignore[arg-type]


def bulk(path: Path, **kw: object) -> ParsedBank:
    return get_format("csv").read_columns(path, **kw)  # type: ignore[arg-type]


def content(parsed: ParsedBank, path: Path) -> dict[str, list[tuple[str, str, dict[str, str]]]]:
    """Canonical (value, id, labels) per signal."""
    canon = canonicalize(parsed, str(path))
    out = {}
    for sig, cols in canon.signals.items():
        ids = canon.ids_of(sig).to_pylist()
        labels = canon.labels_of(sig)
        lab = labels.to_pylist() if labels is not None else [{}] * len(ids)
        out[sig] = [
            (bytes(v).hex(), i, {k: x for k, x in d.items() if x is not None})
            for v, i, d in zip(cols.values, ids, lab, strict=True)
        ]
    return out


def mixed_csv(n: int, seed: int) -> tuple[str, list[str]]:
    """A CSV of n records over several signals (aliases, upper case, padding, a URL, quoted labels)."""
    rng = random.Random(seed)
    pdq, md5, sha1 = hexes("pdq", n, seed), hexes("md5", n, seed), hexes("sha1", n, seed)
    lines = ["signal_type,signal_value,id,source"]
    for i in range(n):
        kind = rng.random()
        if kind < 0.6:
            sig, val = rng.choice(["pdq", "PDQ"]), pdq[i]
        elif kind < 0.8:
            sig, val = rng.choice(["md5", "video_md5"]), md5[i].upper()
        elif kind < 0.95:
            sig, val = "sha1", f" {sha1[i]} "
        else:
            sig, val = "url", f"https://example.com/{i}"
        src = rng.choice(["a", '"b, quoted"', ""])
        lines.append(f"{sig},{val},id{i},{src}")
    return "\n".join(lines) + "\n", lines


def test_bulk_matches_reference_on_valid_file(tmp_path: Path) -> None:
    text, _ = mixed_csv(3000, seed=3)
    f = write(tmp_path / "l.csv", text, crlf=True)
    fast, ref = bulk(f), reference(f)
    assert fast.skipped == ref.skipped == 0
    assert fast.counts() == ref.counts()
    assert set(fast.counts()) == {"pdq", "md5", "sha1", "url_sha1"}
    assert content(fast, f) == content(ref, f)


BAD_LINES = [
    ("pdq,{pdq}0,x{n}", "64 hex digits, got 65"),
    ("pdq,{pdq_short},x{n}", "64 hex digits, got 63"),
    ("md5,{md5_bad},x{n}", "not hexadecimal"),
    ("pdq_ocr,{pdq},x{n}", "unknown signal type 'pdq_ocr'"),
    ("pdq,,x{n}", "empty value"),
    ("pdq,{pdq},", "empty id"),
    ("pdq,{pdq}", "expected 4 columns, got 2"),
    ("pdq,{pdq},x{n},a,b", "expected 4 columns, got 5"),
    ("url,two words,x{n},a", "not a URL"),
]


@pytest.mark.parametrize(("template", "words"), BAD_LINES)
def test_bulk_errors_and_skips_like_reference(tmp_path: Path, template: str, words: str) -> None:
    _, lines = mixed_csv(400, seed=5)
    rng = random.Random(template)
    at = rng.randrange(1, len(lines))
    bad = template.format(
        pdq=hexes("pdq", 1, 99)[0],
        pdq_short=hexes("pdq", 1, 98)[0][:-1],
        md5_bad="q" + hexes("md5", 1, 97)[0][1:],
        n="bad",
    )
    if bad.count(",") == 2 and "expected" not in words:
        bad += ",a"
    lines.insert(at, bad)
    lines.insert(at // 2 + 1, "")  # a blank line: line numbers must still be right
    f = write(tmp_path / "l.csv", "\n".join(lines) + "\n")
    expected_line = at + 2 if at // 2 + 1 <= at else at + 1
    with pytest.raises(InputFormatError) as ref_err:
        reference(f)
    with pytest.raises(InputFormatError) as fast_err:
        bulk(f)
    assert str(fast_err.value) == str(ref_err.value)
    assert fast_err.value.line == expected_line
    assert words in str(fast_err.value)

    fast, ref = bulk(f, skip_invalid=True), reference(f, skip_invalid=True)
    assert fast.skipped == ref.skipped == 1
    assert content(fast, f) == content(ref, f)
    assert fast.entry_count == 400


def test_bulk_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    pdq = hexes("pdq", 3, 11)
    f = write(tmp_path / "l.csv", f"signal_type,signal_value,id\npdq,{pdq[0]},a\npdq,{pdq[1]},b\npdq,{pdq[2]},a\n")
    with pytest.raises(InputFormatError) as err:
        canonicalize(bulk(f), str(f))
    assert err.value.line == 4
    assert "duplicate id 'a' for two different pdq values (first on line 2)" in str(err.value)


def test_exact_repeats_are_dropped_and_counted(tmp_path: Path) -> None:
    pdq = hexes("pdq", 2, 12)
    f = write(
        tmp_path / "l.csv",
        f"signal_type,signal_value,id\npdq,{pdq[0]},a\npdq,{pdq[0].upper()},a\npdq,{pdq[0]},c\npdq,{pdq[1]},b\n",
    )
    canon = canonicalize(bulk(f), str(f))
    assert canon.duplicates == 1
    assert canon.counts() == {"pdq": 3}  # the same value under two ids is two entries
    assert sorted(canon.ids_of("pdq").to_pylist()) == ["a", "b", "c"]


def test_decode_column_matches_bytes_fromhex() -> None:
    import pyarrow as pa

    vals = hexes("pdq", 500, 13)
    noisy = [v.upper() if i % 3 == 0 else (f"\t{v} " if i % 3 == 1 else v) for i, v in enumerate(vals)]
    noisy[7] = vals[7][:-1] + "x"
    noisy[9] = vals[9][:-2]
    col = pa.chunked_array([noisy[:200], noisy[200:]])
    out, bad = decode_column(col, 64)
    assert np.flatnonzero(bad).tolist() == [7, 9]
    for i in set(range(500)) - {7, 9}:
        assert bytes(out[i]) == bytes.fromhex(vals[i])
    rows = np.array([1, 150, 250, 499])
    sub, sub_bad = decode_column(col, 64, rows)
    assert not sub_bad.any()
    assert [bytes(r).hex() for r in sub] == [vals[i] for i in rows]


def test_bulk_ids_default_to_line_numbers_across_blank_lines(tmp_path: Path) -> None:
    pdq, md5 = hexes("pdq", 2, 14), hexes("md5", 1, 14)
    f = write(tmp_path / "l.csv", f"signal_value,signal_type\n{pdq[0]},pdq\n\n{md5[0]},md5\n\n\n{pdq[1]},pdq\n")
    parsed = bulk(f)
    assert sorted(parsed.ids.to_pylist()) == ["2", "4", "7"]
    assert content(parsed, f) == content(reference(f), f)


def test_clean_file_never_falls_back_to_the_row_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, _ = mixed_csv(500, seed=8)
    f = write(tmp_path / "l.csv", text)

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("row-by-row reader used for a clean file")

    monkeypatch.setattr(CsvList, "parse", refuse)
    assert bulk(f).entry_count == 500
